"""EBGAN: generator samples, what the autoencoder energy D learned, with vs without the pulling-away term,
Langevin on D, training curves."""

import numpy as np
import streamlit as st

from ebmviz.app import links
from ebmviz.app.latent_panel import PAGE_DEFAULTS, latent_fields, latent_panel, measured_caption
from ebmviz.app.lesson import what_to_notice
from ebmviz.app.pages import ebgan
from ebmviz.app.pages.ebgan import CONFIDENT, LangevinConfig, checkpoints, to_u8
from ebmviz.app.presentation import grid_font_px, presenting
from ebmviz.app.state import PageState
from ebmviz.app.widgets import (
    checkpoint_names,
    model_picker,
    of_kind,
    over_work_cap,
    sampler_fields,
    sampler_form,
    share,
    shared,
    temperature_equation,
    update_equation,
)
from ebmviz.figures.chains import traces_figure
from ebmviz.figures.charts import class_counts_figure, histogram_figure, history_figure, line_figure
from ebmviz.figures.images import labelled_grid, tile, verdict_labels

P = "ebgan"
state = PageState(P)
VIEW_NAMES = ["Samples", "What D learned", "With vs without PT", "Langevin on D", "Training"]
fields = [links.choice(state.key("ckpt"), "model", checkpoint_names(of_kind("ebgan"))),
          links.choice(state.key("view"), "view", VIEW_NAMES), links.integer(state.key("n"), "samples", 8, 64),
          links.integer(state.key("rn"), "per_row", 4, 16), links.integer(state.key("lv_n"), "chains", 4, 32),
          *sampler_fields(state.key("lv")), *latent_fields(P)]
links.restore(fields)
present = presenting()
st.title("EBGAN")
st.markdown(
    "A GAN (generative adversarial network) trains two networks against each other: a **generator** G that turns "
    "a random code z (a list of standard normal numbers, z ~ N(0, I)) into a picture, and a **critic** D (the "
    "*discriminator*) that learns to tell the generator's pictures from real digits, while the generator learns to "
    "fool it. In an EBGAN the critic is an **energy**: an *autoencoder* that squeezes a picture into a short code "
    "with its encoder (Enc) and redraws it with its decoder (Dec). How badly it redraws a picture is its energy "
    "D(x): low on the digits it learned to redraw, pushed up on the generator's pictures, but only until they reach "
    "a **margin** m, after which they no longer count. The generator in turn learns to draw pictures the "
    "autoencoder redraws well.")
with st.expander("In the paper's notation", expanded=False) if present else st.container():
    st.markdown(
        "Zhao, Mathieu & LeCun (ICLR 2017). Here D(x) is the per-pixel squared error on the $[0, 1]$ scale, "
        r"$D(x) = \frac{1}{784}\sum_i \big((\mathrm{Dec}(\mathrm{Enc}(x)) - x)_i / 2\big)^2$, "
        r"and $p(x) \propto e^{-D(x)}$ (lower energy: more likely). The two losses, $\mathcal L_D$ for the critic and "
        r"$\mathcal L_G$ for the generator, with $[a]^+ = \max(a, 0)$:")
    st.latex(r"\mathcal L_D = D(x) + \big[m - D(G(z))\big]^+,\qquad "
             r"\mathcal L_G = D(G(z)) + \lambda_{PT}\, f_{PT}(S),\qquad "
             r"f_{PT}(S) = \frac{1}{N(N-1)}\sum_{i\ne j}\Big(\frac{S_i^\top S_j}{\|S_i\|\,\|S_j\|}\Big)^2")
    st.markdown(
        "$f_{PT}$ is the **pulling-away term** (PT): $S_i$ is the encoder's code of the i-th of a batch of N generated "
        "pictures, and $f_{PT}$ averages the squared cosine between every two codes: 0 when they point in unrelated "
        "directions, 1 when they are all alike. Weighted by $\\lambda_{PT}$, it pushes the generator away from "
        "*mode collapse*, drawing the same few pictures over and over. **EBGAN-PT** is EBGAN trained with it.")
