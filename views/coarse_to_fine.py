"""Coarse-to-fine EBM: the 7 → 14 → 28 cascade played back, the fade, growth, budget, restoration."""

import time

import numpy as np
import streamlit as st

from ebmviz import checkpoints, figures
from ebmviz.app import cascade as cc
from ebmviz.app.widgets import SEED, model_of_kind
from ebmviz.corruption import MASKS
from ebmviz.models.coarse_to_fine import SIDES, CascadeConfig, default_cascade
from ebmviz.sampling import LangevinConfig

P = "cf"
st.title("Coarse-to-fine EBM")
st.markdown(
    "The CF-EBM (Zhao, Xie & Li, ICLR 2021) learns energies $E_0, E_1, E_2$ of 7×7, 14×14 and 28×28 "
    "digits, growing one network stage by stage. A sample is a **cascade**: Langevin at 7×7 from noise, "
    "upsample and add noise (the *hand-off*), refine at 14×14, hand off, refine at 28×28.")
st.latex(r"\mathrm{Expand}(x) = \beta\,\mathrm{Primal}(x) + (1-\beta)\,\mathrm{Fade}(x),\qquad "
         r"\beta = 0 \;\Rightarrow\; E_{s+1}(x) = E_s(\mathrm{pool}(x))")
seed = int(st.session_state.get(SEED, 0))
name, model = model_of_kind("coarse_to_fine", "CF-EBM checkpoint", key=f"{P}_ckpt")
shipped = default_cascade(model)
view = st.segmented_control("View", ["Cascade", "Fade (β)", "Growth", "Same budget", "Restoration"],
                            default="Cascade", key=f"{P}_view") or "Cascade"

if view == "Cascade":
    c = st.columns(5)
    n = c[0].slider("Chains", 1, 64, 16, key=f"{P}_n")
    steps = tuple(c[i + 1].number_input(f"K at {s}×{s}", 0, 500, shipped.steps[i], key=f"{P}_k{i}")
                  for i, s in enumerate(SIDES))
    hand = c[4].number_input("Hand-off noise σ", 0.0, 1.0, shipped.handoff_noise, 0.01, key=f"{P}_hand")
    cfg = CascadeConfig(steps=steps, step_size=shipped.step_size, noise_std=shipped.noise_std,
                        grad_clip=shipped.grad_clip, handoff_noise=hand, record_every=1)
    spec = (name, cfg, n, seed)
    if st.session_state.get(f"{P}_spec") != spec:
        st.session_state.update({f"{P}_spec": spec, f"{P}_pos": 0, f"{P}_playing": False})
    b = st.columns(3)
    if b[0].button("Play", icon=":material/play_arrow:", key=f"{P}_play", width="stretch"):
        st.session_state[f"{P}_playing"] = True
    if b[1].button("Pause", icon=":material/pause:", key=f"{P}_pause", width="stretch"):
        st.session_state[f"{P}_playing"] = False
    if b[2].button("Reset", icon=":material/restart_alt:", key=f"{P}_reset", width="stretch"):
        st.session_state.update({f"{P}_pos": 0, f"{P}_playing": False})
        for key in [k for k in st.session_state if str(k).startswith(f"{P}_scrub")]:
            del st.session_state[key]  # the scrubber keeps its own value otherwise
    cascade, seconds = cc.run_cascade(name, cfg, n, seed)
    frames = cc.timeline(cascade)
    energies = [t.energy for t in cascade.trajectories]

    def show(i: int, status, grid) -> None:
        f = frames[i]
        where = "hand-off: upsampled + noise" if f.handoff else f"step {f.step} / {steps[f.stage]}"
        beta = cascade.beta if f.stage == len(cascade.trajectories) - 1 else 1.0
        status.markdown(f"**Stage {f.stage} · {SIDES[f.stage]}×{SIDES[f.stage]} · {where}** · β = {beta:.2f} · "
                        f"{f.grad_evals} / {cascade.grad_evals} gradient evaluations")
        grid.image(figures.tile(f.images, ncol=8, scale=3))

    @st.fragment(run_every=0.1 if st.session_state[f"{P}_playing"] else None)
    def playback():
        pos = min(st.session_state[f"{P}_pos"], len(frames) - 1)
        if not st.session_state[f"{P}_playing"]:
            pos = st.slider("Timeline", 0, len(frames) - 1, pos, key=f"{P}_scrub_{len(frames)}")
            st.session_state[f"{P}_pos"] = pos  # Play continues from where the scrubber is
        status, grid = st.empty(), st.empty()
        show(pos, status, grid)
        start = time.monotonic()
        while st.session_state[f"{P}_playing"] and time.monotonic() - start < 1.0:
            if pos >= len(frames) - 1:
                st.session_state[f"{P}_playing"] = False
                st.rerun()
            pos += 1
            st.session_state[f"{P}_pos"] = pos
            show(pos, status, grid)
            time.sleep(0.12)
        if not st.session_state[f"{P}_playing"]:
            f = frames[pos]
            st.plotly_chart(figures.cascade_energy_figure(energies, (f.stage, f.step)), key=f"{P}_energy")

    playback()
    st.caption(f"{n} chains sampled in {seconds:.2f} s. Coarse stages are shown enlarged by pixel repetition.")

