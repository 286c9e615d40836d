"""Divergence triangle: reconstructions, recovery of occluded digits, refinement, interpolation, the KL terms."""

import numpy as np
import streamlit as st

from ebmviz.app import cache, links
from ebmviz.app.latent_panel import PAGE_DEFAULTS, latent_fields, latent_panel, measured_caption
from ebmviz.app.lesson import what_to_notice
from ebmviz.app.pages import triangle
from ebmviz.app.pages.triangle import OCCLUSIONS, LangevinConfig, metrics, to_u8
from ebmviz.app.presentation import grid_font_px, presenting
from ebmviz.app.state import PageState
from ebmviz.app.widgets import (
    checkpoint_names,
    model_picker,
    of_kind,
    over_work_cap,
    share,
    shared,
    temperature_equation,
    update_equation,
)
from ebmviz.figures.chains import compare_energy_figure
from ebmviz.figures.charts import histogram_figure, history_figure, line_figure
from ebmviz.figures.images import labelled_grid, tile, verdict_labels
from ebmviz.figures.triangle import signed_difference, triangle_figure

P = "tri"
state = PageState(P)
VIEW_NAMES = ["Reconstruction", "Occlusion", "Generator", "Refinement", "Interpolation", "The triangle"]
DIGITS = ["any", *range(10)]
LAST = len(cache.load_data("mnist", "test")[0]) - 1  # the last held-out digit's index
N_REFINE = 16  # chains of the refinement and of the noise start
fields = [links.choice(state.key("ckpt"), "model", checkpoint_names(of_kind("triangle"))),
          links.choice(state.key("view"), "view", VIEW_NAMES), links.choice(state.key("rdigit"), "digit", DIGITS),
          links.choice(state.key("occ"), "occlusion", list(OCCLUSIONS)),
          links.choice(state.key("odigit"), "occluded_digit", DIGITS),
          links.integer(state.key("iter"), "iterations", 1, 30), links.integer(state.key("k"), "steps", 0, 300),
          links.number(state.key("s"), "step", 0.01, 100.0), links.integer(state.key("a"), "a", 0, LAST),
          links.integer(state.key("b"), "b", 0, LAST), links.integer(state.key("n"), "points", 3, 16),
          links.integer(state.key("noise_k"), "noise_steps", 0, 1000), *latent_fields(P)]
links.restore(fields)
present = presenting()
st.title("Divergence triangle")
st.markdown(
    "Three networks learn together here, each from the others:\n"
    "- a **generator** turns a short list of random numbers, a *code* $z$, into a picture of a digit, $g(z)$;\n"
    "- an **inference model** reads a picture $x$ back into a code: its best guess $\\mu(x)$, with a spread "
    "$\\sigma(x)$ around it;\n"
    "- an **energy model** gives every picture one number, its *energy* $E(x)$: low for pictures like the training "
    "digits, high for the rest.\n\n"
    "The generator draws a digit in one pass; the energy model judges what it draws; the inference model lets the "
    "generator learn from real digits too (read a digit's code, redraw it, compare).")
notation = st.expander("In the paper's notation", expanded=False) if present else st.container()
notation.markdown(
    "Han et al. (CVPR 2019) write each model as a way of producing pairs (code, picture), a joint distribution: "
    "**Q** $= q_\\mathrm{data}(x)\\,q_\\phi(z|x)$, a real digit with the code the inference model gives it; "
    "**P** $= p(z)\\,p_\\theta(x|z)$, a code from the *prior* $p(z)$ (the paper's is the standard normal "
    "$\\mathcal N(0, I)$) with the generator's picture of it; **Π** $= \\pi_\\alpha(x)\\,q_\\phi(z|x)$, a "
    "picture from the energy model, $\\pi_\\alpha(x) \\propto e^{-E_\\alpha(x)}$, with its code. θ, φ and α are "
    "the three networks' weights. KL(A‖B), the Kullback–Leibler divergence, measures how far a distribution A is "
    "from B (0 when they agree). Training solves")
notation.latex(r"\min_{\theta,\phi}\max_\alpha\; \mathrm{KL}(Q\|P) + \mathrm{KL}(P\|\Pi) - \mathrm{KL}(Q\|\Pi)")
notation.markdown(
    "The generator and the inference model make the sum small: P close to the data (Q) and to the energy model (Π). "
    "The energy model makes it large: it lowers its energy on real digits and raises it on the generator's pictures, "
    "so the generator chases it towards the data. (The paper writes $f_\\alpha = -E_\\alpha$.)")
