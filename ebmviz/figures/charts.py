"""Pure drawing functions: arrays in, a plotly Figure (or a tiled uint8 image) out. No torch."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

DIGIT_COLOURS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
                 "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"]


def tile(images: np.ndarray, ncol: int = 8, pad: int = 2, scale: int = 1,
         highlight: int | None = None) -> np.ndarray:
    """Tile (B, 1, H, W) or (B, H, W) uint8 images into one (rows·(H+pad), ncol·(W+pad)) image.

    ``scale`` repeats pixels (nearest neighbour) so small digits stay crisp in a browser;
    ``highlight`` draws a bright frame around that image.
    """
    imgs = np.asarray(images)
    if imgs.ndim == 4:
        imgs = imgs[:, 0]
    b, h, w = imgs.shape
    ncol = max(1, min(ncol, b))
    nrow = (b + ncol - 1) // ncol
    out = np.full((nrow * (h + pad) + pad, ncol * (w + pad) + pad), 60, dtype=np.uint8)
    for i in range(b):
        r, c = divmod(i, ncol)
        y, x = pad + r * (h + pad), pad + c * (w + pad)
        out[y : y + h, x : x + w] = imgs[i]
        if i == highlight:
            out[y - pad : y, x - pad : x + w + pad] = 255
            out[y + h : y + h + pad, x - pad : x + w + pad] = 255
            out[y - pad : y + h + pad, x - pad : x] = 255
            out[y - pad : y + h + pad, x + w : x + w + pad] = 255
    if scale > 1:
        out = out.repeat(scale, axis=0).repeat(scale, axis=1)
    return out


def labelled_grid(images: np.ndarray, labels: list[str], ncol: int = 8, scale: int = 3,
                  highlight: int | None = None) -> np.ndarray:
    """Tile (B, 1, 28, 28) uint8 images with a text label under each: (H, W) uint8.

    Uses PIL's built-in bitmap font, so it needs no font files.
    """
    from PIL import Image, ImageDraw

    imgs = np.asarray(images)[:, 0] if np.asarray(images).ndim == 4 else np.asarray(images)
    b, h, w = imgs.shape
    ncol = max(1, min(ncol, b))
    nrow = (b + ncol - 1) // ncol
    cw, ch, label_h, pad = w * scale, h * scale, 14, 4
    canvas = Image.new("L", (ncol * (cw + pad) + pad, nrow * (ch + label_h + pad) + pad), 255)
    draw = ImageDraw.Draw(canvas)
    for i in range(b):
        r, c = divmod(i, ncol)
        x, y = pad + c * (cw + pad), pad + r * (ch + label_h + pad)
        cell = Image.fromarray(imgs[i]).resize((cw, ch), Image.Resampling.NEAREST)
        canvas.paste(cell, (x, y))
        if i == highlight:
            draw.rectangle([x - 2, y - 2, x + cw + 1, y + ch + 1], outline=0, width=2)
        draw.text((x + 1, y + ch + 1), labels[i] if i < len(labels) else "", fill=0)
    return np.asarray(canvas)


def verdict_labels(energy: np.ndarray, symbol: str = "E", labels: np.ndarray | None = None,
                   confidence: np.ndarray | None = None) -> list[str]:
    """Captions for ``labelled_grid``: "7 98% D0.0631" (the evaluator's digit and confidence, then the energy
    named ``symbol``), or only the energy when there is no verdict."""
    if labels is None or confidence is None:
        return [f"{symbol} {e:.3g}" for e in energy]
    return [f"{d} {100 * c:.0f}% {symbol}{e:.3g}" for d, c, e in zip(labels, confidence, energy, strict=True)]


def _band(fig, steps, values, row, name, colour, selected, show_legend):
    """Median line, 10–90% band over chains, and the selected chain, on one subplot row."""
    lo, med, hi = np.nanpercentile(values, [10, 50, 90], axis=1)
    fig.add_trace(go.Scatter(x=np.r_[steps, steps[::-1]], y=np.r_[hi, lo[::-1]], fill="toself",
                             fillcolor=colour, opacity=0.2, line=dict(width=0), hoverinfo="skip",
                             name="10–90% of chains", showlegend=show_legend,
                             legendgroup="band"), row=row, col=1)
    fig.add_trace(go.Scatter(x=steps, y=med, line=dict(color=colour, width=2),
                             name="median chain", showlegend=show_legend, legendgroup="median"),
                  row=row, col=1)
    if selected is not None and selected < values.shape[1]:
        fig.add_trace(go.Scatter(x=steps, y=values[:, selected], name=f"chain {selected}",
                                 line=dict(color="#d62728", width=1.5), showlegend=show_legend,
                                 legendgroup="sel"), row=row, col=1)
    fig.update_yaxes(title_text=name, row=row, col=1)


def traces_figure(energy: np.ndarray, grad_norm: np.ndarray, step_norm: np.ndarray,
                  accept: np.ndarray | None = None, selected: int | None = None,
                  n_steps: int | None = None, symbols: tuple[str, str] = ("E", "x")) -> go.Figure:
    """Per-step diagnostics on linked x-axes.

    Args:
        energy: (T+1, B) E(x_t); grad_norm, step_norm: (T, B); accept: (T, B) or None.
        selected: chain to draw on top of the median / band.
        n_steps: fix the x-range to [0, n_steps] (so a growing run does not rescale).
        symbols: the energy's and the state's names in the titles (("U", "z") for a latent chain).
    """
    rows = 4 if accept is not None else 3
    e, x = symbols
    titles = [f"energy {e}({x})", f"gradient norm ‖∇{e}‖", f"update norm ‖Δ{x}‖", "acceptance rate"][:rows]
    fig = make_subplots(rows=rows, cols=1, shared_xaxes=True, vertical_spacing=0.04,
                        subplot_titles=titles)
    colours = ["#1f77b4", "#2ca02c", "#9467bd"]
    t = energy.shape[0] - 1
    _band(fig, np.arange(t + 1), energy, 1, e, colours[0], selected, True)
    if t > 0:
        _band(fig, np.arange(t), grad_norm, 2, f"‖∇{e}‖", colours[1], selected, False)
        _band(fig, np.arange(1, t + 1), step_norm, 3, f"‖Δ{x}‖", colours[2], selected, False)
    if accept is not None and t > 0:
        window = max(1, min(20, t // 10 or 1))
        rate = np.convolve(accept.mean(1), np.ones(window) / window, mode="same")
        fig.add_trace(go.Scatter(x=np.arange(t), y=rate, line=dict(color="#ff7f0e"),
                                 name=f"acceptance (mean of chains, window {window})"), row=4, col=1)
        fig.update_yaxes(range=[0, 1.05], title_text="rate", row=4, col=1)
    fig.update_xaxes(title_text="Langevin step t", row=rows, col=1)
    if n_steps:
        fig.update_xaxes(range=[0, n_steps])
    fig.update_layout(height=170 * rows + 80, margin=dict(l=10, r=10, t=60, b=10),
                      legend=dict(orientation="h", yanchor="bottom", y=1.04, x=0), hovermode="x unified",
                      uirevision="traces")
    return fig


def projection_figure(data_xy: np.ndarray, data_labels: np.ndarray, paths: np.ndarray,
                      chain_labels: list[str] | None = None, selected: int | None = None,
                      explained: np.ndarray | None = None) -> go.Figure:
    """Data cloud coloured by digit, with chain paths drawn over it.

    Args:
        data_xy: (N, 2) projected data; data_labels: (N,) digits.
        paths: (F, B, 2) projected chain states over recorded frames.
        chain_labels: B hover texts for the chains' current state (e.g. "7 (0.98)").

    Each chain's end marker carries its index as ``customdata``, so a click can select it.
    """
    fig = go.Figure()
    for d in range(10):
        m = data_labels == d
        fig.add_trace(go.Scattergl(x=data_xy[m, 0], y=data_xy[m, 1], mode="markers",
                                   marker=dict(size=4, color=DIGIT_COLOURS[d], opacity=0.35),
                                   name=f"digit {d}", hoverinfo="name"))
    for b in range(paths.shape[1]):
        sel = b == selected
        label = chain_labels[b] if chain_labels else ""
        fig.add_trace(go.Scatter(x=paths[:, b, 0], y=paths[:, b, 1], mode="lines",
                                 line=dict(color="#d62728" if sel else "black", width=3 if sel else 1),
                                 opacity=1 if sel else 0.6, showlegend=False, hoverinfo="skip"))
        fig.add_trace(go.Scatter(x=paths[-1:, b, 0], y=paths[-1:, b, 1], mode="markers+text",
                                 marker=dict(size=9 if sel else 7, color="#d62728" if sel else "black",
                                             symbol="x"), text=[str(b)], textposition="top center",
                                 hovertext=[f"chain {b}: {label}"], hoverinfo="text",
                                 customdata=[b], showlegend=False))
    ax = ["PC1", "PC2"]
    if explained is not None:
        ax = [f"PC{i + 1} ({100 * explained[i]:.0f}% of variance)" for i in range(2)]
    fig.update_layout(height=480, margin=dict(l=10, r=10, t=10, b=10),
                      xaxis_title=ax[0], yaxis_title=ax[1], uirevision="projection",
                      legend=dict(itemsizing="constant"))
    return fig


def overlaid_histogram_figure(groups: dict[str, np.ndarray], xtitle: str, ytitle: str = "count") -> go.Figure:
    """Overlaid histograms of several groups of values, group -> (n,), on a linear axis clipped to the 1st–99th
    percentiles of all values; each group is named with its median."""
    values = np.concatenate([np.asarray(v, dtype=float) for v in groups.values()])
    values = values[np.isfinite(values)]
    lo, hi = np.percentile(values, [1, 99]) if len(values) else (0.0, 1.0)
    fig = go.Figure()
    colours = ["#1f77b4", "#ff7f0e", "#d62728", "#2ca02c", "#9467bd"]
    for i, (name, v) in enumerate(groups.items()):
        v = np.asarray(v, dtype=float)
        v = v[np.isfinite(v)]
        fig.add_trace(go.Histogram(x=np.clip(v, lo, hi), name=f"{name} (median {np.median(v):.3g})", opacity=0.55,
                                   nbinsx=60, marker_color=colours[i % len(colours)]))
    fig.update_layout(barmode="overlay", height=320, margin=dict(l=10, r=10, t=30, b=10), xaxis_title=xtitle,
                      yaxis_title=ytitle, legend=dict(orientation="h", yanchor="bottom", y=1.02, x=0))
    return fig


def compare_energy_figure(runs: dict[str, np.ndarray]) -> go.Figure:
    """Median energy per step of several runs, name -> (T+1, B) energy, on a log step axis."""
    fig = go.Figure()
    for name, e in runs.items():
        fig.add_trace(go.Scatter(x=np.arange(1, len(e) + 1), y=np.median(e, axis=1), name=name))
    fig.update_layout(height=300, margin=dict(l=10, r=10, t=30, b=10), xaxis_type="log",
                      xaxis_title="Langevin step t + 1 (log scale)", yaxis_title="median energy",
                      title="energy along the chain")
    return fig


def history_figure(history: list[dict], keys: list[str]) -> go.Figure:
    """Training curves from a checkpoint's history rows (x = 'iteration', 'round' or 'epoch', the first present)."""
    xkey = next((k for k in ("iteration", "round") if history and k in history[0]), "epoch")
    fig = go.Figure()
    for k in keys:
        fig.add_trace(go.Scatter(x=[r.get(xkey) for r in history], y=[r.get(k) for r in history],
                                 name=k))
    fig.update_layout(height=300, margin=dict(l=10, r=10, t=10, b=10), xaxis_title=xkey,
                      showlegend=True)  # also with one curve, so it is named
    return fig


