"""Energy landscape: disconnectivity graphs of stored maps, basins at a threshold, paths between two minima, the
UMAP of digits and minima, a digit's own descent, new maps made on request, two maps side by side."""

import time
from pathlib import Path

import numpy as np
import streamlit as st

from ebmviz.app import links
from ebmviz.app.cache import evaluate_frames, load_data
from ebmviz.app.pages import landscape
from ebmviz.app.pages.landscape import (
    CONFIDENT,
    SEL,
    DigitMapSpec,
    LandscapeConfig,
    LandscapeError,
    checkpoints,
    describe,
    draw_tree,
    merge_level,
    minimum_caption,
    pair_inputs,
    pick_map,
    select_from,
    selected,
    space_config,
    state,
    threshold_slider,
    to_u8,
)
from ebmviz.app.widgets import image_upload, is_energy, model_picker, share, shared
from ebmviz.figures.charts import line_figure
from ebmviz.figures.images import tile
from ebmviz.figures.landscape import descent_animation, disconnectivity_figure, layout_figure, profile_figure

st.title("Energy landscape")
st.markdown(
    "A map of where an energy's valleys are and how high the passes between them lie (Han et al. 2019, §3; "
    "ADELM, Hill et al. 2019). From each of a few hundred held-out digits, **steepest descent** runs to a local "
    "minimum; the **barrier** between two minima is the highest energy on a path between them; minima joined by "
    "barriers below a level form a **basin**. The disconnectivity graph draws it all at once: each leaf is a minimum "
    "at its energy, and two groups of minima join at the barrier where single linkage first connects them.")
st.latex(r"z_{t+1} = z_t - \eta_t \nabla U(z_t),\qquad B^{\mathrm{lin}}_{ij} = \max_{t\in[0,1]} "
         r"U\big((1-t)z_i + t z_j\big),\qquad U(z) = \frac{E(g(z))}{T} + \frac{\|z\|^2}{2}")
st.caption(
    "Why a latent space: steepest descent on the shipped image energies ends on smudges, not digits: from "
    "held-out digits, most of the short-run model's minima lose the start's digit, and the triangle's and the "
    "coarse-to-fine model's minima are mostly not digits (the numbers are in checkpoints/README.md). Through a "
    "generator g every state is a picture "
    "the generator can draw, and the prior term ‖z‖²/2 keeps the codes where the generator was trained, as ADELM "
    "maps a latent space. Each map says its energy, space and temperature T below.")
seed, device = shared().seed, shared().device

maps = landscape.available_maps()
VIEW_NAMES = ["Disconnectivity graph", "UMAP", "Your digit", "Map now", "Compare two maps"]
fields = [links.choice(state.key("view"), "view", VIEW_NAMES), links.choice(state.key("map_chosen"), "map", list(maps)),
          links.integer(SEL[0], "a", 0, 100_000), links.integer(SEL[1], "b", 0, 100_000),
          links.choice(state.key("colour"), "colour", ["digit", "basin", "energy"]),
          links.integer(state.key("idx"), "digit", 0, len(load_data("mnist", "test")[0]) - 1)]
links.restore(fields)
if not maps:
    st.info("No stored maps yet. Make one under “Map now”, or run `python -m training landscape-map ebgan-mnist`.")


def graph_view(view: landscape.MapView) -> None:
    land = view.land
    st.markdown(describe(view))
    c = st.columns(5)
    c[0].metric("Minima", f"{land.n_minima}", help=f"from {len(land.assignment)} starts")
    share = view.confident_share()
    c[1].metric("Confident digits", "–" if share is None else f"{100 * share:.0f}%",
                help=f"minima the evaluator reads with > {CONFIDENT:.0%} confidence")
    same = view.same_digit_share()
    c[2].metric("Same digit as start", "–" if same is None else f"{100 * same:.0f}%")
    c[3].metric("Time to map", f"{land.cost.seconds:.0f} s", help=f"{land.cost.evaluations:,} energy evaluations")
    c[4].metric("Opened in", f"{view.seconds_to_open:.2f} s", help="reading the file, rebuilding and laying out "
                                                                   "the tree")
    threshold = threshold_slider(view)
    st.plotly_chart(disconnectivity_figure(view.drawing, land.energy, view.digit, view.confidence, land.n_starts,
                                              threshold, selected(view), view.energy_label,
                                              revision=view.name), key=state.key("dg"),
                    on_select=select_from(state.key("dg")), selection_mode="points", width="stretch")
    st.caption("Leaves: minima, coloured by the evaluator's digit for the minimum's picture (open circles: under 90% "
               "sure), sized by how many starts reached them. Hover a leaf for its numbers; click one to select it "
               "(A), the previous A becomes B. The dashed line is the threshold.")
    basins_table(view, threshold)
    pair_section(view)


