"""The divergence triangle drawn with its KL terms, and the change a refinement makes as a picture."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go

from ebmviz.figures.style import tight


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
    return tight(fig, 420, top=40, xaxis=dict(visible=False, range=[-0.35, 1.35]),
                 yaxis=dict(visible=False, range=[-0.35, 1.15]),
                 title=f"energy gap E_P[E] − E_Q[E] = {values.get('energy_gap', float('nan')):+.2f} "
                       "(= KL(P‖Π) − KL(Q‖Π) up to the entropies of P and the data)")


def signed_difference(delta: np.ndarray) -> tuple[np.ndarray, float]:
    """A change ``delta`` = after − before (B, 1, 28, 28) on the [−1, 1] pixel scale as uint8 pictures: mid-grey where a
    pixel kept its value, white where it got brighter, black where it got darker, amplified so that the largest
    |change| is full white or black. Returns (pictures (B, 1, 28, 28) uint8, the amplification)."""
    largest = float(np.abs(delta).max(initial=0.0))
    gain = 1.0 / largest if largest > 0 else 1.0
    pictures = np.clip((np.asarray(delta) * gain + 1.0) * 127.5, 0, 255).round().astype(np.uint8)
    return pictures, gain
