"""Coarse-to-fine EBM: the 7 → 14 → 28 cascade played back, the fade, growth, budget, restoration."""

from dataclasses import asdict

import numpy as np
import streamlit as st

from ebmviz.app import cache, links
from ebmviz.app.drawpad import drawn_digit
from ebmviz.app.export_panel import export_panel
from ebmviz.app.lesson import what_to_notice
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
from ebmviz.app.player import FramePanes, FrameView, Player, Recorded
from ebmviz.app.presentation import grid_font_px, presenting
from ebmviz.app.widgets import (
    checkpoint_names,
    image_upload,
    model_picker,
    of_kind,
    share,
    shared,
    temperature_equation,
    update_equation,
)
from ebmviz.figures.chains import compare_energy_figure
from ebmviz.figures.charts import history_figure
from ebmviz.figures.coarse_to_fine import beta_energy_figure, budget_figure, cascade_energy_figure, error_figure
from ebmviz.figures.images import labelled_grid, tile

SCRIPT = "views/coarse_to_fine.py"
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
present = presenting()
st.title("Coarse-to-fine EBM")
if present:  # a projector's first screen: the model beside the view, the text and the settings folded in one row
    pick_at, view_at = st.columns(2, vertical_alignment="bottom")
    about_at, settings_at = st.columns(2)
    about = about_at.expander("What this page shows, in words and in the paper's notation")
else:
    about, view_at, settings_at = st.container(), None, None
with about:
    st.markdown(
        "Drawing a digit straight from noise means getting 784 pixels to agree at once. This model draws it the way a "
        "painter would: a 7×7 thumbnail first (49 pixels: where the strokes go), then that thumbnail enlarged to "
        "14×14 and sharpened, then enlarged to 28×28 and sharpened again. Each size has its own **energy**, a number "
        "that is low for images that look like digits at that size, and each sharpening is a short **Langevin** run: "
        "small steps downhill on the energy, with a little noise added at every step.")
seed, device = shared().seed, shared().device
if not present:
    pick_at = st.container()
with pick_at:
    name, model = model_picker("CF-EBM checkpoint", state.key("ckpt"), of_kind("coarse_to_fine"))
shipped = model.draw_config()
with about if present else st.container():
    st.markdown(
        "The CF-EBM (Zhao, Xie & Li, ICLR 2021) learns energies $E_0, E_1, E_2$ of 7×7, 14×14 and 28×28 images, "
        r"$p_i(x) \propto \exp(-E_i(x))$. Stage $i$ runs $K_i$ steps of the Langevin update used across this app, "
        r"with step size $s$ and noise $\sigma$ ("
        + (f"the gradient clipped to ±{shipped.grad_clip:g} per pixel, " if shipped.grad_clip else "")
        + "pixels kept in [−1, 1]), here with the checkpoint's shipped values. Each step computes the energy's "
          "gradient once: one **gradient evaluation** per chain.")
    st.latex(update_equation(shipped.stage_config(0)).replace("E(x_t)", "E_i(x_t)"))
    st.latex(temperature_equation(shipped.stage_config(0)))
    cold = shipped.stage_config(0).temperature < 0.1
    st.markdown(
        ("The effective temperature $T$ is far below 1, as for the app's other image EBMs: each stage mostly "
         "descends its energy. " if cold else "")
        + "A **cascade** is one sample made by all three stages: Langevin at 7×7 from noise, then "
        r"a **hand-off** (every pixel enlarged to a 2×2 block, plus Gaussian noise of std $\sigma_h$ = "
        f"{shipped.handoff_noise:g}, so the next stage has something to sharpen), Langevin at 14×14, a hand-off, "
        "Langevin at 28×28.\n\n"
        "One network holds all three energies and grows during training: it learns 7×7 first, then gets an input "
        "block for 14×14, later one for 28×28. A new block starts untrained, so it is faded in. **Primal**$(x)$ is "
        "the new block reading the larger image; **Fade**$(x)$ is the previous stage's first layer reading the image "
        "**pooled** (each 2×2 block of pixels averaged into one). The rest of the network reads their mix, "
        r"**Expand**, whose **fade weight** $\beta$ goes from 0 to 1 while the new block trains:")
    st.latex(r"\mathrm{Expand}(x) = \beta\,\mathrm{Primal}(x) + (1-\beta)\,\mathrm{Fade}(x),\qquad "
             r"\beta = 0 \;\Rightarrow\; E_{i+1}(x) = E_i(\mathrm{pool}(x))")
    st.markdown(r"At $\beta = 0$ the new stage's energy is the previous one of the pooled image, so growing the "
                "network does not disturb what it had learned.")