STAGE_COLOURS = ["#9467bd", "#ff7f0e", "#1f77b4"]  # 7, 14, 28 px


def cascade_energy_figure(energies: list[np.ndarray], current: tuple[int, int] | None = None) -> go.Figure:
    """Per-stage energy traces of a cascade: one panel per stage, median and 10–90% band over chains.

    ``energies[s]`` is stage s's (K_s+1, B) energy; ``current`` = (stage, step) draws a marker line.
    """
    sides = [7, 14, 28]
    fig = make_subplots(rows=1, cols=len(energies), shared_yaxes=False,
                        subplot_titles=[f"stage {s}: {sides[s]}×{sides[s]}" for s in range(len(energies))])
    for s, e in enumerate(energies):
        steps = np.arange(len(e))
        lo, med, hi = np.nanpercentile(e, [10, 50, 90], axis=1)
        fig.add_trace(go.Scatter(x=np.r_[steps, steps[::-1]], y=np.r_[hi, lo[::-1]], fill="toself",
                                 line=dict(width=0), fillcolor=STAGE_COLOURS[s], opacity=0.2,
                                 hoverinfo="skip", showlegend=False), row=1, col=s + 1)
        fig.add_trace(go.Scatter(x=steps, y=med, line=dict(color=STAGE_COLOURS[s]), name=f"median, {sides[s]} px",
                                 showlegend=False), row=1, col=s + 1)
        if current is not None and current[0] == s:
            fig.add_vline(x=current[1], line=dict(color="black", dash="dot"), row=1, col=s + 1)
        fig.update_xaxes(title_text="Langevin step", row=1, col=s + 1)
    fig.update_yaxes(title_text="energy E_s", row=1, col=1)
    fig.update_layout(height=260, margin=dict(l=10, r=10, t=30, b=10))
    return fig