def basins_table(view: landscape.MapView, threshold: float) -> None:
    land, b = view.land, landscape.basins_at(view.land, threshold)
    basins, starts = b.groups, b.starts
    st.subheader(f"{len(basins)} basins at {view.energy_label} ≤ {threshold:.2f}")
    if not basins:
        st.info("No minimum lies this low: raise the threshold.")
        return
    order = np.argsort(-starts, kind="stable")
    st.markdown(
        f"A basin is what the level cuts off below it, as if the landscape were flooded to it: minima joined by "
        f"barriers under the level. **{starts.sum()}** of the {len(land.assignment)} starts descend into one; "
        f"{b.dry} minima lie above the level, in no basin. Purity (share of a basin's starts that carry its "
        f"commonest digit): mean over basins **{b.mean_purity:.2f}**, weighted by starts **{b.weighted_purity:.2f}**.")
    st.dataframe([{"basin": int(k), "minima": len(basins[k]), "starts": int(starts[k]),
                   "lowest energy": round(float(land.energy[basins[k][0]]), 3), "commonest digit": b.commonest[k],
                   "purity": None if np.isnan(b.purity[k]) else round(float(b.purity[k]), 2)} for k in order[:30]],
                 hide_index=True, height=240)
    pick = st.selectbox("Show basin", [int(k) for k in order[:30]], key=state.key(f"basin_{Path(view.name).stem}"),
                        format_func=lambda k: f"basin {k}: {len(basins[k])} minima, {starts[k]} starts")
    g = basins[pick]
    members = np.flatnonzero(np.isin(land.assignment, g))[:48]
    left, right = st.columns([1, 3])
    if land.images is not None:
        left.image(tile(to_u8(land.images[g[:1]]), ncol=1, scale=4),
                   caption=f"its lowest minimum ({minimum_caption(view, int(g[0]))})")
    if land.start_images is not None and len(members):
        right.image(tile(land.start_images[members], ncol=12, scale=2),
                    caption=f"{len(members)} of the {starts[pick]} digits that descend into this basin")
    if land.images is not None and len(members):
        right.image(tile(to_u8(land.images[land.assignment[members]]), ncol=12, scale=2),
                    caption="… and the minimum each of them reached (same order)")


def pair_section(view: landscape.MapView) -> None:
    land = view.land
    st.subheader("Between two minima")
    a, b = pair_inputs(view)
    refine = st.toggle("Refine: relax an elastic band between A and B (a few seconds)", key=state.key("band"),
                       help="A climbing-image nudged elastic band, started from the straight segment; it bends round "
                            "hills")
    if a == b:
        st.info("Pick two different minima (click two leaves, or type their numbers).")
        return
    if land.images is not None:
        c = st.columns(2)
        for col, k, tag in ((c[0], a, "A"), (c[1], b, "B")):
            col.image(tile(to_u8(land.images[[k]]), ncol=1, scale=3), caption=f"{tag}: "
                      + minimum_caption(view, k))
    try:
        paths = landscape.straight_and_route(view.name, view.mtime, a, b)
        band = landscape.elastic_band(view.name, view.mtime, a, b) if refine else None
    except (checkpoints.CheckpointError, ValueError) as exc:
        st.error(f"Cannot follow paths on this map's energy — {exc}.")
        return
    if band is not None:
        paths["elastic band"] = band
    joined = merge_level(land.tree, a, b)
    levels = {"linear barrier": paths["straight segment"].barrier, "graph joins them at": joined}
    stored = land.barrier_refined[a, b]
    if band is not None or np.isfinite(stored):
        levels["refined barrier"] = band.barrier if band is not None else float(stored)
    st.plotly_chart(profile_figure({k: (p.distance, p.energy) for k, p in paths.items()}, levels,
                                      view.energy_label), key=state.key("profile"))
    via = len(paths["tree route"].minima) - 2 if "tree route" in paths else None
    refined = rf",\quad B^{{\mathrm{{band}}}}_{{AB}} = {levels['refined barrier']:.2f}" if "refined barrier" in levels \
        else ""
    where = rf"{joined:.2f}\ \text{{(route via {via} minima)}}" if via is not None else r"\infty"
    st.latex(rf"B^{{\mathrm{{lin}}}}_{{AB}} = {levels['linear barrier']:.2f}{refined},\quad "
             rf"\text{{graph joins A and B at }} {where}")
    st.caption("Straight segment: the paper's linear barrier. Tree route: straight pieces through the minima the "
               "graph links A and B by; its highest point equals where the graph joins them when those links are "
               "linear barriers, and lies above it where the map refined them (the graph then uses the bands' lower "
               "barriers). Elastic band (when refined): relaxed from the segment, it bends round hills, so its "
               "highest point is the lower, refined barrier. " +
               ("The stored map refined this pair's barrier when it was made. " if np.isfinite(stored) else ""))
    for label, p in paths.items():
        st.image(tile(p.strip, ncol=len(p.strip), scale=2), caption=f"{label}, A → B ({p.seconds:.1f} s)")


