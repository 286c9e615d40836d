"""A sampler's phase map: one square per (step size s, noise σ) cell on log axes, coloured by what its chains did,
with the lines of constant effective temperature T = σ²/(2s) and the model's own setting marked."""

from __future__ import annotations

import math

import numpy as np
import plotly.graph_objects as go

from ebmviz.figures.style import SELECTED, tight

FAILURES = {"diverged": "#d62728", "saturated": "#ff7f0e", "stalled": "#8c8c8c"}  # fixed colours of failing cells
MIXING = "#2ca02c"  # the outline of a mixing cell
PLOT_PX = 520  # the plotting area's side, about: squares are sized to tile it


def _t_levels(s: np.ndarray, sigma: np.ndarray) -> list[float]:
    """Powers of ten between the grid's lowest and highest T = σ²/(2s), at most seven (every other decade beyond)."""
    t = sigma[None, :] ** 2 / (2 * s[:, None])
    lo, hi = math.floor(math.log10(t.min())), math.ceil(math.log10(t.max()))
    step = 1 if hi - lo <= 6 else 2
    return [10.0**k for k in range(lo, hi + 1, step)]


def _t_line(fig: go.Figure, T: float, s_range: tuple[float, float], sigma_range: tuple[float, float]) -> None:
    """σ = sqrt(2sT) across the map (a straight line of slope ½ on log axes), labelled where it leaves the map."""
    s = np.geomspace(*s_range, 50)
    sigma = np.sqrt(2 * s * T)
    inside = (sigma >= sigma_range[0]) & (sigma <= sigma_range[1])
    if not inside.any():
        return
    fig.add_trace(go.Scatter(x=s[inside], y=sigma[inside], mode="lines", hoverinfo="skip", showlegend=False,
                             line=dict(color="rgba(0,0,0,0.45)", width=1, dash="dot")))
    k = np.flatnonzero(inside)[-1]
    fig.add_annotation(x=math.log10(s[k]), y=math.log10(sigma[k]), text=f"T={T:.0e}", showarrow=False,
                       font=dict(size=10, color="rgba(0,0,0,0.7)"), xanchor="right", yanchor="bottom")


def phase_map_figure(step_sizes: tuple[float, ...], noises: tuple[float, ...], cells: list[dict],
                     value_name: str, value_range: tuple[float, float] | None = None,
                     shipped: tuple[float, float] | None = None, selected: tuple[int, int] | None = None) -> go.Figure:
    """The map so far.

    Args:
        step_sizes: (S,) s of the columns; noises: (N,) σ of the rows (both increasing, > 0).
        cells: the finished cells, each a dict with ``i``, ``j``, ``verdict`` (diverged / saturated / stalled /
            mixing / travelling), ``value`` (the colour of a healthy cell; NaN: none) and ``hover`` (text). Cells
            not yet run are drawn as empty outlines.
        value_name: what ``value`` is, for the colour bar.
        value_range: the colour scale's (low, high); None: the values' own range.
        shipped: the model's own (s, σ), marked with a star.
        selected: (i, j) of the cell outlined as selected.

    Each square carries ``customdata`` [i, j], so a click selects its cell.
    """
    s, sigma = np.asarray(step_sizes, float), np.asarray(noises, float)
    side = max(14, int(0.85 * PLOT_PX / max(len(s), len(sigma))))
    ls, lsig = np.log10(s), np.log10(sigma)
    pad_s = (ls[1] - ls[0]) / 2 if len(s) > 1 else 0.5
    pad_sig = (lsig[1] - lsig[0]) / 2 if len(sigma) > 1 else 0.5
    s_range = (10 ** (ls[0] - pad_s), 10 ** (ls[-1] + pad_s))
    sigma_range = (10 ** (lsig[0] - pad_sig), 10 ** (lsig[-1] + pad_sig))
    fig = go.Figure()
    done = {(c["i"], c["j"]) for c in cells}
    todo = [(i, j) for j in range(len(sigma)) for i in range(len(s)) if (i, j) not in done]
    if todo:
        fig.add_trace(go.Scatter(x=[s[i] for i, _ in todo], y=[sigma[j] for _, j in todo], mode="markers",
                                 name="not run yet", hoverinfo="skip",
                                 marker=dict(symbol="square-open", size=side, color="#c8c8c8")))
    healthy = [c for c in cells if c["verdict"] not in FAILURES]
    if healthy:
        values = np.array([c["value"] for c in healthy], float)
        finite = values[np.isfinite(values)]
        lo, hi = value_range or ((float(finite.min()), float(finite.max())) if len(finite) else (0.0, 1.0))
        fig.add_trace(go.Scatter(
            x=[s[c["i"]] for c in healthy], y=[sigma[c["j"]] for c in healthy], mode="markers",
            name=f"moving: colour = {value_name}", customdata=[[c["i"], c["j"]] for c in healthy],
            hovertext=[c["hover"] for c in healthy], hoverinfo="text",
            marker=dict(symbol="square", size=side, color=np.where(np.isfinite(values), values, lo),
                        colorscale="Viridis", cmin=lo, cmax=hi if hi > lo else lo + 1e-9,
                        colorbar=dict(title=dict(text=value_name, side="right"), thickness=14, len=0.75),
                        line=dict(color=[MIXING if c["verdict"] == "mixing" else "white" for c in healthy],
                                  width=[4 if c["verdict"] == "mixing" else 1 for c in healthy]))))
    for verdict, colour in FAILURES.items():
        group = [c for c in cells if c["verdict"] == verdict]
        if group:
            fig.add_trace(go.Scatter(
                x=[s[c["i"]] for c in group], y=[sigma[c["j"]] for c in group], mode="markers", name=verdict,
                customdata=[[c["i"], c["j"]] for c in group], hovertext=[c["hover"] for c in group],
                hoverinfo="text", marker=dict(symbol="square", size=side, color=colour, line=dict(color="white",
                                                                                                  width=1))))
    if any(c["verdict"] == "mixing" for c in cells):
        fig.add_trace(go.Scatter(x=[None], y=[None], mode="markers", name="mixing (green outline)",
                                 marker=dict(symbol="square-open", size=12, color=MIXING, line=dict(width=3))))
    for T in _t_levels(s, sigma):
        _t_line(fig, T, s_range, sigma_range)
    if selected is not None:
        i, j = selected
        fig.add_trace(go.Scatter(x=[s[i]], y=[sigma[j]], mode="markers", name="selected", hoverinfo="skip",
                                 marker=dict(symbol="square-open", size=side + 6, color=SELECTED,
                                             line=dict(width=3))))
    if shipped is not None:
        fig.add_trace(go.Scatter(x=[shipped[0]], y=[shipped[1]], mode="markers", hoverinfo="text",
                                 hovertext=[f"the model's own setting: s = {shipped[0]:g}, σ = {shipped[1]:g}"],
                                 name="the model's own setting",
                                 marker=dict(symbol="star", size=18, color="white", line=dict(color="black",
                                                                                             width=2))))
    fig.update_traces(unselected=dict(marker=dict(opacity=1)), selector=dict(mode="markers"))  # no dimming on click
    fig.update_xaxes(type="log", range=[math.log10(v) for v in s_range], title_text="step size s (log scale)",
                     showgrid=False, dtick=1, tickformat="~g")
    fig.update_yaxes(type="log", range=[math.log10(v) for v in sigma_range], title_text="noise σ (log scale)",
                     showgrid=False, dtick=1, tickformat="~g")
    return tight(fig, PLOT_PX + 120, top=40, uirevision="phase-map", clickmode="event+select",
                 legend=dict(orientation="h", yanchor="bottom", y=1.02, x=0))
