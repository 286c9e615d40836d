"""The Denoising-EBM's figures: U_s and U_c along the two stages, per-pixel energy maps, and a signed difference
picture (what the texture stage changed, amplified)."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from ebmviz.figures.images import tile
from ebmviz.figures.style import big, median_band, tight


def two_stage_energy_figure(semantic: np.ndarray, texture: np.ndarray, texture_only: np.ndarray,
                            current: tuple[str, int] | None = None, height: int = 300,
                            font_px: int | None = None) -> go.Figure:
    """U_s per latent step (K+1, B) beside U_c per pixel step of the two-stage chains and of chains from noise
    (T+1, B), each as median and 10–90% band, on log axes; ``current`` = (stage, step) marks a frame; ``font_px``
    sets every text's size (a projector's larger print), None the template's."""
    fig = make_subplots(rows=1, cols=2, subplot_titles=["semantic stage: U_s(z_t, σ)", "texture stage: U_c(x_t, σ_t)"])
    median_band(fig, np.arange(len(semantic)), semantic, "#9467bd", "U_s, two-stage", row=1, col=1)
    steps = np.arange(len(texture))
    median_band(fig, steps, texture, "#1f77b4", "U_c, two-stage (from h(z_K))", row=1, col=2)
    median_band(fig, steps, texture_only, "#d62728", "U_c, texture only (from noise)", row=1, col=2)
    if current is not None:
        col = 1 if current[0] == "semantic" else 2
        fig.add_vline(x=current[1], line=dict(color="black", dash="dot"), row=1, col=col)
    fig.update_xaxes(title_text="latent step t", row=1, col=1)
    fig.update_xaxes(title_text="pixel step t", row=1, col=2)
    fig.update_yaxes(type="log")
    if font_px is not None:
        big(fig, font_px)
    return tight(fig, height, top=30 if font_px is None else font_px + 20,
                 legend=dict(orientation="h", yanchor="top", y=-0.25, x=0) if font_px is None else
                 # a projector's short chart: the legend below the axis titles, in a smaller print to fit two lines
                 dict(orientation="h", yanchor="top", y=-0.5, x=0, font_size=font_px - 3))


def difference_picture(delta: np.ndarray, gain: float, ncol: int = 8, scale: int = 3) -> np.ndarray:
    """Signed differences (B, 1, 28, 28) on the [−1, 1] pixel scale as tiled RGB (H, W, 3) uint8: white where
    nothing changed, red where a pixel got brighter, blue where it got darker, full colour at |Δ|·gain ≥ 1."""
    v = np.clip(np.asarray(delta, np.float32) * gain, -1.0, 1.0)
    fade = lambda a: np.round(255 * (1 - a)).astype(np.uint8)  # noqa: E731  (255: white, 0: full colour)
    red = np.where(v < 0, fade(-v), 255).astype(np.uint8)  # darker pixels lose red: blue
    blue = np.where(v > 0, fade(v), 255).astype(np.uint8)  # brighter pixels lose blue: red
    green = fade(np.abs(v))
    return np.stack([tile(c, ncol=ncol, scale=scale) for c in (red, green, blue)], axis=-1)


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
    return tight(fig, 230, top=30)