PRESENT_CHAINS = 16  # chains a projector shows: two rows of 8, captions at grid_font_px()


def _pct(share: float | None) -> str:
    return "–" if share is None else f"{100 * share:.0f}%"


def cascade_view() -> list[str]:
    with settings_at.expander("Cascade settings") if present else st.container():
        c = st.columns(5)
        n = c[0].slider("Chains", 1, 64, 16, key=state.key("n"))
        steps = tuple(c[i + 1].number_input(f"K at {s}×{s}", 0, 500, shipped.steps[i], key=state.key(f"k{i}"),
                                            help=f"K_{i}: Langevin steps at {s}×{s}")
                      for i, s in enumerate(SIDES))
        hand = c[4].number_input("Hand-off noise σ_h", 0.0, 1.0, shipped.handoff_noise, 0.01, key=state.key("hand"),
                                 help="Std of the Gaussian noise added to the enlarged samples at each hand-off")
    cfg = CascadeConfig(steps=steps, step_size=shipped.step_size, noise_std=shipped.noise_std,
                        grad_clip=shipped.grad_clip, handoff_noise=hand, record_every=1)
    spec = (name, device, cfg, n, seed)
    if state.spec != spec:
        state.spec = spec
        state.rewind()
    cascade, seconds = coarse_to_fine.run_cascade(name, device, cfg, n, seed)
    frames = coarse_to_fine.cascade_timeline(cascade)
    energies = [t.energy for t in cascade.trajectories]
    panes = FramePanes((1.1, 1.0))
    shown = min(n, PRESENT_CHAINS)

    def draw(i: int, out: FrameView) -> None:
        f = frames[i]
        where = "hand-off: upsampled + noise" if f.handoff else f"step {f.step} / {steps[f.stage]}"
        beta = cascade.beta if f.stage == len(cascade.trajectories) - 1 else 1.0
        out.status.markdown(f"**Stage {f.stage} · {SIDES[f.stage]}×{SIDES[f.stage]} · {where}** · β = {beta:.2f} · "
                            f"{f.grad_evals} / {cascade.grad_evals} gradient evaluations")
        if not present:
            out.picture.image(tile(f.images, ncol=8, scale=3))
            if not out.playing:
                out.below.plotly_chart(cascade_energy_figure(energies, (f.stage, f.step)), key=state.key("energy"))
            return
        grid, trace, with_trace = panes(out)
        energy = energies[f.stage][f.step, :shown]
        grid.image(labelled_grid(f.images[:shown], [f"{e:.2f}" for e in energy], ncol=8, scale=3,
                                 font_px=grid_font_px()),
                   caption=f"{'the first ' + str(shown) + ' of ' if shown < n else ''}{n} chains, each with its "
                           f"energy E{f.stage}")
        if with_trace:
            trace.plotly_chart(cascade_energy_figure(energies, (f.stage, f.step), height=255, font_px=16),
                               key=state.key("energy"))

    player = Player(state, Recorded(len(frames)))
    player.seek(links.requested_frame(len(frames) - 1))
    frame[links.FRAME] = str(state.position)
    pace = player.controls_and_pace()
    player.show(draw, scrub_label="Timeline", frame_seconds=pace,
                on_pause=lambda i: share(fields, {links.FRAME: str(i)}))
    st.caption(f"{n} chains sampled in {seconds:.2f} s. Coarse stages are shown enlarged by pixel repetition.")
    if not present:
        export_panel(f"coarse-to-fine-{name}-seed{seed}", frames=lambda: np.stack([tile(f.images, ncol=8, scale=2)
                                                                                   for f in frames]),
                     trajectory=lambda: {f"stage{i}_{k}": v for i, t in enumerate(cascade.trajectories)
                                         for k, v in trajectory_arrays(t).items()},
                     config={"model": name, "chains": n, "seed": seed, "device": device, "cascade": asdict(cfg)},
                     figures={"energy per stage": lambda: cascade_energy_figure(energies)},
                     key=state.key("export"))
    m = coarse_to_fine.cascade_summary(cascade)
    total = max(1, sum(m.evals))
    went = coarse_to_fine.went
    return [
        f"At 7×7 the median energy E₀ {went(m.start[0], m.end[0])} from {m.start[0]:.3g} to {m.end[0]:.3g} in "
        f"{m.evals[0]} steps: on 49 pixels the chains settle where the strokes go.",
        f"After each hand-off the finer energy takes over: E₁ {went(m.start[1], m.end[1])} from {m.start[1]:.3g} to "
        f"{m.end[1]:.3g} at 14×14, E₂ from {m.start[2]:.3g} to {m.end[2]:.3g} at 28×28 (energies of different "
        "sizes are different functions: compare within a stage, not across).",
        f"The cascade spent {sum(m.evals)} gradient evaluations per chain, {100 * m.evals[2] / total:.0f}% of them at "
        f"28×28; the evaluator (a separately trained digit classifier) reads {_pct(m.confident)} of the final "
        "samples as a digit with more than 90% confidence.",
    ]