seed, device = shared().seed, shared().device
name, model = model_picker("Triangle checkpoint", state.key("ckpt"), of_kind("triangle"))
digits = DIGITS


def secondary(label: str):
    """Where a secondary panel goes: the page itself, or a folded expander in presentation mode."""
    return st.expander(label, expanded=False) if present else st.container()


def _lower(a: float, b: float) -> str:
    return "lower" if a < b else "higher"


def _a(digit: int) -> str:
    """ "a 6", "an 8" """
    return f"an {digit}" if digit == 8 else f"a {digit}"


def reconstruction_view() -> list[str]:
    st.markdown("Each held-out digit x (one the models never trained on) goes through the inference model to its code "
                "μ(x) and back through the generator: the reconstruction g(μ(x)).")
    digit = st.selectbox("Digit", digits, key=state.key("rdigit"))
    r = triangle.reconstructions(name, device, 12, None if digit == "any" else digit, seed)
    diff = np.abs(r.recon - r.x) - 1.0  # |difference| in [0, 2] shown on the [-1, 1] image scale
    st.image(tile(to_u8(np.concatenate([r.x, r.recon, diff])), ncol=12, scale=3),
             caption="rows: held-out original · reconstruction g(μ(x)) · |difference| (white = large)")
    st.dataframe([{"digit": int(lab), "MSE": f"{m:.4f}", "E(original)": f"{a:.2f}", "E(reconstruction)": f"{b:.2f}"}
                  for lab, m, a, b in zip(r.labels, r.mse, r.e_x, r.e_recon, strict=True)], hide_index=True)
    s = triangle.reconstruction_summary(name, device)
    agree = "" if s.same_digit is None else (f"; the evaluator (a digit classifier shipped with the app) gives the "
                                             f"reconstruction the original's digit for **{100 * s.same_digit:.1f}%**")
    st.markdown(f"Mean per-pixel MSE (mean squared error, pixels on the [0, 1] scale) over all {s.n:,} held-out "
                f"digits: **{s.mse:.4f}**{agree}.")
    worst = int(np.argmax(r.mse))
    e_x, e_r = float(np.median(r.e_x)), float(np.median(r.e_recon))
    return [f"Over all {s.n:,} held-out digits a reconstruction misses by a mean squared {s.mse:.4f} per pixel"
            + ("" if s.same_digit is None else f", and keeps its digit for {100 * s.same_digit:.1f}% of them") + ".",
            f"The worst of the {len(r.mse)} on screen, {_a(int(r.labels[worst]))}, misses by {r.mse[worst]:.4f}: "
            f"{r.mse[worst] / max(float(np.median(r.mse)), 1e-12):.1f}× the median {np.median(r.mse):.4f}.",
            f"The energy model rates the reconstructions {_lower(e_r, e_x)} than the originals (median E {e_r:.2f} "
            f"against {e_x:.2f}; lower is more digit-like)."]


def occlusion_view() -> list[str]:
    st.markdown("Part of each digit is hidden. The triangle fills the hidden pixels by going round its two models: "
                "infer a code from the picture, redraw it with the generator, paste the pixels it can see back in, "
                "and repeat.")
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
    curve = r.errors.mean(1)
    st.plotly_chart(line_figure(np.arange(n_iter + 1), {
        "triangle recovery": curve, "fill with the mean": np.full(n_iter + 1, r.baseline.mean())},
        "iteration (infer z, generate, paste the seen pixels back)", "error on hidden pixels"),
        key=state.key("occ_fig"))
    st.caption("Error on hidden pixels: the mean |recovered − original| over the hidden pixels, relative to the "
               "pixel range. Fill with the mean: every hidden pixel set to the average training digit's value there.")
    if st.toggle("Table over 1,000 held-out digits, every occlusion type", key=state.key("table")):
        st.dataframe(triangle.recovery_table(name, device), hide_index=True)
        st.caption("Per-pixel absolute error on the hidden pixels, relative to the pixel range (as the paper's "
                   "Table III), after 10 iterations, with the preset sizes.")
    final = r.errors[-1]
    return [f"After {n_iter} rounds the hidden pixels of these {len(final)} digits are off by {curve[-1]:.3f} on "
            f"average, against {curve[0]:.3f} for filling them with the mean digit.",
            f"The first round does most of it: {curve[0]:.3f} → {curve[1]:.3f}"
            + (f"; the other {n_iter - 1} change it by {curve[-1] - curve[1]:+.3f}." if n_iter > 1 else "."),
            f"Per digit the error ends between {final.min():.3f} and {final.max():.3f}: compare the worst one's "
            "recovered picture with its original in the grid."]


