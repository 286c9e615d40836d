"""Figures of landscape maps: the disconnectivity graph, what a cut gives at every level, energy profiles along
paths, the 2-D layout of digits and minima. Arrays in, a plotly Figure out (``ebmviz.landscape`` computes, this
module draws)."""

from __future__ import annotations

import numpy as np
import plotly.express as px
import plotly.graph_objects as go

from ebmviz.figures.style import DIGIT_COLOURS, SELECTED, SERIES, tight
from ebmviz.landscape.graph import TreeDrawing

NO_DIGIT = "#bdbdbd"  # leaves the evaluator is not sure of (drawn as open circles: digit 7 is grey too)


def _leaf_size(n_starts: np.ndarray) -> np.ndarray:
    """Marker size by basin population: area grows with the starts that reached the minimum."""
    return 5 + 4 * np.sqrt(np.maximum(n_starts, 0))


def disconnectivity_figure(drawing: TreeDrawing, energy: np.ndarray, digit: np.ndarray | None,
                           confidence: np.ndarray | None, n_starts: np.ndarray, threshold: float | None = None,
                           selected: tuple[int, ...] = (), energy_label: str = "E",
                           confident: float = 0.9, height: int = 520, revision: str = "dg",
                           y_range: tuple[float, float] | None = None) -> go.Figure:
    """The disconnectivity graph: energy up, a leaf per minimum, a bar where two groups join.

    Args:
        drawing: ``graph.draw_tree`` of the map's tree.
        energy: (M,) the minima's energies; digit, confidence: (M,) the evaluator's verdict on each minimum's
            image, or None. Leaves are coloured by digit (grey below ``confident``), sized by ``n_starts`` (M,).
        threshold: draws the cut whose groups are the basins, or None.
        selected: minima to ring (the page's A and B).
        revision: plotly's ``uirevision``: zoom and pan are kept while it stays the same (pass the map's name).
        y_range: the energies shown at first (a double click shows them all), or None for all.

    Each leaf carries its minimum's index as ``customdata``, so a click can select it.
    """
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=drawing.line_x, y=drawing.line_y, mode="lines", line=dict(color="#555", width=1),
                             hoverinfo="skip", showlegend=False))
    m = len(energy)
    sure = np.ones(m, bool) if confidence is None else confidence >= confident
    groups = [(d, (digit == d) & sure) for d in range(10)] if digit is not None else [(None, np.ones(m, bool))]
    if digit is not None:
        groups.append((-1, ~sure))
    for d, mask in groups:
        idx = np.flatnonzero(mask)
        if not len(idx):
            continue
        colour = "#1f77b4" if d is None else (NO_DIGIT if d == -1 else DIGIT_COLOURS[d])
        name = "minima" if d is None else ("not sure" if d == -1 else f"digit {d}")
        text = [f"minimum {i}<br>{energy_label} = {energy[i]:.3f}<br>starts: {n_starts[i]}"
                + ("" if digit is None else f"<br>evaluator: {digit[i]} ({100 * confidence[i]:.0f}%)")
                for i in idx]
        fig.add_trace(go.Scatter(x=drawing.leaf_x[idx], y=energy[idx], mode="markers", name=name,
                                 marker=dict(color=colour, size=_leaf_size(n_starts[idx]),
                                             symbol="circle-open" if d == -1 else "circle",
                                             line=dict(color=colour if d == -1 else "white", width=1.5 if d == -1
                                                       else 0.5)),
                                 customdata=idx, hovertext=text, hoverinfo="text"))
    if selected:
        sel = np.asarray(selected, dtype=np.int64)
        fig.add_trace(go.Scatter(x=drawing.leaf_x[sel], y=energy[sel], mode="markers+text", name="selected",
                                 text=["A", "B"][:len(sel)], textposition="bottom center",
                                 marker=dict(size=18, color="rgba(0,0,0,0)", line=dict(color=SELECTED, width=2.5)),
                                 hoverinfo="skip", customdata=sel))
    if threshold is not None and np.isfinite(threshold):
        fig.add_hline(y=threshold, line=dict(color=SELECTED, dash="dash", width=1),
                      annotation_text=f"threshold {threshold:.3g}", annotation_position="top left")
    return tight(fig, height, yaxis=dict(title=f"energy {energy_label}", range=None if y_range is None else
                                         list(y_range)),
                 xaxis=dict(showticklabels=False, title="minima (lowest first inside every merge)", zeroline=False,
                            showgrid=False),
                 legend=dict(itemsizing="constant"), uirevision=revision, clickmode="event+select", dragmode="zoom")