elif view == "Fade (β)":
    snaps = [s for s in model.snapshots() if s["stage"] > 0 and s["beta"] < 1.0]
    if not snaps:
        st.info("This checkpoint has no snapshot taken during a transition.")
        st.stop()
    middle = [s for s in snaps if s["beta"] == 0.5] or snaps  # default: halfway through the last transition
    pick = st.select_slider("Snapshot taken during a transition", snaps, value=middle[-1],
                            format_func=lambda s: f"{SIDES[s['stage']]} px, β = {s['beta']:.2f}, it. {s['iteration']}",
                            key=f"{P}_snap")
    beta = st.slider("β (0: only the fade path, 1: only the new block)", 0.0, 1.0, pick["beta"], 0.05,
                     key=f"{P}_beta")
    share = cc.beta_share(name, pick["index"], beta, seed)
    left, right = st.columns(2)
    with left:
        st.plotly_chart(figures.beta_energy_figure(share["beta"], share["energy"], beta), key=f"{P}_beta_fig")
        p, f = share["primal"].mean(), share["fade"].mean()
        st.markdown(f"At β = {beta:.2f}, the Expand block's output on held-out digits is "
                    f"**{100 * p / (p + f):.0f}% new block** (‖β·Primal‖ = {p:.2f}) and "
                    f"**{100 * f / (p + f):.0f}% fade path** (‖(1−β)·Fade‖ = {f:.2f}).")
    with right:
        cas, _ = cc.run_cascade(name, shipped, 16, seed, snapshot=pick["index"], beta=beta)
        st.image(figures.tile(cc.to28(figures.as_u8(cas.final.numpy())), ncol=8, scale=3),
                 caption=f"cascade samples of this snapshot at β = {beta:.2f}")

elif view == "Growth":
    snaps = model.snapshots()
    st.markdown("Samples (same seed) from every snapshot saved while the model grew.")
    for s in snaps:
        cas, _ = cc.run_cascade(name, shipped, 8, seed, snapshot=s["index"], beta=s["beta"])
        c1, c2 = st.columns([1, 4])
        c1.markdown(f"**{SIDES[s['stage']]}×{SIDES[s['stage']]}**, β = {s['beta']:.2f}  \niteration {s['iteration']}")
        c2.image(figures.tile(cc.to28(figures.as_u8(cas.final.numpy())), ncol=8, scale=2))
    hist = model.meta.get("history", [])
    if hist:
        st.plotly_chart(figures.history_figure(hist, ["e_real", "e_fake", "beta", "stage"]), key=f"{P}_hist")

elif view == "Same budget":
    srs = [i.name for i in checkpoints.list_checkpoints() if i.kind == "shortrun"]
    if not srs:
        st.info("No short-run checkpoint to compare with.")
        st.stop()
    sr = st.selectbox("Short-run model", srs, key=f"{P}_sr")
    n = st.slider("Chains", 16, 256, 64, 16, key=f"{P}_budget_n")
    r = cc.budget_comparison(name, sr, shipped, n, seed)
    st.markdown(f"Both samplers spend **{r['budget']} gradient evaluations per chain**: the cascade "
                f"{' + '.join(map(str, shipped.steps))} over 7, 14 and 28 px; the short-run model "
                f"{r['budget']} steps at 28 px from noise.")
    runs = {f"cascade ({r['cascade']['seconds']:.1f} s)": r["cascade"],
            f"short-run ({r['shortrun']['seconds']:.1f} s)": r["shortrun"]}
    st.plotly_chart(figures.budget_figure(runs), key=f"{P}_budget_fig")
    a, b = st.columns(2)
    a.image(figures.tile(r["cascade"]["final"][:32], ncol=8, scale=2), caption="cascade")
    b.image(figures.tile(r["shortrun"]["final"][:32], ncol=8, scale=2), caption="short-run, same budget")

else:
    c = st.columns(4)
    digit = c[0].selectbox("Digit", list(range(10)), key=f"{P}_digit")
    noise = c[1].slider("Noise σ (denoising)", 0.1, 1.0, 0.5, 0.05, key=f"{P}_noise")
    mask = c[2].selectbox("Hidden 25%", ["pixels", "block"], format_func=MASKS.get, key=f"{P}_mask")
    k = c[3].number_input("Langevin steps", 1, 1000, 15, key=f"{P}_rsteps",
                          help="The error is lowest after 5–15 steps; longer runs thicken the strokes")
    cfg = LangevinConfig(n_steps=int(k), step_size=shipped.step_size, noise_std=shipped.noise_std,
                         grad_clip=shipped.grad_clip, record_every=max(1, int(k) // 30))
    r = cc.restoration(name, digit, 6, noise, mask, cfg, seed)
    for task, title in (("denoise", "Denoising"), ("inpaint", "Filling in the hidden quarter")):
        seen, run = r[task]
        st.subheader(title)
        rows = np.concatenate([r["clean"], seen, run.final])
        st.image(figures.tile(figures.as_u8(rows), ncol=len(seen), scale=3),
                 caption=f"rows: original · corrupted · restored — MSE {run.error[0].mean():.4f} → "
                         f"{run.error[-1].mean():.4f}")
    st.plotly_chart(figures.error_figure(r["inpaint"][1].frame_steps, {
        "denoising (all pixels)": r["denoise"][1].error, "inpainting (hidden pixels)": r["inpaint"][1].error}),
        key=f"{P}_err")
