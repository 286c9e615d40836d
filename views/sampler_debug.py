"""Debug a sampler: a phase map of step size s × noise σ for any energy, and chains from any sampler (.npz)."""

import streamlit as st

from ebmviz.app import cache, links
from ebmviz.app.chain_file_panel import chain_file_panel
from ebmviz.app.pages.sampler_debug import (
    COLOUR_BY,
    SATURATED_FRACTION,
    STALLED_MOVE,
    DebugState,
    MapKey,
    colour_choices,
    default_ranges,
    figure_cells,
    langevin_link,
    nearest,
    pick_square,
    run_map,
    shipped_position,
    spec_for,
    verdict_counts,
    work_message,
)
from ebmviz.app.widgets import checkpoint_names, is_energy, model_picker, share, shared
from ebmviz.figures.images import tile
from ebmviz.figures.phase_map import phase_map_figure

P = "debug"
state = DebugState(P)
MODES = {"map": "Phase map: step size × noise", "file": "Chains from a file (.npz)"}
STARTS = {"noise": "uniform noise", "data": "the model's own images", "data+noise": "its images + noise (std 0.3)"}
fields = [links.choice(state.key("mode"), "view", list(MODES)),
          links.choice(state.key("ckpt"), "model", checkpoint_names(is_energy)),
          links.choice(state.key("start"), "start", list(STARTS)), links.integer(state.key("chains"), "chains", 4, 32),
          links.integer(state.key("steps"), "steps", 20, 1000),
          links.number(state.key("s_lo"), "s_lo", 1e-6, 1e5), links.number(state.key("s_hi"), "s_hi", 1e-6, 1e5),
          links.integer(state.key("s_n"), "s_n", 2, 8), links.number(state.key("sig_lo"), "sigma_lo", 1e-6, 10.0),
          links.number(state.key("sig_hi"), "sigma_hi", 1e-6, 10.0), links.integer(state.key("sig_n"), "sigma_n", 2, 8),
          links.choice(state.key("colour"), "colour", list(COLOUR_BY))]
links.restore(fields)
st.title("Debug a sampler")
st.session_state.setdefault(state.key("mode"), "map")
mode = st.segmented_control("Look at", list(MODES), format_func=MODES.get, key=state.key("mode"),
                            label_visibility="collapsed") or "map"
if mode == "file":
    st.markdown("Chains from any sampler — yours, in any framework — saved as an `.npz` of frames (and, if you have "
                "them, per-step energies, gradient and update norms, acceptance): play them here with the traces and "
                "diagnostics they support. The README's *Chains from any sampler* shows the layout and a ten-line "
                "PyTorch loop that writes one.")
    chain_file_panel(P)
    share(fields)
    st.stop()
st.markdown("Where in the plane of step size **s** and noise **σ** does a model's Langevin sampler behave? Each "
            "square of the map below is a short run of the same start images at one (s, σ), all squares sampled "
            "together, many per forward pass. The dotted diagonals are lines of constant *temperature* T = σ²/(2s): "
            "along one, s and σ trade off and the sampler targets the same exp(−E/T).")
seed, device = shared().seed, shared().device
settings, view = st.columns([1, 2.3], gap="large")
with settings:
    name, model = model_picker("Energy model", state.key("ckpt"), is_energy, default="shortrun-mnist")
    s_default, sig_default = default_ranges(model)
    if st.session_state.get(state.key("ranges_of")) != name and not links.from_link(state.key("s_lo")):
        for k, v in zip(("s_lo", "s_hi", "sig_lo", "sig_hi"), (*s_default, *sig_default), strict=True):
            st.session_state[state.key(k)] = v
    st.session_state[state.key("ranges_of")] = name
    has_data = cache.model_data(model) is not None
    starts = [k for k in STARTS if k == "noise" or has_data]
    if st.session_state.get(state.key("start")) not in starts:
        st.session_state.pop(state.key("start"), None)
    start = st.radio("Chains start from", starts, format_func=STARTS.get, key=state.key("start"), horizontal=True)
    c1, c2 = st.columns(2)
    chains = c1.slider("Chains per square", 4, 32, 16, key=state.key("chains"))
    steps = c2.number_input("Steps per chain", 20, 1000, 200, step=20, key=state.key("steps"))
    st.markdown("**Step sizes s** (log-spaced)")
    c1, c2, c3 = st.columns([1, 1, 0.8])
    s_lo = c1.number_input("from", 1e-6, 1e5, format="%g", key=state.key("s_lo"))
    s_hi = c2.number_input("to", 1e-6, 1e5, format="%g", key=state.key("s_hi"))
    s_n = c3.number_input("values", 2, 8, 6, key=state.key("s_n"))
    st.markdown("**Noises σ** (log-spaced)")
    c1, c2, c3 = st.columns([1, 1, 0.8])
    sig_lo = c1.number_input("from", 1e-6, 10.0, format="%g", key=state.key("sig_lo"))
    sig_hi = c2.number_input("to", 1e-6, 10.0, format="%g", key=state.key("sig_hi"))
    sig_n = c3.number_input("values", 2, 8, 6, key=state.key("sig_n"))
    try:
        spec = spec_for(model, (s_lo, s_hi), int(s_n), (sig_lo, sig_hi), int(sig_n), chains, int(steps))
    except ValueError:
        st.error("Each range needs its “from” below its “to”.")
        share(fields)
        st.stop()
    base = spec.base
    clip = f"±{base.grad_clip:g}" if base.grad_clip else "off"
    st.caption(f"Every square runs ULA with the model's own gradient clip ({clip}) and box "
               f"({'[−1, 1]' if base.clamp else 'none'}); only s and σ change.")
    too_much = work_message(spec)
    draw = st.button("Draw the map", type="primary", key=state.key("draw"), disabled=too_much is not None,
                     icon=":material/grid_on:")
    if too_much:
        st.warning(too_much, icon=":material/warning:")
