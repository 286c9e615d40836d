"""Energy landscape: disconnectivity graphs of stored maps, basins at a threshold, paths between two minima, the
UMAP of digits and minima, a digit's own descent, new maps made on request, two maps side by side."""

from pathlib import Path

import numpy as np
import streamlit as st

from ebmviz.app import links
from ebmviz.app.cache import evaluate_frames, load_data
from ebmviz.app.lesson import what_to_notice
from ebmviz.app.pages import landscape
from ebmviz.app.pages.landscape import (
    CONFIDENT,
    SEL,
    LandscapeConfig,
    checkpoints,
    cut_reason,
    describe,
    digit_story,
    merge_level,
    minimum_caption,
    pair_inputs,
    pick_map,
    select_from,
    selected,
    state,
    threshold_slider,
    to_u8,
)
from ebmviz.app.presentation import grid_font_px, presenting
from ebmviz.app.widgets import image_upload, is_energy, model_picker, share, shared
from ebmviz.figures.charts import line_figure
from ebmviz.figures.images import labelled_grid, tile
from ebmviz.figures.landscape import (
    cut_scan_figure,
    descent_animation,
    disconnectivity_figure,
    layout_figure,
    profile_figure,
)

present = presenting()
st.title("Energy landscape")
st.markdown(
    "An energy model gives every picture a number, its **energy**: low for pictures it finds likely. Think of that "
    "number as the height of a landscape over all possible pictures. This page maps the landscape. From each of a "
    "few hundred held-out digits (test digits the model never trained on) we walk downhill, always to lower "
    "energy, until the ground is flat: that end point is a **local minimum**, the bottom of a valley. The "
    "**barrier** between two minima is the highest point on the way from one to the other: the pass between two "
    "valleys. Flood the landscape to some level and the minima under water that are joined below the waterline "
    "form one lake, a **basin**. The **disconnectivity graph** draws it all at once: height goes up, each minimum "
    "is a leaf at its own energy, and two groups of minima join in a bar at the height of the lowest pass between "
    "them. Cutting the graph at a level gives the basins at that level.")
with st.expander("The same in the papers' notation", expanded=False) if present else st.container():
    st.markdown(
        "The maps follow the divergence triangle's MNIST map (Han et al. 2019, §3) and ADELM (Hill, Nijkamp & Zhu "
        "2019). The walk is on a generator's latent code $z$ (the picture is $g(z)$): steepest descent on "
        "$U(z)$, the energy of the picture at temperature $T$ plus a prior term, with a step $\\eta_t$ that "
        "adapts. The barrier a map measures first is the **linear barrier** $B^{\\mathrm{lin}}_{ij}$, the highest "
        "$U$ on the straight segment between minima $z_i$ and $z_j$; two groups join in the graph at the lowest "
        "barrier between them (single linkage).")
    st.latex(r"z_{t+1} = z_t - \eta_t \nabla U(z_t),\qquad B^{\mathrm{lin}}_{ij} = \max_{t\in[0,1]} "
             r"U\big((1-t)z_i + t z_j\big),\qquad U(z) = \frac{E(g(z))}{T} + \frac{\|z\|^2}{2}")
    st.caption(
        "Why a latent space: steepest descent on the shipped image energies ends on smudges, not digits: from "
        "held-out digits, most of the short-run model's minima lose the start's digit, and the triangle's and the "
        "coarse-to-fine model's minima are mostly not digits (the numbers are in checkpoints/README.md). Through a "
        "generator g every state is a picture the generator can draw, and the prior term ‖z‖²/2 keeps the codes "
        "where the generator was trained, as ADELM maps a latent space. Each map says its energy, space and "
        "temperature T below.")
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


