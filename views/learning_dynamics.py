"""Learning dynamics, FRAME vs wFRAME: the shipped runs side by side on one iteration slider (full set and few-shot),
the nearest training digit of each particle, a GAN on the same 5 digits, and a FRAME model trained live."""

import numpy as np
import streamlit as st

from ebmviz.app import links
from ebmviz.app.export_panel import export_panel
from ebmviz.app.lesson import what_to_notice
from ebmviz.app.pages import learning_dynamics
from ebmviz.app.pages.learning_dynamics import collapse_onset, snapshot_index
from ebmviz.app.player import FrameView, Player, pace_control
from ebmviz.app.presentation import presenting
from ebmviz.app.widgets import share, shared
from ebmviz.figures.images import tile
from ebmviz.figures.learning_dynamics import FLOW_COLOURS, CurveLine, gap_figure, steps_figure

P = "ld"
state = learning_dynamics.LiveTrainingState(P)
VIEW_NAMES = ["Full set", "Few-shot", "Train live"]
RUNS = learning_dynamics.frame_runs()
SHOT_SETS = [n for n in RUNS if n > 0]
fields = [links.choice(state.key("view"), "view", VIEW_NAMES), links.integer(state.key("it_full"), "iteration", 0,
                                                                             10**7),
          links.choice(state.key("shots"), "digits", SHOT_SETS), links.integer(state.key("it_few"), "few_iteration", 0,
                                                                               10**7),
          links.choice(state.key("live_flow"), "live_flow", ["kl", "jko"]),
          links.choice(state.key("live_shots"), "live_digits", SHOT_SETS),
          links.integer(state.key("live_its"), "live_iterations", 50, 1000)]
links.restore(fields)
present = presenting()
st.title("Learning dynamics: FRAME vs wFRAME")
st.markdown(
    "This page watches an energy model **while it learns**. Training alternates two moves. First a set of "
    "*particles*, 64 pictures the model currently believes in, kept from one round to the next, takes 20 small "
    "steps downhill on the energy. Then the network's weights take one step that lowers the energy of real digits "
    "and raises it on the particles. When this goes well, the particles turn into digits. When it goes badly, the "
    "particles' energy runs away from the data's and the model *collapses*. The curves follow that **energy gap**, "
    "U(particles) − U(data): the mean energy of the particles minus that of a batch of real digits.\n\n"
    "Two ways of moving the particles are compared: FRAME's **KL flow**, plain Langevin steps (the "
    "maximum-likelihood recipe), and wFRAME's **JKO flow**, a *Wasserstein* flow in which each step is a small "
    "optimisation that keeps the particles near where they were, with a penalty on steep energies. Cai et al. "
    "(AAAI 2019) report that the KL flow collapses (they call it *KL-vanishing*) and that the JKO flow stays stable "
    "and learns from a few images.")
notation = st.expander("In the papers' notation", expanded=False) if present else st.container()
notation.markdown(
    "Deep FRAME is $p_\\theta(x) \\propto \\exp(f_\\theta(x))\\,q(x)$ with a ConvNet $f_\\theta$ (weights θ) and a "
    "Gaussian reference $q = \\mathcal N(0, I)$, so its energy is $U_\\theta(x) = -f_\\theta(x) + \\|x\\|^2/2$. "
    "Each round: $K = 20$ particle steps, then one step of θ with learning rate γ; a bar is a mean over a batch. "
    "FRAME's particle step is the Langevin update used across this app, "
    "$x_{t+1} = x_t - s\\,\\nabla U(x_t) + \\sigma\\,\\xi_t$ (ξ: standard normal noise) with step size $s = \\delta$ "
    "and noise $\\sigma = \\sqrt{2\\delta}$, so its effective temperature is $T = \\sigma^2/(2s) = 1$: it samples "
    "$p_\\theta$ itself. wFRAME's step moves each particle to the y that makes $U_\\theta(y) + \\|y - x\\|^2/(2\\tau)$ "
    "smallest (the arg min, found with 3 gradient steps; τ sets how far it may go), then adds the same noise at "
    "$s = \\tau$; its weight step adds λ times the squared steepness of U at the particles.")