def budget_figure(runs: dict, key: str = "confident") -> go.Figure:
    """Evaluator quality against gradient evaluations per chain: name -> a run with ``evals`` and ``key`` lists."""
    fig = go.Figure()
    for name, r in runs.items():
        fig.add_trace(go.Scatter(x=r.evals, y=getattr(r, key), name=name, mode="lines"))
    fig.update_layout(height=300, margin=dict(l=10, r=10, t=10, b=10), yaxis_range=[0, 1],
                      xaxis_title="gradient evaluations per chain",
                      yaxis_title="share with confidence > 0.9" if key == "confident" else "mean confidence")
    return fig


def beta_energy_figure(betas: np.ndarray, energy: np.ndarray, chosen: float) -> go.Figure:
    """E_β(x) of held-out digits as β goes 0 → 1: median and 10–90% band; ``energy`` is (len(β), B)."""
    lo, med, hi = np.percentile(energy, [10, 50, 90], axis=1)
    fig = go.Figure([
        go.Scatter(x=np.r_[betas, betas[::-1]], y=np.r_[hi, lo[::-1]], fill="toself", line=dict(width=0),
                   opacity=0.25, hoverinfo="skip", showlegend=False),
        go.Scatter(x=betas, y=med, name="median over digits", showlegend=False),
    ])
    fig.add_vline(x=chosen, line=dict(color="black", dash="dot"))
    fig.update_layout(height=260, margin=dict(l=10, r=10, t=10, b=10), xaxis_title="β",
                      yaxis_title="energy of held-out digits")
    return fig


