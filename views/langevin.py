"""Langevin chains: live sampling with per-step diagnostics, a PCA map, short vs long runs."""

import time
from dataclasses import replace

import numpy as np
import streamlit as st

from ebmviz.app import cache, links
from ebmviz.app.export_panel import export_panel
from ebmviz.app.lesson import what_to_notice
from ebmviz.app.pages.langevin import (
    DUPLICATE_DISTANCE,
    LOW_ACCEPTANCE,
    START_KINDS,
    WALL,
    LangevinConfig,
    LiveRun,
    LiveState,
    RunSpec,
    data_saturation,
    digest,
    frame_series,
    long_run_check,
    notice_lines,
    projection,
    saturation,
    second_half_diagnostics,
    shape_words,
    trajectory_arrays,
    tune_button,
)
from ebmviz.app.player import PACES, FrameView, Live, Player, pace_control
from ebmviz.app.presentation import grid_font_px, presenting
from ebmviz.app.widgets import (
    checkpoint_names,
    image_upload,
    is_energy,
    model_picker,
    over_work_cap,
    sampler_fields,
    sampler_form,
    share,
    shared,
    temperature_equation,
    update_equation,
)
from ebmviz.figures.chains import compare_energy_figure, projection_figure, traces_figure
from ebmviz.figures.charts import history_figure
from ebmviz.figures.images import labelled_grid, png, tile
from ebmviz.figures.sampler_lab import autocorrelation_figure

P = "langevin"
state = LiveState(P)
SPEEDS = [1, 2, 4, 8, 16, 32, 64]
MAX_CHAINS = 64  # most chains of a live run (64 chains make an 8 × 8 grid)
COMPARE_CHAINS = 8  # chains of the short- vs long-run comparison
FASTEST_PACE = 0.07  # s per frame: as fast as the page can draw (about 10 frames/s), for debugging a sampler
READ_EVERY = 0.5  # s: while playing, the evaluator reads the chains at most this often (11 ms for 16 digits)
LIVE_POINTS = 400  # while playing, the traces draw about this many of the steps (every step once paused)
fields = [links.choice(state.key("ckpt"), "model", checkpoint_names(is_energy)),
          links.choice(state.key("start"), "start", list(START_KINDS)), links.integer(state.key("n"), "chains", 1,
                                                                                      MAX_CHAINS),
          links.number(state.key("data_noise"), "data_noise", 0.05, 1.0), *sampler_fields(P),
          links.choice(state.key("speed"), "speed", SPEEDS),
          links.choice(state.key("pace"), "pace", [FASTEST_PACE, *PACES])]
links.restore(fields)
present = presenting()
st.title("Langevin chains")
if not present:
    st.markdown("A chain starts from an image — noise, a real digit, your picture — and takes many small steps. Each "
                "step moves every pixel a little *downhill* on the model's energy E(x) (towards images the model "
                "finds likely) and adds a little random noise. The step size **s** sets how far the downhill part "
                "goes, the noise **σ** how much randomness is added; together they set the *temperature* "
                "T = σ²/(2s): the lower T, the more the chain only descends. Press **Play** and watch noise turn "
                "into digits.")
seed, device = shared().seed, shared().device
settings, view = (st.expander("Settings: model, start, sampler, speed"), st.container()) if present else \
    st.columns([1, 2.2], gap="large")
with settings:
    name, model = model_picker("Energy model", state.key("ckpt"), is_energy, default="shortrun-mnist")
meta = model.meta
digits = cache.is_digit_model(model)
if not present:
    st.caption(f"**{name}** — {model.title}; trained on {(meta.get('dataset') or {}).get('source', 'unknown data')}. "
               f"Every energy model in ebmviz can be sampled here: E(x) of {shape_words(model)} in [−1, 1].")

