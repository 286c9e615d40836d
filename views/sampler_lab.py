"""Sampler lab: two samplers side by side on a 2-D energy whose exact density is known, with live diagnostics."""

import numpy as np
import streamlit as st

from ebmviz.app import links
from ebmviz.app.export_panel import export_panel
from ebmviz.app.lesson import what_to_notice
from ebmviz.app.pages.sampler_lab import (
    LAB_ENERGIES,
    MAX_PARTICLES,
    MAX_STEPS,
    LabSpec,
    LabState,
    PairRecording,
    autocorrelation,
    components_editor,
    components_field,
    custom,
    equation,
    gif_picks,
    grid_and_background,
    judge,
    notice_lines,
    sampler_link_fields,
    side_form,
    target_temperature,
    trajectory_arrays,
)
from ebmviz.app.player import FrameView, Player, pace_control
from ebmviz.app.presentation import presenting
from ebmviz.app.widgets import share, shared
from ebmviz.figures.images import side_by_side
from ebmviz.figures.sampler_lab import autocorrelation_figure, density_figure, marginals_figure, particles_frame

P = "lab"
state = LabState(P)
names = [*LAB_ENERGIES, "custom"]
STRIDES = [1, 2, 4, 8, 16]
fields = [links.choice(state.key("energy"), "energy", names), links.integer(state.key("n"), "particles", 10,
                                                                            MAX_PARTICLES),
          links.integer(state.key("steps"), "steps", 10, MAX_STEPS),
          links.choice(state.key("start"), "start", ["uniform", "point"]),
          links.choice(state.key("stride"), "per_frame", STRIDES), components_field(P),
          *sampler_link_fields(P, "a"), *sampler_link_fields(P, "b")]
links.restore(fields)
present = presenting()
st.title("Sampler lab")
if not present:
    st.markdown("Start here. A *sampler* turns an energy E(x) into random points that land where E is low — more "
                "often the lower it is: it draws from the density exp(−E/T). Here the points live in 2-D, so the "
                "exact answer is known: the heat map is exp(−E/T) normalised on a grid, and every number below "
                "compares the particles with it. Langevin samplers step downhill by **s**·∇E and add noise of size "
                "**σ**; the two set the *temperature* T = σ²/(2s) (here you set T and the noise follows). Press "
                "**Play**: the unadjusted sampler (ULA) settles into blobs wider than the exact ones, its bias; "
                "MALA's accept/reject removes it, at the price of rejected moves (red dots).")
settings = st.expander("Settings: energy, particles, steps, the two samplers") if present else st.container()
with settings:
    top = st.columns([1.4, 1, 1, 1, 1.2])
    energy = top[0].selectbox("Energy", names, index=names.index("mix8"), key=state.key("energy"),
                              format_func=lambda n: LAB_ENERGIES[n].title if n in LAB_ENERGIES else "Your mixture")
    n_particles = top[1].number_input("Particles", 10, MAX_PARTICLES, 500, step=50, key=state.key("n"))
    n_steps = top[2].number_input("Steps", 10, MAX_STEPS, 300, step=50, key=state.key("steps"))
    start = top[3].selectbox("Start", ["uniform", "point"], key=state.key("start"),
                             format_func={"uniform": "spread over the box", "point": "all at one point"}.get)
    stride = top[4].select_slider("Steps per frame", STRIDES, 4, key=state.key("stride"))
    pace = pace_control(state, normal=0.07)
    components = ()
    if energy == "custom":
        with st.popover("Your mixture: one row per Gaussian component (x, y, std, weight)") if present else \
                st.expander("Your mixture: one row per Gaussian component (x, y, std, weight)", expanded=True):
            components = components_editor(P)
    toy = custom(components) if energy == "custom" else LAB_ENERGIES[energy]
    st.caption(f"**{toy.title}** — {toy.note}")

with settings:
    cols = st.columns(2, gap="large")
    choices = []
    for col, side, kind in zip(cols, ("a", "b"), ("ULA", "MALA"), strict=True):
        with col:
            st.subheader(f"Sampler {side.upper()}")
            choices.append(side_form(side, toy, P, kind))
a, b = choices
spec = LabSpec(energy, components, int(n_particles), int(n_steps), start, shared().seed, a, b)
problems = spec.problems()
if problems:
    share(fields)
    for p in problems:
        st.error(p)
    st.stop()