def _prior_grid(images: np.ndarray, energy: np.ndarray, pred) -> np.ndarray:
    labels = verdict_labels(energy, "E", *(() if pred is None else (pred.label, pred.confidence)))
    ncol, scale = (4, 5) if present else (8, 3)  # presentation: each prior beside the other, captions at full size
    return labelled_grid(images, labels, ncol=ncol, scale=scale, font_px=grid_font_px())


def generator_view() -> list[str]:
    st.markdown(
        "The generator learns to draw from the codes the inference model gives real digits. The paper's prior "
        "$p(z) = \\mathcal N(0, I)$ also puts mass between those codes' clusters, where $g$ draws blends of "
        "digits. The prior of $P(x, z) = p(z)\\,p_\\theta(x|z)$ enters KL(Q‖P), the term that learns the generator "
        "and the inference model from the data. Here it is replaced by a *learned prior* $p_\\psi$: a mixture of "
        "K Gaussian bumps with weights $\\pi_k$, centres $m_k$ and spreads $C_k$ (ψ stands for all of them):")
    st.latex(r"\mathrm{KL}(Q\|P) = -\,\mathbb E_{x\sim q_\mathrm{data},\ z\sim q_\phi(z|x)}\big[\log p_\psi(z)\big]"
             r" + \text{terms without }\psi,\qquad p_\psi(z) = \sum_{k=1}^{K}\pi_k\,\mathcal N(z;\,m_k, C_k)")
    st.markdown(
        "With θ, φ and α fixed, the prior that minimises KL(Q‖P) is therefore the maximum-likelihood fit of "
        "the mixture to codes $\\tilde z = \\mu_\\phi(x) + \\sigma_\\phi(x)\\,\\epsilon$ of the training digits "
        "(ε: standard normal noise). "
        "EM, the standard fitting procedure for mixtures, finds it (`python -m training fit-prior`), and K is chosen "
        "by the likelihood of left-out training digits' codes, never by samples. KL(P‖Π) involves the prior too (it "
        "would pull it towards codes whose pictures the energy rates typical); this fit leaves it aside. The "
        "generator, inference and energy nets stay as trained.")
    if model.prior is None:
        st.info("This checkpoint has no learned prior, so its generator draws from N(0, I) only. "
                "`python -m training fit-prior <checkpoint>` fits one.")
        return [f"This checkpoint draws its codes from N(0, I): {model.config.nz} independent standard normal "
                "numbers per picture.",
                "Without a learned prior, many of those codes land between the clusters of the digits' codes, "
                "where the generator was never trained to draw.",
                "`python -m training fit-prior` fits the mixture; then this view compares the two priors side by "
                "side."]
    r = triangle.prior_picture(name, device, 32, seed)
    shown = 16 if present else len(r.normal)
    shares = {}
    cols = st.columns(2) if present else (st.container(), st.container())
    for col, images, energy, title in ((cols[0], r.normal, r.energy[0], "z ~ N(0, I), the paper's prior"),
                                       (cols[1], r.learned, r.energy[1],
                                        f"z ~ p_ψ, the learned prior (K = {len(r.weights)})")):
        images, energy = images[:shown], energy[:shown]
        pred = cache.evaluate_frames(images)
        shares[title] = None if pred is None else 100 * float((pred.confidence > metrics.CONFIDENT).mean())
        share_text = "" if pred is None else f": {shares[title]:.0f}% confident digits"
        col.image(_prior_grid(images, energy, pred), caption=f"g(z), {title}{share_text}")
    st.caption("Under each picture: the evaluator's digit and how sure it is (a digit classifier shipped with the "
               f"app; confident means over {100 * metrics.CONFIDENT:.0f}%), then the picture's energy E.")
    normal, learned = r.rare["N(0, I) draws"], r.rare["p_ψ draws"]
    with secondary("How typical each prior's codes are, and the mixture's components"):
        st.plotly_chart(histogram_figure(r.log_density, "log p_ψ(z) (higher: where more digits' codes "
                                                                         "are; tails clipped)", "codes"),
                        key=state.key("prior_fig"))
        st.caption(f"How typical each prior's codes are of the digits' codes, measured by the fitted density: "
                   f"{100 * normal:.0f}% of the N(0, I) draws fall below the 1st percentile of the held-out digits' "
                   f"codes (against {100 * learned:.0f}% of the p_ψ draws). Where the digits' codes are rare, the "
                   "generator was never trained to draw anything.")
        st.image(labelled_grid(r.means, [f"pi {w:.3f}" for w in r.weights], ncol=10, scale=4 if present else 2,
                               font_px=grid_font_px()),
                 caption="g(m_k): each component's mean code, drawn by the generator, heaviest component first")
        fit = model.meta.get("prior", {})
        if fit.get("choice"):
            st.dataframe([{"K": row["components"], "mean log p(z̃), fitted codes": row["fit_log_likelihood"],
                           "mean log p(z̃), left-out training digits' codes": row["held_out_log_likelihood"]}
                          for row in fit["choice"]], hide_index=True)
            st.caption(f"The choice of K: {fit.get('held_out', '')}. Chosen: K = {fit.get('components')}, then "
                       f"refit on all {fit.get('codes', 0):,} codes.")
        if text := triangle.prior_samples_caption(name):
            st.caption(text)
    a, b = shares.values()
    first = (f"Of the {shown} pictures per prior on screen, {a:.0f}% are confident digits under N(0, I) and "
             f"{b:.0f}% under the learned prior." if a is not None else
             f"The {shown} pictures per prior have median energy {np.median(r.energy[0][:shown]):.1f} under N(0, I) "
             f"and {np.median(r.energy[1][:shown]):.1f} under the learned prior.")
    return [first,
            f"{100 * normal:.0f}% of N(0, I)'s codes land where the digits' codes are rarest (below their 1st "
            f"percentile of log p_ψ), against {100 * learned:.0f}% of p_ψ's: there the generator draws blends.",
            f"The learned prior has K = {len(r.weights)} components; the heaviest carries {100 * r.weights[0]:.1f}% "
            f"of the codes, the lightest {100 * r.weights[-1]:.1f}%."]


