"""Semantic vs texture (Denoising-EBM): two-stage sampling played live beside texture-only sampling from noise,
the denoiser at several noise levels, the latent space with the semantic chains, out-of-distribution scores."""

import numpy as np
import streamlit as st

from ebmviz.app import links
from ebmviz.app.cache import evaluate_frames
from ebmviz.app.export_panel import export_panel
from ebmviz.app.pages import semantic_texture
from ebmviz.app.pages.semantic_texture import CONFIDENT, TwoStageConfig, to_u8, trajectory_arrays
from ebmviz.app.player import FrameView, Player, Recorded
from ebmviz.app.widgets import checkpoint_names, model_picker, of_kind, over_work_cap, share, shared
from ebmviz.figures.chains import projection_figure
from ebmviz.figures.charts import histogram_figure, history_figure
from ebmviz.figures.images import side_by_side, tile
from ebmviz.figures.semantic_texture import energy_maps_figure, two_stage_energy_figure

P = "st"
state = semantic_texture.TwoStageState(P)
VIEWS = ("Two-stage sampling", "Denoising", "Latent space", "Out of distribution", "Training")
fields = [links.choice(state.key("ckpt"), "model", checkpoint_names(of_kind("denoising"))),
          links.choice(state.key("view"), "view", VIEWS), links.integer(state.key("dn_n"), "digits", 1, 8),
          links.choice(state.key("lat_sigma"), "encode_sigma", [0.01, 0.05, 0.1, 0.2, 0.5, 1.0]),
          links.choice(state.key("ood_sigma"), "score_sigma", [0.01, 0.02, 0.05, 0.1, 0.2]),
          links.choice(state.key("ood_m"), "per_group", [200, 500, 1000])]
links.restore(fields)
frame = {}  # the sampling view's frame on show, for the link
st.title("Semantic vs texture")
st.markdown(
    "The Denoising-EBM (Zeng 2023) builds an image energy from a **denoising autoencoder** "
    r"$r_\varphi(\tilde x, \sigma) = g_\beta(f_\alpha(\tilde x, \sigma))$, $\tilde x = x + \sigma\epsilon$. "
    "The *texture energy* is its reconstruction error in pixels; the *semantic energy* is the same error for the "
    r"image $h_\gamma(z)$ that a decoder makes from a latent code $z$. Sampling runs in that order: a few Langevin "
    "steps on $z$ find *what* to draw, then Langevin on pixels adds *how it looks*.")
st.latex(r"U_c(x,\sigma) = \frac{\|x - r_\varphi(\tilde x,\sigma)\|^2}{2\sigma^2}\;\;(7)\qquad "
         r"U_s(z,\sigma) = \frac{\|h_\gamma(z) - r_\varphi(\tilde h_\gamma(z),\sigma)\|^2}{2\sigma^2}\;\;(8)")
seed, device = shared().seed, shared().device
name, model = model_picker("Denoising-EBM checkpoint", state.key("ckpt"), of_kind("denoising"))
shipped = model.draw_config()
# setting keys carry the model: another model, fresh defaults
_k = lambda field: state.key(f"{name}_{field}")  # noqa: E731
fields += [links.integer(_k("n"), "chains", 4, 64), links.number(_k("sigma"), "sigma", 0.0, 10.0),
           links.number(_k("sigma_end"), "sigma_end", 0.0, 10.0), links.integer(_k("record"), "record", 1, 100),
           links.integer(_k("k"), "K", 0, 500), links.number(_k("eta1"), "eta1", 0.0, 1e6),
           links.integer(_k("t"), "T", 0, 1000), links.number(_k("eps2"), "eps2", 0.0, 1e6)]
links.restore(fields[-8:])
lo, hi = model.sigma_range
_tc = model.meta.get("train_config", {})
with st.expander("Where this port fills the paper's gaps", expanded=False):
    st.markdown(
        "- The net predicts the noise, r = x̃ − σ·ε̂(x̃, σ): the same r, so eq. 7 holds as written.\n"
        "- σ enters as log σ (any σ in [0.01, 1] can be asked for); the DAE loss is weighted 1/σ² across the ladder.\n"
        "- Codes are normalised onto the sphere of radius √nz, where draws of N(0, I) concentrate"
        + (" and h_γ puts any z there before decoding" if model.config.project_codes else "") + ".\n"
        "- `model(x)` is U_c at σ₀ = 0.05 with one fixed ε; the sampler draws a fresh ε every step, as the paper.\n"
        "- Pixel steps are η₂ = ε₂·σ_t², and the texture stage may anneal σ_t from σ to σ_end.\n"
        "- The maximum-likelihood updates carry a weight and a small α(U⁺² + U⁻²) term that keeps both energies "
        "bounded."
        + ("\n- Eq. 13 also trains the encoder f_α, so the code carries what h_γ needs: with U-net skips the DAE "
           "can denoise without its bottleneck, and when only γ learned (the paper's eq. 13) h_γ(f_α(x̃)) was seldom "
           "a confident digit (checkpoints/README.md has the numbers)." if _tc.get("codes") else "")
        + (f"\n- A uniformity term (weight {_tc['uniformity']:g}) spreads the codes over their sphere, so random "
           "starts decode nearer to digits." if _tc.get("uniformity") else ""))