def fade_view() -> list[str]:
    snaps = [s for s in model.snapshots() if s.stage > 0 and s.beta < 1.0]
    if not snaps:
        st.info("This checkpoint has no snapshot taken during a transition.")
        return ["This checkpoint kept no snapshot taken while a new block was faded in, so there is no β to slide "
                "here: the Cascade view shows the finished model.",
                "A transition is where β goes from 0 (only the fade path) to 1 (only the new block).",
                "Growth shows every snapshot the checkpoint kept."]
    middle = [s for s in snaps if s.beta == 0.5] or snaps  # default: halfway through the last transition
    pick = st.select_slider("Snapshot taken during a transition", snaps, value=middle[-1],
                            format_func=lambda s: f"{SIDES[s.stage]} px, β = {s.beta:.2f}, it. {s.iteration}",
                            key=state.key("snap"))
    beta = st.slider("β (0: only the fade path, 1: only the new block)", 0.0, 1.0, pick.beta, 0.05,
                     key=state.key("beta"))
    st.caption(f"This snapshot was taken at iteration {pick.iteration}, while the {SIDES[pick.stage]}×"
               f"{SIDES[pick.stage]} block was being faded in at β = {pick.beta:.2f}; the slider sets β by hand.")
    parts = coarse_to_fine.beta_share(name, device, pick.index, beta)
    left, right = st.columns(2)
    p, f = parts.primal.mean(), parts.fade.mean()
    with left:
        st.plotly_chart(beta_energy_figure(parts.beta, parts.energy, beta), key=state.key("beta_fig"))
        st.markdown(f"At β = {beta:.2f}, the Expand block's output on held-out digits is "
                    f"**{100 * p / (p + f):.0f}% new block** (‖β·Primal‖ = {p:.2f}) and "
                    f"**{100 * f / (p + f):.0f}% fade path** (‖(1−β)·Fade‖ = {f:.2f}).")
    with right:
        cas, _ = coarse_to_fine.run_cascade(name, device, shipped, 16, seed, snapshot=pick.index, beta=beta)
        st.image(tile(coarse_to_fine.to28(to_u8(cas.final)), ncol=8, scale=3),
                 caption=f"cascade samples of this snapshot at β = {beta:.2f}")
    e0, e1 = float(np.median(parts.energy[0])), float(np.median(parts.energy[-1]))
    conf = coarse_to_fine.confident_share(coarse_to_fine.to28(to_u8(cas.final)))
    return [
        f"At β = {beta:.2f} the new block carries {100 * p / (p + f):.0f}% of what the rest of the network reads; "
        "slide β to 0 and the fade path carries it all.",
        f"The held-out digits' median energy is {e0:.3g} at β = 0 (the previous stage's energy of the pooled digit) "
        f"and {e1:.3g} at β = 1 (the new block alone).",
        f"The evaluator reads {_pct(conf)} of this snapshot's 16 cascade samples at β = {beta:.2f} as confident "
        "digits (> 90%).",
    ]