def graph_view(view: landscape.MapView) -> list[str]:
    land = view.land
    with st.expander("This map: its energy, starts and minima", expanded=False) if present else st.container():
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
    st.markdown(
        f"The dashed line is the **threshold**, the level the graph is cut at. **Purity** says how well the "
        f"basins at a cut sort the digits: the share of all the map's starts that lie in a basin and carry that "
        f"basin's commonest digit (1: every digit in a basin of its own kind). The page opens at "
        f"{view.energy_label} = {view.cut.level:.2f}. " + cut_reason(view))
    threshold = threshold_slider(view)
    shown = view.focus(threshold)
    st.plotly_chart(disconnectivity_figure(view.drawing, land.energy, view.digit, view.confidence, land.n_starts,
                                           threshold, selected(view), view.energy_label,
                                           height=400 if present else 520, revision=view.name, y_range=shown),
                    key=state.key("dg"), on_select=select_from(state.key("dg")), selection_mode="points",
                    width="stretch")
    above = int((land.energy > shown[1]).sum())
    st.caption(("Leaves: minima, coloured by the evaluator's digit for the minimum's picture (open circles: under 90% "
                "sure)" if view.digit is not None else "Leaves: minima (unlabelled: one colour)")
               + ", sized by how many starts reached them. Hover a leaf for its numbers; click one to select it "
               "(A), the previous A becomes B. The dashed line is the threshold."
               + (f" The energy axis stops at {shown[1]:.2f}, where the basins have merged into a few: {above} "
                  "minima lie higher; double-click the graph to see them all." if above else ""))
    with st.expander("Purity and basins at every cut level", expanded=False):
        scan = view.scan
        st.plotly_chart(cut_scan_figure(scan.levels, scan.basins, scan.purity, view.cut.wanted, view.cut.level,
                                        threshold, view.energy_label, x_range=shown), key=state.key("scan"))
        st.caption(f"Each level where the basins change ({len(scan.levels)} of them; the axis stops where the "
                   f"graph's does). The thick stretch of the purity curve is where the cut leaves "
                   f"{view.cut.wanted[0]}–{view.cut.wanted[1]} basins; the page opens at its highest point.")
    with st.expander("The basins at this threshold", expanded=False) if present else st.container():
        b = basins_table(view, threshold)
    with st.expander("Between two minima", expanded=False) if present else st.container():
        pair = pair_section(view)
    flat, joins = view.flat_joins(), view.merges()
    return [
        f"At the threshold {view.energy_label} = {threshold:.2f} the {len(b.groups)} basins hold "
        f"{int(b.starts.sum())} of the {b.total} starts, and {int(b.hits.sum())} of those share their basin's "
        f"commonest digit: purity {b.cut_purity:.2f}"
        + (" — the best of the cuts with "
           f"{view.cut.wanted[0]}–{view.cut.wanted[1]} basins." if np.isclose(threshold, view.cut.level) else
           f" (the opening cut, {view.cut.level:.2f}, gives {view.scan.purity[view.cut.index]:.2f})."),
        f"{flat} of the graph's {joins} joins have no rise: the path from the higher minimum to the lower never "
        "climbs above where it starts, so many leaves are points where a descent stopped on one valley's floor or "
        "slope, not separate valleys.",
        pair or "Pick two different minima to compare the straight line's barrier with the graph's join level.",
    ]


def basins_table(view: landscape.MapView, threshold: float) -> landscape.Basins:
    land, b = view.land, landscape.basins_at(view.land, threshold)
    basins, starts = b.groups, b.starts
    st.subheader(f"{len(basins)} basins at {view.energy_label} ≤ {threshold:.2f}")
    if not basins:
        st.info("No minimum lies this low: raise the threshold.")
        return b
    order = np.argsort(-starts, kind="stable")
    st.markdown(
        f"A basin is what the level cuts off below it, as if the landscape were flooded to it: minima joined by "
        f"barriers under the level. **{starts.sum()}** of the {b.total} starts descend into one; "
        f"{b.dry} minima lie above the level, in no basin. **{int(b.hits.sum())}** starts lie in a basin and carry "
        f"its commonest digit: the cut's purity is **{b.cut_purity:.2f}**. The table's purity is per basin: the "
        f"share of its own starts with its commonest digit.")
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
    return b


def pair_section(view: landscape.MapView) -> str | None:
    """The two selected minima and the paths between them; a line for "What to notice" (None without a pair)."""
    land = view.land
    st.subheader("Between two minima")
    a, b = pair_inputs(view)
    refine = st.toggle("Refine: relax an elastic band between A and B (a few seconds)", key=state.key("band"),
                       help="A climbing-image nudged elastic band, started from the straight segment; it bends round "
                            "hills")
    if a == b:
        st.info("Pick two different minima (click two leaves, or type their numbers).")
        return None
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
        return None
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
    lin = levels["linear barrier"]
    if not np.isfinite(joined):
        return (f"Minima A = {a} and B = {b} never join in the graph; the straight line between them climbs to "
                f"{lin:.2f}.")
    if joined < lin - 1e-9:
        return (f"Between minima A = {a} and B = {b} the straight line climbs to {lin:.2f}, but the graph joins "
                f"them at {joined:.2f}: the route through {via} other minima finds a pass {lin - joined:.2f} lower.")
    return (f"Between minima A = {a} and B = {b} the straight line climbs to {lin:.2f}, the level where the graph "
            "joins them: no route through other minima is lower.")