def error_figure(steps: np.ndarray, runs: dict[str, np.ndarray]) -> go.Figure:
    """Mean squared error ([0, 1] scale) per recorded step, name -> (F, B) errors (mean over images)."""
    fig = go.Figure([go.Scatter(x=steps, y=e.mean(axis=1), name=name) for name, e in runs.items()])
    fig.update_layout(height=260, margin=dict(l=10, r=10, t=10, b=10), xaxis_title="Langevin step",
                      yaxis_title="MSE to the original")
    return fig


def triangle_figure(values: dict[str, float]) -> go.Figure:
    """The divergence triangle: Q (data + inference), P (generator), Π (energy) and the KL terms.

    ``values``: kl_qp, e_real, e_fake, energy_gap, sleep_nll (latest history row).
    """
    nodes = {"Q": (0.0, 0.0), "P": (1.0, 0.0), "Π": (0.5, 0.85)}
    names = {"Q": "Q = q_data(x) q_φ(z|x)<br>data + inference", "P": "P = p(z) p_θ(x|z)<br>generator",
             "Π": "Π = π_α(x) q_φ(z|x)<br>energy model"}
    fig = go.Figure()
    edges = [("Q", "P", f"KL(Q‖P) ≈ {values.get('kl_qp', float('nan')):.1f}<br>(reconstruction + KL_z)", "#1f77b4"),
             ("P", "Π", f"KL(P‖Π) ∋ E_P[E] = {values.get('e_fake', float('nan')):+.2f}"
                        f"<br>+ sleep NLL {values.get('sleep_nll', float('nan')):.1f}", "#2ca02c"),
             ("Q", "Π", f"− KL(Q‖Π) ∋ −E_Q[E] = {-values.get('e_real', float('nan')):+.2f}", "#d62728")]
    for a, b, label, colour in edges:
        (x0, y0), (x1, y1) = nodes[a], nodes[b]
        fig.add_trace(go.Scatter(x=[x0, x1], y=[y0, y1], mode="lines", line=dict(color=colour, width=4),
                                 hoverinfo="skip", showlegend=False))
        fig.add_annotation(x=(x0 + x1) / 2, y=(y0 + y1) / 2 + (0.08 if a == "Q" and b == "P" else 0),
                           text=label, showarrow=False, bgcolor="white", font=dict(color=colour, size=13))
    fig.add_trace(go.Scatter(x=[p[0] for p in nodes.values()], y=[p[1] for p in nodes.values()],
                             mode="markers+text", marker=dict(size=28, color="#444"),
                             text=[names[k] for k in nodes],
                             textposition=["bottom center", "bottom center", "top center"],
                             hoverinfo="skip", showlegend=False))
    fig.update_layout(height=420, margin=dict(l=10, r=10, t=40, b=10),
                      xaxis=dict(visible=False, range=[-0.35, 1.35]), yaxis=dict(visible=False, range=[-0.35, 1.15]),
                      title=f"energy gap E_P[E] − E_Q[E] = {values.get('energy_gap', float('nan')):+.2f} "
                            "(= KL(P‖Π) − KL(Q‖Π) up to the entropies of P and the data)")
    return fig