def cut_scan_figure(levels: np.ndarray, basins: np.ndarray, purity: np.ndarray, wanted: tuple[int, int],
                    chosen: float, current: float | None = None, energy_label: str = "E",
                    height: int = 300, x_range: tuple[float, float] | None = None) -> go.Figure:
    """What a cut gives at every level (L,): its purity (left axis) and its number of basins (right axis), the
    stretch with ``wanted`` (low, high) basins drawn thick, the ``chosen`` level and the ``current`` threshold
    marked; ``x_range``: the levels shown at first (None: all)."""
    fig = go.Figure()
    inside = (basins >= wanted[0]) & (basins <= wanted[1])
    fig.add_trace(go.Scatter(x=levels, y=np.where(inside, purity, np.nan), mode="lines", name="purity, "
                             f"{wanted[0]}–{wanted[1]} basins", line=dict(color=SERIES[0], width=3)))
    fig.add_trace(go.Scatter(x=levels, y=purity, mode="lines", name="purity", line=dict(color=SERIES[0], width=1)))
    fig.add_trace(go.Scatter(x=levels, y=basins, mode="lines", name="basins", yaxis="y2", line_shape="hv",
                             line=dict(color=SERIES[1], width=1)))
    fig.add_vline(x=chosen, line=dict(color=SELECTED, width=2), annotation_text=f"opening cut {chosen:.3g}",
                  annotation_position="top left")
    if current is not None and np.isfinite(current) and not np.isclose(current, chosen):
        fig.add_vline(x=current, line=dict(color=SELECTED, dash="dash", width=1),
                      annotation_text=f"threshold {current:.3g}", annotation_position="bottom right")
    top = int(basins.max()) if len(basins) else 1
    return tight(fig, height, top=30,
                 xaxis=dict(title=f"cut level {energy_label}", range=None if x_range is None else list(x_range)),
                 yaxis=dict(title="purity of the cut", range=[0, 1.02]),
                 yaxis2=dict(title="basins", overlaying="y", side="right", range=[0, 1.05 * top],
                             dtick=max(1, int(np.ceil(top / 6))), showgrid=False),
                 legend=dict(orientation="h", y=1.12, x=0))


def profile_figure(profiles: dict[str, tuple[np.ndarray, np.ndarray]], levels: dict[str, float],
                   energy_label: str = "E") -> go.Figure:
    """Energy along paths, name -> (distance (L,), energy (L,)), with horizontal lines at ``levels``."""
    fig = go.Figure()
    dashes = ["solid", "dot", "dashdot"]
    for k, (name, (dist, e)) in enumerate(profiles.items()):
        fig.add_trace(go.Scatter(x=dist, y=e, mode="lines", name=name, line=dict(dash=dashes[k % len(dashes)])))
    for k, (name, level) in enumerate(levels.items()):
        if np.isfinite(level):
            fig.add_hline(y=level, line=dict(color=DIGIT_COLOURS[(k + 3) % 10], dash="dash", width=1),
                          annotation_text=f"{name} {level:.3g}", annotation_position="top right" if k % 2 else
                          "bottom right")
    return tight(fig, 340, xaxis_title="distance along the path", yaxis_title=f"energy {energy_label}",
                 legend=dict(orientation="h", y=1.12))


def layout_figure(start_xy: np.ndarray, minima_xy: np.ndarray, start_colour: np.ndarray, minima_colour: np.ndarray,
                  colour_title: str, start_text: list[str], minima_text: list[str], discrete: bool,
                  selected: tuple[int, ...] = (), method: str = "UMAP", revision: str = "layout") -> go.Figure:
    """The 2-D layout (``method``: UMAP or PCA) of the starts (dots) and their minima (diamonds), coloured alike.

    ``discrete``: colours are small integers (basins or digits) drawn from a cycle of ten colours; otherwise a
    colour scale (energy). Each minimum carries its index as ``customdata``, so a click can select it.
    """
    fig = go.Figure()

    def marker(values, size, symbol, line):
        if discrete:
            return dict(size=size, symbol=symbol, line=line,
                        color=[DIGIT_COLOURS[int(v) % 10] if v >= 0 else NO_DIGIT for v in values])
        # energy: NaN (a start with no minimum) is drawn without a colour
        return dict(size=size, symbol=symbol, line=line, color=values, colorscale="Viridis",
                    colorbar=dict(title=colour_title), showscale=True)

    fig.add_trace(go.Scattergl(x=start_xy[:, 0], y=start_xy[:, 1], mode="markers", name="starts (digits)",
                               marker=marker(start_colour, 5, "circle", dict(width=0)), opacity=0.55,
                               hovertext=start_text, hoverinfo="text"))
    fig.add_trace(go.Scatter(x=minima_xy[:, 0], y=minima_xy[:, 1], mode="markers", name="minima",
                             marker=marker(minima_colour, 9, "diamond", dict(color="black", width=0.7)),
                             customdata=np.arange(len(minima_xy)), hovertext=minima_text, hoverinfo="text"))
    if selected:
        sel = np.asarray(selected, dtype=np.int64)
        fig.add_trace(go.Scatter(x=minima_xy[sel, 0], y=minima_xy[sel, 1], mode="markers+text", name="selected",
                                 text=["A", "B"][:len(sel)], textposition="top center",
                                 marker=dict(size=18, color="rgba(0,0,0,0)", line=dict(color=SELECTED, width=2.5)),
                                 hoverinfo="skip", customdata=sel))
    return tight(fig, 520, top=30, title=f"coloured by {colour_title}",
                 xaxis=dict(showticklabels=False, title=f"{method} 1"),
                 yaxis=dict(showticklabels=False, title=f"{method} 2"),
                 legend=dict(itemsizing="constant", orientation="h", y=-0.05), uirevision=revision,
                 clickmode="event+select")


def descent_animation(frames: np.ndarray) -> go.Figure:
    """A descent played as a plotly animation (▶ and a frame slider): frames (F, 1, H, W) or (F, 3, H, W) uint8."""
    shown = frames[:, 0] if frames.shape[1] == 1 else frames.transpose(0, 2, 3, 1)
    fig = px.imshow(shown, animation_frame=0, binary_string=True, labels={"animation_frame": "frame"})
    fig.update_layout(height=360, margin=dict(l=0, r=0, t=10, b=0), coloraxis_showscale=False)
    return fig.update_xaxes(showticklabels=False).update_yaxes(showticklabels=False)