def layout_view(view: landscape.MapView) -> None:
    land = view.land
    if land.layout is None or land.start_images is None:
        st.info("This map was stored without a 2-D layout. “Map now” can store a PCA layout; maps made with "
                "`python -m training landscape-map` carry a UMAP fitted ahead of time (UMAP's first fit costs about "
                "a minute, so the page never fits one).")
        return
    method = str(land.meta.get("layout", "umap")).upper()
    threshold = threshold_slider(view)
    n = len(land.assignment)
    colour = st.radio("Colour by", ["digit", "basin", "energy"], horizontal=True, key=state.key("colour"),
                      help="digit: the start's label and the evaluator's reading of each minimum")
    sc, mc = landscape.layout_colours(view, colour, threshold)
    start_text, minima_text = landscape.layout_texts(view)
    st.plotly_chart(layout_figure(land.layout[:n], land.layout[n:], sc, mc, colour, start_text, minima_text,
                                     discrete=colour != "energy", selected=selected(view), method=method,
                                     revision=view.name),
                    key=state.key("umap"), on_select=select_from(state.key("umap")), selection_mode="points",
                    width="stretch")
    st.caption(f"{method} of the {n} starting digits (dots) and the {land.n_minima} minima's pictures (diamonds), "
               "fitted when the map was made. Basin colours cycle through ten. "
               "Click a diamond to select that minimum as A (the graph view follows the pair).")


def digit_view(view: landscape.MapView) -> None:
    land = view.land
    images, labels, source = load_data("mnist", "test")
    how = st.radio("Digit", ["a test digit", "upload a picture"], horizontal=True, key=state.key("how"))
    x = None
    if how == "a test digit":
        i = st.number_input(f"Test digit (0–{len(images) - 1}, {source})", 0, len(images) - 1, 0, key=state.key("idx"))
        x = images[int(i)][None]
    else:
        up = image_upload("A digit picture (PNG, JPEG, …)", state.key("upload"))
        if up is None:
            st.info("Upload a picture of one digit: it is greyed, resized to 28×28 and inverted if it is dark on "
                    "light, like the Langevin page's uploads.")
            return
        x = up.image
    pred = evaluate_frames(to_u8(x))
    if pred is not None and pred.confidence[0] <= CONFIDENT:
        st.warning(f"The evaluator is not sure this is a digit (best guess {pred.label[0]}, "
                   f"{100 * pred.confidence[0]:.0f}%). It still descends; the map only knows digits.")
    try:
        d = landscape.descend_digit(view.name, view.mtime, x.astype(np.float32))
    except (checkpoints.CheckpointError, ValueError) as exc:
        st.error(f"Cannot descend on this map's energy — {exc}.")
        return
    left, right = st.columns([1, 2])
    with left:
        st.plotly_chart(descent_animation(d.frames), key=state.key("descent"))
        st.caption("Press ▶ to watch it descend" + (" (the code's picture g(z))" if view.latent else ""))
    with right:
        st.plotly_chart(line_figure(d.steps, {view.energy_label: d.energy}, "descent step",
                                            view.energy_label), key=state.key("descent_e"))
    threshold = threshold_slider(view)
    basins, basin_of = view.basin_of(threshold)
    k = d.nearest
    verb = "reaches" if d.same_minimum else "ends near (a minimum the map did not find; nearest shown)"
    where = (f"that is **basin {basin_of[k]}**, with {len(basins[basin_of[k]])} minima and "
             f"{int(land.n_starts[basins[basin_of[k]]].sum())} of the map's starts" if basin_of[k] >= 0 else
             "that minimum lies above the level, in no basin yet (raise the threshold)")
    st.markdown(f"It {verb} **minimum {k}** (distance {d.distance:.3f}, {view.energy_label} = "
                f"{d.energy[-1]:.2f} where it stopped); at the threshold {threshold:.2f} {where}.")
    if land.images is not None:
        st.image(tile(to_u8(land.images[[k]]), ncol=1, scale=4), caption=minimum_caption(view, k))