c1, c2 = notation.columns(2)
with c1:
    st.markdown("**FRAME — KL flow** (Langevin particles, maximum-likelihood step)")
    st.latex(r"x_{t+1} = x_t - \delta\,\nabla_x U_\theta(x_t) + \sigma\,\xi_t")
    st.latex(r"\sigma = \sqrt{2\delta},\quad T = \frac{\sigma^2}{2\delta} = 1")
    st.latex(r"\theta \leftarrow \theta - \gamma\,\nabla_\theta\big[\overline{U_\theta(\text{data})}"
             r" - \overline{U_\theta(x)}\big]")
with c2:
    st.markdown("**wFRAME — JKO flow** (*ebmviz's reconstruction*: the paper's own equations could not be recovered)")
    st.latex(r"x_{t+1} = \operatorname*{arg\,min}_y\; U_\theta(y) + \tfrac{\|y - x_t\|^2}{2\tau}"
             r" \;+\; \sqrt{2\tau}\,\xi_t")
    st.latex(r"\theta \leftarrow \theta - \gamma\,\nabla_\theta\big[\overline{U_\theta(\text{data})}"
             r" - \overline{U_\theta(x)} + \lambda\,\overline{\|\nabla_x U_\theta(x)\|^2}\big]")
notation.caption("The shipped runs: δ = τ = 0.01, 3 gradient steps toward the arg min, λ = 0.01, Adam (the usual "
                 "adaptive gradient optimiser; lr 3·10⁻⁴, β₁ = 0.5), 64 particles from q, batches of 64 data images, "
                 "seed 0 — the same for both flows. Under p ∝ exp(−U) a collapsing model's gap runs away upward (the "
                 "article, plotting the opposite sign, shows its energy falling very low).")

if not RUNS:
    st.error("No FRAME checkpoints were found; train them with `python -m training frame --flow kl|jko`.")
    st.stop()


def _lines(dyn: dict[str, learning_dynamics.RunDynamics]) -> list[CurveLine]:
    return [CurveLine(learning_dynamics.FLOW_TITLES[f].split(" · ")[0] + f" ({f.upper()})", d.curves, FLOW_COLOURS[f],
                      d.onset) for f, d in dyn.items()]


def _status(d: learning_dynamics.RunDynamics, it: int) -> str:
    row = d.curves.row_at(it)
    gap = "—" if row is None else f"{row['gap']:.3g}"
    where = ("**stable**: the gap never leaves 100× its early size" if d.onset is None else
             f"**collapsed** from iteration {d.onset:,}" + (" on" if it >= d.onset else f" ({d.onset - it:,} ahead)"))
    return (f"Gap at iteration {min(it, d.iterations):,}: **{gap}** · {where} · {d.iterations:,} iterations "
            f"in {d.minutes:.0f} min")


def compare(pair: dict[str, str], key: str) -> tuple[int, dict[str, learning_dynamics.RunDynamics]]:
    """Both flows' runs on one iteration slider: particles, status and curves; returns (iteration, dynamics)."""
    dyn = {f: learning_dynamics.run_dynamics(pair[f]) for f in ("kl", "jko") if f in pair}
    top = max(d.iterations for d in dyn.values())
    if st.session_state.get(key, 0) > top:
        st.session_state[key] = top
    it = st.slider("Iteration", 0, top, value=top, key=key,
                   help="Both runs at this parameter update: the particles stored last at or before it, the curves "
                        "marked there. A run that ended earlier shows its last particles.")
    cols = st.columns(len(dyn))
    for col, (flow, d) in zip(cols, dyn.items(), strict=True):
        i = snapshot_index(d.snapshot_its, it)
        ended = " (where this run ended)" if it > d.iterations else ""
        col.markdown(f"**{learning_dynamics.FLOW_TITLES[flow]}** · `{d.name}`")
        col.image(tile(d.snapshots[i], ncol=8, scale=2),
                  caption=f"{len(d.snapshots[i])} particles at iteration {int(d.snapshot_its[i]):,}{ended}")
        col.markdown(_status(d, it))
    st.plotly_chart(gap_figure(_lines(dyn), current=it), key=f"{key}_gap")
    st.plotly_chart(steps_figure(_lines(dyn), current=it), key=f"{key}_steps")
    if len(dyn) == 2:
        per_it = {f: d.minutes / max(d.iterations, 1) for f, d in dyn.items()}
        st.caption(f"A JKO iteration took {per_it['jko'] / max(per_it['kl'], 1e-12):.1f}× as long as a KL one here "
                   "(3 inner gradient steps per particle step, and the penalty's second derivatives): both runs had "
                   "the same wall time, so the JKO run has fewer iterations.")
    return it, dyn


