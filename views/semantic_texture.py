"""Semantic vs texture (Denoising-EBM): two-stage sampling played live beside texture-only sampling from noise,
the denoiser at several noise levels, the latent space with the semantic chains, out-of-distribution scores."""

import numpy as np
import streamlit as st

from ebmviz.app import links
from ebmviz.app.export_panel import export_panel
from ebmviz.app.lesson import what_to_notice
from ebmviz.app.pages import semantic_texture
from ebmviz.app.pages.semantic_texture import TwoStageConfig, to_u8, trajectory_arrays
from ebmviz.app.player import FramePanes, FrameView, Player, Recorded
from ebmviz.app.presentation import grid_font_px, presenting
from ebmviz.app.widgets import checkpoint_names, model_picker, of_kind, over_work_cap, share, shared
from ebmviz.figures.chains import projection_figure
from ebmviz.figures.charts import histogram_figure, history_figure
from ebmviz.figures.images import labelled_grid, side_by_side, tile
from ebmviz.figures.semantic_texture import difference_picture, energy_maps_figure, two_stage_energy_figure

SCRIPT = "views/semantic_texture.py"
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
present = presenting()
st.title("Semantic vs texture")
if present:  # a projector's first screen: the model beside the view, the text and the settings folded in one row
    pick_at, view_at = st.columns(2, vertical_alignment="bottom")
    about_at, gaps_at, settings_at = st.columns(3)
    about = about_at.expander("What this page shows, in words and in the paper's notation")
else:
    about, view_at, gaps_at, settings_at = st.container(), None, None, None
with about:
    st.markdown(
        "A **denoiser** is a network that gets a digit with noise added and returns its best guess of the clean "
        "digit. How far that guess lands from the image is an **energy**: small for images like the digits it was "
        "trained on, which it restores well, large for anything else. This model uses that energy twice. First it "
        "decides *what* to draw: it searches a short **code**, a handful of numbers, that a second network, the "
        "**semantic decoder**, turns into a digit. Then it settles *how it looks*, pixel by pixel. Both searches are "
        "**Langevin** runs: small steps downhill on the energy, with noise added at every step.")
seed, device = shared().seed, shared().device
if not present:
    pick_at = st.container()
with pick_at:
    name, model = model_picker("Denoising-EBM checkpoint", state.key("ckpt"), of_kind("denoising"))
shipped = model.draw_config()
with about if present else st.container():
    st.markdown(
        "The Denoising-EBM (Zeng 2023) builds its energy from a **denoising autoencoder** (DAE). An image $x$ gets "
        r"noise of level $\sigma$, $\tilde x = x + \sigma\epsilon$ with $\epsilon \sim \mathcal N(0, I)$; the "
        r"encoder $f_\alpha$ turns $\tilde x$ into the code $z$ " f"({model.config.nz} numbers) "
        r"and the decoder $g_\beta$ turns it back into the "
        r"clean guess $r_\varphi(\tilde x, \sigma) = g_\beta(f_\alpha(\tilde x, \sigma))$ (a U-net: shortcuts carry "
        r"details past the code). The **texture energy** $U_c$ is its reconstruction error in pixels; the "
        r"**semantic energy** $U_s$ is the same error for the image $h_\gamma(z)$ that the semantic decoder "
        r"$h_\gamma$ makes from a code $z$ alone:")
    st.latex(r"U_c(x,\sigma) = \frac{\|x - r_\varphi(\tilde x,\sigma)\|^2}{2\sigma^2}\;\;(7)\qquad "
             r"U_s(z,\sigma) = \frac{\|h_\gamma(z) - r_\varphi(\tilde h_\gamma(z),\sigma)\|^2}{2\sigma^2}\;\;(8)")
    st.markdown(
        "Sampling runs in that order: $K$ Langevin steps on $z$ find *what* to draw (the **semantic stage**), then "
        "Langevin steps on the pixels of $x^0 = h_\\gamma(z_K)$ settle *how it looks* (the **texture stage**; the "
        "paper calls their number $T$, this page says *pixel steps*, as $T$ is the temperature below). Both are the "
        "Langevin update used across this app, $x_{t+1} = x_t - s\\,\\nabla E(x_t) + \\text{noise}\\cdot\\xi_t$ "
        "with step size $s$ and effective temperature $T = \\text{noise}^2/(2s)$, where the paper takes the step "
        "size $s = \\eta_1$ on codes, $s = \\eta_2$ on pixels, and the noise $\\sqrt{2s}$ (the app's $\\sigma$; "
        "here $\\sigma$ already names the denoiser's noise level). So $T = 1$: unlike the app's short-run image "
        "EBMs, which sample far colder, this model samples $\\exp(-U)$ as it is.")
    st.latex(r"T = \frac{(\sqrt{2s})^2}{2s} = 1")