def settings() -> tuple[TwoStageConfig, int]:
    """The two-stage settings (defaults: the checkpoint's), validated lazily by the sampler."""
    k = _k
    with st.expander("Two-stage settings", expanded=False):
        c = st.columns(4)
        n = c[0].slider("Chains", 4, 64, 16, 4, key=k("n"))
        sigma = c[1].number_input("σ (semantic stage, texture start)", 0.0, 10.0, float(shipped.sigma), 0.01,
                                  format="%g", key=k("sigma"),
                                  help=f"Trained on σ from {lo:g} to {hi:g}; outside that the denoiser never saw the "
                                       "noise level")
        sigma_end = c[2].number_input("σ_end (texture end)", 0.0, 10.0, float(shipped.sigma_end), 0.01, format="%g",
                                      key=k("sigma_end"), help="The texture stage's σ_t falls geometrically from σ to "
                                                               "σ_end; equal to σ, it stays at one level (eq. 16)")
        record = c[3].number_input("Record every k steps", 1, 100, 1, key=k("record"))
        c = st.columns(4)
        k_steps = c[0].number_input("K latent steps", 0, 500, shipped.k_steps, key=k("k"))
        eta1 = c[1].number_input("η₁ latent step", 0.0, 1e6, float(shipped.latent_step), 0.01, format="%g",
                                 key=k("eta1"))
        t_steps = c[2].number_input("T pixel steps", 0, 1000, shipped.t_steps, key=k("t"))
        eps2 = c[3].number_input("ε₂ (η₂ = ε₂·σ_t²)", 0.0, 1e6, float(shipped.texture_step), 0.05, format="%g",
                                 key=k("eps2"))
    cfg = TwoStageConfig(sigma=float(sigma), k_steps=int(k_steps), latent_step=float(eta1), t_steps=int(t_steps),
                         texture_step=float(eps2), sigma_end=float(sigma_end), record_every=int(record))
    st.latex(rf"z_{{t+1}} = z_t - {cfg.latent_step:g}\,\nabla_z U_s(z_t, {cfg.sigma:g}) + "
             rf"\sqrt{{2\cdot{cfg.latent_step:g}}}\,\xi_t\;\;(15)\quad t<{cfg.k_steps},\qquad x^0 = h_\gamma(z_K)")
    st.latex(rf"x_{{t+1}} = x_t - \eta_t\nabla_x U_c(x_t, \sigma_t) + \sqrt{{2\eta_t}}\,\xi_t\;\;(16)\quad "
             rf"\eta_t = {cfg.texture_step:g}\,\sigma_t^2,\;\; \sigma_t: {cfg.sigma:g} \to {cfg.sigma_end:g},"
             rf"\;\; t < {cfg.t_steps}")
    return cfg, n


def _runs(cfg: TwoStageConfig, n: int) -> semantic_texture.Runs | None:
    try:
        cfg.validate(model.sigma_range)
    except ValueError as err:
        st.error(f"These settings cannot run: {err}.", icon=":material/error:")
        return None
    # two-stage: K latent + T pixel steps; texture only: T pixel steps
    if too_much := over_work_cap(n, cfg.k_steps + 2 * cfg.t_steps, "Both samplers together"):
        st.error(too_much, icon=":material/error:")
        return None
    return semantic_texture.runs(name, device, cfg, n, seed)


def _confident(images: np.ndarray) -> str:
    pred = evaluate_frames(to_u8(images))
    return "–" if pred is None else f"{100 * (pred.confidence > CONFIDENT).mean():.0f}%"


