"""Coarse-to-fine EBM: the 7 → 14 → 28 cascade played back, the fade, growth, budget, restoration."""

from dataclasses import asdict

import numpy as np
import streamlit as st

from ebmviz.app import cache, links
from ebmviz.app.drawpad import drawn_digit
from ebmviz.app.export_panel import export_panel
from ebmviz.app.pages import coarse_to_fine
from ebmviz.app.pages.coarse_to_fine import (
    CONFIDENT,
    MASKS,
    SIDES,
    CascadeConfig,
    DataError,
    LangevinConfig,
    to_u8,
    trajectory_arrays,
)
from ebmviz.app.player import FrameView, Player, Recorded
from ebmviz.app.widgets import checkpoint_names, image_upload, model_picker, of_kind, share, shared
from ebmviz.figures.chains import compare_energy_figure
from ebmviz.figures.charts import history_figure
from ebmviz.figures.coarse_to_fine import beta_energy_figure, budget_figure, cascade_energy_figure, error_figure
from ebmviz.figures.images import tile

P = "cf"
state = coarse_to_fine.CascadeState(P)
VIEW_NAMES = ["Cascade", "Fade (β)", "Growth", "Same budget", "Restoration", "Domain translation"]
fields = [links.choice(state.key("ckpt"), "model", checkpoint_names(of_kind("coarse_to_fine"))),
          links.choice(state.key("view"), "view", VIEW_NAMES), links.integer(state.key("n"), "chains", 1, 64),
          *[links.integer(state.key(f"k{i}"), f"k{i}", 0, 500) for i in range(3)], links.number(state.key("hand"),
                                                                                                "handoff", 0, 1),
          links.number(state.key("beta"), "beta", 0, 1),
          links.choice(state.key("sr"), "shortrun", checkpoint_names(of_kind("shortrun"))),
          links.integer(state.key("budget_n"), "budget_chains", 16, 256), links.choice(state.key("digit"), "digit",
                                                                                       range(10)),
          links.number(state.key("noise"), "noise", 0.1, 1.0), links.choice(state.key("mask"), "mask", ["pixels",
                                                                                                        "block"]),
          links.integer(state.key("rsteps"), "restore_steps", 1, 1000)]
links.restore(fields)
frame = {}  # the Cascade view's frame on show, for the link
st.title("Coarse-to-fine EBM")
st.markdown(
    "The CF-EBM (Zhao, Xie & Li, ICLR 2021) learns energies $E_0, E_1, E_2$ of 7×7, 14×14 and 28×28 "
    "digits, growing one network stage by stage. A sample is a **cascade**: Langevin at 7×7 from noise, "
    "upsample and add noise (the *hand-off*), refine at 14×14, hand off, refine at 28×28.")
st.latex(r"\mathrm{Expand}(x) = \beta\,\mathrm{Primal}(x) + (1-\beta)\,\mathrm{Fade}(x),\qquad "
         r"\beta = 0 \;\Rightarrow\; E_{s+1}(x) = E_s(\mathrm{pool}(x))")
seed, device = shared().seed, shared().device
name, model = model_picker("CF-EBM checkpoint", state.key("ckpt"), of_kind("coarse_to_fine"))
shipped = model.draw_config()


def cascade_view() -> None:
    c = st.columns(5)
    n = c[0].slider("Chains", 1, 64, 16, key=state.key("n"))
    steps = tuple(c[i + 1].number_input(f"K at {s}×{s}", 0, 500, shipped.steps[i], key=state.key(f"k{i}"))
                  for i, s in enumerate(SIDES))
    hand = c[4].number_input("Hand-off noise σ", 0.0, 1.0, shipped.handoff_noise, 0.01, key=state.key("hand"))
    cfg = CascadeConfig(steps=steps, step_size=shipped.step_size, noise_std=shipped.noise_std,
                        grad_clip=shipped.grad_clip, handoff_noise=hand, record_every=1)
    spec = (name, device, cfg, n, seed)
    if state.spec != spec:
        state.spec = spec
        state.rewind()
    cascade, seconds = coarse_to_fine.run_cascade(name, device, cfg, n, seed)
    frames = coarse_to_fine.cascade_timeline(cascade)
    energies = [t.energy for t in cascade.trajectories]

    def draw(i: int, out: FrameView) -> None:
        f = frames[i]
        where = "hand-off: upsampled + noise" if f.handoff else f"step {f.step} / {steps[f.stage]}"
        beta = cascade.beta if f.stage == len(cascade.trajectories) - 1 else 1.0
        out.status.markdown(f"**Stage {f.stage} · {SIDES[f.stage]}×{SIDES[f.stage]} · {where}** · β = {beta:.2f} · "
                            f"{f.grad_evals} / {cascade.grad_evals} gradient evaluations")
        out.picture.image(tile(f.images, ncol=8, scale=3))
        if not out.playing:
            out.below.plotly_chart(cascade_energy_figure(energies, (f.stage, f.step)), key=state.key("energy"))

    player = Player(state, Recorded(len(frames)))
    player.seek(links.requested_frame(len(frames) - 1))
    frame[links.FRAME] = str(state.position)
    player.controls()
    player.show(draw, scrub_label="Timeline", on_pause=lambda i: share(fields, {links.FRAME: str(i)}))
    st.caption(f"{n} chains sampled in {seconds:.2f} s. Coarse stages are shown enlarged by pixel repetition.")
    export_panel(f"coarse-to-fine-{name}-seed{seed}", frames=lambda: np.stack([tile(f.images, ncol=8, scale=2)
                                                                               for f in frames]),
                 trajectory=lambda: {f"stage{i}_{k}": v for i, t in enumerate(cascade.trajectories)
                                     for k, v in trajectory_arrays(t).items()},
                 config={"model": name, "chains": n, "seed": seed, "device": device, "cascade": asdict(cfg)},
                 figures={"energy per stage": lambda: cascade_energy_figure(energies)},
                 key=state.key("export"))


