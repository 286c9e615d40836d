"""The latent-space Langevin panel of the pages whose model has a generator (EBGAN, the divergence triangle): K steps
on U(z) = E(G(z))/T + ‖z‖²/2 (or −log p_ψ(z) of a learned prior) from the generator's own codes, the pictures
before and after with the evaluator's digits, the per-step traces, and a before/after table. ``ebmviz.analysis.latent``
does the sampling."""

from __future__ import annotations

import numpy as np
import streamlit as st

from ebmviz.analysis import metrics, zoo
from ebmviz.analysis.latent import PAGE_DEFAULTS as PAGE_DEFAULTS, LatentRun, latent_config, latent_langevin
from ebmviz.app import cache, links
from ebmviz.app.widgets import over_work_cap
from ebmviz.figures.chains import traces_figure
from ebmviz.figures.images import labelled_grid, verdict_labels

STEP_SIZES = [0.001, 0.003, 0.01, 0.03]  # η
TEMPERATURES = [0.003, 0.01, 0.03, 0.1, 0.3, 1.0, 3.0]  # T in U(z) = E(G(z))/T + ‖z‖²/2
MAX_STEPS = 200


@st.cache_data(show_spinner="Langevin in the generator's latent space…", max_entries=16)
def latent_descent(name: str, device: str, n_steps: int, step_size: float, temperature: float, n: int,
                   seed: int) -> cache.Judged[LatentRun]:
    """``n_steps`` steps of size η = ``step_size`` on U(z) from the generator's codes drawn from ``seed`` (step 0 is
    ``model.generate(n, seed)``). The traces keep every step; only the first and last codes are kept and decoded
    (the panel shows no others)."""
    model = cache.load_model(name, device)
    result = latent_langevin(model, n, seed, temperature, latent_config(n_steps, step_size,
                                                                        record_every=max(n_steps, 1)))
    return cache.Judged(result, cache.evaluate_frames(result.start), cache.evaluate_frames(result.final))


def latent_fields(prefix: str) -> list[links.Field]:
    """The panel's linked widgets (steps, η, T)."""
    return [links.integer(f"{prefix}_lat_k", "latent_steps", 0, MAX_STEPS),
            links.choice(f"{prefix}_lat_eta", "latent_step", STEP_SIZES),
            links.choice(f"{prefix}_lat_t", "latent_temperature", TEMPERATURES)]


def _labels(pred: metrics.Prediction | None, energy: np.ndarray, symbol: str) -> list[str]:
    return verdict_labels(energy, symbol, *((pred.label, pred.confidence) if pred is not None else ()))


def latent_panel(prefix: str, name: str, device: str, seed: int, n: int, *, symbol: str,
                 defaults: tuple[int, float, float], learned_prior: bool = False) -> None:
    """Draw the panel for checkpoint ``name``; ``symbol`` names its image energy ("D", "E"); ``defaults`` are
    (K, η, T); ``learned_prior``: the model draws its codes from a learned p_ψ(z), which replaces ‖z‖²/2 in U."""
    k0, eta0, t0 = defaults
    c = st.columns(3)
    k = c[0].slider("Latent steps K", 0, MAX_STEPS, k0, 10, key=f"{prefix}_lat_k")
    eta = c[1].select_slider("Step size η", STEP_SIZES, eta0, key=f"{prefix}_lat_eta")
    temp = c[2].select_slider("Temperature T", TEMPERATURES, t0, key=f"{prefix}_lat_t",
                              help=f"How much {symbol} counts against the prior: low T follows {symbol}, high T "
                                   "stays near " + ("p_ψ(z)" if learned_prior else "N(0, I)"))
    prior = r"- \log p_\psi(z_t)" if learned_prior else r"+ \tfrac12\|z_t\|^2"  # with its sign
    st.latex(rf"z_{{t+1}} = z_t - {eta:g}\,\nabla_z\Big(\frac{{{symbol}(G(z_t))}}{{{temp:g}}} {prior}\Big)"
             rf" + \sqrt{{2\cdot{eta:g}}}\,\xi_t,\quad \xi_t\sim\mathcal N(0, I),\ t < {k}")
    if too_much := over_work_cap(n, k, "Latent Langevin"):
        st.error(too_much, icon=":material/error:")
        return
    d = latent_descent(name, device, k, eta, temp, n, seed)
    r = d.run
    a, b = st.columns(2)
    a.image(labelled_grid(r.start, _labels(d.before, r.image_energy[0], symbol), ncol=8, scale=3),
            caption="G(z₀): the generator's samples")
    b.image(labelled_grid(r.final, _labels(d.after, r.image_energy[-1], symbol), ncol=8, scale=3),
            caption=f"G(z_K) after {k} latent steps")
    st.plotly_chart(traces_figure(r.run.energy, r.run.grad_norm, r.run.step_norm, symbols=("U", "z"))
                    .update_xaxes(title_text="latent step t", row=3, col=1), key=f"{prefix}_lat_traces")
    rows = []
    for when, pred, i in (("start", d.before, 0), (f"after {k} steps", d.after, -1)):
        confident = "–" if pred is None else f"{100 * (pred.confidence > metrics.CONFIDENT).mean():.0f}%"
        rows.append({"when": when, f"median {symbol}(G(z))": f"{np.median(r.image_energy[i]):.4g}",
                     "median ‖z‖": f"{np.median(np.linalg.norm(r.run.frames[i], axis=1)):.2f}",
                     "confident (> 90%)": confident})
    st.dataframe(rows, hide_index=True)


def measured_caption(name: str, whose: str = "") -> str | None:
    """What ``benchmarks/latent_langevin.py --store`` measured for checkpoint ``name`` at the panel's defaults, as a
    sentence (``whose``: how the samples are drawn, e.g. "from its learned prior"); None when nothing is stored for
    its present file."""
    m = zoo.measured(name, "latent_langevin")
    if m is None:
        return None
    b, a = m["before"], m["after"]
    return (f"Measured on {m['n']:,} chains at K = {m['K']}, η = {m['eta']:g}, T = {m['T']:g} (`{m['source']}`): "
            f"{name}'s samples{' ' + whose if whose else ''} go from {100 * b['confident_share']:.1f}% to "
            f"{100 * a['confident_share']:.1f}% "
            f"confident digits, class entropy {b['class_entropy']:.3f} → {a['class_entropy']:.3f}, Fréchet distance "
            f"{b['frechet']:.1f} → {a['frechet']:.1f}.")