# setting keys carry the model: another model, fresh defaults
_k = lambda field: state.key(f"{name}_{field}")  # noqa: E731
fields += [links.integer(_k("n"), "chains", 4, 64), links.number(_k("sigma"), "sigma", 0.0, 10.0),
           links.number(_k("sigma_end"), "sigma_end", 0.0, 10.0), links.integer(_k("record"), "record", 1, 100),
           links.integer(_k("k"), "K", 0, 500), links.number(_k("eta1"), "eta1", 0.0, 1e6),
           links.integer(_k("t"), "T", 0, 1000), links.number(_k("eps2"), "eps2", 0.0, 1e6)]
links.restore(fields[-8:])
lo, hi = model.sigma_range
_tc = model.meta.get("train_config", {})
with (gaps_at or st).expander("Where this port fills the paper's gaps", expanded=False):
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
    box = (settings_at or st).expander("Two-stage settings", expanded=False)
    with box:
        c = st.columns(4)
        n = c[0].slider("Chains", 4, 64, 16, 4, key=k("n"))
        sigma = c[1].number_input("σ (semantic stage, texture start)", 0.0, 10.0, float(shipped.sigma), 0.01,
                                  format="%g", key=k("sigma"),
                                  help=f"The denoiser's noise level. Trained on σ from {lo:g} to {hi:g}; outside that "
                                       "the denoiser never saw the noise level")
        sigma_end = c[2].number_input("σ_end (texture end)", 0.0, 10.0, float(shipped.sigma_end), 0.01, format="%g",
                                      key=k("sigma_end"), help="The texture stage's σ_t falls geometrically from σ to "
                                                               "σ_end; equal to σ, it stays at one level (eq. 16)")
        record = c[3].number_input("Record every k steps", 1, 100, 1, key=k("record"))
        c = st.columns(4)
        k_steps = c[0].number_input("K latent steps", 0, 500, shipped.k_steps, key=k("k"))
        eta1 = c[1].number_input("η₁ latent step", 0.0, 1e6, float(shipped.latent_step), 0.01, format="%g",
                                 key=k("eta1"), help="The step size s of the semantic stage; its noise is √(2s)")
        t_steps = c[2].number_input("Pixel steps (the paper's T)", 0, 1000, shipped.t_steps, key=k("t"))
        eps2 = c[3].number_input("ε₂ (η₂ = ε₂·σ_t²)", 0.0, 1e6, float(shipped.texture_step), 0.05, format="%g",
                                 key=k("eps2"), help="Sets the step size s = η₂ of the texture stage, which follows "
                                                     "U_c's 1/σ² curvature; its noise is √(2s)")
    cfg = TwoStageConfig(sigma=float(sigma), k_steps=int(k_steps), latent_step=float(eta1), t_steps=int(t_steps),
                         texture_step=float(eps2), sigma_end=float(sigma_end), record_every=int(record))
    with box if present else st.container():
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


def _pct(share: float | None) -> str:
    return "–" if share is None else f"{100 * share:.0f}%"


NO_RUN = ["These settings cannot run (the message above says why); the checkpoint's own settings can.",
          "The semantic stage decides which digit, the texture stage how it looks.",
          "Open Two-stage settings to set the steps and noise levels back."]
PRESENT_CHAINS = 8  # chains per side a projector shows, 4 × 2 tiles large enough for the back of a room