def growth_view() -> list[str]:
    st.markdown("Samples (same seed) from every snapshot saved while the model grew.")
    shares = []
    for s in model.snapshots():
        cas, _ = coarse_to_fine.run_cascade(name, device, shipped, 8, seed, snapshot=s.index, beta=s.beta)
        images = coarse_to_fine.to28(to_u8(cas.final))
        shares.append((s, coarse_to_fine.confident_share(images)))
        c1, c2 = st.columns([1, 4])
        c1.markdown(f"**{SIDES[s.stage]}×{SIDES[s.stage]}**, β = {s.beta:.2f}  \niteration {s.iteration}")
        c2.image(tile(images, ncol=8, scale=2))
    hist = model.meta.get("history", [])
    if hist:
        st.plotly_chart(history_figure(hist, ["e_real", "e_fake", "beta", "stage"]), key=state.key("hist"))
        st.caption("e_real, e_fake: the energy of training digits and of the model's own samples at each logged "
                   "iteration (training pushes the first down and the second up); beta: the fade weight; stage: "
                   "0, 1, 2 for 7, 14, 28 px.")
    if not shares:
        return ["This checkpoint kept no snapshots.", "The Cascade view shows the finished model.",
                "Fade (β) needs a snapshot taken during a transition."]
    (first, c_first), (last, c_last) = shares[0], shares[-1]
    grew = [s for s, _ in shares if s.stage > 0 and s.beta == 0.0]
    lines = [f"{len(shares)} snapshots from iteration {first.iteration} to {last.iteration}: the first "
             f"({SIDES[first.stage]}×{SIDES[first.stage]}, enlarged) gives {_pct(c_first)} confident digits (> 90%), "
             f"the last "
             f"({SIDES[last.stage]}×{SIDES[last.stage]}, β = {last.beta:.2f}) {_pct(c_last)}."]
    lines.append("The network grew at iteration " + " and ".join(f"{s.iteration} (to {SIDES[s.stage]}×"
                                                                 f"{SIDES[s.stage]})" for s in grew)
                 + ": at β = 0 each new stage starts as the previous one on the pooled image, so its samples "
                   "look like the coarser stage's, enlarged." if grew else
                 "No snapshot was taken at the start of a transition (β = 0).")
    if hist and "e_real" in hist[-1] and "e_fake" in hist[-1]:
        real, fake = hist[-1]["e_real"], hist[-1]["e_fake"]
        lines.append(f"At the last logged iteration real digits have energy {real:.3g} and the model's samples "
                     f"{fake:.3g}: " + ("the digits lower, as training pushes them." if real < fake else
                                        "the samples as low as the digits or lower, so training pushes them up."))
    else:
        lines.append("This checkpoint has no training history to compare the energies of digits and samples.")
    return lines


def budget_view() -> list[str]:
    st.markdown("A **gradient evaluation** is one computation of the energy's gradient: one Langevin step of one "
                "chain. A step at 7×7 is cheaper than one at 28×28, but here both samplers get the same number of "
                "steps. The **short-run model** (the Langevin page's) is a single 28×28 energy sampled from noise.")
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
    half = r.budget // 2

    def at(q, evals: int) -> float:
        """The confident share at the last recorded frame with at most ``evals`` gradient evaluations."""
        i = max(j for j, e in enumerate(q.evals) if e <= evals)
        return q.confident[i]

    return [
        f"After all {r.budget} gradient evaluations per chain the evaluator reads {_pct(r.cascade.confident[-1])} of "
        f"the cascade's {n} samples as confident digits (> 90%), and {_pct(r.shortrun.confident[-1])} of the "
        "short-run model's.",
        f"Halfway, at {half} evaluations, the cascade is at {_pct(at(r.cascade, half))} and the short-run model at "
        f"{_pct(at(r.shortrun, half))}: the cascade's early steps are spent at 7×7 and 14×14.",
        f"Wall time: cascade {r.cascade.seconds:.2f} s, short-run {r.shortrun.seconds:.2f} s for the same number of "
        "steps: a step's cost depends on the network as well as on how many pixels it reads.",
    ]


