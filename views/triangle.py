"""Divergence triangle: reconstructions, recovery of occluded digits, refinement, interpolation, the KL terms."""

import numpy as np
import streamlit as st

from ebmviz.app import cache, links
from ebmviz.app.latent_panel import PAGE_DEFAULTS, latent_fields, latent_panel, measured_caption
from ebmviz.app.pages import triangle
from ebmviz.app.pages.triangle import OCCLUSIONS, LangevinConfig, metrics, to_u8
from ebmviz.app.state import PageState
from ebmviz.app.widgets import checkpoint_names, model_picker, of_kind, share, shared
from ebmviz.figures.chains import compare_energy_figure
from ebmviz.figures.charts import histogram_figure, history_figure, line_figure
from ebmviz.figures.images import labelled_grid, tile, verdict_labels
from ebmviz.figures.triangle import triangle_figure

P = "tri"
state = PageState(P)
VIEW_NAMES = ["Reconstruction", "Occlusion", "Generator", "Refinement", "Interpolation", "The triangle"]
DIGITS = ["any", *range(10)]
LAST = len(cache.load_data("mnist", "test")[0]) - 1  # the last held-out digit's index
fields = [links.choice(state.key("ckpt"), "model", checkpoint_names(of_kind("triangle"))),
          links.choice(state.key("view"), "view", VIEW_NAMES), links.choice(state.key("rdigit"), "digit", DIGITS),
          links.choice(state.key("occ"), "occlusion", list(OCCLUSIONS)),
          links.choice(state.key("odigit"), "occluded_digit", DIGITS),
          links.integer(state.key("iter"), "iterations", 1, 30), links.integer(state.key("k"), "steps", 0, 300),
          links.number(state.key("s"), "step", 0.01, 100.0), links.integer(state.key("a"), "a", 0, LAST),
          links.integer(state.key("b"), "b", 0, LAST), links.integer(state.key("n"), "points", 3, 16),
          *latent_fields(P)]
links.restore(fields)
st.title("Divergence triangle")
st.markdown(
    "Han et al. (CVPR 2019) train three models together: a **generator** $g_\\theta(z)$, an **inference "
    "model** $q_\\phi(z|x)$ and an **energy model** $\\pi_\\alpha(x) \\propto e^{-E_\\alpha(x)}$, by")
st.latex(r"\min_{\theta,\phi}\max_\alpha\; \mathrm{KL}(Q\|P) + \mathrm{KL}(P\|\Pi) - \mathrm{KL}(Q\|\Pi)")
seed, device = shared().seed, shared().device
name, model = model_picker("Triangle checkpoint", state.key("ckpt"), of_kind("triangle"))
digits = DIGITS


def reconstruction_view() -> None:
    digit = st.selectbox("Digit", digits, key=state.key("rdigit"))
    r = triangle.reconstructions(name, device, 12, None if digit == "any" else digit, seed)
    diff = np.abs(r.recon - r.x) - 1.0  # |difference| in [0, 2] shown on the [-1, 1] image scale
    st.image(tile(to_u8(np.concatenate([r.x, r.recon, diff])), ncol=12, scale=3),
             caption="rows: held-out original · reconstruction g(μ(x)) · |difference| (white = large)")
    st.dataframe([{"digit": int(lab), "MSE": f"{m:.4f}", "E(original)": f"{a:.2f}", "E(reconstruction)": f"{b:.2f}"}
                  for lab, m, a, b in zip(r.labels, r.mse, r.e_x, r.e_recon, strict=True)], hide_index=True)
    s = triangle.reconstruction_summary(name, device)
    agree = "" if s.same_digit is None else (f"; the evaluator gives the reconstruction the original's digit for "
                                             f"**{100 * s.same_digit:.1f}%**")
    st.markdown(f"Mean per-pixel MSE ([0, 1] scale) over all {s.n:,} held-out digits: **{s.mse:.4f}**{agree}.")


