"""The coarse-to-fine EBM's figures: per-stage energy traces, quality against gradient budget, the energy along the
fade weight β, and the restoration error per step."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from ebmviz.figures.style import STAGE_COLOURS, big, median_band, tight


def cascade_energy_figure(energies: list[np.ndarray], current: tuple[int, int] | None = None,
                          height: int = 260, font_px: int | None = None) -> go.Figure:
    """Per-stage energy traces of a cascade: one panel per stage, median and 10–90% band over chains.

    ``energies[i]`` is stage i's (K_i+1, B) energy; ``current`` = (stage, step) draws a marker line; ``font_px``
    sets every text's size (a projector's larger print), None the template's.
    """
    sides = [7, 14, 28]
    fig = make_subplots(rows=1, cols=len(energies), shared_yaxes=False,
                        subplot_titles=[f"stage {s}: {sides[s]}×{sides[s]}" for s in range(len(energies))])
    for s, e in enumerate(energies):
        median_band(fig, np.arange(len(e)), e, STAGE_COLOURS[s], f"median, {sides[s]} px", legend=False,
                    row=1, col=s + 1)
        if current is not None and current[0] == s:
            fig.add_vline(x=current[1], line=dict(color="black", dash="dot"), row=1, col=s + 1)
        fig.update_xaxes(title_text="Langevin step", row=1, col=s + 1)
    fig.update_yaxes(title_text="energy E_i", row=1, col=1)
    if font_px is not None:
        big(fig, font_px)
    return tight(fig, height, top=30 if font_px is None else font_px + 20)


def budget_figure(runs: dict, key: str = "confident") -> go.Figure:
    """Evaluator quality against gradient evaluations per chain: name -> a run with ``evals`` and ``key`` lists."""
    fig = go.Figure()
    for name, r in runs.items():
        fig.add_trace(go.Scatter(x=r.evals, y=getattr(r, key), name=name, mode="lines"))
    return tight(fig, 300, yaxis_range=[0, 1], xaxis_title="gradient evaluations per chain",
                 yaxis_title="share with confidence > 0.9" if key == "confident" else "mean confidence")


def beta_energy_figure(betas: np.ndarray, energy: np.ndarray, chosen: float) -> go.Figure:
    """E_β(x) of held-out digits as β goes 0 → 1: median and 10–90% band; ``energy`` is (len(β), B)."""
    fig = go.Figure()
    median_band(fig, betas, energy, None, "median over digits", legend=False)
    fig.add_vline(x=chosen, line=dict(color="black", dash="dot"))
    return tight(fig, 260, xaxis_title="β", yaxis_title="energy of held-out digits")


def error_figure(steps: np.ndarray, runs: dict[str, np.ndarray]) -> go.Figure:
    """Mean squared error ([0, 1] scale) per recorded step, name -> (F, B) errors (mean over images)."""
    fig = go.Figure([go.Scatter(x=steps, y=e.mean(axis=1), name=name) for name, e in runs.items()])
    return tight(fig, 260, xaxis_title="Langevin step", yaxis_title="MSE to the original")
