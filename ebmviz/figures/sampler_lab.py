"""Pictures of the sampler lab: animation frames drawn as images (fast enough for live playback) and plotly figures.

Frames are RGB uint8 arrays: the exact density as a heat map, particles as dots, each with a fading trail of
its last positions, and HMC's leapfrog paths as lines. Dots are coloured by acceptance (adjusted samplers:
white accepted, red rejected at the step on show) or by the length of their last move (unadjusted samplers).
"""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
from PIL import Image, ImageDraw
from plotly.subplots import make_subplots

from ebmviz.figures.style import tight
from ebmviz.sampling.toy2d import DensityGrid

# anchor colours of a dark-to-bright map for the density (viridis-like) and for move lengths (blue to yellow)
DENSITY_ANCHORS = np.array([[13, 8, 35], [40, 40, 110], [35, 110, 140], [60, 170, 120], [190, 220, 70]], float)
MOVE_ANCHORS = np.array([[120, 180, 255], [255, 255, 255], [255, 210, 60]], float)
ACCEPTED, REJECTED = (255, 255, 255), (255, 70, 70)
SIDE_COLOURS = ("#1f77b4", "#d62728")  # sampler A, sampler B in the plotly figures


def _colormap(values: np.ndarray, anchors: np.ndarray) -> np.ndarray:
    """values in [0, 1] (...,) -> RGB uint8 (..., 3) by linear interpolation between anchors."""
    v = np.clip(values, 0, 1) * (len(anchors) - 1)
    i = np.minimum(v.astype(int), len(anchors) - 2)
    f = (v - i)[..., None]
    return (anchors[i] * (1 - f) + anchors[i + 1] * f).astype(np.uint8)


def density_image(grid: DensityGrid, size: int = 360) -> np.ndarray:
    """(size, W, 3) uint8 heat map of the grid density (square root, so that low tails show), y up; W keeps the
    box's aspect, so a round Gaussian is drawn round."""
    d = np.sqrt(grid.prob / grid.prob.max())
    img = _colormap(d[::-1], DENSITY_ANCHORS)  # row 0 is the top: the largest y
    xe, ye = grid.edges
    aspect = (xe[-1] - xe[0]) / (ye[-1] - ye[0])
    return np.asarray(Image.fromarray(img).resize((max(1, round(size * aspect)), size), Image.BILINEAR))


def to_pixels(points: np.ndarray, box: tuple[float, float, float, float], shape: tuple[int, int]) -> np.ndarray:
    """(…, 2) points -> (…, 2) pixel coordinates of an H × W picture of the box (``shape`` = (H, W), y up), clipped
    to a margin of one picture around it (a diverging particle at 10¹⁸ would otherwise cost the drawing seconds)."""
    x0, x1, y0, y1 = box
    h, w = shape
    with np.errstate(over="ignore", invalid="ignore"):
        px = (points[..., 0] - x0) / (x1 - x0) * w
        py = (y1 - points[..., 1]) / (y1 - y0) * h
    return np.stack([np.clip(px, -w, 2 * w), np.clip(py, -h, 2 * h)], -1)


def particles_frame(background: np.ndarray, box: tuple[float, float, float, float], points: np.ndarray,
                    trail: np.ndarray | None = None, accepted: np.ndarray | None = None,
                    moves: np.ndarray | None = None, paths: np.ndarray | None = None,
                    max_trails: int = 200) -> np.ndarray:
    """One animation frame (H, W, 3) uint8, the size of ``background``.

    Args:
        background: (H, W, 3) the density picture.
        points: (B, 2) particles now. trail: (K, B, 2) their last K positions, oldest first (drawn for at most
            ``max_trails`` particles). accepted: (B,) bool, whether the step on show was accepted (adjusted
            samplers). moves: (B,) length of each particle's last move (unadjusted samplers). paths: (L+1, n, 2)
            leapfrog paths to draw.
    """
    size = background.shape[:2]
    img = Image.fromarray(background)
    draw = ImageDraw.Draw(img, "RGBA")
    ok = np.isfinite(points).all(1)
    if trail is not None and len(trail) > 1:
        tp = to_pixels(trail[:, :max_trails], box, size)
        for b in range(tp.shape[1]):
            line = tp[:, b]
            line = line[np.isfinite(line).all(1)]
            if len(line) > 1:
                draw.line([tuple(p) for p in line], fill=(255, 255, 255, 70), width=1)
    if paths is not None:
        pp = to_pixels(paths, box, size)
        for b in range(pp.shape[1]):
            draw.line([tuple(p) for p in pp[:, b]], fill=(255, 170, 0, 200), width=2)
            x, y = pp[-1, b]
            draw.rectangle([x - 2, y - 2, x + 2, y + 2], outline=(255, 170, 0, 255))
    if accepted is not None:
        colours = np.where(accepted[:, None], np.array(ACCEPTED), np.array(REJECTED))
    elif moves is not None and np.isfinite(moves).any() and np.nanmax(moves) > 0:
        colours = _colormap(moves / np.nanpercentile(moves, 95), MOVE_ANCHORS)
    else:
        colours = np.tile(np.array(ACCEPTED), (len(points), 1))
    for (x, y), c, good in zip(to_pixels(points, box, size), colours, ok, strict=True):
        if good:
            draw.ellipse([x - 2, y - 2, x + 2, y + 2], fill=tuple(int(v) for v in c))
    return np.asarray(img)