def fade_view() -> None:
    snaps = [s for s in model.snapshots() if s.stage > 0 and s.beta < 1.0]
    if not snaps:
        st.info("This checkpoint has no snapshot taken during a transition.")
        return
    middle = [s for s in snaps if s.beta == 0.5] or snaps  # default: halfway through the last transition
    pick = st.select_slider("Snapshot taken during a transition", snaps, value=middle[-1],
                            format_func=lambda s: f"{SIDES[s.stage]} px, β = {s.beta:.2f}, it. {s.iteration}",
                            key=state.key("snap"))
    beta = st.slider("β (0: only the fade path, 1: only the new block)", 0.0, 1.0, pick.beta, 0.05,
                     key=state.key("beta"))
    share = coarse_to_fine.beta_share(name, device, pick.index, beta)
    left, right = st.columns(2)
    with left:
        st.plotly_chart(beta_energy_figure(share.beta, share.energy, beta), key=state.key("beta_fig"))
        p, f = share.primal.mean(), share.fade.mean()
        st.markdown(f"At β = {beta:.2f}, the Expand block's output on held-out digits is "
                    f"**{100 * p / (p + f):.0f}% new block** (‖β·Primal‖ = {p:.2f}) and "
                    f"**{100 * f / (p + f):.0f}% fade path** (‖(1−β)·Fade‖ = {f:.2f}).")
    with right:
        cas, _ = coarse_to_fine.run_cascade(name, device, shipped, 16, seed, snapshot=pick.index, beta=beta)
        st.image(tile(coarse_to_fine.to28(to_u8(cas.final)), ncol=8, scale=3),
                 caption=f"cascade samples of this snapshot at β = {beta:.2f}")


def growth_view() -> None:
    st.markdown("Samples (same seed) from every snapshot saved while the model grew.")
    for s in model.snapshots():
        cas, _ = coarse_to_fine.run_cascade(name, device, shipped, 8, seed, snapshot=s.index, beta=s.beta)
        c1, c2 = st.columns([1, 4])
        c1.markdown(f"**{SIDES[s.stage]}×{SIDES[s.stage]}**, β = {s.beta:.2f}  \niteration {s.iteration}")
        c2.image(tile(coarse_to_fine.to28(to_u8(cas.final)), ncol=8, scale=2))
    hist = model.meta.get("history", [])
    if hist:
        st.plotly_chart(history_figure(hist, ["e_real", "e_fake", "beta", "stage"]), key=state.key("hist"))


def budget_view() -> None:
    sr, _ = model_picker("Short-run model", state.key("sr"), of_kind("shortrun"), report_broken=False)
    n = st.slider("Chains", 16, 256, 64, 16, key=state.key("budget_n"))
    r = coarse_to_fine.budget_comparison(name, sr, device, shipped, n, seed)
    st.markdown(f"Both samplers spend **{r.budget} gradient evaluations per chain**: the cascade "
                f"{' + '.join(map(str, shipped.steps))} over 7, 14 and 28 px; the short-run model "
                f"{r.budget} steps at 28 px from noise.")
    runs = {f"cascade ({r.cascade.seconds:.1f} s)": r.cascade, f"short-run ({r.shortrun.seconds:.1f} s)": r.shortrun}
    st.plotly_chart(budget_figure(runs), key=state.key("budget_fig"))
    a, b = st.columns(2)
    a.image(tile(r.cascade.final[:32], ncol=8, scale=2), caption="cascade")
    b.image(tile(r.shortrun.final[:32], ncol=8, scale=2), caption="short-run, same budget")