def layout_view(view: landscape.MapView) -> list[str]:
    land = view.land
    if land.layout is None or land.start_images is None:
        st.info("This map was stored without a 2-D layout. “Map now” can store a PCA layout; maps made with "
                "`python -m training landscape-map` carry a UMAP fitted ahead of time (UMAP's first fit costs about "
                "a minute, so the page never fits one).")
        return [describe(view), f"It has {land.n_minima} minima from {len(land.assignment)} starts.",
                "Pick a map with a layout to see digits and minima side by side."]
    method = str(land.meta.get("layout", "umap")).upper()
    st.markdown(f"A flat picture of the map ({method}): pictures that look alike land close together. Each start "
                "(a dot) and the minimum it descended to (a diamond) are placed by their pictures.")
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
    b = landscape.basins_at(land, threshold)
    same = view.same_digit_share()
    return [
        f"{n} starts reached {land.n_minima} minima"
        + ("." if same is None else f"; {100 * same:.0f}% of the minima show the start's own digit."),
        f"At the threshold {threshold:.2f} the starts fall into {len(b.groups)} basins holding {int(b.starts.sum())} "
        f"of them (purity {b.cut_purity:.2f}); colour by basin to see which clusters of the picture share a valley.",
        f"Colour by energy: the minima's {view.energy_label} runs from {land.energy.min():.2f} to "
        f"{land.energy.max():.2f}.",
    ]


def digit_view(view: landscape.MapView) -> list[str]:
    land, refused = view.land, landscape.digits_refused(view)
    if refused:
        st.info(refused[0])
        return refused
    images, labels, source = load_data("mnist", "test")
    how = st.radio("Digit", ["a test digit", "upload a picture"], horizontal=True, key=state.key("how"))
    x, index = None, None
    starts = landscape.map_starts(view, len(images))
    if how == "a test digit":
        index = int(st.number_input(f"Test digit (0–{len(images) - 1}, {source})", 0, len(images) - 1, 0,
                                    key=state.key("idx")))
        x = images[index][None]
        if starts:
            st.caption(f"Test digits {', '.join(map(str, starts[:5]))}, … were among this map's starts: pick one to "
                       "see a digit come back to the map's own minima.")
    else:
        up = image_upload("A digit picture (PNG, JPEG, …)", state.key("upload"))
        if up is None:
            st.info("Upload a picture of one digit: it is greyed, resized to 28×28 and inverted if it is dark on "
                    "light, like the Langevin page's uploads.")
            return [f"The map has {land.n_minima} minima from {len(land.assignment)} starts.",
                    "Upload a digit to descend it on this map.", "Or pick a test digit."]
        x = up.image
    pred = evaluate_frames(to_u8(x))
    if pred is not None and pred.confidence[0] <= CONFIDENT:
        st.warning(f"The evaluator is not sure this is a digit (best guess {pred.label[0]}, "
                   f"{100 * pred.confidence[0]:.0f}%). It still descends; the map only knows digits.")
    try:
        d = landscape.descend_digit(view.name, view.mtime, x.astype(np.float32), index)
    except (checkpoints.CheckpointError, ValueError) as exc:
        st.error(f"Cannot descend on this map's energy — {exc}.")
        return [f"The map has {land.n_minima} minima.", "This map's energy cannot be loaded here.",
                "Pick another map."]
    left, right = st.columns([1, 2])
    with left:
        st.plotly_chart(descent_animation(d.frames), key=state.key("descent"))
        st.caption("Press ▶ to watch it descend" + (" (the code's picture g(z))" if view.latent else ""))
    with right:
        st.plotly_chart(line_figure(d.steps, {view.energy_label: d.energy}, "descent step",
                                    view.energy_label), key=state.key("descent_e"))
    threshold = threshold_slider(view)
    story = digit_story(view, d, threshold)
    p = d.placement
    k = p.nearest if p.kind == "minimum" else p.via
    text, pictures = st.columns([3, 2])
    text.markdown("\n\n".join(story))
    if land.images is not None:
        shown = np.concatenate([d.frames[-1:], to_u8(land.images[[k]])])
        pictures.image(labelled_grid(shown, ["where it stopped", f"minimum {k}"], ncol=2, scale=4,
                                     font_px=grid_font_px()),
                       caption=f"Its end point and {minimum_caption(view, k)}")
    return landscape.digit_notice(view, d, threshold)