seed, device = shared().seed, shared().device
name, model = model_picker("EBGAN checkpoint", state.key("ckpt"), of_kind("ebgan"))
meta = model.meta
margin = float(meta.get("margin", 1.0))
hist = meta.get("history", [])
n_train_digits = f"{meta['dataset']['n_images']:,}" if isinstance(meta.get("dataset", {}).get("n_images"), int) else ""
with st.expander("This checkpoint's training", expanded=False) if present else st.container():
    if hist:
        last = hist[-1]
        st.markdown(
            f"This checkpoint: **{'EBGAN-PT' if meta.get('pt') else 'EBGAN without PT'}**, margin m = **{margin:g}**, "
            f"λ_PT = **{meta.get('train_config', {}).get('pt_weight', 0) if meta.get('pt') else 0:g}**. At the end of "
            f"training, on the last logged batch: D(x) = **{last['d_real']:.4f}** on training digits, "
            f"D(G(z)) = **{last['d_fake']:.3f}** on the generator's pictures (*fakes*), "
            f"**{100 * last['above_margin']:.0f}%** of fakes at or above m (no gradient to D from those), "
            f"f_PT = **{last['pt']:.3f}** (0: codes pairwise orthogonal, 1: all alike)."
            + (f" Trained with DiffAugment's translation (Zhao et al. 2020: random shifts of every picture the critic "
               f"sees, real or generated), a choice of this port: in both steps D saw every real digit and every fake "
               f"moved by a random shift of up to {int(meta['translate'])} px, so it memorises its {n_train_digits} "
               "training digits far less: \"What D learned\" shows the medians of D on held-out and on training digits "
               "side by side (checkpoints/README.md has the run without shifts)."
               if meta.get("translate") else ""))


def _labels(pred, energy: np.ndarray) -> list[str]:
    return verdict_labels(energy, "D", *((pred.label, pred.confidence) if pred is not None else ()))


def _grid(images_u8: np.ndarray, labels: list[str], ncol: int = 8, scale: int = 3) -> np.ndarray:
    """A labelled grid the page's width; in presentation mode with tiles wide enough for a caption at
    ``grid_font_px()`` (6× the digit's 28 px holds "7 99% D0.0718"), so captions stay legible."""
    if present:
        scale = 6
    return labelled_grid(images_u8, labels, ncol=ncol, scale=scale, font_px=grid_font_px())


def secondary(label: str):
    """Where a secondary panel goes: the page itself, or a folded expander in presentation mode."""
    return st.expander(label, expanded=False) if present else st.container()


def _confident(pred) -> float | None:
    return None if pred is None else 100 * float((pred.confidence > CONFIDENT).mean())


def samples_view() -> list[str]:
    n = st.slider("Samples", 8, 64, 32, 8, key=state.key("n"))
    g = ebgan.generated(name, device, n, seed)
    st.image(_grid(to_u8(g.images), _labels(g.prediction, g.energy), ncol=8, scale=3),
             caption="G(z), z ~ N(0, I) from the sidebar's seed, each with the evaluator's digit and confidence "
                     "and its energy D (the evaluator: a digit classifier shipped with the app). Change the seed to "
                     "re-draw.")
    st.latex(rf"\overline{{D(G(z))}} = {g.energy.mean():.4f},\qquad f_{{PT}}(S) = {g.pt:.3f}"
             rf"\quad\text{{on these {n} samples}}")
    its, frames = model.snapshots()
    its = [int(i) for i in its]
    if len(its) > 1:
        with secondary("The generator over training"):
            st.subheader("The generator over training")
            pick = st.select_slider("Iteration", its, value=its[-1], key=state.key("snap"),
                                    help="The same latent batch z through G as it was at that iteration")
            st.image(tile(frames[its.index(pick)], ncol=16, scale=2),
                     caption=f"G(z) at iteration {pick:,} of {its[-1]:,}, for one fixed batch of z")
    above = 100 * float((g.energy >= margin).mean())
    confident = _confident(g.prediction)
    digits = None if g.prediction is None else len(set(g.prediction.label[g.prediction.confidence > CONFIDENT]))
    return [f"These {n} samples have a mean energy D(G(z)) of {g.energy.mean():.4f}; {above:.0f}% of them are at or "
            f"above the margin m = {margin:g}, where the critic stops pushing.",
            (f"The evaluator is confident about {confident:.0f}% of them, and those cover {digits} of the 10 digits."
             if confident is not None else f"The lowest energy among them is {g.energy.min():.4f}, the highest "
             f"{g.energy.max():.4f}."),
            f"f_PT = {g.pt:.3f} on their codes: 0 would be codes in unrelated directions, 1 all alike."]