def refinement_view() -> list[str]:
    base = model.draw_config()
    st.markdown(
        "The generator's samples can be *refined* on the energy by Langevin dynamics, the sampler used across this "
        "app: each step moves every pixel a little downhill on E and adds a little noise,")
    st.latex(r"x_{t+1} = x_t - s\,\nabla E(x_t) + \sigma\,\xi_t,\qquad T = \frac{\sigma^2}{2s}")
    st.markdown(
        "with step size $s$, noise $\\sigma$ ($\\xi_t$: standard normal noise, one number per pixel) and effective "
        "temperature $T$ (small T: nearly plain descent). Here each entry of the gradient ∇E is also *clipped* to a "
        "small bound and pixels are kept in [−1, 1], as the checkpoint's shipped settings do.")
    c = st.columns(3)
    k = c[0].slider("Langevin steps K on the energy model", 0, 300, min(base.n_steps, 300), 5, key=state.key("k"))
    s = c[1].number_input("step size s", 0.01, 100.0, float(base.step_size), key=state.key("s"),
                          help="x ← x − s·clip(∇E(x)) + σ·ξ. The shipped default is small: E was trained against "
                               "generator samples only, and long or large moves leave them for blob-like minima.")
    clip = c[2].number_input("clip ∇E entries at ±", 0.001, 1.0, float(base.grad_clip or 0.03), step=0.001,
                             format="%.3f", key=state.key("clip"))
    cfg = LangevinConfig(n_steps=k, step_size=s, noise_std=base.noise_std, grad_clip=clip, record_every=max(1, k))
    st.latex(update_equation(cfg))
    st.latex(temperature_equation(cfg))
    r = triangle.refined_samples(name, device, N_REFINE, cfg, seed)
    e0, e1 = r.refinement.energy[0], r.refinement.energy[-1]
    ch = triangle.change(r.generated, r.final, cfg)
    diff, gain = signed_difference(r.final - r.generated)
    prior = "p_ψ" if model.prior is not None else "N(0, I)"
    st.image(tile(np.concatenate([to_u8(r.generated), to_u8(r.final), diff]), ncol=N_REFINE, scale=3),
             caption=f"rows: generator samples g(z), z from {prior} (median energy {np.median(e0):.2f}) · after {k} "
                     f"Langevin steps on exp(−E) (median energy {np.median(e1):.2f}) · the change after − before, "
                     f"×{gain:.1f} (mid-grey: unchanged, white: brighter, black: darker)")
    cap = "" if ch.drift_cap is None else (
        f" They cannot move much: a clipped gradient moves a pixel at most s·clip = {s * clip:.3g} per step, "
        f"K·s·clip = {ch.drift_cap:.3g} in the K = {k} steps (the noise σ = {base.noise_std:g} adds a little).")
    st.markdown(
        f"**What you are looking at.** The top two rows look alike because the steps are small: each pixel moved by "
        f"**{ch.mean_abs:.4f}** on average and at most **{ch.max_abs:.3f}**, on a pixel range of 2 (black −1, "
        f"white 1).{cap} The bottom row makes the change visible, amplified ×{gain:.1f}: "
        f"**{100 * ch.stroke_share:.0f}%** of it falls on the strokes (the pixels brighter than mid-grey before, "
        f"{100 * ch.stroke_pixels:.0f}% of the picture), which get {'brighter' if ch.stroke_mean > 0 else 'darker'} "
        f"by {abs(ch.stroke_mean):.4f} on average, while the background gets "
        f"{'brighter' if ch.background_mean > 0 else 'darker'} by {abs(ch.background_mean):.4f}. The median energy "
        f"goes from {np.median(e0):.2f} to {np.median(e1):.2f}.")
    with secondary("The energy along the chain"):
        st.plotly_chart(compare_energy_figure({"refinement": r.refinement.energy}), key=state.key("ref_fig"))
    noise = noise_section(cfg, float(np.median(e1)))
    st.subheader("Refinement through the generator: Langevin in the latent space")
    st.markdown(
        "Moves in pixel space leave the generator's samples for the energy's blob-like minima. Moves on the codes "
        r"stay on what $g$ can draw: Langevin on $U(z) = E(g(z))/T - \log p(z)$, the energy model seen "
        "through the generator plus the prior's energy (the learned prior's when the model has one, else "
        r"$\tfrac12\|z\|^2$ of N(0, I)), from the generator's own codes (step 0 is its samples). It is the same "
        "update as above, on the code z instead of the pixels: step size s = η and noise σ = √(2η), so σ²/(2s) = 1 "
        "on U, and the T inside U is the temperature at which E counts. The energy critiques the generator, as in "
        "the triangle's training, but at sampling time; the landscape map descends this U with the N(0, I) prior at "
        "T = 0.3.")
    learned = model.prior is not None
    with secondary("Latent Langevin: the panel"):
        latent_panel(P, name, device, seed, 16, symbol="E", defaults=PAGE_DEFAULTS["triangle"], learned_prior=learned)
        if text := measured_caption(name, "from its learned prior" if learned else ""):
            st.caption(text)
    return [f"Refinement moved each pixel by {ch.mean_abs:.4f} on average (at most {ch.max_abs:.3f}, on a range of "
            f"2), which is why before and after look alike; the difference row, ×{gain:.1f}, shows "
            f"{100 * ch.stroke_share:.0f}% of the change on the strokes, {100 * ch.stroke_pixels:.0f}% of the "
            "pixels.",
            f"Those {k} steps took the median energy from {np.median(e0):.2f} to {np.median(e1):.2f} "
            f"({np.median(e1) - np.median(e0):+.2f}); the shipped steps are this small because longer or larger "
            "moves leave the generator's samples for blob-like minima of E.",
            noise]