key = MapKey(name, device, spec, start, seed)
with view:
    colours = colour_choices(state.cells if state.key_ == key else None, cache.is_digit_model(model))
    if st.session_state.get(state.key("colour")) not in colours:
        st.session_state[state.key("colour")] = colours[0]
    colour_by = st.segmented_control("Colour the moving squares by", colours, key=state.key("colour"))
    colour_by = colour_by or colours[0]
    name_of = COLOUR_BY[colour_by][1]
    chart, progress = st.empty(), st.empty()  # the same elements in every run: nothing stale stays on screen
    if draw:
        bar = progress.progress(0.0, text="Sampling…")
        total = len(spec.cells)

        def on_batch(cells):
            bar.progress(len(cells) / total, text=f"{len(cells)} of {total} squares sampled")
            chart.plotly_chart(phase_map_figure(spec.step_sizes, spec.noises, figure_cells(cells, colour_by),
                                                name_of, COLOUR_BY[colour_by][2], (base.step_size, base.noise_std)),
                               width="stretch", key=state.key(f"progress{len(cells)}"))

        try:
            run_map(state, key, model, on_batch)
        except ValueError as exc:
            st.info(str(exc))
        progress.empty()
    if state.key_ != key or not state.cells:
        chart.info("Set the ranges and press **Draw the map**. The default grid (6 × 6 squares × 16 chains × 200 "
                   "steps) takes about 15–20 s on a laptop's CPU; the squares fill in as their batches finish.")
        share(fields)
        st.stop()
    cells = state.cells
    chart.plotly_chart(
        phase_map_figure(spec.step_sizes, spec.noises, figure_cells(cells, colour_by), name_of,
                         COLOUR_BY[colour_by][2], (base.step_size, base.noise_std), state.selected),
        width="stretch", key=state.key("map"), on_select=lambda: pick_square(state), selection_mode="points")
    st.caption(f"{verdict_counts(cells)}. {shipped_position(spec)} Click a square to see its chains.")
share(fields)

with st.expander("How to read the map", expanded=True):
    st.markdown(
        f"- **Red — diverged**: a chain met a non-finite energy or gradient. Lower s, or clip the gradient.\n"
        f"- **Orange — saturated**: at least {SATURATED_FRACTION:.0%} of the pixels that the model's own images keep "
        "off the box's walls went to the walls (|x| ≥ 0.99); real digits already have most of their background at "
        "−1, so the map compares with the model's images (with none, with 0).\n"
        f"- **Grey — stalled**: the images barely left their starts (RMS pixel change below {STALLED_MOVE}). Raise s.\n"
        "- **Coloured squares — moving**: none of the above; the colour is the chosen measure: *quality* (28×28 "
        "digit models: the share of final images the digit evaluator reads with ≥ 90% confidence), *diversity* (the "
        "mean distance between chains in a fixed 8×8 feature space; near zero means the chains collapsed onto one "
        "image), the saturation, the final energy or R-hat.\n"
        "- **Green outline — mixing**: the second half's energies look stationary across chains (split R-hat below "
        "1.1 and at least one effective draw per chain). Short-run EBMs are not meant to mix: from noise, most "
        "squares are still travelling after a few hundred steps.\n"
        "- **Dotted lines**: constant T = σ²/(2s). **★**: the model's own setting.")

if state.selected is not None and (cell := nearest(state.cells, *state.selected)) is not None:
    st.subheader(f"Square s = {cell.step_size:g}, σ = {cell.noise_std:g}: {cell.verdict}")
    left, right = st.columns([1.2, 1])
    left.image(tile(cell.images, ncol=8, scale=3 if cell.images.shape[-1] <= 32 else 1),
               caption=f"the {len(cell.images)} chains after {spec.n_steps} steps (T = {cell.temperature:.2g})")
    with right:
        m = st.columns(2)
        m[0].metric("Pixels at the walls", f"{100 * cell.saturation:.0f}%")
        m[1].metric("Diversity", f"{cell.diversity:.3f}", help=f"{cell.duplicates} near-duplicate chain(s)")
        m[0].metric("Energy", f"{cell.energy_end:.3g}", delta=f"{cell.energy_end - cell.energy_start:+.3g} from start",
                    delta_color="inverse")
        m[1].metric("R-hat of the energy", f"{cell.rhat:.3f}" if cell.rhat == cell.rhat else "–")
        if cell.quality is not None:
            st.metric("Read as digits", f"{100 * cell.quality:.0f}%")
        st.page_link("views/langevin.py", label="Open this setting on the Langevin page", icon=":material/timeline:",
                     query_params=langevin_link(name, cell, spec, start))