def energy_view() -> list[str]:
    st.markdown("Four kinds of pictures go through the critic's autoencoder: digits it never saw (held-out), digits "
                "it trained on, the generator's pictures and uniform noise. Its energy D(x) is how badly it redraws "
                "each one.")
    n = st.slider("Images per row", 4, 16, 8, key=state.key("rn"))
    pic = ebgan.energy_picture(name, device, n, seed)
    rows, caption = [], []
    for group in ebgan.GROUPS:
        rows += [pic.inputs[group], pic.recons[group]]
        caption.append(group)
    st.image(tile(to_u8(np.concatenate(rows)), ncol=n, scale=3),
             caption="rows in pairs — input x, then D's reconstruction Dec(Enc(x)) (shown clipped to [−1, 1]): "
                     + " · ".join(caption))
    st.plotly_chart(histogram_figure(pic.energy, "D(x)", "images", log=True, margin=margin), key=state.key("hist"))
    d_real, d_fake = pic.energy["training digits"], pic.energy["generator samples"]  # L_D is on training data
    hinge = np.maximum(margin - d_fake, 0)
    st.latex(rf"\mathcal L_D = \overline{{D(x)}} + \overline{{[m - D(G(z))]^+}} = {d_real.mean():.4f} + "
             rf"\overline{{[{margin:g} - D(G(z))]^+}} = {d_real.mean():.4f} + {hinge.mean():.4f}"
             rf"\quad\text{{({100 * (d_fake >= margin).mean():.0f}\% of fakes at or above }} m)")
    med = {g: float(np.median(e)) for g, e in pic.energy.items()}
    noise_below = 100 * float((pic.energy["uniform noise"] < med["held-out digits"]).mean())
    st.markdown(
        "D is trained to reconstruct the training digits and to fail on the generator's samples up to the margin; "
        f"nothing in its loss mentions noise or digits it never saw. Medians over {len(d_real):,} images each: "
        + ", ".join(f"{g} **{v:.4f}**" for g, v in med.items())
        + f". Share of noise images with a lower energy than the median digit: "
          f"**{noise_below:.1f}%**. A gap between held-out and training digits is D memorising the "
          f"{n_train_digits} digits it was trained on"
        + (" (this checkpoint was trained with random shifts of its inputs against that)." if meta.get("translate")
           else "."))
    return [f"Median energies: held-out digits {med['held-out digits']:.4f}, training digits "
            f"{med['training digits']:.4f}, generator samples {med['generator samples']:.4f}, uniform noise "
            f"{med['uniform noise']:.4f}.",
            f"{noise_below:.1f}% of noise images get a lower energy than the median held-out digit: "
            + ("D ranks noise above digits, though it never saw noise." if noise_below < 50 else
               "D does not rank noise above digits; it never saw noise."),
            f"L_D = {d_real.mean():.4f} + {hinge.mean():.4f}: {100 * float((d_fake >= margin).mean()):.0f}% of the "
            f"fakes are at or above m = {margin:g}, where they give the critic no more to learn."]