def map_now_view() -> list[str]:
    st.markdown("Make a map with your own settings. It starts from held-out digits (a model of your own: from its "
                "own images or noise), runs on the sidebar's device, and is stored in the map cache (keyed by the "
                "model's files and the settings), so the same settings open at once next time.")
    name, model = model_picker("Energy model", state.key("new_ckpt"), is_energy, default="ebgan-mnist",
                               report_broken=False)
    own = landscape.is_own(model)
    start_from = landscape.own_start_choice(name, model) if own else "digits"
    latent_ok = hasattr(model, "generator")
    c = st.columns(3)
    space = c[0].radio("Space", ["latent", "image"] if latent_ok else ["image"], key=state.key("new_space"),
                       help="latent: U(z) = E(g(z))/T + ‖z‖²/2 through the model's generator (the N(0, I) "
                            "prior, as ADELM, also for a generator with a learned prior)")
    temperature = c[1].number_input("Temperature T", 1e-4, 100.0, 0.01 if name.startswith("ebgan") else 0.3,
                                    format="%g", key=state.key(f"new_t_{name}"), disabled=space != "latent")
    n = c[2].number_input("Starts" if own else "Starts (held-out digits)", 2, landscape.MAX_STARTS, 100, 10,
                          key=state.key("new_n"))
    c = st.columns(3)
    n_steps = c[0].number_input("Descent steps (at most)", 10, 5000, 1000, 100, key=state.key("new_steps"))
    k = c[0].number_input("Nearest minima per minimum (k)", 1, 128, LandscapeConfig.k_nearest, key=state.key("new_k"),
                          help="Linear barriers are measured to each minimum's k nearest (plus a spanning tree); "
                               "more is slower and closer to measuring every pair")
    refine = c[1].toggle("Refine the tree's barriers (elastic bands)", False, key=state.key("new_refine"),
                         help="Several times slower; the graph then uses the refined barriers")
    layout = c[2].toggle("2-D layout (PCA; UMAP only from the tool)", True, key=state.key("new_layout"))
    lines = landscape.map_now_lines(n, n_steps, k, refine)
    if not st.button("Map now", type="primary", key=state.key("go")):
        return lines
    spec = landscape.now_spec(name, model, space, temperature, n, seed, layout, start_from)
    config = landscape.now_config(model, space, n_steps, refine, k)
    bar, box = st.progress(0.0, "Descending from the starts…"), st.empty()
    try:
        made = landscape.make_map(spec, config, device, landscape.growing(bar, box))
    except (ValueError, RuntimeError) as exc:  # bad settings, an unreadable file, your model raising
        st.error(f"Cannot make this map — {exc}")
        return lines
    bar.progress(1.0, "done")
    st.session_state[state.key("map_chosen")] = f"{Path(made).stem} (made here)"
    st.success(f"Stored as {made}. It is the map the other views now show.")
    return lines


def compare_view() -> list[str]:
    c = st.columns(2)
    lines = []
    for col, (key, default) in zip(c, ((state.key("cmp1"), 0), (state.key("cmp2"), 1)), strict=True):
        with col:
            v = pick_map(maps, "Map", key, default)
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
                           "basins at the cut": len(b.groups), "purity of the cut": f"{b.cut_purity:.2f}",
                           "map time": f"{land.cost.seconds:.0f} s"}], hide_index=True)
            lines.append(f"{Path(v.name).stem}: {land.n_minima} minima from {len(land.assignment)} starts; cut at "
                         f"{thr:.2f} (the purest cut with {v.cut.wanted[0]}–{v.cut.wanted[1]} basins) it has "
                         f"{len(b.groups)} basins and purity {b.cut_purity:.2f}.")
    if len(lines) == 2:
        lines.append("Each map is cut by the same rule, so the purities compare how well the two energies' valleys "
                     "sort the digits.")
    return (lines + ["Pick two maps to compare."] * 3)[:3]


VIEWS = {"Disconnectivity graph": graph_view, "UMAP": layout_view, "Your digit": digit_view}
view_name = st.segmented_control("View", VIEW_NAMES, default="Disconnectivity graph",
                                 key=state.key("view")) or "Disconnectivity graph"
notice = ["Pick a map: there is none to read yet."] * 3
if view_name == "Map now":
    notice = map_now_view()
elif view_name == "Compare two maps":
    notice = compare_view()
else:
    chosen = pick_map(maps, "Map", state.key("map"))
    if chosen is not None:
        notice = VIEWS[view_name](chosen)
share(fields)
what_to_notice("views/landscape.py", notice)