def map_now_view() -> None:
    st.markdown("Make a map with your own settings. It starts from held-out digits, runs on the sidebar's device, "
                "and is stored in the map cache (keyed by the checkpoint file and the settings), so the same "
                "settings open at once next time.")
    name, model = model_picker("Energy model", state.key("new_ckpt"), is_energy, default="ebgan-mnist",
                               report_broken=False)
    latent_ok = hasattr(model, "generator")
    c = st.columns(3)
    space = c[0].radio("Space", ["latent", "image"] if latent_ok else ["image"], key=state.key("new_space"),
                       help="latent: U(z) = E(g(z))/T + ‖z‖²/2 through the model's generator (the N(0, I) "
                            "prior, as ADELM, also for a generator with a learned prior)")
    temperature = c[1].number_input("Temperature T", 1e-4, 100.0, 0.01 if name.startswith("ebgan") else 0.3,
                                    format="%g", key=state.key(f"new_t_{name}"), disabled=space != "latent")
    n = c[2].number_input("Starts (held-out digits)", 2, landscape.MAX_STARTS, 100, 10, key=state.key("new_n"))
    c = st.columns(3)
    n_steps = c[0].number_input("Descent steps (at most)", 10, 5000, 1000, 100, key=state.key("new_steps"))
    k = c[0].number_input("Nearest minima per minimum (k)", 1, 128, LandscapeConfig.k_nearest, key=state.key("new_k"),
                          help="Linear barriers are measured to each minimum's k nearest (plus a spanning tree); "
                               "more is slower and closer to measuring every pair")
    refine = c[1].toggle("Refine the tree's barriers (elastic bands)", False, key=state.key("new_refine"),
                         help="Several times slower; the graph then uses the refined barriers")
    layout = c[2].toggle("2-D layout (PCA; UMAP only from the tool)", True, key=state.key("new_layout"))
    if not st.button("Map now", type="primary", key=state.key("go")):
        return
    spec = DigitMapSpec(name, space, float(temperature), int(n), int(seed), "auto", "pca" if layout else "none")
    config = space_config(space, n_steps=int(n_steps), move_tol=3e-3, refine="tree" if refine else "none",
                          k_nearest=int(k))
    bar, box = st.progress(0.0, "Descending from the digits…"), st.empty()
    last = [0.0]

    def progress(done, total, partial):
        phase = "descending" if not np.isfinite(partial.barrier_linear[~np.eye(partial.n_minima, dtype=bool)]).any() \
            else "barriers"
        bar.progress(done / total, f"{phase}: {partial.n_minima} minima so far")
        if time.monotonic() - last[0] > 1.0 and partial.n_minima:
            last[0] = time.monotonic()
            box.plotly_chart(disconnectivity_figure(draw_tree(partial.tree), partial.energy, None, None,
                                                       partial.n_starts, height=360), key=state.key(f"grow_{done}"))

    try:
        made = landscape.make_map(spec, config, device, progress)
    except (ValueError, checkpoints.CheckpointError, LandscapeError) as exc:
        st.error(f"Cannot make this map — {exc}")
        return
    bar.progress(1.0, "done")
    st.session_state[state.key("map_chosen")] = f"{Path(made).stem} (made here)"
    st.success(f"Stored as {made}. It is the map the other views now show.")


def compare_view() -> None:
    c = st.columns(2)
    views = []
    for col, (key, default) in zip(c, ((state.key("cmp1"), 0), (state.key("cmp2"), 1)), strict=True):
        with col:
            v = pick_map(maps, "Map", key, default)
            views.append(v)
            if v is None:
                continue
            land = v.land
            st.caption(describe(v))
            thr = v.default_threshold()
            st.plotly_chart(disconnectivity_figure(v.drawing, land.energy, v.digit, v.confidence, land.n_starts,
                                                      thr, (), v.energy_label, height=420,
                                                      revision=v.name), key=f"{key}_dg")
            b = landscape.basins_at(land, thr)
            share, same = v.confident_share(), v.same_digit_share()
            st.dataframe([{"minima": land.n_minima, "confident": "–" if share is None else f"{100 * share:.0f}%",
                           "same digit": "–" if same is None else f"{100 * same:.0f}%",
                           "basins at the cut": len(b.groups),
                           "purity (mean, by starts)": f"{b.mean_purity:.2f}, {b.weighted_purity:.2f}",
                           "map time": f"{land.cost.seconds:.0f} s"}], hide_index=True)


VIEWS = {"Disconnectivity graph": graph_view, "UMAP": layout_view, "Your digit": digit_view}
view_name = st.segmented_control("View", VIEW_NAMES, default="Disconnectivity graph",
                                 key=state.key("view")) or "Disconnectivity graph"
if view_name == "Map now":
    map_now_view()
elif view_name == "Compare two maps":
    compare_view()
else:
    chosen = pick_map(maps, "Map", state.key("map"))
    if chosen is not None:
        VIEWS[view_name](chosen)
share(fields)