def _pt_pair() -> dict[str, str]:
    """The shipped EBGAN checkpoints with and without the pulling-away term, label -> name."""
    pair = {}
    for info in checkpoints.list_checkpoints():
        if info.error is None and info.kind == "ebgan":
            pt = checkpoints.read_meta(info.path).get("pt")
            pair.setdefault("with PT" if pt else "without PT", info.name)
    return {k: pair[k] for k in ("with PT", "without PT") if k in pair}


def pt_view() -> list[str]:
    st.markdown(
        "Mode collapse shows as a generator that draws few of the digits, or the same picture again and again. Two "
        "generators, trained alike but one with the pulling-away term and one without, each draw 1,000 samples, "
        "and the evaluator names their digits. **Class entropy** measures how evenly the samples spread over the 10 "
        "digits (ln 10 = 2.303 when evenly, 0 when all are one digit). The **NN distance** of a sample is its "
        "root-mean-square (RMS) pixel distance to its nearest neighbour, the most similar other sample; a "
        "**near-duplicate** is a sample nearer to another than any two held-out digits are.")
    pair = _pt_pair()
    if len(pair) < 2:
        st.info("This comparison needs one EBGAN checkpoint trained with the pulling-away term and one without.")
        return [f"Only {len(pair)} of the two generators (with and without the pulling-away term) is shipped here.",
                "The comparison needs both.", "`python -m training ebgan` trains either one."]
    scores = {label: ebgan.diversity(n_name, device, 1000, seed) for label, n_name in pair.items()}
    if any(s is None for s in scores.values()):
        st.info("The comparison scores samples with the evaluator, and no evaluator checkpoint was found.")
        return [f"The {len(pair)} generators are shipped, but not the evaluator that names their digits.",
                "Without it there is no class entropy and no confident share to compare.",
                "`python -m training evaluator` trains it."]
    st.plotly_chart(class_counts_figure({k: s.class_counts for k, s in scores.items()}), key=state.key("counts"))
    st.dataframe([{"generator": f"{k} ({pair[k]})", "confident (> 90%)": f"{100 * s.confident_share:.1f}%",
                   "class entropy (ln 10 = 2.303)": f"{s.class_entropy:.3f}",
                   "near-duplicates": f"{100 * s.duplicate_share:.1f}%",
                   "median NN distance": f"{np.median(s.nn_distance):.3f}"} for k, s in scores.items()],
                 hide_index=True)
    real = next(iter(scores.values())).real_nn_distance
    st.caption(f"1,000 samples each from the sidebar's seed. Near-duplicate: a sample closer (RMS pixel distance on "
               f"the [0, 1] scale) to another sample than the closest two of 1,000 held-out digits are "
               f"({real.min():.3f}); held-out digits' median nearest-neighbour distance is {np.median(real):.3f}.")
    cols = st.columns(len(scores))
    for col, (k, s) in zip(cols, scores.items(), strict=True):
        pairs = s.closest_pairs.transpose(1, 0, 2, 3, 4).reshape(-1, 1, 28, 28)  # top row: first of each pair
        col.image(tile(to_u8(pairs), ncol=len(s.closest_pairs), scale=2),
                  caption=f"{k}: the {len(s.closest_pairs)} closest pairs among the 1,000 (one pair per column)")
    curves = {k: checkpoints.read_meta(checkpoints.named(v)).get("history", []) for k, v in pair.items()}
    if all(curves.values()):
        with secondary("f_PT over training"):
            st.plotly_chart(line_figure(np.array([r["iteration"] for r in curves["with PT"]]),
                                        {"f_PT with PT": np.array([r["pt"] for r in curves["with PT"]])},
                                        "iteration", "f_PT of a batch of fakes")
                            .add_scatter(x=[r["iteration"] for r in curves["without PT"]],
                                         y=[r["pt"] for r in curves["without PT"]],
                                         name="f_PT without PT (logged only)"),
                            key=state.key("pt_curve"))
    w, wo = scores["with PT"], scores["without PT"]
    return [f"Class entropy {w.class_entropy:.3f} with PT against {wo.class_entropy:.3f} without (ln 10 = 2.303 "
            "when every digit is drawn equally often).",
            f"Near-duplicates: {100 * w.duplicate_share:.1f}% with PT, {100 * wo.duplicate_share:.1f}% without; "
            f"median NN distance {np.median(w.nn_distance):.3f} against {np.median(wo.nn_distance):.3f} "
            f"(held-out digits: {np.median(real):.3f}).",
            f"Confident digits: {100 * w.confident_share:.1f}% with PT, {100 * wo.confident_share:.1f}% without."]