def noise_section(cfg: LangevinConfig, refined_energy: float) -> str:
    """The same sampler from noise: why K steps leave noise, and what a longer run finds. Returns the notice line."""
    st.subheader("From noise instead of the generator's samples")
    long_k = st.slider("Longer run from noise: steps", 0, 1000, 200, 50, key=state.key("noise_k"),
                       help="The same s, σ and clip as above, run for this many steps from the same noise")
    if too_much := over_work_cap(N_REFINE, max(cfg.n_steps, long_k), "Langevin from noise"):
        st.error(too_much, icon=":material/error:")
        return "The run from noise was over the page's work cap: lower its steps to see it."
    ns = triangle.noise_start(name, device, N_REFINE, cfg, long_k, seed)
    short, long = triangle.change(ns.start, ns.short.final, cfg), triangle.change(ns.start, ns.long.final, cfg)
    near = float(np.mean(ns.nearest_digit))
    e_noise, e_short, e_long = (float(np.median(e)) for e in (ns.short.energy[0], ns.short.energy[-1],
                                                               ns.long.energy[-1]))
    st.image(tile(to_u8(np.concatenate([ns.start, ns.short.final, ns.long.final])), ncol=N_REFINE, scale=3),
             caption=f"rows: uniform noise (median energy {e_noise:.1f}) · after {cfg.n_steps} steps "
                     f"({e_short:.1f}) · after {long_k} steps ({e_long:.1f}), the same s, σ and clip")
    k = cfg.n_steps
    if short.drift_cap is not None and short.drift_cap < near:
        why = (f"With the settings above, {k} steps move a noise pixel by **{short.mean_abs:.3f}** on average: the "
               f"clipped gradient allows at most K·s·clip = **{short.drift_cap:.3g}**, while a noise picture is "
               f"**{near:.2f}** per pixel from its nearest held-out digit (on average over these {len(ns.start)}). "
               f"Noise cannot become a digit in {k} steps of this size; the shipped settings are made to touch up the "
               "generator's samples, not to draw from scratch.")
    else:
        why = (f"With the settings above, {k} steps move a noise pixel by **{short.mean_abs:.3f}** on average, "
               f"against **{near:.2f}** per pixel from a noise picture to its nearest held-out digit.")
    judged = ns.after_long
    verdict = "" if judged is None else (
        f" The evaluator calls **{100 * float((judged.confidence > metrics.CONFIDENT).mean()):.0f}%** of them "
        f"confident digits (mean probability of 'not a digit' {float(judged.junk.mean()):.2f}).")
    st.markdown(
        f"{why} A longer run, {long_k} steps, moves pixels by **{long.mean_abs:.3f}** and reaches a median energy "
        f"of **{e_long:.1f}**, {_lower(e_long, refined_energy)} than the refined "
        f"generator samples above ({refined_energy:.1f}).{verdict} That is the paper's design, not a fault of the "
        "sampler: the triangle learns without running Langevin from noise. Its energy model only ever compares real "
        "digits with the generator's samples, so E is shaped where the generator draws and says little about "
        "pictures far from there. The generator is the triangle's sampler; the energy refines and judges.")
    confident = "" if judged is None else (
        f"; {100 * float((judged.confidence > metrics.CONFIDENT).mean()):.0f}% of them are confident digits")
    return (f"From noise, {k} steps move pixels by {short.mean_abs:.3f} (a noise picture is {near:.2f} from the "
            f"nearest digit), so noise stays noise; {long_k} steps reach energy {e_long:.1f}, "
            f"{_lower(e_long, refined_energy)} than the refined samples' {refined_energy:.1f}{confident}.")