if state.spec != spec:
    state.reset(spec)
rec = PairRecording(state.runs, stride)
player = Player(state, rec)
player.seek(links.requested_frame(-(-spec.n_steps // stride)))
share(fields, {links.FRAME: str(state.position)})
pictures = [grid_and_background(energy, components, target_temperature(ch.config(1))) for ch in (a, b)]


def side_frame(i: int, step: int) -> np.ndarray:
    """Sampler i's picture at ``step``: particles, trails, acceptance or move colours, leapfrog paths."""
    run, ch = rec.runs[i], choices[i]
    frames = run.frames
    trail = np.stack(frames[max(0, step - 8 * stride): step + 1: stride]) if step > 0 else None
    accepted = moves = paths = None
    if step > 0:
        if run.adjusted:
            accepted = run.row("accept", step - 1) > 0
        else:
            moves = run.row("step_norm", step - 1)
        if ch.kind == "HMC" and len(run.paths) >= step:
            paths = run.paths[step - 1][:, :25]
    return particles_frame(pictures[i][1], toy.box, frames[step], trail, accepted, moves, paths)


def status(i: int, step: int) -> str:
    run, ch = rec.runs[i], choices[i]
    text = f"{'AB'[i]} ({ch.kind})"
    if step > 0 and run.adjusted:
        text += f": {100 * run.mean('accept', step):.0f}% accepted"
    if step > 0 and ch.kind == "Annealed":
        text += f": T = {run.temperatures[step - 1]:.3g}"
    stopped = int(((run.diverged_at >= 0) & (run.diverged_at < step)).sum())
    if stopped:
        text += f", {stopped} particle(s) stopped at a non-finite value (the step is too large where they were)"
    return text


def draw(index: int, out: FrameView):
    step = rec.step_at(index)
    out.status.markdown(f"**Step {step} / {spec.n_steps}** · {status(0, step)} · {status(1, step)}")
    frame = side_by_side(side_frame(0, step), side_frame(1, step), gap=10)
    out.picture.image(frame, width=int((0.95 if present else 1.3) * frame.shape[1]),  # a tall box stays on screen
                      caption=f"left: A ({a.kind}), right: B ({b.kind}) · {spec.n_particles} particles · "
                              "trails: the last 8 frames · dots: white accepted, red rejected (MALA, HMC) or "
                              "coloured by move length, blue short to yellow long (ULA, annealed) · orange: "
                              "HMC leapfrog paths of 25 particles")


def restart() -> PairRecording:
    global rec
    state.reset(spec)
    rec = PairRecording(state.runs, stride)
    return rec


player.controls(on_reset=restart)
with st.expander("The two update rules") if present else st.container():
    eq = st.columns(2)
    for col, ch, side in zip(eq, (a, b), "AB", strict=True):
        col.latex(rf"\text{{{side}:}}\ " + equation(ch))
player.show(draw, scrub_label="Frame", frame_seconds=pace, on_pause=lambda i: share(fields, {links.FRAME: str(i)}))


def fmt(v: float | None, spec: str) -> str:
    """A table entry: "—" where a diagnostic is not defined yet (too few draws, an unadjusted sampler)."""
    return "—" if v is None or not np.isfinite(v) else format(v, spec)


@st.fragment(run_every=2.0 if state.playing else None)
def diagnostics():
    step = rec.step_at(min(state.position, len(rec) - 1))
    st.subheader(f"Diagnostics at step {step}")
    if step < 8:
        st.info("The diagnostics appear from step 8 on: press Play or Step.")
        return
    rows, curves, now, judged = [], {}, {}, []
    for i, (run, ch) in enumerate(zip(rec.runs, choices, strict=True)):
        tr = run.trajectory()
        states, energy_rows = tr.frames[: step + 1], tr.energy[: step + 1]
        accept = tr.accept[:step] if tr.accept is not None else None
        s = judge(states, energy_rows, accept, run.config, toy, diverged_at=tr.diverged_at, grid=pictures[i][0],
                  max_draws=200)
        name = f"{'AB'[i]}: {ch.kind}"
        judged.append(s)
        rows.append({"sampler": name, "acceptance": fmt(s.acceptance, ".2f"), "ESS x": fmt(s.ess["x"], ".0f"),
                     "ESS y": fmt(s.ess["y"], ".0f"), "ESS E": fmt(s.ess["energy"], ".0f"),
                     "R-hat (max)": "∞ (a chain never moved)" if s.max_rhat == np.inf else
                     ("≫ 1" if s.max_rhat > 100 else fmt(s.max_rhat, ".3f")), "gradients": s.grad_evals,
                     "ESS / gradient": fmt(s.ess_per_grad, ".2e"), "MMD²": fmt(s.distance["MMD²"], ".4f"),
                     "binned KL": fmt(s.distance["binned KL"], ".3f"), "draws read": f"{s.n_draws} × {s.n_chains}",
                     "stopped chains": s.n_stopped})
        curves[f"{name}, energy"] = autocorrelation(energy_rows[len(energy_rows) // 2:], max_lag=40)
        curves[f"{name}, x"] = autocorrelation(states[len(states) // 2:, :, 0], max_lag=40)
        pooled = states[len(states) // 2:].reshape(-1, 2)
        now[name] = (pooled[np.linspace(0, len(pooled) - 1, min(len(pooled), 20000)).astype(int)], pictures[i][0])
    st.dataframe(rows, hide_index=True, width="stretch")
    st.caption("Read from the second half of the steps so far (and never the annealing ladder), thinned to at most "
               "200 draws per chain; gradients count every step. ESS: effective draws of x, y and the energy "
               "(ArviZ, rank-normalised bulk ESS); — when a chain never moved (its draws cannot count as "
               "independent). R-hat above about 1.01 says chains disagree, e.g. each stuck in its own mode. Chains "
               "that stopped at a non-finite value are left out of ESS and R-hat. MMD² and binned KL (20 × 20 bins) "
               "measure the pooled draws' distance to the exact density; both are near 0 only for exact draws.")
    c1, c2 = st.columns(2)
    c1.plotly_chart(marginals_figure(now), width="stretch", key=state.key("marginals"))
    c1.caption(f"The draws of the second half (up to step {step}) against the exact marginals of each sampler's "
               "target (one black line when both have the same temperature).")
    c2.plotly_chart(autocorrelation_figure(curves), width="stretch", key=state.key("acf"))
    c2.caption("Autocorrelation of each chain's energy and x over the second half, averaged over chains.")
    return step, judged


with st.expander("Diagnostics: acceptance, ESS, R-hat, distance to the exact density") if present else \
        st.container():
    step_read, judged = diagnostics() or (0, [])
if state.playing:
    st.stop()
notice = notice_lines(step_read, [ch.kind for ch in choices], judged)
if present:
    what_to_notice("views/sampler_lab.py", notice)
    st.stop()
step = rec.step_at(min(state.position, len(rec) - 1))
paths = {f"B: {b.kind}" if i else f"A: {a.kind}": rec.runs[i].paths[step - 1][:, :25]
         for i, ch in enumerate(choices) if ch.kind == "HMC" and step > 0 and len(rec.runs[i].paths) >= step}
density = density_figure(pictures[0][0], {f"A: {a.kind}": rec.runs[0].frames[step],
                                                      f"B: {b.kind}": rec.runs[1].frames[step]}, paths,
                                     title=f"Step {step}: the particles over the exact density (zoom, hover)")
st.plotly_chart(density, width="stretch", key=state.key("density"))


# The exports below run on Streamlit's download thread, where session state cannot be read: they use ``rec``.
def gif_frames() -> np.ndarray:
    first = side_by_side(side_frame(0, 0), side_frame(1, 0), gap=10)
    picks = gif_picks(len(rec), first.shape)  # within the GIF's pixel cap
    return np.stack([side_by_side(side_frame(0, rec.step_at(i)), side_frame(1, rec.step_at(i)), gap=10)
                     for i in picks])


def arrays() -> dict:
    out = {}
    for side, run in zip("ab", rec.runs, strict=True):
        out.update({f"{side}_{k}": v for k, v in trajectory_arrays(run.trajectory()).items()})
    return out


export_panel(f"sampler-lab-{energy}-{a.kind}-vs-{b.kind}-seed{spec.seed}", frames=gif_frames, trajectory=arrays,
             config={"energy": energy, "components": components, "particles": spec.n_particles,
                     "steps": spec.n_steps, "start": start, "per_frame": stride, "seed": spec.seed,
                     "a": a.to_dict(), "b": b.to_dict()},
             figures={"density": lambda: density}, fps=10, key=state.key("export"))

what_to_notice("views/sampler_lab.py", notice)
