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
                  compact: bool = False, *, frame_steps: np.ndarray | None = None,
                  pixel_low: np.ndarray | None = None, pixel_high: np.ndarray | None = None,
                  saturated: np.ndarray | None = None, data_saturated: float | None = None,
                  mean_distance: np.ndarray | None = None, near_duplicates: np.ndarray | None = None,
                  max_points: int | None = None) -> go.Figure:
    """Per-step diagnostics on linked x-axes, and per recorded frame the pixel range, saturation and diversity.

    Args:
        energy: (T+1, B) E(x_t); grad_norm, step_norm: (T, B); accept: (T, B) or None.
        selected: chain to draw on top of the median / band.
        n_steps: fix the x-range to [0, n_steps] (so a growing run does not rescale).
        symbols: the energy's and the state's names in the titles (("U", "z") for a latent chain).
        compact: the main trace alone (the energy, and the acceptance when there is one) in large print, for
            presentation mode; the per-frame rows are left out.
        frame_steps: (F,) the step of each recorded frame, the x of the per-frame rows below (each drawn only when
            its arrays are given with it).
        pixel_low, pixel_high: (F,) the 1st and 99th percentile of all pixels in [−1, 1]: the "pixel range" row.
        saturated: (F, B) each chain's share of pixels at the box's walls, in [0, 1]: the "saturated pixels" row;
            data_saturated: the model's own images' share, a dashed reference line there.
        mean_distance: (F,) mean distance between chains, near_duplicates: (F,) their near-duplicate count: the
            "diversity" row (the count on a second axis).
        max_points: draw at most about this many steps of each per-step trace (every k-th step, and the last): a
            lighter figure to redraw while a run plays, for the server and for the browser; None draws every step.
    """
    has_accept = accept is not None
    e, x = symbols
    per_frame = not compact and frame_steps is not None
    titles = [f"energy {e}({x})", f"gradient norm ‖∇{e}‖", f"update norm ‖Δ{x}‖", "acceptance rate",
              "pixel range: 1st–99th percentile of all pixels", "saturated pixels: share at the walls |x| ≥ 0.99",
              "diversity: mean distance between chains"]
    kept = [0, 3] if compact else [0, 1, 2, 3]
    kept = [k for k in kept if k < 3 or has_accept]
    if per_frame:
        kept += [k for k, given in ((4, pixel_low is not None and pixel_high is not None), (5, saturated is not None),
                                    (6, mean_distance is not None)) if given]
    rows = len(kept)
    specs = [[{"secondary_y": k == 6 and near_duplicates is not None}] for k in kept]
    gap = min(0.04, 0.16 / rows)  # the same gaps in pixels with 4 rows or 7 (a share of a taller figure is wider)
    fig = make_subplots(rows=rows, cols=1, shared_xaxes=True, vertical_spacing=0.08 if compact else gap,
                        subplot_titles=[titles[k] for k in kept], specs=specs)
    colours = ["#1f77b4", "#2ca02c", "#9467bd"]
    t = energy.shape[0] - 1
    panels = [(np.arange(t + 1), energy, e)]
    if t > 0:
        panels += [(np.arange(t), grad_norm, f"‖∇{e}‖"), (np.arange(1, t + 1), step_norm, f"‖Δ{x}‖")]
    for k, (steps, values, axis) in enumerate(panels):
        if k not in kept:
            continue
        keep = thinned(len(steps), max_points)
        steps, values = steps[keep], values[keep]
        row = kept.index(k) + 1
        median_band(fig, steps, values, colours[k], "median chain", selected=selected, legend=row == 1,
                    band_name="10–90% of chains", grouped=True, row=row, col=1)
        fig.update_yaxes(title_text=axis, row=row, col=1)
    if has_accept and t > 0:
        row = kept.index(3) + 1
        window = max(1, min(20, t // 10 or 1))
        rate = np.convolve(accept.mean(1), np.ones(window) / window, mode="same")
        keep = thinned(t, max_points)
        fig.add_trace(go.Scatter(x=np.arange(t)[keep], y=rate[keep], line=dict(color="#ff7f0e"),
                                 name=f"acceptance (mean of chains, window {window})"), row=row, col=1)
        fig.update_yaxes(range=[0, 1.05], title_text="rate", row=row, col=1)
    if per_frame:
        _frame_rows(fig, kept, np.asarray(frame_steps), pixel_low, pixel_high, saturated, data_saturated,
                    mean_distance, near_duplicates, selected, energy.shape[1])
    fig.update_xaxes(title_text="Langevin step t", row=rows, col=1)
    if n_steps:
        fig.update_xaxes(range=[0, n_steps])
    if compact:
        fig.update_layout(font=dict(size=16))
        fig.update_annotations(font_size=18)
        return tight(fig, 440, top=70, legend=dict(orientation="h", yanchor="bottom", y=1.06, x=0),
                     hovermode="x unified", uirevision="traces")
    return tight(fig, 170 * rows + 80, top=60, legend=dict(orientation="h", yanchor="bottom", y=1 + gap, x=0),
                 hovermode="x unified", uirevision="traces")


def thinned(n: int, max_points: int | None) -> np.ndarray | slice:
    """Indices of at most about ``max_points`` of ``n`` steps, evenly spaced and ending on the last (all of them when
    ``max_points`` is None or at least ``n``)."""
    if max_points is None or n <= max_points:
        return slice(None)
    every = -(-n // max_points)
    return np.unique(np.r_[np.arange(0, n, every), n - 1])


def _frame_rows(fig: go.Figure, kept: list[int], steps: np.ndarray, low: np.ndarray | None, high: np.ndarray | None,
                saturated: np.ndarray | None, data_saturated: float | None, mean_distance: np.ndarray | None,
                near_duplicates: np.ndarray | None, selected: int | None, chains: int) -> None:
    """The per-frame rows of ``traces_figure`` (panels 4–6 of ``kept``), over the frames' ``steps`` (F,), of a run
    of ``chains`` chains (at most chains − 1 near-duplicates)."""
    if 4 in kept:
        row = kept.index(4) + 1
        fig.add_trace(go.Scatter(x=np.r_[steps, steps[::-1]], y=np.r_[high, low[::-1]], fill="toself",
                                 fillcolor="#8c564b", opacity=0.25, line=dict(width=0), hoverinfo="skip",
                                 showlegend=False), row=row, col=1)
        for name, values in (("99th percentile", high), ("1st percentile", low)):
            fig.add_trace(go.Scatter(x=steps, y=values, line=dict(color="#8c564b", width=1.5), name=name,
                                     showlegend=False, hovertemplate="%{y:.2f}"), row=row, col=1)
        fig.update_yaxes(range=[-1.05, 1.05], title_text="pixel", row=row, col=1)
    if 5 in kept:
        row = kept.index(5) + 1
        median_band(fig, steps, saturated, "#d4a017", "median chain", selected=selected, legend=False,
                    band_name="10–90% of chains", grouped=True, row=row, col=1)
        if data_saturated is not None:
            fig.add_trace(go.Scatter(x=steps[[0, -1]], y=[data_saturated] * 2, mode="lines",
                                     line=dict(color="black", width=1.5, dash="dash"), name="its data's share",
                                     hovertemplate="%{y:.0%}"), row=row, col=1)
        fig.update_yaxes(range=[0, 1.02], tickformat=".0%", title_text="share", row=row, col=1)
    if 6 in kept:
        row = kept.index(6) + 1
        fig.add_trace(go.Scatter(x=steps, y=mean_distance, line=dict(color="#17becf", width=2),
                                 name="mean distance", showlegend=False, hovertemplate="%{y:.3f}"), row=row, col=1)
        fig.update_yaxes(title_text="RMS distance", rangemode="tozero", row=row, col=1)
        if near_duplicates is not None:
            fig.add_trace(go.Scatter(x=steps, y=near_duplicates, line=dict(color="#7f7f7f", width=1.5, shape="hv",
                                                                           dash="dot"),
                                     name="near-duplicate chains", showlegend=False, hovertemplate="%{y:d}"),
                          row=row, col=1, secondary_y=True)
            most = max(1, chains - 1)  # whole-number ticks of their own (not at the distance axis' gridlines)
            fig.update_yaxes(title_text="near-duplicates", range=[0, most * 1.05], tickmode="linear", tick0=0,
                             dtick=max(1, -(-most // 4)), showgrid=False, row=row, col=1, secondary_y=True)


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