def sampling_view(cfg: TwoStageConfig, n: int) -> None:
    r = _runs(cfg, n)
    if r is None:
        return
    spec = (name, device, cfg, n, seed)
    if state.spec != spec:
        state.spec = spec
        state.rewind()
    frames = semantic_texture.two_stage_timeline(r)
    sem, tex, only = r.two_stage.semantic, r.two_stage.texture, r.texture_only
    sigmas = cfg.texture_sigmas()
    ncol = 4 if n <= 16 else 8

    def draw(i: int, out: FrameView) -> None:
        f = frames[i]
        if f.stage == "semantic":
            where = (f"**Semantic stage** · latent step {f.step} / {cfg.k_steps} · median U_s = "
                     f"{np.median(f.energy):.4g} · left: h(z_t); right: the texture-only chains wait at their noise")
        else:
            s = sigmas[min(f.step, len(sigmas)) - 1] if sigmas else cfg.sigma
            where = (f"**Texture stage** · pixel step {f.step} / {cfg.t_steps} · σ_t = {s:.3g} · median U_c: "
                     f"two-stage {np.median(f.energy):.4g}, texture only {np.median(f.texture_only_energy):.4g}")
        out.status.markdown(where)
        out.picture.image(side_by_side(tile(f.two_stage_u8, ncol=ncol, scale=3),
                                               tile(f.texture_only_u8, ncol=ncol, scale=3)),
                          caption="left: two-stage (semantic, then texture) · right: texture only, from "
                                  "Gaussian noise, the same pixel steps")
        if not out.playing:
            out.below.plotly_chart(two_stage_energy_figure(sem.energy, tex.energy, only.energy,
                                                                   (f.stage, f.step)), key=state.key("energy"))

    player = Player(state, Recorded(len(frames)))
    player.seek(links.requested_frame(len(frames) - 1))
    frame[links.FRAME] = str(state.position)
    player.controls()
    player.show(draw, scrub_label="Timeline", on_pause=lambda i: share(fields, {links.FRAME: str(i)}))
    export_panel(f"semantic-texture-{name}-seed{seed}",
                 frames=lambda: np.stack([side_by_side(tile(f.two_stage_u8, ncol=ncol, scale=2),
                                                               tile(f.texture_only_u8, ncol=ncol, scale=2))
                                          for f in frames]),
                 trajectory=lambda: {f"{part}_{k}": v for part, t in (("semantic", sem), ("texture", tex),
                                                                      ("texture_only", only))
                                     for k, v in trajectory_arrays(t).items()},
                 config={"model": name, "chains": n, "seed": seed, "device": device, "two_stage": cfg.to_dict()},
                 figures={"energies": lambda: two_stage_energy_figure(sem.energy, tex.energy,
                                                                                          only.energy)},
                 key=state.key("export"))
    diverged = sem.n_diverged + tex.n_diverged + only.n_diverged
    if diverged:
        st.warning(f"{diverged} chains met a non-finite value and stopped there (shown as they were); a smaller "
                   "step keeps them finite.", icon=":material/warning:")
    st.subheader("What the texture stage added")
    m = min(n, 8)
    added = (tex.final[:m] - sem.final[:m]) / 2  # in [-1, 1]: grey is no change
    st.image(tile(to_u8(np.concatenate([sem.final[:m], tex.final[:m], added])), ncol=m, scale=3),
             caption="rows: the semantic image x⁰ = h(z_K) · the two-stage sample x_T · the texture added, "
                     "(x_T − x⁰)/2 (grey: unchanged, white: ink added, black: ink removed)")
    st.latex(rf"\widetilde{{U_s}}(z_K) = {np.median(sem.energy[-1]):.4g},\quad "
             rf"\widetilde{{U_c}}(x^0) = {np.median(tex.energy[0]):.4g} \;\to\; "
             rf"\widetilde{{U_c}}(x_T) = {np.median(tex.energy[-1]):.4g}\quad"
             rf"\text{{(medians over the {n} chains; U at the σ of each step)}}")
    st.dataframe([{"samples": "semantic images h(z_K)", "confident digits (> 90%)": _confident(sem.final)},
                  {"samples": "two-stage x_T", "confident digits (> 90%)": _confident(tex.final)},
                  {"samples": "texture only, from noise", "confident digits (> 90%)": _confident(only.final)}],
                 hide_index=True)
    st.caption(f"{n} two-stage chains drawn in {r.seconds:.2f} s ({cfg.k_steps} latent + {cfg.t_steps} pixel "
               f"steps). Confident: the evaluator gives one digit more than 90%.")


def denoise_view() -> None:
    c = st.columns(2)
    n = c[0].slider("Digits", 1, 8, 4, key=state.key("dn_n"))
    choices = [0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0]
    sigmas = c[1].multiselect("Noise levels σ", choices, default=[0.05, 0.2, 0.5, 1.0], key=state.key("dn_sigmas"))
    if not sigmas:
        st.info("Pick at least one noise level.")
        return
    sigmas = tuple(sorted(sigmas))
    panel = semantic_texture.denoise_panel(name, device, sigmas, n, seed)
    st.image(tile(to_u8(panel.clean), ncol=n, scale=3), caption="x: held-out digits from the seed")
    for i, s in enumerate(sigmas):
        a, b = st.columns(2)
        a.image(tile(to_u8(np.clip(panel.noisy[i], -1, 1)), ncol=n, scale=3),
                caption=f"x̃ = x + {s:g}ε (shown clipped)")
        b.image(tile(to_u8(np.clip(panel.denoised[i], -1, 1)), ncol=n, scale=3),
                caption=f"r(x̃, {s:g}): U_c = " + ", ".join(f"{e:.3g}" for e in panel.energy[i]))
    pick = st.slider("Energy map of digit", 1, n, 1, key=state.key("dn_pick")) - 1 if n > 1 else 0
    st.plotly_chart(energy_maps_figure(panel.energy_map[:, pick], [f"σ = {s:g}" for s in sigmas]),
                    key=state.key("maps"))
    st.caption("The per-pixel texture energy (x − r)²/(2σ²), the paper's vector output; U_c is its sum. Bright "
               "pixels are where the denoiser's reconstruction misses the clean digit most.")