def density_figure(grid: DensityGrid, runs: dict[str, np.ndarray], paths: dict[str, np.ndarray] | None = None,
                   title: str = "") -> go.Figure:
    """The exact density as contours with each sampler's particles ((B, 2) per name) and leapfrog paths."""
    fig = go.Figure(go.Contour(x=grid.x, y=grid.y, z=grid.density(), colorscale="Viridis", ncontours=14,
                               showscale=False, name="exact density", hoverinfo="skip",
                               contours=dict(coloring="lines"), line=dict(width=1.2)))
    for (name, pts), colour in zip(runs.items(), SIDE_COLOURS, strict=False):
        fig.add_trace(go.Scattergl(x=pts[:, 0], y=pts[:, 1], mode="markers", name=name,
                                   marker=dict(size=4, color=colour, line=dict(width=0.5, color="white"))))
    for name, path in (paths or {}).items():
        xs, ys = [], []
        for b in range(path.shape[1]):
            xs += list(path[:, b, 0]) + [None]
            ys += list(path[:, b, 1]) + [None]
        fig.add_trace(go.Scatter(x=xs, y=ys, mode="lines", name=f"{name}: leapfrog paths",
                                 line=dict(color="orange", width=1.5)))
    x0, x1 = grid.x[0], grid.x[-1]
    return tight(fig, 560, top=40, title=title, plot_bgcolor="white", xaxis=dict(range=[x0, x1], constrain="domain"),
                 yaxis=dict(range=[grid.y[0], grid.y[-1]], scaleanchor="x"), legend=dict(orientation="h"))


def marginals_figure(runs: dict[str, tuple[np.ndarray, DensityGrid]]) -> go.Figure:
    """Histograms of each sampler's draws against the exact marginals of x and y of its own target.

    Args:
        runs: name -> (draws (N, 2), the exact grid of that sampler's target). Targets at one temperature share
            one black line; otherwise each gets its own, dashed in the sampler's colour.
    """
    fig = make_subplots(rows=1, cols=2, subplot_titles=("x", "y"))
    temps = {round(g.temperature, 9) for _, g in runs.values()}
    for col in (1, 2):
        drawn = set()
        for (name, (pts, grid)), colour in zip(runs.items(), SIDE_COLOURS, strict=False):
            axis, exact = (grid.x, grid.marginal_x()) if col == 1 else (grid.y, grid.marginal_y())
            edges = np.linspace(axis[0], axis[-1], 41)
            h, _ = np.histogram(pts[:, col - 1], bins=edges, density=True)
            fig.add_trace(go.Bar(x=(edges[:-1] + edges[1:]) / 2, y=h, name=name, marker_color=colour, opacity=0.45,
                                 showlegend=col == 1, width=edges[1] - edges[0]), row=1, col=col)
            if round(grid.temperature, 9) in drawn:
                continue
            drawn.add(round(grid.temperature, 9))
            one = len(temps) == 1
            fig.add_trace(go.Scatter(x=axis, y=exact, mode="lines", showlegend=col == 1,
                                     name="exact" if one else f"exact, T = {grid.temperature:g}",
                                     line=dict(color="black" if one else colour, width=2,
                                               dash="solid" if one else "dash")), row=1, col=col)
    return tight(fig, 300, top=30, barmode="overlay", legend=dict(orientation="h"))


def autocorrelation_figure(curves: dict[str, np.ndarray]) -> go.Figure:
    """Autocorrelation against lag, one line per name (e.g. "A: energy")."""
    fig = go.Figure()
    for i, (name, rho) in enumerate(curves.items()):
        fig.add_trace(go.Scatter(x=np.arange(len(rho)), y=rho, mode="lines", name=name,
                                 line=dict(color=SIDE_COLOURS[(i // 2) % 2], dash="solid" if i % 2 == 0 else "dot")))
    return tight(fig, 300, top=30, xaxis_title="lag (steps)", yaxis_title="autocorrelation",
                 legend=dict(orientation="h", y=1.25))
