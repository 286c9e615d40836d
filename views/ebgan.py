"""EBGAN: generator samples, what the autoencoder energy D learned, with vs without the pulling-away term,
Langevin on D, training curves."""

import numpy as np
import streamlit as st

from ebmviz.app import links
from ebmviz.app.latent_panel import PAGE_DEFAULTS, latent_fields, latent_panel, measured_caption
from ebmviz.app.pages import ebgan
from ebmviz.app.pages.ebgan import CONFIDENT, LangevinConfig, checkpoints, to_u8
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
st.title("EBGAN")
st.markdown(
    "Zhao, Mathieu & LeCun (ICLR 2017) make the GAN's discriminator an **autoencoder** whose reconstruction "
    "error is an energy: low on digits, pushed up on the generator's samples until they reach a margin $m$. "
    "Here $D(x)$ is the per-pixel squared error on the $[0, 1]$ scale, "
    r"$D(x) = \frac{1}{784}\sum_i \big((\mathrm{Dec}(\mathrm{Enc}(x)) - x)_i / 2\big)^2$, "
    r"and $p(x) \propto e^{-D(x)}$.")
st.latex(r"\mathcal L_D = D(x) + \big[m - D(G(z))\big]^+,\qquad "
         r"\mathcal L_G = D(G(z)) + \lambda_{PT}\, f_{PT}(S),\qquad "
         r"f_{PT}(S) = \frac{1}{N(N-1)}\sum_{i\ne j}\Big(\frac{S_i^\top S_j}{\|S_i\|\,\|S_j\|}\Big)^2")
seed, device = shared().seed, shared().device
name, model = model_picker("EBGAN checkpoint", state.key("ckpt"), of_kind("ebgan"))
meta = model.meta
margin = float(meta.get("margin", 1.0))
hist = meta.get("history", [])
if hist:
    last = hist[-1]
    st.markdown(
        f"This checkpoint: **{'EBGAN-PT' if meta.get('pt') else 'EBGAN without PT'}**, margin m = **{margin:g}**, "
        f"λ_PT = **{meta.get('train_config', {}).get('pt_weight', 0) if meta.get('pt') else 0:g}**. At the end of "
        f"training, on the last logged batch: D(x) = **{last['d_real']:.4f}** on training digits, "
        f"D(G(z)) = **{last['d_fake']:.3f}**, "
        f"**{100 * last['above_margin']:.0f}%** of fakes at or above m (no gradient to D from those), "
        f"f_PT = **{last['pt']:.3f}** (0: codes pairwise orthogonal, 1: all alike)."
        + (f" Trained with DiffAugment's translation (Zhao et al. 2020), a choice of this port: in both steps D saw "
           f"every real digit and every fake moved by a random shift of up to {int(meta['translate'])} px, so it "
           "memorises the 4,000 training digits far less: \"What D learned\" shows the medians of D on held-out and "
           "on training digits side by side (checkpoints/README.md has the run without shifts)."
           if meta.get("translate") else ""))


def _labels(pred, energy: np.ndarray) -> list[str]:
    return verdict_labels(energy, "D", *((pred.label, pred.confidence) if pred is not None else ()))


def samples_view() -> None:
    n = st.slider("Samples", 8, 64, 32, 8, key=state.key("n"))
    g = ebgan.generated(name, device, n, seed)
    st.image(labelled_grid(to_u8(g.images), _labels(g.prediction, g.energy), ncol=8, scale=3),
             caption="G(z), z ~ N(0, I) from the sidebar's seed, each with the evaluator's digit and confidence "
                     "and its energy D. Change the seed to re-draw.")
    st.latex(rf"\overline{{D(G(z))}} = {g.energy.mean():.4f},\qquad f_{{PT}}(S) = {g.pt:.3f}"
             rf"\quad\text{{on these {n} samples}}")
    its, frames = model.snapshots()
    its = [int(i) for i in its]
    if len(its) > 1:
        st.subheader("The generator over training")
        pick = st.select_slider("Iteration", its, value=its[-1], key=state.key("snap"),
                                help="The same latent batch z through G as it was at that iteration")
        st.image(tile(frames[its.index(pick)], ncol=16, scale=2),
                 caption=f"G(z) at iteration {pick:,} of {its[-1]:,}, for one fixed batch of z")


def energy_view() -> None:
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
    st.markdown(
        "D is trained to reconstruct the training digits and to fail on the generator's samples up to the margin; "
        "nothing in its loss mentions noise or digits it never saw. Medians over 500 images each: "
        + ", ".join(f"{g} **{v:.4f}**" for g, v in med.items())
        + f". Share of noise images with a lower energy than the median digit: "
          f"**{100 * float((pic.energy['uniform noise'] < med['held-out digits']).mean()):.1f}%**. A gap between "
          "held-out and training digits is D memorising the 4,000 digits it was trained on"
        + (" (this checkpoint was trained with random shifts of its inputs against that)." if meta.get("translate")
           else "."))