def latent_view(cfg: TwoStageConfig, n: int) -> None:
    sigma = st.select_slider("Encode at σ", [0.01, 0.05, 0.1, 0.2, 0.5, 1.0],
                             value=min([0.01, 0.05, 0.1, 0.2, 0.5, 1.0], key=lambda s: abs(s - cfg.sigma)),
                             key=state.key("lat_sigma"))
    lm = semantic_texture.latent_map(name, device, sigma)
    r = _runs(cfg, n)
    paths = np.zeros((0, 0, 2)) if r is None else lm.pca.transform(
        r.two_stage.latents.reshape(-1, r.two_stage.latents.shape[-1])).reshape(*r.two_stage.latents.shape[:2], 2)
    st.plotly_chart(projection_figure(lm.xy, lm.labels, paths, explained=lm.pca.explained), key=state.key("lat"))
    st.caption(f"z = f_α(x + {sigma:g}ε, {sigma:g}) of {len(lm.labels):,} held-out digits, projected on their two "
               f"principal axes and coloured by digit; black: the {n} semantic chains z_0 → z_K from the sampling "
               "settings (✕ at z_K). The chains start from N(0, I), not from the codes.")


def ood_view() -> None:
    c = st.columns(2)
    sigma = c[0].select_slider("σ of the score", [0.01, 0.02, 0.05, 0.1, 0.2], value=0.05, key=state.key("ood_sigma"),
                               help="The paper scores at σ = 0.05")
    m = c[1].select_slider("Images per group", [200, 500, 1000], value=500, key=state.key("ood_m"))
    res = semantic_texture.ood(name, device, sigma, m, seed)
    st.plotly_chart(histogram_figure({g: -s for g, s in res.scores.items()}, "U_c(x, σ)", "images", log=True),
                    key=state.key("ood_hist"))
    st.dataframe([{"out-of-distribution group": g, "AUROC of −U_c (MNIST test = positive)": f"{a:.3f}"}
                  for g, a in res.auroc.items()], hide_index=True)
    for g, why in res.missing.items():
        st.info(f"{g} is not scored: {why}")
    st.caption("−U_c(x, σ) as the score, as in the paper's §5.2 (with the model's one fixed ε). AUROC 1: every "
               "held-out digit scores above every image of the group; 0.5: no better than chance. Interpolations "
               "are pixel averages ½(x_i + x_j) of two held-out digits.")


def training_view() -> None:
    hist = model.meta.get("history", [])
    if not hist:
        st.info("This checkpoint has no training history.")
        return
    st.plotly_chart(history_figure(hist, ["dae_loss", "decoder_loss"]), key=state.key("h_loss"))
    if "us_fake" in hist[-1]:
        st.plotly_chart(history_figure(hist, ["us_data", "us_fake", "uc_data", "uc_fake"]), key=state.key("h_ml"))
    tc = model.meta.get("train_config", {})
    mixed = tc.get("codes") and tc.get("uniformity") and "uniformity" not in hist[-1]
    st.caption("dae_loss: mean ‖r − x‖²/σ² (= 2·U_c on data); decoder_loss: eq. 13"
               + (f" — in this checkpoint's history plus {tc['uniformity']:g} × the codes' uniformity term (≤ 0), "
                  "logged together by the run that made it, hence values below zero" if mixed else "")
               + f". us_/uc_: U_s and U_c of data and of the round's chains (K = {tc.get('k_steps', '?')}, "
                 f"T = {tc.get('t_steps', '?')}), which the maximum-likelihood updates push apart.")


view = st.segmented_control("View", VIEWS, default=VIEWS[0], key=state.key("view")) or VIEWS[0]
if view in ("Two-stage sampling", "Latent space"):
    config, chains = settings()
    (sampling_view if view == VIEWS[0] else latent_view)(config, chains)
elif view == "Denoising":
    denoise_view()
elif view == "Out of distribution":
    ood_view()
else:
    training_view()
share(fields, frame)