def interpolation_view() -> list[str]:
    st.markdown("Walk in a straight line between the codes of two held-out digits, μ(x_a) and μ(x_b), and let the "
                "generator draw each point on the way; the chart gives the energy of each picture.")
    c = st.columns(3)
    n_test = len(cache.load_data("mnist", "test")[0])
    a = c[0].number_input("First held-out digit (index)", 0, n_test - 1, 0, key=state.key("a"))
    b = c[1].number_input("Second held-out digit (index)", 0, n_test - 1, 1, key=state.key("b"))
    n = c[2].slider("Points on the path", 3, 16, 10, key=state.key("n"))
    r = triangle.latent_path(name, device, int(a), int(b), n)
    st.image(tile(to_u8(r.path), ncol=n, scale=3),
             caption=f"g((1−t)·μ(x_a) + t·μ(x_b)) from {_a(r.ends[0])} to {_a(r.ends[1])}")
    t = np.linspace(0, 1, n)
    st.plotly_chart(line_figure(t, {"E(g(z_t))": r.energy}, "t", "energy"), key=state.key("path_fig"))
    top = int(np.argmax(r.energy))
    bump = float(r.energy[top] - max(r.energy[0], r.energy[-1]))
    return [f"From the {r.ends[0]} (energy {r.energy[0]:.1f} at t = 0) to the {r.ends[1]} ({r.energy[-1]:.1f} at "
            f"t = 1) every point of the path is a picture the generator can draw.",
            f"The highest energy on the way is {r.energy[top]:.1f} at t = {t[top]:.2f}, " + (
                f"{bump:.1f} above the higher end: the energy model finds the in-between pictures less typical "
                "than either digit." if bump > 0 else "at an end: no point in between is less typical than both "
                "digits."),
            f"The lowest is {r.energy.min():.1f} at t = {t[int(np.argmin(r.energy))]:.2f}, over {n} points."]


