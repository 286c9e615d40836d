"""Sampling chains: per-step traces (energy, gradient and update norms, acceptance), their paths over a 2-D map of
the data, and the median energy of several runs."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from ebmviz.figures.style import DIGIT_COLOURS, SELECTED, median_band, tight


def traces_figure(energy: np.ndarray, grad_norm: np.ndarray, step_norm: np.ndarray,
                  accept: np.ndarray | None = None, selected: int | None = None,
                  n_steps: int | None = None, symbols: tuple[str, str] = ("E", "x"),
                  compact: bool = False) -> go.Figure:
    """Per-step diagnostics on linked x-axes.

    Args:
        energy: (T+1, B) E(x_t); grad_norm, step_norm: (T, B); accept: (T, B) or None.
        selected: chain to draw on top of the median / band.
        n_steps: fix the x-range to [0, n_steps] (so a growing run does not rescale).
        symbols: the energy's and the state's names in the titles (("U", "z") for a latent chain).
        compact: the main trace alone (the energy, and the acceptance when there is one) in large print, for
            presentation mode.
    """
    has_accept = accept is not None
    e, x = symbols
    kept = [0, 3] if compact else [0, 1, 2, 3]
    kept = [k for k in kept if k < 3 or has_accept]
    titles = [f"energy {e}({x})", f"gradient norm ‖∇{e}‖", f"update norm ‖Δ{x}‖", "acceptance rate"]
    rows = len(kept)
    fig = make_subplots(rows=rows, cols=1, shared_xaxes=True, vertical_spacing=0.08 if compact else 0.04,
                        subplot_titles=[titles[k] for k in kept])
    colours = ["#1f77b4", "#2ca02c", "#9467bd"]
    t = energy.shape[0] - 1
    panels = [(np.arange(t + 1), energy, e)]
    if t > 0:
        panels += [(np.arange(t), grad_norm, f"‖∇{e}‖"), (np.arange(1, t + 1), step_norm, f"‖Δ{x}‖")]
    for k, (steps, values, axis) in enumerate(panels):
        if k not in kept:
            continue
        row = kept.index(k) + 1
        median_band(fig, steps, values, colours[k], "median chain", selected=selected, legend=row == 1,
                    band_name="10–90% of chains", grouped=True, row=row, col=1)
        fig.update_yaxes(title_text=axis, row=row, col=1)
    if has_accept and t > 0:
        row = kept.index(3) + 1
        window = max(1, min(20, t // 10 or 1))
        rate = np.convolve(accept.mean(1), np.ones(window) / window, mode="same")
        fig.add_trace(go.Scatter(x=np.arange(t), y=rate, line=dict(color="#ff7f0e"),
                                 name=f"acceptance (mean of chains, window {window})"), row=row, col=1)
        fig.update_yaxes(range=[0, 1.05], title_text="rate", row=row, col=1)
    fig.update_xaxes(title_text="Langevin step t", row=rows, col=1)
    if n_steps:
        fig.update_xaxes(range=[0, n_steps])
    if compact:
        fig.update_layout(font=dict(size=16))
        fig.update_annotations(font_size=18)
        return tight(fig, 440, top=70, legend=dict(orientation="h", yanchor="bottom", y=1.06, x=0),
                     hovermode="x unified", uirevision="traces")
    return tight(fig, 170 * rows + 80, top=60, legend=dict(orientation="h", yanchor="bottom", y=1.04, x=0),
                 hovermode="x unified", uirevision="traces")


def projection_figure(data_xy: np.ndarray, data_labels: np.ndarray | None, paths: np.ndarray,
                      chain_labels: list[str] | None = None, selected: int | None = None,
                      explained: np.ndarray | None = None) -> go.Figure:
    """Data cloud coloured by digit (or by class, or grey without labels), with chain paths drawn over it.

    Args:
        data_xy: (N, 2) projected data; data_labels: (N,) digits or other integer classes, or None.
        paths: (F, B, 2) projected chain states over recorded frames.
        chain_labels: B hover texts for the chains' current state (e.g. "7 (0.98)").

    Each chain's end marker carries its index as ``customdata``, so a click can select it.
    """
    fig = go.Figure()
    if data_labels is None:
        fig.add_trace(go.Scattergl(x=data_xy[:, 0], y=data_xy[:, 1], mode="markers", name="images",
                                   marker=dict(size=4, color="grey", opacity=0.35), hoverinfo="name"))
    classes = [] if data_labels is None else np.unique(data_labels)
    word = "digit" if all(0 <= d <= 9 for d in classes) else "class"
    for d in classes:
        m = data_labels == d
        fig.add_trace(go.Scattergl(x=data_xy[m, 0], y=data_xy[m, 1], mode="markers",
                                   marker=dict(size=4, color=DIGIT_COLOURS[int(d) % len(DIGIT_COLOURS)],
                                               opacity=0.35),
                                   name=f"{word} {d}", hoverinfo="name"))
    for b in range(paths.shape[1]):
        sel = b == selected
        label = chain_labels[b] if chain_labels else ""
        fig.add_trace(go.Scatter(x=paths[:, b, 0], y=paths[:, b, 1], mode="lines",
                                 line=dict(color=SELECTED if sel else "black", width=3 if sel else 1),
                                 opacity=1 if sel else 0.6, showlegend=False, hoverinfo="skip"))
        fig.add_trace(go.Scatter(x=paths[-1:, b, 0], y=paths[-1:, b, 1], mode="markers+text",
                                 marker=dict(size=9 if sel else 7, color=SELECTED if sel else "black",
                                             symbol="x"), text=[str(b)], textposition="top center",
                                 hovertext=[f"chain {b}: {label}"], hoverinfo="text",
                                 customdata=[b], showlegend=False))
    ax = ["PC1", "PC2"]
    if explained is not None:
        ax = [f"PC{i + 1} ({100 * explained[i]:.0f}% of variance)" for i in range(2)]
    return tight(fig, 480, xaxis_title=ax[0], yaxis_title=ax[1], uirevision="projection",
                 legend=dict(itemsizing="constant"))


def compare_energy_figure(runs: dict[str, np.ndarray]) -> go.Figure:
    """Median energy per step of several runs, name -> (T+1, B) energy, on a log step axis."""
    fig = go.Figure()
    for name, e in runs.items():
        fig.add_trace(go.Scatter(x=np.arange(1, len(e) + 1), y=np.median(e, axis=1), name=name))
    return tight(fig, 300, top=30, xaxis_type="log", xaxis_title="Langevin step t + 1 (log scale)",
                 yaxis_title="median energy", title="energy along the chain")