def _flow_line(d: learning_dynamics.RunDynamics, it: int) -> str:
    """One notice line: a run's gap at iteration ``it`` against its early size, and whether it collapsed."""
    row, first = d.curves.row_at(it), d.curves.row_at(0)
    gap = "—" if row is None else f"{row['gap']:.3g}"
    early = "" if first is None else f" (it started at {first['gap']:.3g})"
    title = learning_dynamics.FLOW_TITLES[d.flow].split(" · ")[0]
    held = (f"it held for all {d.iterations:,} iterations" if d.onset is None
            else f"it collapsed from iteration {d.onset:,}")
    ended = ", where it ended" if it > d.iterations else ""
    return f"{title} ({d.flow.upper()}): gap {gap} at iteration {min(it, d.iterations):,}{ended}{early}; {held}."


def compare_lines(it: int, dyn: dict[str, learning_dynamics.RunDynamics]) -> list[str]:
    lines = [_flow_line(d, it) for d in dyn.values()]
    if len(dyn) == 2:
        per_it = {f: d.minutes / max(d.iterations, 1) for f, d in dyn.items()}
        lines.append(f"Same wall time, different work: {dyn['kl'].iterations:,} KL iterations against "
                     f"{dyn['jko'].iterations:,} JKO ones, {per_it['jko'] / max(per_it['kl'], 1e-12):.1f}× the time "
                     "per iteration.")
    return lines


def full_view() -> list[str]:
    pair = RUNS.get(0)
    if not pair:
        st.info("No FRAME runs on the full training set are shipped.")
        return ["No FRAME run on the full training set is shipped, so there is nothing to compare here.",
                f"The few-shot view has {len(SHOT_SETS)} sets.", "`python -m training frame` trains one."]
    record = learning_dynamics.run_dynamics(next(iter(pair.values()))).dataset
    size = f"{record['n_images']:,}" if isinstance(record.get("n_images"), int) else "whole set of"
    source = record.get("source", "source not recorded")
    st.markdown(f"Both flows from the same start on the {size} training digits ({source}). Move the iteration "
                "slider: the particles above and the marks on the curves follow it.")
    it, dyn = compare(pair, state.key("it_full"))
    lines = compare_lines(it, dyn)
    return lines if len(lines) == 3 else [*lines, f"Only {len(dyn)} flow is shipped for this set."][:3]


def _pairs_tile(images: np.ndarray, train: np.ndarray, near) -> np.ndarray:
    """Each sample above its nearest training digit (two rows)."""
    return tile(np.concatenate([images, train[near.index]]), ncol=len(images), scale=2)