def triangle_view() -> list[str]:
    hist = model.meta.get("history", [])
    if not hist:
        st.info("This checkpoint has no training history.")
        return ["This checkpoint has no training history, so there is nothing to read here.",
                f"Its code has {model.config.nz} numbers.", "Try the shipped triangle-mnist checkpoint."]
    st.markdown(
        "Training repeats three steps on each batch, each lowering its own loss with the other two models fixed:\n"
        "- the **E step** trains the energy model: lower E on real digits, raise it on the generator's samples (it "
        "raises the **energy gap** E_P[E] − E_Q[E], the mean energy of the generator's samples minus that of real "
        "digits);\n"
        "- the **I step** trains the inference model: reconstruct real digits through it (KL(Q‖P)) and read back the "
        "codes of the generator's own pictures;\n"
        "- the **G step** trains the generator: reconstruct real digits, lower the energy E_P[E] of its samples, and "
        "draw pictures whose codes the inference model can read back.\n\n"
        "Reading back is the **sleep NLL**, −log q_φ(z | g(z)): draw a code z from the prior, let the generator draw "
        "it, and ask how likely the inference model finds the true z for that picture (the 'sleep' phase of the "
        "wake-sleep algorithm, which learns from the model's own dreams; lower is better). In KL(Q‖P), the "
        "reconstruction error is joined by **KL_z** = KL(q_φ(z|x)‖p(z)), how far the codes of real digits spread "
        "from the prior.")
    st.plotly_chart(triangle_figure(hist[-1]), key=state.key("diagram"))
    st.markdown("Values from the last row of the training history. Only differences of the KL terms against Π "
                "are computable (π_α's normaliser and the entropies of P and the data are not), so the diagram shows "
                "the parts each term contributes to the updates: the E step raises the energy gap, the G step "
                "lowers E_P[E], the I step lowers KL(Q‖P) and the sleep NLL.")
    st.plotly_chart(history_figure(hist, ["kl_qp", "energy_gap", "sleep_nll", "e_real", "e_fake"]),
                    key=state.key("hist"))
    st.caption("kl_qp: KL(Q‖P) up to constants; energy_gap: E_P[E] − E_Q[E]; sleep_nll: the sleep NLL; e_real and "
               "e_fake: the mean energy of real digits (E_Q[E]) and of the generator's samples (E_P[E]).")
    errors = ["mse"] + (["recovery_error"] if "recovery_error" in hist[-1] else [])  # runs with --occlusion
    st.plotly_chart(history_figure(hist, errors), key=state.key("hist_mse"))
    st.caption("mse: per-pixel reconstruction error of the training batch on the [0, 1] scale"
               + ("; recovery_error: error on the hidden pixels of the occluded training digits" if len(errors) > 1
                  else ""))
    first, last = hist[0], hist[-1]
    it = int(last.get("iteration", len(hist)))
    gap = last["energy_gap"]
    return [f"After {it:,} iterations the energy gap is {gap:+.2f}: the energy model rates the generator's samples "
            f"({last['e_fake']:.1f}) {'above' if gap > 0 else 'below'} real digits ({last['e_real']:.1f}), a "
            f"difference of {100 * abs(gap) / max(abs(last['e_real']), 1e-12):.1f}% of the energies' size.",
            f"KL(Q‖P) fell from {first['kl_qp']:.1f} to {last['kl_qp']:.1f} as the reconstructions' error went from "
            f"{first['mse']:.3f} to {last['mse']:.4f} per pixel.",
            f"The sleep NLL fell from {first['sleep_nll']:.1f} to {last['sleep_nll']:.1f}: the inference model learned "
            "to read back the generator's own codes."]


VIEWS = dict(zip(VIEW_NAMES, (reconstruction_view, occlusion_view, generator_view, refinement_view,
                             interpolation_view, triangle_view), strict=True))
view = st.segmented_control("View", VIEW_NAMES, default="Reconstruction", key=state.key("view")) or "Reconstruction"
lines = VIEWS[view]()
share(fields)
what_to_notice("views/triangle.py", lines)