def sampling_view(cfg: TwoStageConfig, n: int) -> list[str]:
    r = _runs(cfg, n)
    if r is None:
        return NO_RUN
    spec = (name, device, cfg, n, seed)
    if state.spec != spec:
        state.spec = spec
        state.rewind()
    frames = semantic_texture.two_stage_timeline(r)
    sem, tex, only = r.two_stage.semantic, r.two_stage.texture, r.texture_only
    sigmas = cfg.texture_sigmas()
    ncol = 4 if n <= 16 else 8
    panes = FramePanes((1.25, 1.0))
    shown = min(n, PRESENT_CHAINS)

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
        caption = "left: two-stage (semantic, then texture) · right: texture only, from Gaussian noise, the same " \
                  "pixel steps"
        if not present:
            out.picture.image(side_by_side(tile(f.two_stage_u8, ncol=ncol, scale=3),
                                           tile(f.texture_only_u8, ncol=ncol, scale=3)), caption=caption)
            if not out.playing:
                out.below.plotly_chart(two_stage_energy_figure(sem.energy, tex.energy, only.energy,
                                                               (f.stage, f.step)), key=state.key("energy"))
            return
        grid, trace, with_trace = panes(out)
        u = "U_s" if f.stage == "semantic" else "U_c"
        font = grid_font_px()
        number = lambda e: f"{e:.0f}" if abs(e) >= 100 else f"{e:.3g}"  # noqa: E731
        grid.image(side_by_side(
            labelled_grid(f.two_stage_u8[:shown], [number(e) for e in f.energy[:shown]], ncol=4, scale=3,
                          font_px=font),
            labelled_grid(f.texture_only_u8[:shown], [number(e) for e in f.texture_only_energy[:shown]],
                          ncol=4, scale=3, font_px=font), gap=24),
            caption=caption + (f" · the first {shown} of {n} chains" if shown < n else "")
            + f" · under each: its {u} (left), its U_c (right)")
        if with_trace:
            trace.plotly_chart(two_stage_energy_figure(sem.energy, tex.energy, only.energy, (f.stage, f.step),
                                                       height=255, font_px=16), key=state.key("energy"))

    player = Player(state, Recorded(len(frames)))
    player.seek(links.requested_frame(len(frames) - 1))
    frame[links.FRAME] = str(state.position)
    pace = player.controls_and_pace()
    player.show(draw, scrub_label="Timeline", frame_seconds=pace,
                on_pause=lambda i: share(fields, {links.FRAME: str(i)}))
    if not present:
        export_panel(f"semantic-texture-{name}-seed{seed}",
                     frames=lambda: np.stack([side_by_side(tile(f.two_stage_u8, ncol=ncol, scale=2),
                                                           tile(f.texture_only_u8, ncol=ncol, scale=2))
                                              for f in frames]),
                     trajectory=lambda: {f"{part}_{k}": v for part, t in (("semantic", sem), ("texture", tex),
                                                                          ("texture_only", only))
                                         for k, v in trajectory_arrays(t).items()},
                     config={"model": name, "chains": n, "seed": seed, "device": device, "two_stage": cfg.to_dict()},
                     figures={"energies": lambda: two_stage_energy_figure(sem.energy, tex.energy, only.energy)},
                     key=state.key("export"))
    diverged = sem.n_diverged + tex.n_diverged + only.n_diverged
    if diverged:
        st.warning(f"{diverged} chains met a non-finite value and stopped there (shown as they were); a smaller "
                   "step keeps them finite.", icon=":material/warning:")
    added = texture_section(cfg, n, r)
    conf = {k: semantic_texture.confident_share(x) for k, x in
            (("semantic", sem.final), ("two-stage", tex.final), ("only", only.final))}
    st.dataframe([{"samples": "semantic images h(z_K)", "confident digits (> 90%)": _pct(conf["semantic"])},
                  {"samples": "two-stage x_T", "confident digits (> 90%)": _pct(conf["two-stage"])},
                  {"samples": "texture only, from noise", "confident digits (> 90%)": _pct(conf["only"])}],
                 hide_index=True)
    st.caption(f"{n} two-stage chains drawn in {r.seconds:.2f} s ({cfg.k_steps} latent + {cfg.t_steps} pixel "
               "steps). Confident: the evaluator, a separately trained digit classifier, gives one digit more than "
               "90%.")
    us0, usk = float(np.median(sem.energy[0])), float(np.median(sem.energy[-1]))
    o0, ot = float(np.median(only.energy[0])), float(np.median(only.energy[-1]))
    went = lambda a, b: "fell" if b < a else "rose"  # noqa: E731
    return [
        f"Semantic stage: in {cfg.k_steps} latent steps the median U_s {went(us0, usk)} from {us0:.4g} to "
        f"{usk:.4g}, and the evaluator already reads {_pct(conf['semantic'])} of the semantic images h(z_K) as "
        "confident digits: the code alone decides which digit.",
        f"Texture stage: the median U_c {went(added.uc_start, added.uc_end)} from {added.uc_start:.4g} to "
        f"{added.uc_end:.4g}, {added.uc_end / (added.d / 2):.2f}× d/2 = {added.d / 2:g}, the mean energy of a "
        f"sample at temperature 1; it changed the pixels by {added.mean_abs:.4f} on average"
        + (", faint noise rather than new strokes" if added.faint else "")
        + f" ({_pct(conf['two-stage'])} confident digits afterwards).",
        f"Texture only, from noise: the same {cfg.t_steps} pixel steps took U_c from {o0:.4g} to {ot:.4g}, and "
        f"{_pct(conf['only'])} of those chains end as confident digits: pixel steps alone, this few, do not find "
        "a digit.",
    ]