def langevin_view() -> list[str]:
    st.markdown("Is D a usable energy on its own? Langevin dynamics, the sampler used across this app, on "
                "$p(x) \\propto e^{-D(x)}$ from the generator's samples and from uniform noise: each step moves "
                "every pixel a little downhill on D and adds a little noise,")
    st.latex(r"x_{t+1} = x_t - s\,\nabla D(x_t) + \sigma\,\xi_t,\qquad T = \frac{\sigma^2}{2s}")
    st.markdown("with step size $s$, noise $\\sigma$ ($\\xi_t$: standard normal noise, one number per pixel) "
                "and effective temperature $T$. With the sampler's settings (below, folded; they may clip each "
                "entry of ∇D and keep pixels in [−1, 1]) it reads:")
    defaults = LangevinConfig.from_dict(meta.get("sampler", {}))
    with st.expander("Sampler", expanded=False):
        cfg, warnings = sampler_form(defaults, state.key("lv"))
        n = st.slider("Chains per start", 4, 32, 16, 4, key=state.key("lv_n"))
    for w in warnings:
        st.warning(w, icon=":material/warning:")
    st.latex(update_equation(cfg).replace("E(", "D("))
    st.latex(temperature_equation(cfg))
    if too_much := over_work_cap(2 * n, cfg.n_steps, "Langevin from both starts"):
        st.error(too_much, icon=":material/error:")
        return [f"These settings ask for {2 * n:,} chains × {cfg.n_steps:,} steps, over the page's cap: nothing ran.",
                f"Fewer steps or fewer than {n} chains per start bring it under the cap.",
                f"The update above runs at T = σ²/(2s) = {cfg.temperature:.3g}."]
    rows, runs = [], {}
    for start, label in (("generator", "generator samples"), ("noise", "uniform noise")):
        d = runs[start] = ebgan.descent(name, device, cfg, start, n, seed)
        st.markdown(f"**From {label}**")
        # one above the other, each chain's start over its end in the same column (side by side, 8 tiles in half
        # the width left the captions a few pixels high)
        st.image(_grid(d.run.frames[0], _labels(d.before, d.run.energy[0])), caption="start")
        st.image(_grid(to_u8(d.run.final), _labels(d.after, d.run.energy[-1])), caption=f"after {cfg.n_steps} steps")
        with secondary(f"Per-step traces from {label}"):
            st.plotly_chart(traces_figure(d.run.energy, d.run.grad_norm, d.run.step_norm, d.run.accept),
                            key=state.key(f"lv_{start}"))
        for when, pred, e in (("start", d.before, d.run.energy[0]), (f"after {cfg.n_steps} steps", d.after,
                                                                     d.run.energy[-1])):
            confident = "–" if pred is None else f"{100 * (pred.confidence > CONFIDENT).mean():.0f}%"
            junk = "–" if pred is None else f"{pred.junk.mean():.2f}"
            rows.append({"start": label, "when": when, "median D": f"{np.median(e):.4f}",
                         "confident (> 90%)": confident, "not a digit (mean)": junk})
    st.dataframe(rows, hide_index=True)
    latent_section(n)
    lines = []
    for start, label in (("generator", "the generator's samples"), ("noise", "noise")):
        r, after = runs[start].run, _confident(runs[start].after)
        before = _confident(runs[start].before)
        lines.append(f"From {label}, {cfg.n_steps} steps take the median D from {np.median(r.energy[0]):.4f} to "
                     f"{np.median(r.energy[-1]):.4f}"
                     + ("." if after is None else f"; confident digits {before:.0f}% → {after:.0f}%."))
    lines.append(f"The sampler runs at T = σ²/(2s) = {cfg.temperature:.3g}" + (
        ": nearly plain descent, so the chains settle where D is lowest near their start." if cfg.temperature < 1e-2
        else "."))
    return lines


