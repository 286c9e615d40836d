"""The house style of every figure, written once: the palettes, the margins and the median-and-band trace.

Figures are plotly (``go.Figure``) or tiled uint8 pictures; every module of ``ebmviz.figures`` takes numpy
arrays and returns one, and draws nothing itself (no torch, no Streamlit).
"""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go

# One colour per digit 0–9 (plotly's qualitative palette): the same digit has the same colour on every page.
DIGIT_COLOURS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
                 "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"]
SERIES = ["#1f77b4", "#ff7f0e", "#d62728", "#2ca02c", "#9467bd"]  # groups overlaid in one chart, in order
SELECTED = "#d62728"  # the chain, minimum or curve the user picked
STAGE_COLOURS = ["#9467bd", "#ff7f0e", "#1f77b4"]  # the cascade's stages: 7, 14, 28 px


def tight(fig: go.Figure, height: int, top: int = 10, **layout) -> go.Figure:
    """The house layout: ``height`` px, 10 px margins (``top`` above, for titles), and any further layout keys."""
    fig.update_layout(height=height, margin=dict(l=10, r=10, t=top, b=10), **layout)
    return fig


def median_band(fig: go.Figure, steps: np.ndarray, values: np.ndarray, colour: str | None, name: str, *,
                selected: int | None = None, legend: bool = True, band_name: str | None = None, grouped: bool = False,
                **where) -> None:
    """The median over chains as a line over their 10–90% band, and the ``selected`` chain on top.

    Args:
        steps: (T,) x values; values: (T, B), one column per chain (NaN where a chain has stopped).
        colour: the line's and the band's (None: the template's next colour).
        name: the median line's legend name; ``band_name``: the band's (None: the band is not in the legend).
        legend: False keeps every trace of this call out of the legend (a second panel of the same figure).
        grouped: the band, median and selected chain each join a legend group shared by every panel, so one legend
            entry toggles them on all panels (a grouped legend lays its groups out one per row).
        where: ``row`` and ``col`` of a subplot.
    """
    # np.nanpercentile goes row by row in Python (0.09 s for 2,048 steps × 16 chains, most of a live trace's redraw);
    # np.percentile is vectorised, and gives the same where no chain has stopped
    quantile = np.nanpercentile if np.isnan(values).any() else np.percentile
    lo, med, hi = quantile(values, [10, 50, 90], axis=1)
    fig.add_trace(go.Scatter(x=np.r_[steps, steps[::-1]], y=np.r_[hi, lo[::-1]], fill="toself", fillcolor=colour,
                             opacity=0.2, line=dict(width=0), hoverinfo="skip", name=band_name or "",
                             showlegend=legend and band_name is not None, legendgroup="band" if grouped else None),
                  **where)
    fig.add_trace(go.Scatter(x=steps, y=med, line=dict(color=colour, width=2), name=name, showlegend=legend,
                             legendgroup="median" if grouped else None), **where)
    if selected is not None and selected < values.shape[1]:
        fig.add_trace(go.Scatter(x=steps, y=values[:, selected], name=f"chain {selected}",
                                 line=dict(color=SELECTED, width=1.5), showlegend=legend,
                                 legendgroup="sel" if grouped else None), **where)


def big(fig: go.Figure, font_px: int) -> go.Figure:
    """Every text of ``fig`` at ``font_px`` (a projector's print): ticks, axis titles, panel titles, legend. Set on
    the axes themselves, as Streamlit's chart theme overrides the layout's default font."""
    fig.update_xaxes(tickfont_size=font_px, title_font_size=font_px)
    fig.update_yaxes(tickfont_size=font_px, title_font_size=font_px)
    fig.update_annotations(font_size=font_px)  # the panels' titles
    fig.update_layout(legend_font_size=font_px)
    return fig