def restoration_view() -> None:
    c = st.columns(4)
    digit = c[0].selectbox("Digit", list(range(10)), key=state.key("digit"))
    noise = c[1].slider("Noise σ (denoising)", 0.1, 1.0, 0.5, 0.05, key=state.key("noise"))
    mask = c[2].selectbox("Hidden 25%", ["pixels", "block"], format_func=MASKS.get, key=state.key("mask"))
    k = c[3].number_input("Langevin steps", 1, 1000, 15, key=state.key("rsteps"),
                          help="The error is lowest after 5–15 steps; longer runs thicken the strokes")
    cfg = LangevinConfig(n_steps=int(k), step_size=shipped.step_size, noise_std=shipped.noise_std,
                         grad_clip=shipped.grad_clip, record_every=max(1, int(k) // 30))
    r = coarse_to_fine.restoration(name, device, digit, 6, noise, mask, cfg, seed)
    for title, seen, run in (("Denoising", r.noisy, r.denoise), ("Filling in the hidden quarter", r.seen, r.inpaint)):
        st.subheader(title)
        st.image(tile(to_u8(np.concatenate([r.clean, seen, run.final])), ncol=len(seen), scale=3),
                 caption=f"rows: original · corrupted · restored — MSE {run.error[0].mean():.4f} → "
                         f"{run.error[-1].mean():.4f}")
    st.plotly_chart(error_figure(r.inpaint.frame_steps, {
        "denoising (all pixels)": r.denoise.error, "inpainting (hidden pixels)": r.inpaint.error}),
        key=state.key("err"))


def _verdict(pred) -> str:
    if pred is None:
        return ""
    return (f" · the evaluator: {100 * (pred.confidence > CONFIDENT).mean():.0f}% confident digits, "
            f"digits {' '.join(str(d) for d in pred.label[:16])}")


def translation_view() -> None:
    st.markdown("The CF-EBM paper's last experiment: images from another domain, pooled to the 7×7 stage and "
                "refined up the cascade, come out as digits that keep the source's coarse layout. For contrast, the "
                "short-run model refines the same images at 28×28 with the same number of gradient evaluations.")
    sr, _ = model_picker("Short-run model", state.key("sr"), of_kind("shortrun"), report_broken=False)
    c = st.columns(2)
    kind = c[0].radio("Start from", ["Fashion-MNIST", "a drawing", "an upload"], horizontal=True,
                      key=state.key("tr_source"))
    n = c[1].slider("Images", 4, 32, 16, 4, key=state.key("tr_n"))
    source = None
    if kind == "Fashion-MNIST":
        try:
            fashion = cache.load_data("fashion-mnist", "test")[0]
            pick = np.random.default_rng(seed).permutation(len(fashion))[:n]
            source = fashion[pick]
        except DataError as err:
            st.info(f"Fashion-MNIST is not on this machine: {err}. Upload a picture instead.")
    elif kind == "a drawing":
        st.caption("Draw anything, white on black: it is centred and scaled as MNIST's digits were, pooled to 7×7 "
                   "and refined up the cascade.")
        if (drawn := drawn_digit(state.key("tr_pad"))) is not None:
            source = np.repeat(drawn, n, axis=0)
    else:
        if (up := image_upload("A picture (PNG, JPEG, …)", state.key("tr_upload"))) is not None:
            source = np.repeat(up.image, n, axis=0)  # n chains from one picture, each with its own noise
    if source is None:
        return
    t = coarse_to_fine.translation(name, sr, device, shipped, source.astype(np.float32), seed)
    rows = [to_u8(t.source), coarse_to_fine.to28(to_u8(t.cascade.handoffs[0][0])),
            coarse_to_fine.to28(to_u8(t.cascade.handoffs[1][0])), to_u8(t.cascade.final), to_u8(t.shortrun.final)]
    st.image(tile(np.concatenate(rows), ncol=n, scale=2),
             caption="rows: the source · after the 7×7 stage (from the pooled source) · after 14×14 · after 28×28 "
                     f"(the cascade, {t.cascade.grad_evals} gradient evaluations) · the short-run model from the "
                     f"source at 28×28, {t.cascade.grad_evals} steps")
    st.markdown("**Source**" + _verdict(t.before) + "  \n**Cascade**" + _verdict(t.after_cascade)
                + "  \n**Short-run**" + _verdict(t.after_shortrun))
    energies = [tr.energy for tr in t.cascade.trajectories]
    st.plotly_chart(cascade_energy_figure(energies), key=state.key("tr_energy"))
    st.plotly_chart(compare_energy_figure({"short-run from the source": t.shortrun.energy}),
                    key=state.key("tr_sr_energy"))


VIEWS = dict(zip(VIEW_NAMES, (cascade_view, fade_view, growth_view, budget_view, restoration_view, translation_view),
                 strict=True))
view = st.segmented_control("View", VIEW_NAMES, default="Cascade", key=state.key("view")) or "Cascade"
VIEWS[view]()
share(fields, frame)
