"""Plotly figures of anomaly scores: histograms of −E(x) for the inside images (held-out digits, or a user model's
own images) and other sets, and ROC curves."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go

from ebmviz.figures.style import tight

COLOURS = ["#1f77b4", "#d62728", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22",
           "#17becf", "#393b79", "#637939"]


def _finite(s: np.ndarray) -> np.ndarray:
    s = np.asarray(s, dtype=float)
    return s[np.isfinite(s) & (np.abs(s) < 1e300)]


def score_histogram_figure(digits: np.ndarray, sets: dict[str, np.ndarray], marker: float | None = None,
                           marker_label: str = "your image", inside: str = "held-out digits") -> go.Figure:
    """Overlaid histograms of the score −E for the ``inside`` images ``digits`` and each set; ``marker`` as a
    vertical line.

    The x range covers the 1st–99th percentiles of all scores (far outliers would squeeze the rest to a line)."""
    fig = go.Figure()
    allv = np.concatenate([_finite(digits), *[_finite(v) for v in sets.values()]])
    lo, hi = np.percentile(allv, [1, 99]) if len(allv) else (0.0, 1.0)
    for i, (name, s) in enumerate({inside: digits, **sets}.items()):
        s = _finite(s)
        fig.add_trace(go.Histogram(x=np.clip(s, lo, hi), name=name, opacity=0.55, nbinsx=60,
                                   marker_color=COLOURS[i % len(COLOURS)]))
    if marker is not None and np.isfinite(marker):
        fig.add_vline(x=float(np.clip(marker, lo, hi)), line_width=2, line_color="black",
                      annotation_text=marker_label)
    return tight(fig, 320, top=30, barmode="overlay",
                 xaxis_title="score −E(x) (higher: more typical; the tails clipped to the 1st–99th percentiles)",
                 yaxis_title="images", legend=dict(orientation="h", yanchor="bottom", y=1.02, x=0))


def roc_figure(rocs: dict[str, tuple[np.ndarray, np.ndarray]], aurocs: dict[str, float],
               inside: str = "digits") -> go.Figure:
    """ROC curves of −E telling the ``inside`` images (held-out digits, or a user model's own) from each set
    (positive: the inside images)."""
    fig = go.Figure([go.Scatter(x=[0, 1], y=[0, 1], mode="lines", line=dict(dash="dot", color="#aaa"),
                                name="chance", hoverinfo="skip")])
    for i, (name, (fpr, tpr)) in enumerate(rocs.items()):
        fig.add_trace(go.Scatter(x=fpr, y=tpr, mode="lines", name=f"{name} ({aurocs[name]:.3f})",
                                 line=dict(color=COLOURS[(i + 1) % len(COLOURS)])))
    return tight(fig, 360, top=30, xaxis_title="share of the set above the cut",
                 yaxis_title=f"share of {inside} above the cut", legend=dict(font=dict(size=10)))