def few_shot_view() -> list[str]:
    if not SHOT_SETS:
        st.info("No few-shot FRAME runs are shipped.")
        return ["No few-shot FRAME run is shipped, so there is nothing to compare here.",
                f"The full set has {len(RUNS.get(0, {}))} runs.", "`python -m training frame --n-train 5` trains one."]
    n = st.segmented_control("Training digits", SHOT_SETS, default=SHOT_SETS[0], key=state.key("shots"),
                             format_func=lambda k: f"{k} digits") or SHOT_SETS[0]
    it, dyn = compare(RUNS[n], state.key("it_few"))
    train = next(iter(dyn.values())).train
    st.subheader("Memorised or new?")
    st.markdown("For each particle, its *nearest training digit*: the one with the smallest mean squared pixel "
                "difference. A *near copy* is a particle closer to a training digit than the two closest training "
                "digits are to each other.")
    st.image(tile(train, ncol=min(len(train), 20), scale=2), caption=f"The {len(train)} training digits")
    cols = st.columns(len(dyn))
    copies = {}
    for col, (flow, d) in zip(cols, dyn.items(), strict=True):
        shown = d.snapshots[snapshot_index(d.snapshot_its, it)][:16]
        near = learning_dynamics.nearest(shown, d.train)
        copies[flow] = near
        col.image(_pairs_tile(shown, d.train, near), caption=f"{flow.upper()}: 16 particles (top) over their nearest "
                                                             "training digit (bottom)")
        col.markdown(f"Median squared distance to the nearest training digit **{np.median(near.mse):.3f}**; "
                     f"near copies **{100 * near.copy_share:.0f}%**; training digits reached "
                     f"**{len(set(near.index.tolist()))}** of {len(d.train)}.")
    st.caption("Distances are mean squared pixel differences on the [−1, 1] scale. A near copy is a particle closer "
               f"to a training digit than the two closest training digits are to each other "
               f"({near.train_spacing:.3f}). FRAME's particles carry the pixel noise of sampling at T = 1, which "
               "adds to every distance.")
    if n == 5:
        gan_view(n)
    lines = [_flow_line(d, it) for d in dyn.values()][:2]
    lines.append("Near copies among the particles shown: " + ", ".join(
        f"{flow.upper()} {100 * near.copy_share:.0f}% (median distance {np.median(near.mse):.3f})"
        for flow, near in copies.items()) + f", on {len(train)} training digits.")
    return lines


def gan_view(n: int) -> None:
    st.subheader("A GAN on the same 5 digits")
    name = learning_dynamics.few_shot_gan(n)
    if name is None:
        st.info("No EBGAN trained on these 5 digits is shipped (`python -m training ebgan --n-train 5`).")
        return
    g = learning_dynamics.gan_run(name)
    st.markdown(f"The article's Figure 6 sets a DCGAN (a standard convolutional GAN) against wFRAME on 5 images. "
                f"ebmviz's GAN is the EBGAN of its "
                f"own page (`{name}`), trained on the same 5 digits for {g.iterations:,} iterations "
                f"({g.minutes:.0f} min): its generator at a fixed latent batch over training.")
    its = [int(i) for i in g.snapshot_its]
    pick = st.select_slider("GAN iteration", its, value=its[-1], key=state.key("gan_it"))
    shown = g.snapshots[its.index(pick)][:16]
    if len(g.train) >= 2:
        near = learning_dynamics.nearest(shown, g.train)
        st.image(_pairs_tile(shown, g.train, near),
                 caption=f"G(z) at iteration {pick:,} (top) over the nearest training digit (bottom): median "
                         f"squared distance {np.median(near.mse):.3f}, near copies {100 * near.copy_share:.0f}%, "
                         f"training digits reached {len(set(near.index.tolist()))} of {len(g.train)}")
    else:
        st.image(tile(shown, ncol=16, scale=2), caption=f"G(z) at iteration {pick:,}")


# ------------------------------------------------------------------------------------------------ train live
LIVE_WIDGETS = {"flow": "live_flow", "n_train": "live_shots", "iterations": "live_its", "lr": "live_lr",
                "step": "live_step", "penalty": "live_lam"}  # LiveSpec field -> widget key (after the prefix)