def texture_section(cfg: TwoStageConfig, n: int, r: semantic_texture.Runs) -> semantic_texture.TextureAdded:
    """The texture stage's change, amplified so it can be seen, and what it is, with this run's numbers."""
    sem, tex = r.two_stage.semantic, r.two_stage.texture
    a = semantic_texture.texture_added(r.two_stage)
    st.subheader("What the texture stage added")
    m = min(n, 8)
    st.image(tile(to_u8(np.concatenate([sem.final[:m], tex.final[:m]])), ncol=m, scale=3),
             caption="rows: the semantic image x⁰ = h(z_K) · the two-stage sample x_T after the pixel steps")
    st.image(difference_picture(a.delta[:m], a.gain, ncol=m, scale=3),
             caption=f"the change x_T − x⁰, amplified ×{a.gain:.0f}: red where a pixel got brighter, blue where it "
                     "got darker, white where nothing changed")
    st.markdown(semantic_texture.texture_story(a, cfg, n, shipped=cfg == shipped))
    return a


def denoise_view() -> list[str]:
    c = st.columns(2)
    n = c[0].slider("Digits", 1, 8, 4, key=state.key("dn_n"))
    choices = [0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0]
    sigmas = c[1].multiselect("Noise levels σ", choices, default=[0.05, 0.2, 0.5, 1.0], key=state.key("dn_sigmas"))
    if not sigmas:
        st.info("Pick at least one noise level.")
        return ["Pick at least one noise level σ above to see the denoiser at work.",
                "At each σ the digit gets noise x̃ = x + σε and the denoiser returns its guess r(x̃, σ).",
                "U_c is how far the guess lands from the clean digit, divided by 2σ²."]
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
    mse = ((panel.denoised - panel.clean[None]) ** 2).mean(axis=(1, 2, 3, 4))  # (S,)
    strokes = panel.clean[:, 0] > 0  # (n, 28, 28)
    at = len(sigmas) - 1
    on_strokes = float(panel.energy_map[at][strokes].sum() / max(panel.energy_map[at].sum(), 1e-12))
    return [
        f"The median U_c of the {n} digits is {np.median(panel.energy[0]):.3g} at σ = {sigmas[0]:g} and "
        f"{np.median(panel.energy[-1]):.3g} at σ = {sigmas[-1]:g}: the error is divided by 2σ², so one "
        "energy scale serves every noise level.",
        f"The guess r(x̃, σ) differs from the clean digit by a mean squared {mse[0]:.4f} per pixel at σ = "
        f"{sigmas[0]:g} and {mse[-1]:.4f} at σ = {sigmas[-1]:g}: the more noise, the more the denoiser must invent.",
        f"At σ = {sigmas[at]:g}, {on_strokes:.0%} of U_c comes from the strokes (x > 0, {strokes.mean():.0%} of "
        "the pixels): " + ("more than their share, so the denoiser misses most where the ink is."
                           if on_strokes > strokes.mean() else "the background carries the larger share."),
    ]


def latent_view(cfg: TwoStageConfig, n: int) -> list[str]:
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
    ex = lm.pca.explained
    lines = [f"The two axes shown keep {100 * ex[0]:.0f}% and {100 * ex[1]:.0f}% of the spread of the "
             f"{len(lm.labels):,} codes: digits that overlap here may still be apart in the other "
             f"{model.config.nz - 2} dimensions."]
    if r is None:
        return [*lines, "No chains to follow: the sampling settings cannot run.", NO_RUN[2]]
    lat = r.two_stage.latents  # (F, n, nz)
    cos0, _ = semantic_texture.nearest_codes(lm.codes, lm.labels, lat[0])
    cos_k, digit = semantic_texture.nearest_codes(lm.codes, lm.labels, lat[-1])
    c0, ck = float(np.median(cos0)), float(np.median(cos_k))
    return [*lines,
            "Measured by direction (what the decoder reads"
            + (", as h_γ normalises every code first" if model.config.project_codes else "")
            + f"), the chains start with a median cosine similarity of {c0:.2f} to the most similar digit's code "
              f"(1: the same direction) and end at {ck:.2f} after "
              f"{cfg.k_steps} latent steps" + (": the semantic energy U_s pulls them toward the codes of real digits."
                                               if ck > c0 + 0.05 else
                                               f": about as close as they started — a random direction in "
                                               f"{model.config.nz} dimensions already lies this near one of "
                                               f"{len(lm.labels):,} codes."),
            f"The held-out codes most like the chains' z_K are codes of the digits "
            f"{' '.join(str(d) for d in digit[:16])}: the digit each chain's code points to."]


