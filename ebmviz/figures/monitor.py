"""A training run on one step axis: the energies of data, samples and noise, their gap, the loss, the gradient norm,
the learning rate, the negatives' saturation and class entropy — for one run or several overlaid."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from ebmviz.figures.style import tight

Series = tuple[np.ndarray, np.ndarray]  # (steps (n,), values (n,))
ROWS = (  # title, roles drawn in the row (role -> its line's name)
    ("energy E", {"data_mean": "E(x⁺) data", "sample_mean": "E(x⁻) samples", "noise_mean": "E(noise)"}),
    ("gap E(x⁻) − E(x⁺)", {"gap": "gap"}),
    ("loss", {"loss": "loss"}),
    ("gradient norm ‖∇θ‖", {"grad_norm": "‖∇θ‖"}),
    ("learning rate", {"lr": "lr"}),
    ("saturated pixels", {"saturation": "share |x| ≥ 0.99"}),
    ("class entropy (nats)", {"class_entropy": "class entropy"}),
)
SPREAD = {"data_mean": "data_std", "sample_mean": "sample_std"}  # a mean's ±1 std band
COLOURS = {"data_mean": "#1f77b4", "sample_mean": "#d62728", "noise_mean": "#7f7f7f", "gap": "#9467bd",
           "loss": "#2ca02c", "grad_norm": "#8c564b", "lr": "#17becf", "saturation": "#ff7f0e",
           "class_entropy": "#e377c2"}
DASHES = ("solid", "dash", "dot", "dashdot")  # one per overlaid run


def spans_decades(values: np.ndarray) -> bool:
    """Whether a positive series spans more than two decades (it is then drawn on a log axis)."""
    v = values[np.isfinite(values)]
    return bool(len(v)) and bool((v > 0).all()) and float(v.max()) / float(v.min()) > 100


def training_figure(runs: dict[str, dict[str, Series]], x_range: tuple[float, float] | None = None,
                    markers: dict[str, list[int]] | None = None) -> go.Figure:
    """Rows of the roles any run has, on one shared step axis.

    Args:
        runs: run name -> role -> (steps, values), already downsampled for drawing; the first run is solid, the
            next ones dashed, dotted, …
        x_range: fix the step axis (a live run's growing axis does not jump).
        markers: run name -> steps where an alert starts (a vertical line in every row).
    """
    present = [(title, roles) for title, roles in ROWS if any(r in s for s in runs.values() for r in roles)]
    if not present:
        present = ROWS[:1]
    fig = make_subplots(rows=len(present), cols=1, shared_xaxes=True, vertical_spacing=0.035,
                        subplot_titles=[t for t, _ in present])
    for k, (name, series) in enumerate(runs.items()):
        dash = DASHES[k % len(DASHES)]
        label = "" if len(runs) == 1 else f"{name}: "
        for row, (_, roles) in enumerate(present, start=1):
            for role, line in roles.items():
                if role not in series:
                    continue
                steps, values = series[role]
                if role in SPREAD and SPREAD[role] in series and k == 0:
                    s_steps, spread = series[SPREAD[role]]
                    if len(s_steps) == len(steps) and np.array_equal(s_steps, steps):
                        fig.add_trace(go.Scatter(x=np.concatenate([steps, steps[::-1]]),
                                                 y=np.concatenate([values + spread, (values - spread)[::-1]]),
                                                 fill="toself", line=dict(width=0), hoverinfo="skip",
                                                 fillcolor=_fill(COLOURS[role]), showlegend=False), row=row, col=1)
                fig.add_trace(go.Scattergl(x=steps, y=values, mode="lines", name=label + line,
                                           legendgroup=f"{name}{role}", showlegend=row == 1 or len(roles) == 1,
                                           line=dict(color=COLOURS[role], dash=dash, width=1.6)), row=row, col=1)
                if spans_decades(values):
                    fig.update_yaxes(type="log", row=row, col=1)
        for step in (markers or {}).get(name, []):
            fig.add_vline(x=step, line=dict(color="#d62728", width=1, dash=dash))
    for row, (_, roles) in enumerate(present, start=1):  # a constant row (a fixed lr) around its value, not ±1
        values = [series[r][1] for series in runs.values() for r in roles if r in series]
        finite = np.concatenate(values)[np.isfinite(np.concatenate(values))] if values else np.zeros(0)
        if len(finite) and finite.min() == finite.max() and finite[0] != 0:
            v = float(finite[0])
            fig.update_yaxes(range=[v - abs(v) / 2, v + abs(v) / 2], tickformat="~g", row=row, col=1)
    fig.update_xaxes(title_text="training step", row=len(present), col=1)
    if x_range is not None:
        fig.update_xaxes(range=list(x_range))
    return tight(fig, 150 * len(present) + 90, top=50, uirevision="monitor", hovermode="x unified",
                 legend=dict(orientation="h", yanchor="bottom", y=1.02, x=0))


def _fill(colour: str) -> str:
    r, g, b = (int(colour[i:i + 2], 16) for i in (1, 3, 5))
    return f"rgba({r},{g},{b},0.15)"


def class_histogram_figure(counts: np.ndarray, entropy: float) -> go.Figure:
    """The evaluator's digits among one step's negatives: counts (10,)."""
    fig = go.Figure(go.Bar(x=[str(d) for d in range(len(counts))], y=counts, marker_color="#e377c2"))
    return tight(fig, 220, top=40, title=f"digits read by the evaluator (class entropy {entropy:.2f} of "
                                        f"{np.log(len(counts)):.2f} nats)", xaxis_title="digit",
                 yaxis_title="negatives")