def live_spec() -> learning_dynamics.LiveSpec:
    if state.run is not None:  # back from another view (Streamlit dropped these widgets): the run's settings again
        for name, key in LIVE_WIDGETS.items():
            if state.key(f"{key}") not in st.session_state and not (name == "penalty" and state.run.spec.flow != "jko"):
                st.session_state[state.key(f"{key}")] = getattr(state.run.spec, name)
    a, b, c = st.columns(3)
    flow = a.radio("Flow", ["kl", "jko"], horizontal=True, key=state.key("live_flow"),
                   format_func=lambda f: {"kl": "KL (FRAME)", "jko": "JKO (wFRAME)"}[f])
    n = b.selectbox("Training digits", SHOT_SETS, key=state.key("live_shots"),
                    help="The digits of the shipped few-shot runs")
    its = c.slider("Iterations", 50, 1000, 300, 50, key=state.key("live_its"))
    a, b, c = st.columns(3)
    lr = a.select_slider("Learning rate γ", [1e-5, 3e-5, 1e-4, 3e-4, 1e-3, 3e-3], value=3e-4, key=state.key("live_lr"),
                         format_func=lambda v: f"{v:g}", help="How far one weight step goes")
    step = b.select_slider("Step δ or τ", [0.001, 0.003, 0.01, 0.03], value=0.01, key=state.key("live_step"),
                           format_func=lambda v: f"{v:g}", help="The particles' step size (δ: KL, τ: JKO)")
    lam = c.select_slider("Penalty λ (JKO)", [0.0, 0.001, 0.01, 0.1, 1.0], value=0.01, key=state.key("live_lam"),
                          disabled=flow != "jko", help="In the pilots, JKO without the penalty diverged like KL")
    return learning_dynamics.LiveSpec(flow=flow, n_train=n, iterations=its, lr=lr, step=step,
                                      penalty=lam if flow == "jko" else 0.0, seed=shared().seed)


def live_lines(run: learning_dynamics.LiveTraining, reference: learning_dynamics.RunDynamics | None) -> list[str]:
    """The notice lines of a live run, read from its logged curves and the shipped reference."""
    spec, curves = run.spec, run.curves()
    done = run.learner.iteration
    if not len(curves):
        first = f"Nothing trained yet: 0 of {spec.iterations:,} iterations. Press Play and watch the gap curve."
        gap_line = f"The {len(run.frames[0])} particles shown start as noise drawn from q = N(0, I)."
    else:
        onset = collapse_onset(curves)
        first = (f"This run trained {done:,} of {spec.iterations:,} iterations in {run.seconds:.1f} s; its gap ends "
                 f"at {curves.values['gap'][-1]:.3g} (it started at {curves.values['gap'][0]:.3g}).")
        gap_line = ("Its gap has not left 100× its early size so far." if onset is None else
                    f"Its gap left 100× its early size for good from iteration {onset:,}: a collapse.")
    if reference is None:
        ref = f"No shipped run has this flow ({spec.flow.upper()}) and these {spec.n_train} digits to compare with."
    else:
        row = reference.curves.row_at(max(done, 1))
        gap = "—" if row is None else f"{row['gap']:.3g}"
        ref = (f"The shipped {reference.name} had a gap of {gap} at iteration {max(done, 1):,} and "
               + ("never collapsed." if reference.onset is None else
                  f"collapsed from iteration {reference.onset:,}."))
    return [first, gap_line, ref]