def ood_view() -> list[str]:
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
    best, worst = max(res.auroc, key=res.auroc.get), min(res.auroc, key=res.auroc.get)
    med = {g: float(np.median(-s)) for g, s in res.scores.items()}
    return [
        f"Held-out digits have a median U_c of {med['MNIST test']:.3g} at σ = {sigma:g}; "
        + ", ".join(f"{g} {v:.3g}" for g, v in med.items() if g != "MNIST test") + ".",
        f"Easiest to tell apart: {best} (AUROC {res.auroc[best]:.3f}); hardest: {worst} "
        f"(AUROC {res.auroc[worst]:.3f}).",
        "The score is the texture energy alone, U_c(x, σ): how well the denoiser restores an image says how "
        "typical it is, with no classifier involved.",
    ]


def training_view() -> list[str]:
    hist = model.meta.get("history", [])
    if not hist:
        st.info("This checkpoint has no training history.")
        return ["This checkpoint has no training history to show.", "The other views work on the model as it is.",
                "A checkpoint trained with `python -m training denoising` stores one."]
    st.plotly_chart(history_figure(hist, ["dae_loss", "decoder_loss"]), key=state.key("h_loss"))
    if "us_fake" in hist[-1]:
        st.plotly_chart(history_figure(hist, ["us_data", "us_fake", "uc_data", "uc_fake"]), key=state.key("h_ml"))
    tc = model.meta.get("train_config", {})
    mixed = tc.get("codes") and tc.get("uniformity") and "uniformity" not in hist[-1]
    st.caption("dae_loss: mean ‖r − x‖²/σ² (= 2·U_c on data); decoder_loss: eq. 13"
               + (f" — in this checkpoint's history plus {tc['uniformity']:g} × the codes' uniformity term (≤ 0), "
                  "logged together by the run that made it, hence values below zero" if mixed else "")
               + f". us_/uc_: U_s and U_c of data and of the round's chains (K = {tc.get('k_steps', '?')} latent, "
                 f"{tc.get('t_steps', '?')} pixel steps), which the maximum-likelihood updates push apart.")
    first, last = hist[0], hist[-1]
    lines = [f"The denoiser's loss went from {first['dae_loss']:.4g} to {last['dae_loss']:.4g} over "
             f"{len(hist)} logged points." if "dae_loss" in first and "dae_loss" in last else
             "This history has no DAE loss."]
    if {"us_data", "us_fake", "uc_data", "uc_fake"} <= set(last):
        lower = lambda d, f: "data" if d < f else "the samples"  # noqa: E731
        lines.append(f"At the end U_s is {last['us_data']:.4g} on data and {last['us_fake']:.4g} on the training "
                     f"chains' samples (lower: {lower(last['us_data'], last['us_fake'])}), U_c {last['uc_data']:.4g} "
                     f"and {last['uc_fake']:.4g} (lower: {lower(last['uc_data'], last['uc_fake'])}).")
    else:
        lines.append("This run did not log the energies of data and samples.")
    minutes = model.meta.get("wall_time_s")
    lines.append(f"The checkpoint trained for {minutes / 60:.0f} minutes on {model.meta.get('device', '?')}; "
                 "the curves above are its logged history." if minutes else
                 "The curves above are the checkpoint's logged history.")
    return lines


with view_at or st.container():  # off: where it always was, below the notation
    view = st.segmented_control("View", VIEWS, default=VIEWS[0], key=state.key("view")) or VIEWS[0]
if view in ("Two-stage sampling", "Latent space"):
    config, chains = settings()
    notice = (sampling_view if view == VIEWS[0] else latent_view)(config, chains)
elif view == "Denoising":
    notice = denoise_view()
elif view == "Out of distribution":
    notice = ood_view()
else:
    notice = training_view()
share(fields, frame)
what_to_notice(SCRIPT, notice)