def occlusion_view() -> None:
    c = st.columns(4)
    occ = c[0].selectbox("Occlusion", list(OCCLUSIONS), key=state.key("occ"),
                         help="The paper's types scaled to 28×28: salt and pepper over 50% / 70%, ten 4×4 "
                              "blocks, one 9×9 or 13×13 block")
    preset = OCCLUSIONS[occ][1]
    override = {}
    if "size" in preset:
        override["size"] = c[1].slider("Block size", 2, 20, preset["size"], key=state.key("size"))
    else:
        override["share"] = c[1].slider("Share hidden", 0.1, 0.9, preset["share"], 0.05, key=state.key("share"))
    digit = c[2].selectbox("Digit", digits, key=state.key("odigit"))
    n_iter = c[3].slider("Iterations", 1, 30, 10, key=state.key("iter"))
    r = triangle.recovery(name, device, occ, 8, None if digit == "any" else digit, n_iter, seed, **override)
    st.image(tile(to_u8(np.concatenate([r.x, r.seen, r.steps[0], r.steps[-1]])), ncol=8, scale=3),
             caption="rows: original · what is seen · hidden pixels filled with the mean · recovered")
    st.plotly_chart(line_figure(np.arange(n_iter + 1), {
        "triangle recovery": r.errors.mean(1), "fill with the mean": np.full(n_iter + 1, r.baseline.mean())},
        "iteration (infer z, generate, paste the seen pixels back)", "error on hidden pixels"),
        key=state.key("occ_fig"))
    if st.toggle("Table over 1,000 held-out digits, every occlusion type", key=state.key("table")):
        st.dataframe(triangle.recovery_table(name, device), hide_index=True)
        st.caption("Per-pixel absolute error on the hidden pixels, relative to the pixel range (as the paper's "
                   "Table III), after 10 iterations, with the preset sizes.")


def generator_view() -> None:
    st.markdown(
        "The generator learns to draw from the codes the inference model gives real digits. The paper's prior "
        "$p(z) = \\mathcal N(0, I)$ also puts mass between those codes' clusters, where $g$ draws blends of "
        "digits. The prior of $P(x, z) = p(z)\\,p_\\theta(x|z)$ enters KL(Q‖P), the term that learns the generator "
        "and the inference model from the data:")
    st.latex(r"\mathrm{KL}(Q\|P) = -\,\mathbb E_{x\sim q_\mathrm{data},\ z\sim q_\phi(z|x)}\big[\log p_\psi(z)\big]"
             r" + \text{terms without }\psi,\qquad p_\psi(z) = \sum_{k=1}^{K}\pi_k\,\mathcal N(z;\,m_k, C_k)")
    st.markdown(
        "With θ, φ and α fixed, the prior that minimises KL(Q‖P) is therefore the maximum-likelihood fit of "
        "the mixture to codes $\\tilde z = \\mu_\\phi(x) + \\sigma_\\phi(x)\\,\\epsilon$ of the training digits. "
        "EM finds it (`python -m training fit-prior`), and K is chosen by the likelihood of left-out training "
        "digits' codes, never by samples. KL(P‖Π) involves the prior too (it would pull it towards codes whose "
        "pictures the energy rates typical); this fit leaves it aside. The generator, inference and energy nets "
        "stay as trained.")
    if model.prior is None:
        st.info("This checkpoint has no learned prior, so its generator draws from N(0, I) only. "
                "`python -m training fit-prior <checkpoint>` fits one.")
        return
    r = triangle.prior_picture(name, device, 32, seed)
    for images, energy, title in ((r.normal, r.energy[0], "z ~ N(0, I), the paper's prior"),
                                  (r.learned, r.energy[1], f"z ~ p_ψ, the learned prior (K = {len(r.weights)})")):
        pred = cache.evaluate_frames(images)
        verdict = () if pred is None else (pred.label, pred.confidence)
        share = "" if pred is None else f": {100 * (pred.confidence > metrics.CONFIDENT).mean():.0f}% confident digits"
        st.image(labelled_grid(images, verdict_labels(energy, "E", *verdict), ncol=8, scale=3),
                 caption=f"g(z), {title}{share}")
    st.plotly_chart(histogram_figure(r.log_density, "log p_ψ(z) (higher: where more digits' codes "
                                                                     "are; tails clipped)", "codes"),
                    key=state.key("prior_fig"))
    normal, learned = r.rare["N(0, I) draws"], r.rare["p_ψ draws"]
    st.caption(f"How typical each prior's codes are of the digits' codes, measured by the fitted density: "
               f"{100 * normal:.0f}% of the N(0, I) draws fall below the 1st percentile of the held-out digits' "
               f"codes (against {100 * learned:.0f}% of the p_ψ draws). Where the digits' codes are rare, the "
               "generator was never trained to draw anything.")
    st.image(labelled_grid(r.means, [f"pi {w:.3f}" for w in r.weights], ncol=10, scale=2),
             caption="g(m_k): each component's mean code, drawn by the generator, heaviest component first")
    fit = model.meta.get("prior", {})
    if fit.get("choice"):
        st.dataframe([{"K": row["components"], "mean log p(z̃), fitted codes": row["fit_log_likelihood"],
                       "mean log p(z̃), left-out training digits' codes": row["held_out_log_likelihood"]}
                      for row in fit["choice"]], hide_index=True)
        st.caption(f"The choice of K: {fit.get('held_out', '')}. Chosen: K = {fit.get('components')}, then refit "
                   f"on all {fit.get('codes', 0):,} codes.")
    if text := triangle.prior_samples_caption(name):
        st.caption(text)