defaults = LangevinConfig.from_dict(meta.get("sampler", {}))
with settings:
    st.subheader("Start")
    starts = [k for k in START_KINDS if (k != "replay" or hasattr(model, "replay_samples"))
              and (k != "generator" or hasattr(model, "generate"))]
    if st.session_state.get(state.key("start")) not in starts:  # e.g. a link's "replay" on a model without a buffer
        st.session_state.pop(state.key("start"), None)
    own_words = {"data": "its own images (--data)", "data+noise": "its own images + Gaussian noise"}
    start = st.radio("Initialise chains from", starts, key=state.key("start"),
                     format_func=lambda k: START_KINDS[k] if digits else own_words.get(k, START_KINDS[k]))
    n_chains = st.slider("Chains", 1, MAX_CHAINS, 16, key=state.key("n"))
    data_noise = 0.3
    if start == "data+noise":
        data_noise = st.slider("Noise added to the digits (std)", 0.05, 1.0, 0.3, 0.05, key=state.key("data_noise"))
    upload = None
    if start == "upload":
        what = "A digit picture" if digits else f"A picture (made {shape_words(model)[:-1]})"
        if (up := image_upload(f"{what} (PNG, JPEG, …)", state.key("upload"), model.image_shape)) is not None:
            upload = (up.image, digest(up.raw))
    st.subheader("Sampler")
    cfg, warnings = sampler_form(defaults, P)
    for w in warnings:
        st.warning(w)
    if cfg.metropolis:
        st.caption("MALA keeps pixels in [−1, 1] by *reflecting* a proposal that crosses a wall back inside, and "
                   "counts that in its accept/reject step, so it samples exp(−E/T) restricted to the box exactly. "
                   "(Rejecting every proposal that leaves the box would be exact too, but digits' black background "
                   "sits exactly at −1: nearly every proposal leaves, and the chain never moves.)")
        tune_button(state, model, name, device, start, seed, upload[0] if upload else None, data_noise, cfg)
    speed = st.select_slider("Steps per animation frame", SPEEDS,
                             value=max(s for s in SPEEDS if s <= cfg.record_every), key=state.key("speed"),
                             help="1 shows every step (the run records each step it needs for that)")
    pace = pace_control(state, fastest=FASTEST_PACE)

spec = RunSpec(name, device, cfg, start, n_chains, seed, upload[1] if upload else None, data_noise)


def new_run() -> LiveRun:
    """A fresh run of the current settings (raises ValueError when the start cannot be served)."""
    x0 = cache.starts(start, n_chains, seed, name, device, upload[0] if upload else None, data_noise)
    return LiveRun(model, x0.to(device), cfg, seed, stop_on_error=True,
                   sampler=cache.shared_sampler(name, device))  # batched with the other sessions on this model


if state.spec != spec:
    try:
        state.reset(spec, new_run())
    except ValueError as exc:
        state.clear()
        share(fields)
        with view:
            st.info(str(exc))
        st.stop()


def read(frame: np.ndarray, playing: bool):
    """The evaluator's verdict on ``frame`` (B, 1, 28, 28) uint8, or None off MNIST. While playing, the last reading
    stands for ``READ_EVERY`` s: reading every frame of every session was a fifth of a busy server's time."""
    now = time.monotonic()
    last = state.verdict
    fits = last is not None and (last[1] is None or len(last[1].label) == len(frame))  # a reading of these chains
    if playing and fits and now - last[0] < READ_EVERY:
        return last[1]
    pred = cache.evaluate_frames(frame)
    state.verdict = (now, pred) if playing else None
    return pred