def line_figure(x: np.ndarray, ys: dict[str, np.ndarray], xtitle: str, ytitle: str) -> go.Figure:
    """Plain lines sharing one x axis, name -> y."""
    fig = go.Figure([go.Scatter(x=x, y=y, name=k, mode="lines+markers") for k, y in ys.items()])
    fig.update_layout(height=280, margin=dict(l=10, r=10, t=10, b=10), xaxis_title=xtitle, yaxis_title=ytitle)
    return fig


def energy_histogram_figure(energies: dict[str, np.ndarray], margin: float | None = None,
                            xtitle: str = "energy") -> go.Figure:
    """Overlaid histograms of energies, group -> (n,), on a log x axis, with the margin m as a vertical line."""
    fig = go.Figure()
    colours = ["#1f77b4", "#ff7f0e", "#d62728", "#2ca02c", "#9467bd"]
    for i, (name, e) in enumerate(energies.items()):
        e = np.asarray(e, dtype=float)
        fig.add_trace(go.Histogram(x=np.log10(np.maximum(e, 1e-8)), name=f"{name} (median {np.median(e):.3g})",
                                   opacity=0.6, nbinsx=60, marker_color=colours[i % len(colours)]))
    if margin is not None:
        fig.add_vline(x=np.log10(margin), line_dash="dash", annotation_text=f"margin m = {margin:g}")
    fig.update_layout(barmode="overlay", height=300, margin=dict(l=10, r=10, t=30, b=10),
                      xaxis_title=f"log₁₀ {xtitle}", yaxis_title="images",
                      legend=dict(orientation="h", yanchor="bottom", y=1.02, x=0))
    return fig