def refinement_view() -> None:
    base = model.draw_config()
    c = st.columns(3)
    k = c[0].slider("Langevin steps on the energy model", 0, 300, min(base.n_steps, 300), 5, key=state.key("k"))
    s = c[1].number_input("step size s", 0.01, 100.0, float(base.step_size), key=state.key("s"),
                          help="x ← x − s·clip(∇E(x)) + σ·ξ. The shipped default is small: E was trained against "
                               "generator samples only, and long or large moves leave them for blob-like minima.")
    clip = c[2].number_input("clip ∇E entries at ±", 0.001, 1.0, float(base.grad_clip or 0.03), step=0.001,
                             format="%.3f", key=state.key("clip"))
    cfg = LangevinConfig(n_steps=k, step_size=s, noise_std=base.noise_std, grad_clip=clip, record_every=max(1, k))
    r = triangle.refined_samples(name, device, 16, cfg, seed)
    a, b = st.columns(2)
    e0, e1 = r.refinement.energy[0], r.refinement.energy[-1]
    a.image(tile(to_u8(r.generated), ncol=8, scale=2),
            caption=f"generator samples g(z), z from {'p_ψ' if model.prior is not None else 'N(0, I)'}: median "
                    f"energy {np.median(e0):.2f}")
    b.image(tile(to_u8(r.final), ncol=8, scale=2),
            caption=f"after {k} Langevin steps on exp(−E): median energy {np.median(e1):.2f}")
    st.plotly_chart(compare_energy_figure({"refinement": r.refinement.energy}), key=state.key("ref_fig"))
    st.subheader("Refinement through the generator: Langevin in the latent space")
    st.markdown(
        "Moves in pixel space leave the generator's samples for the energy's blob-like minima. Moves on the codes "
        r"stay on what $g$ can draw: Langevin on $U(z) = E(g(z))/T - \log p(z)$, the energy model seen "
        "through the generator plus the prior's energy (the learned prior's when the model has one, else "
        r"$\tfrac12\|z\|^2$ of N(0, I)), from the generator's own codes (step 0 is its samples). The energy "
        "critiques the generator, as in the triangle's training, but at sampling time; the landscape map descends "
        "this U with the N(0, I) prior at T = 0.3.")
    learned = model.prior is not None
    latent_panel(P, name, device, seed, 16, symbol="E", defaults=PAGE_DEFAULTS["triangle"], learned_prior=learned)
    if text := measured_caption(name, "from its learned prior" if learned else ""):
        st.caption(text)


def interpolation_view() -> None:
    c = st.columns(3)
    n_test = len(cache.load_data("mnist", "test")[0])
    a = c[0].number_input("First held-out digit (index)", 0, n_test - 1, 0, key=state.key("a"))
    b = c[1].number_input("Second held-out digit (index)", 0, n_test - 1, 1, key=state.key("b"))
    n = c[2].slider("Points on the path", 3, 16, 10, key=state.key("n"))
    r = triangle.latent_path(name, device, int(a), int(b), n)
    st.image(tile(to_u8(r.path), ncol=n, scale=3),
             caption=f"g((1−t)·μ(x_a) + t·μ(x_b)) from a {r.ends[0]} to a {r.ends[1]}")
    st.plotly_chart(line_figure(np.linspace(0, 1, n), {"E(g(z_t))": r.energy}, "t", "energy"),
                    key=state.key("path_fig"))


def triangle_view() -> None:
    hist = model.meta.get("history", [])
    if not hist:
        st.info("This checkpoint has no training history.")
        return
    st.plotly_chart(triangle_figure(hist[-1]), key=state.key("diagram"))
    st.markdown("Values from the last row of the training history. Only differences of the KL terms against Π "
                "are computable (π_α's normaliser and the entropies of P and the data are not), so the diagram shows "
                "the parts each term contributes to the updates: the E step raises the energy gap, the G step "
                "lowers E_P[E], the I step lowers KL(Q‖P) and the sleep NLL.")
    st.plotly_chart(history_figure(hist, ["kl_qp", "energy_gap", "sleep_nll", "e_real", "e_fake"]),
                    key=state.key("hist"))
    errors = ["mse"] + (["recovery_error"] if "recovery_error" in hist[-1] else [])  # runs with --occlusion
    st.plotly_chart(history_figure(hist, errors), key=state.key("hist_mse"))
    st.caption("mse: per-pixel reconstruction error of the training batch on the [0, 1] scale"
               + ("; recovery_error: error on the hidden pixels of the occluded training digits" if len(errors) > 1
                  else ""))


VIEWS = dict(zip(VIEW_NAMES, (reconstruction_view, occlusion_view, generator_view, refinement_view,
                             interpolation_view, triangle_view), strict=True))
view = st.segmented_control("View", VIEW_NAMES, default="Reconstruction", key=state.key("view")) or "Reconstruction"
VIEWS[view]()
share(fields)