def draw_frame(index: int, out: FrameView):
    """Status line and the labelled grid of recorded frame ``index``; returns the evaluator's verdict."""
    run = state.run
    frame, step = run.frames[index], int(run.frame_steps[index])
    pred = read(frame, out.playing)
    status = "running" if out.playing else ("finished" if run.done and index == len(run.frames) - 1 else "paused")
    status = "stopped by an error" if run.error is not None and index == len(run.frames) - 1 else status
    diverged = run.diverged_at
    stopped = f" · {int((diverged >= 0).sum())} chain(s) stopped at a non-finite value" if (diverged >= 0).any() else ""
    accepted = run.mean("accept", step) if run.adjusted and step > 0 else None
    rate = "" if accepted is None else f" · **acceptance so far {accepted:.2f}**"
    out.status.markdown(f"**Step {step} / {cfg.n_steps}** · {status} · "
                        f"temperature T = {cfg.temperature:.3g}{rate}{stopped}")
    if present:
        labels = [f"{pred.label[i]} {100 * pred.confidence[i]:.0f}%" if pred else f"{i}" for i in range(len(frame))]
    else:
        labels = [f"{i}: {pred.label[i]} ({pred.confidence[i]:.2f})" if pred else f"chain {i}"
                  for i in range(len(frame))]
    off_mnist = (f"chain number (the digit evaluator reads 28×28 grey digits only; these are "
                 f"{shape_words(model)})") if not digits else None
    read_how = f", read every {READ_EVERY:g} s while playing" if out.playing else ""
    out.picture.image(png(labelled_grid(frame, labels, ncol=8, highlight=st.session_state.get(state.key("chain"), 0),
                                        font_px=grid_font_px())),
                      caption=(f"digit (confidence){read_how}" if present else
                               f"chain: evaluator's digit (confidence){read_how}") if pred else off_mnist)
    if run.error is not None:
        out.below.error(f"The energy raised an error after step {run.t} and the run stopped there: {run.error}",
                        icon=":material/error:")
    elif accepted is not None and accepted < LOW_ACCEPTANCE:
        out.below.warning(f"MALA has accepted {100 * accepted:.1f}% of its proposals: the chains barely move. Lower "
                          "the step size s (or press “Tune s”), or lower σ.", icon=":material/warning:")
    elif not out.playing and (diverged >= 0).any():
        out.below.warning(f"{int((diverged >= 0).sum())} chain(s) met a non-finite value and stopped (first at step "
                          f"{int(diverged[diverged >= 0].min())}); they keep their last finite state. Lower the step "
                          "size or turn on clipping.")
    return pred


def restart() -> Live:
    """Reset: a new run of the current settings."""
    state.reset(spec, new_run())
    return Live(state.run, speed)