def latent_section(n: int) -> None:
    st.subheader("Through the generator: Langevin in G's latent space")
    st.markdown(
        "In pixel space D is shaped only where the generator's samples were. Through G every state is a picture G "
        "can draw, so D can correct G's samples without leaving them: Langevin on the codes z under "
        r"$U(z) = D(G(z))/T + \tfrac12\|z\|^2$, the energy seen through G plus the prior's. It is the same update "
        "as above, on the code z instead of the pixels: step size s = η and noise σ = √(2η), so σ²/(2s) = 1 on U, "
        "and the T inside U is the temperature at which D counts. This is "
        "discriminator-driven latent sampling (Che et al. 2020), with the autoencoder's D as the energy; the "
        "landscape map descends the same U at T = 0.01. Start: the generator's own codes, so step 0 is the samples "
        "above.")
    with secondary("Latent Langevin: the panel"):
        latent_panel(P, name, device, seed, n, symbol="D", defaults=PAGE_DEFAULTS["ebgan"])
        st.caption(" ".join(filter(None, [measured_caption(name),
                                          "A higher T keeps more of G's variety and gains less."])))


def training_view() -> list[str]:
    if not hist:
        st.info("This checkpoint has no training history.")
        return ["This checkpoint has no training history, so there is nothing to read here.",
                f"Its margin is m = {margin:g}.", "Try the shipped ebgan-mnist checkpoint."]
    st.markdown("The curves of training, one point per logged batch: **loss_d** and **loss_g** are the critic's and "
                "the generator's losses L_D and L_G; **d_real** and **d_fake** the mean energy D of the batch's real "
                "digits and of its fakes.")
    st.plotly_chart(history_figure(hist, ["loss_d", "loss_g"]), key=state.key("h_loss"))
    st.plotly_chart(history_figure(hist, ["d_real", "d_fake"]), key=state.key("h_d"))
    st.plotly_chart(history_figure(hist, ["above_margin", "pt"]), key=state.key("h_pt"))
    st.caption("above_margin: share of the batch's fakes with D(G(z)) ≥ m; pt: f_PT of the batch's codes "
               "(in a run without PT it is logged, not trained on).")
    first, last = hist[0], hist[-1]
    return [f"Over {int(last['iteration']):,} iterations d_real went from {first['d_real']:.4f} to "
            f"{last['d_real']:.4f}: the critic learned to redraw real digits.",
            f"d_fake ends at {last['d_fake']:.3f} against m = {margin:g}, with {100 * last['above_margin']:.0f}% of "
            "the last batch's fakes at or above the margin.",
            f"f_PT went from {first['pt']:.3f} to {last['pt']:.3f}"
            + (" while the generator was trained to keep it low." if meta.get("pt") else
               " (logged only: this run did not train on it).")]


VIEWS = dict(zip(VIEW_NAMES, (samples_view, energy_view, pt_view, langevin_view, training_view), strict=True))
view = st.segmented_control("View", VIEW_NAMES, default="Samples", key=state.key("view")) or "Samples"
lines = VIEWS[view]()
share(fields)
what_to_notice("views/ebgan.py", lines)