def _pt_pair() -> dict[str, str]:
    """The shipped EBGAN checkpoints with and without the pulling-away term, label -> name."""
    pair = {}
    for info in checkpoints.list_checkpoints():
        if info.error is None and info.kind == "ebgan":
            pt = checkpoints.read_meta(info.path).get("pt")
            pair.setdefault("with PT" if pt else "without PT", info.name)
    return {k: pair[k] for k in ("with PT", "without PT") if k in pair}


def pt_view() -> None:
    pair = _pt_pair()
    if len(pair) < 2:
        st.info("This comparison needs one EBGAN checkpoint trained with the pulling-away term and one without.")
        return
    scores = {label: ebgan.diversity(n_name, device, 1000, seed) for label, n_name in pair.items()}
    if any(s is None for s in scores.values()):
        st.info("The comparison scores samples with the evaluator, and no evaluator checkpoint was found.")
        return
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
        st.plotly_chart(line_figure(np.array([r["iteration"] for r in curves["with PT"]]),
                                            {"f_PT with PT": np.array([r["pt"] for r in curves["with PT"]])},
                                            "iteration", "f_PT of a batch of fakes")
                        .add_scatter(x=[r["iteration"] for r in curves["without PT"]],
                                     y=[r["pt"] for r in curves["without PT"]], name="f_PT without PT (logged only)"),
                        key=state.key("pt_curve"))


def langevin_view() -> None:
    st.markdown("Is D a usable energy on its own? Langevin on $e^{-D}$ from the generator's samples and from "
                "uniform noise, with the app's sampler:")
    defaults = LangevinConfig.from_dict(meta.get("sampler", {}))
    with st.expander("Sampler", expanded=False):
        cfg, warnings = sampler_form(defaults, state.key("lv"))
        n = st.slider("Chains per start", 4, 32, 16, 4, key=state.key("lv_n"))
    for w in warnings:
        st.warning(w, icon=":material/warning:")
    st.latex(update_equation(cfg).replace("E(", "D("))
    if too_much := over_work_cap(2 * n, cfg.n_steps, "Langevin from both starts"):
        st.error(too_much, icon=":material/error:")
        return
    rows = []
    for start, label in (("generator", "generator samples"), ("noise", "uniform noise")):
        d = ebgan.descent(name, device, cfg, start, n, seed)
        st.markdown(f"**From {label}**")
        a, b = st.columns(2)
        a.image(labelled_grid(d.run.frames[0], _labels(d.before, d.run.energy[0]), ncol=8, scale=2),
                caption="start")
        b.image(labelled_grid(to_u8(d.run.final), _labels(d.after, d.run.energy[-1]), ncol=8, scale=2),
                caption=f"after {cfg.n_steps} steps")
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


def latent_section(n: int) -> None:
    st.subheader("Through the generator: Langevin in G's latent space")
    st.markdown(
        "In pixel space D is shaped only where the generator's samples were. Through G every state is a picture G "
        "can draw, so D can correct G's samples without leaving them: Langevin on the codes z under "
        r"$U(z) = D(G(z))/T + \tfrac12\|z\|^2$, the energy seen through G plus the prior's. This is "
        "discriminator-driven latent sampling (Che et al. 2020), with the autoencoder's D as the energy; the "
        "landscape map descends the same U at T = 0.01. Start: the generator's own codes, so step 0 is the samples "
        "above.")
    latent_panel(P, name, device, seed, n, symbol="D", defaults=PAGE_DEFAULTS["ebgan"])
    st.caption(" ".join(filter(None, [measured_caption(name), "A higher T keeps more of G's variety and gains less."])))


def training_view() -> None:
    if not hist:
        st.info("This checkpoint has no training history.")
        return
    st.plotly_chart(history_figure(hist, ["loss_d", "loss_g"]), key=state.key("h_loss"))
    st.plotly_chart(history_figure(hist, ["d_real", "d_fake"]), key=state.key("h_d"))
    st.plotly_chart(history_figure(hist, ["above_margin", "pt"]), key=state.key("h_pt"))
    st.caption("above_margin: share of the batch's fakes with D(G(z)) ≥ m; pt: f_PT of the batch's codes "
               "(in a run without PT it is logged, not trained on).")


VIEWS = dict(zip(VIEW_NAMES, (samples_view, energy_view, pt_view, langevin_view, training_view), strict=True))
view = st.segmented_control("View", VIEW_NAMES, default="Samples", key=state.key("view")) or "Samples"
VIEWS[view]()
share(fields)