def class_counts_figure(counts: dict[str, np.ndarray]) -> go.Figure:
    """Grouped bars of how often the evaluator gives each digit, name -> (10,) counts."""
    fig = go.Figure([go.Bar(x=list(range(10)), y=np.asarray(c).tolist(), name=k) for k, c in counts.items()])
    fig.update_layout(barmode="group", height=280, margin=dict(l=10, r=10, t=10, b=10),
                      xaxis=dict(title="digit (the evaluator's verdict)", dtick=1), yaxis_title="samples")
    return fig


def side_by_side(left: np.ndarray, right: np.ndarray, gap: int = 12) -> np.ndarray:
    """Two tiled uint8 images (H1, W1), (H2, W2) next to each other on a white gap: (max H, W1 + gap + W2)."""
    h = max(left.shape[0], right.shape[0])
    out = np.full((h, left.shape[1] + gap + right.shape[1]), 255, dtype=np.uint8)
    out[: left.shape[0], : left.shape[1]] = left
    out[: right.shape[0], left.shape[1] + gap:] = right
    return out


def _median_band(fig, steps, e, colour, name, **where):
    lo, med, hi = np.nanpercentile(e, [10, 50, 90], axis=1)
    fig.add_trace(go.Scatter(x=np.r_[steps, steps[::-1]], y=np.r_[hi, lo[::-1]], fill="toself", line=dict(width=0),
                             fillcolor=colour, opacity=0.2, hoverinfo="skip", showlegend=False), **where)
    fig.add_trace(go.Scatter(x=steps, y=med, line=dict(color=colour), name=name), **where)


def two_stage_energy_figure(semantic: np.ndarray, texture: np.ndarray, texture_only: np.ndarray,
                            current: tuple[str, int] | None = None) -> go.Figure:
    """U_s per latent step (K+1, B) beside U_c per pixel step of the two-stage chains and of chains from noise
    (T+1, B), each as median and 10–90% band, on log axes; ``current`` = (stage, step) marks a frame."""
    fig = make_subplots(rows=1, cols=2, subplot_titles=["semantic stage: U_s(z_t, σ)", "texture stage: U_c(x_t, σ_t)"])
    _median_band(fig, np.arange(len(semantic)), semantic, "#9467bd", "U_s, two-stage", row=1, col=1)
    steps = np.arange(len(texture))
    _median_band(fig, steps, texture, "#1f77b4", "U_c, two-stage (from h(z_K))", row=1, col=2)
    _median_band(fig, steps, texture_only, "#d62728", "U_c, texture only (from noise)", row=1, col=2)
    if current is not None:
        col = 1 if current[0] == "semantic" else 2
        fig.add_vline(x=current[1], line=dict(color="black", dash="dot"), row=1, col=col)
    fig.update_xaxes(title_text="latent step t", row=1, col=1)
    fig.update_xaxes(title_text="pixel step t", row=1, col=2)
    fig.update_yaxes(type="log")
    fig.update_layout(height=300, margin=dict(l=10, r=10, t=30, b=10),
                      legend=dict(orientation="h", yanchor="top", y=-0.25, x=0))
    return fig


def energy_maps_figure(maps: np.ndarray, titles: list[str]) -> go.Figure:
    """Per-pixel energy maps (S, 28, 28) side by side as heatmaps on a shared log colour scale."""
    fig = make_subplots(rows=1, cols=len(maps), subplot_titles=titles, horizontal_spacing=0.02)
    logs = np.log10(np.maximum(maps, 1e-4))
    lo, hi = float(np.percentile(logs, 1)), float(logs.max())
    for i, m in enumerate(logs):
        fig.add_trace(go.Heatmap(z=m[::-1].tolist(), zmin=lo, zmax=hi, colorscale="Inferno", showscale=i == 0,
                                 colorbar=dict(title="log₁₀", len=0.9),
                                 hovertemplate="row %{y}, col %{x}: 10^%{z:.2f}<extra></extra>"), row=1, col=i + 1)
        fig.update_xaxes(visible=False, row=1, col=i + 1)
        fig.update_yaxes(visible=False, scaleanchor=f"x{i + 1 if i else ''}", row=1, col=i + 1)
    fig.update_layout(height=230, margin=dict(l=10, r=10, t=30, b=10))
    return fig

