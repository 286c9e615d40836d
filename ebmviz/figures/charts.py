"""Plain charts any page uses: overlaid histograms, lines on one axis, training curves, digit counts."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go

from ebmviz.figures.style import SERIES, tight


def histogram_figure(groups: dict[str, np.ndarray], xtitle: str, ytitle: str = "count", log: bool = False,
                     margin: float | None = None) -> go.Figure:
    """Overlaid histograms of several groups of values, group -> (n,), each named with its median (non-finite
    values left out).

    Linear (``log=False``): the axis is clipped to the 1st–99th percentiles of all values. ``log=True``: log₁₀ of
    positive values (energies such as EBGAN's D(x)), with the margin m as a dashed line when given.
    """
    groups = {k: np.asarray(v, dtype=float) for k, v in groups.items()}
    groups = {k: v[np.isfinite(v)] for k, v in groups.items()}
    if log:
        shown = {k: np.log10(np.maximum(v, 1e-8)) for k, v in groups.items()}
    else:
        values = np.concatenate(list(groups.values())) if groups else np.zeros(0)
        lo, hi = np.percentile(values, [1, 99]) if len(values) else (0.0, 1.0)
        shown = {k: np.clip(v, lo, hi) for k, v in groups.items()}
    fig = go.Figure([go.Histogram(x=shown[k], name=f"{k} (median {np.median(v):.3g})", opacity=0.55, nbinsx=60,
                                  marker_color=SERIES[i % len(SERIES)]) for i, (k, v) in enumerate(groups.items())])
    if margin is not None:
        fig.add_vline(x=np.log10(margin) if log else margin, line_dash="dash", annotation_text=f"margin m = {margin:g}")
    return tight(fig, 320, top=30, barmode="overlay", xaxis_title=f"log₁₀ {xtitle}" if log else xtitle,
                 yaxis_title=ytitle, legend=dict(orientation="h", yanchor="bottom", y=1.02, x=0))


def history_figure(history: list[dict], keys: list[str]) -> go.Figure:
    """Training curves from a checkpoint's history rows (x = 'iteration', 'round' or 'epoch', the first present)."""
    xkey = next((k for k in ("iteration", "round") if history and k in history[0]), "epoch")
    fig = go.Figure()
    for k in keys:
        fig.add_trace(go.Scatter(x=[r.get(xkey) for r in history], y=[r.get(k) for r in history],
                                 name=k))
    return tight(fig, 300, xaxis_title=xkey, showlegend=True)  # the legend also with one curve, so it is named


def line_figure(x: np.ndarray, ys: dict[str, np.ndarray], xtitle: str, ytitle: str) -> go.Figure:
    """Plain lines sharing one x axis, name -> y."""
    fig = go.Figure([go.Scatter(x=x, y=y, name=k, mode="lines+markers") for k, y in ys.items()])
    return tight(fig, 280, xaxis_title=xtitle, yaxis_title=ytitle)


def class_counts_figure(counts: dict[str, np.ndarray], height: int = 280,
                        xtitle: str = "digit (the evaluator's verdict)") -> go.Figure:
    """Grouped bars of how often the evaluator gives each digit, name -> (10,) counts."""
    fig = go.Figure([go.Bar(x=list(range(10)), y=np.asarray(c).tolist(), name=k) for k, c in counts.items()])
    return tight(fig, height, barmode="group", xaxis=dict(title=xtitle, dtick=1), yaxis_title="samples")