def live_view() -> list[str]:
    if not SHOT_SETS:
        st.info("Live training uses the few-shot digits of a shipped few-shot run, and none is shipped.")
        return ["No few-shot FRAME run is shipped, so there are no digits to train on here.",
                f"The full set has {len(RUNS.get(0, {}))} shipped runs to look at instead.",
                "`python -m training frame --n-train 5` trains one."]
    st.markdown("Train a fresh model here, on this machine's CPU, on the few-shot digits: its particles and its "
                "energy gap update as it learns. The shipped run with the same flow and digits is drawn dashed "
                "for reference (seed 0, its own random draws).")
    with st.expander("Settings", expanded=False) if present else st.container():
        spec = live_spec()
    shipped = RUNS[spec.n_train].get(spec.flow)
    reference = learning_dynamics.run_dynamics(shipped) if shipped else None
    if state.run is None or state.run.spec != spec:
        train = reference.train if reference is not None else learning_dynamics.run_dynamics(
            next(iter(RUNS[spec.n_train].values()))).train
        state.run = learning_dynamics.LiveTraining.start(spec, train)
        state.rewind()
    run: learning_dynamics.LiveTraining = state.run
    player = Player(state, run)

    def restart() -> learning_dynamics.LiveTraining:
        state.run = learning_dynamics.LiveTraining.start(spec, run.train)
        return state.run

    buttons, pace_col = st.columns([3, 1], vertical_alignment="bottom")
    with buttons:
        player.controls(on_reset=restart)
    with pace_col:
        pace = pace_control(state)
    run = state.run  # Reset may have started a new one
    if not present:
        st.caption("Play trains (and replays what is trained); Pause stops training; Reset starts a fresh model; "
                   "Pace sets how long each frame stays up.")

    def draw(index: int, view: FrameView):
        live: learning_dynamics.LiveTraining = state.run
        it, done = live.frame_its[index], live.learner.iteration
        view.status.progress(min(done / spec.iterations, 1.0),
                             text=f"Iteration {done:,} of {spec.iterations:,} trained"
                                  f" · showing iteration {it:,} · {live.seconds:.1f} s of training")
        with view.picture.container():
            # presentation: the picture beside its chart at a height that keeps the controls, the scrubber and both
            # on one 1280×720 screen (360 px: 80 px a particle), the chart's text at 16 px
            left, right = st.columns([2, 3] if present else [1, 2])
            left.image(tile(live.frames[index], ncol=4, scale=4 if present else 3), width=360 if present else "content",
                       caption=f"16 particles at iteration {it:,}")
            curves = live.curves()
            lines = [CurveLine(f"this run ({spec.flow.upper()})", curves, FLOW_COLOURS[spec.flow])]
            if reference is not None:
                onset = reference.onset if reference.onset is not None and reference.onset <= spec.iterations else None
                lines.append(CurveLine(f"shipped {reference.name}", reference.curves.until(spec.iterations), "#888",
                                       onset, "dash"))
            state.draws += 1
            fig = gap_figure(lines, current=it, height=360 if present else 300, font_px=16 if present else None)
            fig.update_xaxes(range=[0, spec.iterations])
            right.plotly_chart(fig, key=state.key(f"live_gap_{state.draws}"))
            right.caption(f"{len(curves):,} iterations logged" + (
                f" · last gap {curves.values['gap'][-1]:.3g}" if len(curves) else ""))
        if live.failure:
            view.below.error(f"Training stopped: {live.failure}.")

    player.show(draw, scrub_label="Trained frame", frame_seconds=pace)
    if not state.playing and run.done and len(run.rows):
        onset = collapse_onset(run.curves())
        verdict = ("held: the gap never left 100× its early size" if onset is None
                   else f"collapsed from iteration {onset:,}")
        st.success(f"Trained {run.learner.iteration:,} iterations in {run.seconds:.1f} s; the energy {verdict}.")
    if not state.playing and len(run.rows):
        export_panel(f"learning-live-{spec.flow}-{spec.n_train}digits-seed{spec.seed}",  # a folded expander
                     frames=lambda r=run: np.stack([tile(f, ncol=4, scale=2) for f in r.frames]),
                     trajectory=run.arrays,
                     config=spec, figures={"gap": lambda r=run: gap_figure(
                         [CurveLine(spec.flow.upper(), r.curves(), FLOW_COLOURS[spec.flow])])},
                     key=state.key("live_export"))
    return live_lines(run, reference)


VIEWS = dict(zip(VIEW_NAMES, (full_view, few_shot_view, live_view), strict=True))
view = st.segmented_control("View", VIEW_NAMES, default=VIEW_NAMES[0], key=state.key("view")) or VIEW_NAMES[0]
notice = VIEWS[view]()
share(fields)
what_to_notice("views/learning_dynamics.py", notice)
