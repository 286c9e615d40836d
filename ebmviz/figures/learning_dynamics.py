"""Plotly figures of FRAME's learning dynamics: the energy gap over training on a log axis with the current iteration
and the collapse marked, and the parameter and particle step sizes."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from ebmviz.analysis.learning_dynamics import Curves
from ebmviz.figures.style import big, tight

FLOW_COLOURS = {"kl": "#d62728", "jko": "#1f77b4"}


@dataclass(frozen=True)
class CurveLine:
    """One run's curves as a figure draws them."""

    label: str
    curves: Curves
    colour: str
    onset: int | None = None  # collapse onset, marked when given
    dash: str = "solid"


def _positive(y: np.ndarray) -> np.ndarray:
    """y with values ≤ 0 or non-finite as NaN (gaps on a log axis)."""
    y = np.asarray(y, dtype=float).copy()
    y[~np.isfinite(y) | (y <= 0)] = np.nan
    return y


def gap_figure(lines: list[CurveLine], current: int | None = None, height: int = 320,
               font_px: int | None = None) -> go.Figure:
    """U(particles) − U(data) over iterations, log y; ``current`` as a vertical line, each collapse onset dotted.
    ``font_px`` sets every text of the figure to that size (a projector's), with the log axis labelled at 1, 2 and 5
    of each decade only, so the larger labels do not crowd."""
    fig = go.Figure()
    for line in lines:
        c = line.curves
        fig.add_trace(go.Scatter(x=c.iteration, y=_positive(c.values["gap"]), name=line.label, mode="lines",
                                 line=dict(color=line.colour, dash=line.dash)))
        if line.onset is not None:
            fig.add_vline(x=line.onset, line_dash="dot", line_color=line.colour,
                          annotation_text=f"collapse begins ({line.onset:,})", annotation_position="top left")
    if current is not None:
        fig.add_vline(x=current, line_color="#444", line_width=1)
    tight(fig, height, top=30, xaxis_title="iteration",
          yaxis=dict(type="log", title="U(particles) − U(data)", exponentformat="power"),
          legend=dict(orientation="h", yanchor="bottom", y=1.02, x=0))
    if font_px is not None:
        big(fig, font_px).update_yaxes(dtick="D2")
    return fig


def steps_figure(lines: list[CurveLine], current: int | None = None) -> go.Figure:
    """The parameter-update norm ‖Δθ‖ and the particles' mean step over iterations, log y, side by side (no legend:
    the runs keep the colours of ``gap_figure`` above them)."""
    fig = make_subplots(rows=1, cols=2, subplot_titles=("‖Δθ‖ per parameter step", "particles' mean step ‖Δx‖"))
    for line in lines:
        c = line.curves
        for col, key in ((1, "update_norm"), (2, "particle_step")):
            fig.add_trace(go.Scatter(x=c.iteration, y=_positive(c.values[key]), name=line.label, mode="lines",
                                     line=dict(color=line.colour, dash=line.dash), showlegend=False),
                          row=1, col=col)
    if current is not None:
        for col in (1, 2):
            fig.add_vline(x=current, line_color="#444", line_width=1, row=1, col=col)
    fig.update_yaxes(type="log", exponentformat="power")
    fig.update_xaxes(title_text="iteration")
    return tight(fig, 280, top=30)