def restoration_view() -> list[str]:
    c = st.columns(4)
    digit = c[0].selectbox("Digit", list(range(10)), key=state.key("digit"))
    noise = c[1].slider("Noise σ (denoising)", 0.1, 1.0, 0.5, 0.05, key=state.key("noise"),
                        help="Std of the Gaussian noise added to the digits to be denoised")
    mask = c[2].selectbox("Hidden 25%", ["pixels", "block"], format_func=MASKS.get, key=state.key("mask"))
    k = c[3].number_input("Langevin steps", 1, 1000, 15, key=state.key("rsteps"),
                          help="The error is lowest after 5–15 steps; longer runs thicken the strokes")
    st.markdown("Restoration runs Langevin on the 28×28 energy from a damaged digit: in denoising every pixel moves; "
                "in filling in (inpainting), the seen pixels are pasted back after every step, so only the hidden "
                "ones change. **MSE**: the mean squared difference from the original, on a 0–1 pixel scale.")
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
    lines = []
    for what, run in (("Denoising", r.denoise), ("Filling in", r.inpaint)):
        err = run.error.mean(axis=1)
        best = int(np.argmin(err))
        lines.append(f"{what}: the MSE {coarse_to_fine.went(err[0], err[-1])} from {err[0]:.4f} to {err[-1]:.4f} "
                     f"in {int(k)} steps, lowest ({err[best]:.4f}) at step {int(run.frame_steps[best])}.")
    hidden = "scattered" if mask == "pixels" else "as one block"
    lines.append(f"The same energy that samples digits also repairs them: the {len(r.clean)} held-out {digit}s were "
                 f"damaged by noise of std {noise:g} and by hiding 25% of the pixels ({hidden}), and no model was "
                 "trained to undo either.")
    return lines


def _verdict(pred) -> str:
    if pred is None:
        return ""
    return (f" · the evaluator: {100 * (pred.confidence > CONFIDENT).mean():.0f}% confident digits, "
            f"digits {' '.join(str(d) for d in pred.label[:16])}")


def translation_view() -> list[str]:
    st.markdown("The CF-EBM paper's last experiment: images from another domain, pooled to the 7×7 stage and "
                "refined up the cascade, come out as digits that keep the source's coarse layout. For contrast, the "
                "short-run model (one 28×28 energy) refines the same images at 28×28 with the same number of "
                "gradient evaluations. **The evaluator** is a separately trained digit classifier that judges the "
                "results.")
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
        return ["Nothing to translate yet: pick Fashion-MNIST, or draw or upload a picture above.",
                "The cascade starts from the source pooled to 7×7, so the result keeps its coarse layout.",
                "The short-run model starts from the source itself at 28×28, for contrast."]
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
    share_of = lambda pred: "–" if pred is None else f"{100 * (pred.confidence > CONFIDENT).mean():.0f}%"  # noqa: E731
    gap_cf = coarse_to_fine.layout_gap(t.source, t.cascade.final)
    gap_sr = coarse_to_fine.layout_gap(t.source, t.shortrun.final)
    return [
        f"The evaluator's share of confident readings (> 90%): {share_of(t.before)} of the sources, "
        f"{share_of(t.after_cascade)} after the cascade, {share_of(t.after_shortrun)} after the short-run model.",
        f"Pooled to 7×7, the cascade's results differ from their sources by {gap_cf:.3f} per pixel on average and "
        f"the short-run model's by {gap_sr:.3f} (pixels in [−1, 1]): "
        + ("the cascade keeps more of the coarse layout." if gap_cf < gap_sr else
           "here the short-run model stays closer to the source's layout."),
        f"Both spent {t.cascade.grad_evals} gradient evaluations per image.",
    ]


VIEWS = dict(zip(VIEW_NAMES, (cascade_view, fade_view, growth_view, budget_view, restoration_view, translation_view),
                 strict=True))
with view_at or st.container():  # off: where it always was, below the notation
    view = st.segmented_control("View", VIEW_NAMES, default="Cascade", key=state.key("view")) or "Cascade"
notice = VIEWS[view]()
share(fields, frame)
what_to_notice(SCRIPT, notice)