with view:
    picture, side = st.columns([1.15, 1], gap="medium") if present else (st.container(), st.container())
    with picture:
        player = Player(state, Live(state.run, speed))
        player.seek(links.requested_frame(-(-cfg.n_steps // cfg.record_every)))  # the last frame index
        share(fields, {links.FRAME: str(state.position)})
        player.controls(on_reset=restart)
    equations = st.expander("The update rule") if present else side
    with equations:
        st.latex(update_equation(cfg))
        st.latex(temperature_equation(cfg))
    with picture:
        pred = player.show(draw_frame, frame_seconds=pace, on_pause=lambda i: share(fields, {links.FRAME: str(i)}))

    data_share = data_saturation(name, device)

    # While playing, the traces redraw every 2 s at about LIVE_POINTS steps: plotly is the slow part of a frame, on the
    # server and in the browser
    @st.fragment(run_every=2.0 if state.playing else None)
    def live_traces():
        traj = state.run.trajectory()
        series = {} if present else frame_series(traj.frames, traj.frame_steps, data_share)
        st.plotly_chart(traces_figure(traj.energy, traj.grad_norm, traj.step_norm, traj.accept,
                                      selected=st.session_state.get(state.key("chain"), 0),
                                      n_steps=cfg.n_steps, compact=present,
                                      max_points=LIVE_POINTS if state.playing else None, **series),
                        width="stretch", key=state.key("traces"))
        return traj, series

    with side:
        traj, series = live_traces()
        if not present:
            own_share = "" if data_share is None else \
                f" (dashed: {100 * data_share:.0f}% of {'real digits' if digits else 'its own images'}' pixels)"
            st.caption(f"**Saturated pixels** are those at the box's walls, |x| ≥ {WALL}. Real digits have most of "
                       f"their background exactly at −1, so compare a model's share with its data's{own_share}, not "
                       "with 0; a share that keeps climbing past it while the 1st–99th percentile band sits at ±1 "
                       "is a sampler driving pixels into the walls. **Diversity** is the mean RMS distance between "
                       "the chains' images shrunk to 8 × 8 blocks (noise averages out there, so a run from noise "
                       "starts low); a falling distance and a rising count of near-duplicate chains (closer than "
                       f"{DUPLICATE_DISTANCE}) is the chains collapsing onto a few images.")

if state.playing:
    st.info("The map, the close-up, the diagnostics, the short/long comparison and the export appear when the run "
            "pauses or ends.")
    st.stop()
own = None if digits else cache.model_data(model)
notice = notice_lines(traj.energy, traj.accept, state.run.frames[state.position], pred, cfg,
                      None if own is None else saturation(own[0]))
if present:
    st.caption("Presentation mode folds away the close-up, the map, the diagnostics, the short- vs long-run "
               "comparison and the export: turn it off in the sidebar to see them.")
    what_to_notice("views/langevin.py", notice)
    st.stop()
with view:
    export_panel(f"langevin-{name}-{start}-seed{seed}",
                 frames=lambda run=state.run: np.stack([tile(f, ncol=8, scale=2) for f in run.frames]),
                 trajectory=lambda run=state.run: trajectory_arrays(run.trajectory()),
                 config={"model": name, "start": start, "chains": n_chains, "data_noise": data_noise, "seed": seed,
                         "device": device, "sampler": cfg.to_dict()},
                 figures={"traces": lambda: traces_figure(traj.energy, traj.grad_norm, traj.step_norm,
                                                                  traj.accept, n_steps=cfg.n_steps, **series)},
                 key=state.key("export"))


def pick_chain_from_map():
    """Selecting a chain's end marker on the map selects that chain (runs before the rerun)."""
    points = st.session_state[state.key("map")].selection.get("points", [])
    picked = [p["customdata"][0] if isinstance(p.get("customdata"), list) else p.get("customdata")
              for p in points if p.get("customdata") is not None]
    if picked:
        st.session_state[state.key("chain")] = int(picked[0])


st.header("Close-up and map")
left, right = st.columns([1, 2])
with left:
    chain = st.number_input("Chain", 0, n_chains - 1, 0, key=state.key("chain"),
                            help="Highlighted in the traces above and on the map")
    run = state.run
    picks = np.unique(np.linspace(0, len(run.frames) - 1, 8).round().astype(int))
    strip = np.stack([run.frames[i][chain] for i in picks])
    st.image(tile(strip, ncol=len(picks), scale=3), caption="steps " + ", ".join(
        str(run.frame_steps[i]) for i in picks))
    e = traj.energy[:, chain]
    st.metric("Energy now", f"{e[-1]:.3f}", delta=f"{e[-1] - e[0]:+.3f} since step 0", delta_color="inverse")
with right:
    if (found := projection(name, device)) is None:
        st.info(f"No map: **{name}** has no images to lay the chains over. Start ebmviz with `--data` for it.")
    else:
        pca, data_xy, data_labels, source = found
        paths = np.stack([pca.transform(f) for f in run.frames])  # (F, B, 2)
        labels = [f"digit {pred.label[i]}, confidence {pred.confidence[i]:.2f}" for i in range(n_chains)] \
            if pred else None
        st.plotly_chart(projection_figure(data_xy, data_labels, paths, labels, chain, pca.explained),
                        width="stretch", key=state.key("map"), on_select=pick_chain_from_map,
                        selection_mode="points")
        coloured = "coloured by label" if data_labels is not None else "unlabelled"
        st.caption(f"PCA of {len(data_xy):,} {'held-out digits' if digits else 'of its images'} ({source}), "
                   f"{coloured}; lines are the chains' recorded paths, × their current state. Click a × to select "
                   "that chain.")

st.header("Chain diagnostics")
d = second_half_diagnostics(traj.energy, traj.accept)
m = st.columns(4)
m[0].metric("ESS of the energy", "—" if not np.isfinite(d.ess) else f"{d.ess:.0f}",
            help=f"Effective independent draws among the {d.steps} × {d.chains} energies of the second half "
                 "(ArviZ bulk ESS)")
m[1].metric("R-hat of the energy", "—" if not np.isfinite(d.rhat) else f"{d.rhat:.3f}",
            help="Split R-hat across chains: above about 1.01 the chains have not settled to one distribution")
m[2].metric("ESS per gradient", "—" if not np.isfinite(d.ess) else f"{d.ess_per_grad:.2e}")
m[3].metric("Acceptance", "—" if d.acceptance is None else f"{d.acceptance:.2f}", help="MALA only")
st.plotly_chart(autocorrelation_figure({"energy": d.autocorrelation}),
                width="stretch", key=state.key("acf"))
st.caption("Read from the second half of the steps so far. A short-run image EBM is not meant to reach a stationary "
           "distribution: a large R-hat and a slowly decaying autocorrelation say the chains are still travelling. "
           "The sampler lab shows the same numbers on 2-D energies with known answers.")

st.header("Short run vs long run")
st.markdown("Same start and seed, the page's sampler run for K steps and for m·K steps. Training only "
            "asks a short-run EBM for digits after the chain lengths it trains on; nothing controls where its "
            "chains go afterwards. Non-persistent short-run models drift to over-saturated, high-contrast "
            "images (Nijkamp et al., 2020); a model trained with a replay buffer may instead stay digit-like "
            f"and collapse onto a few classes. {long_run_check(name)}The bright-pixel share and the evaluator's "
            "digits under each grid tell which happens here.")
mult = st.select_slider("Long run: m × K steps", [2, 5, 10, 20], value=10, key=state.key("mult"))
if st.button("Run the comparison", key=state.key("compare")):
    state.comparing = True
long_cfg = replace(cfg, n_steps=mult * cfg.n_steps, record_every=max(1, cfg.n_steps // 4))
too_much = over_work_cap(COMPARE_CHAINS, cfg.n_steps + long_cfg.n_steps, "The comparison")
if state.comparing and too_much:
    st.warning(too_much, icon=":material/warning:")
elif state.comparing:
    cmp_start = start if start != "upload" else "noise"
    with st.spinner(f"Sampling {long_cfg.n_steps} steps for {COMPARE_CHAINS} chains…"):
        short = cache.run_chains(name, device, cfg, cmp_start, COMPARE_CHAINS, seed)
        long_ = cache.run_chains(name, device, long_cfg, cmp_start, COMPARE_CHAINS, seed)
    c1, c2 = st.columns(2)
    for col, label, tr in ((c1, f"{cfg.n_steps} steps", short), (c2, f"{long_cfg.n_steps} steps", long_)):
        q = cache.evaluate_frames(tr.frames[-1])
        conf = (f", mean evaluator confidence {q.confidence.mean():.2f}, digits "
                f"{' '.join(str(d) for d in q.label)}") if q else ""
        col.image(tile(tr.frames[-1], ncol=8, scale=3),
                  caption=f"{label}: {100 * saturation(tr.final):.0f}% saturated pixels{conf}")
    st.plotly_chart(compare_energy_figure({"short run": short.energy, "long run": long_.energy}),
                    width="stretch")

with st.expander("Training history of this checkpoint"):
    hist = meta.get("history") or []
    if hist:
        keys = [k for k in ("cd", "e_real", "e_fake", "grad_norm") if k in hist[0]]
        st.plotly_chart(history_figure(hist, keys), width="stretch")
    st.json({k: meta.get(k) for k in ("command", "wall_time_s", "device", "iterations", "sampler")})

what_to_notice("views/langevin.py", notice)
