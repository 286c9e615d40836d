"""Anomaly detection: how well each energy tells its inside images (held-out digits; a user model of another shape:
its own images) from other images (AUROC table, stored; live for the user's models), one model's score histograms and
ROC curves, and where your own (or an edited) image falls among the inside images."""

import numpy as np
import pandas as pd
import streamlit as st

from ebmviz.app import links
from ebmviz.app.drawpad import drawn_digit
from ebmviz.app.lesson import what_to_notice
from ebmviz.app.pages import anomaly
from ebmviz.app.pages.anomaly import GOAL_SETS, HELD_OUT, KINDS, SETS, SETS_SEED, checkpoints, goal, to_u8, zoo
from ebmviz.app.presentation import grid_font_px, presenting
from ebmviz.app.state import PageState
from ebmviz.app.widgets import image_upload, model_picker, share, shared
from ebmviz.figures.anomaly import roc_figure, score_histogram_figure
from ebmviz.figures.images import labelled_grid, tile

P = "anomaly"
state = PageState(P)
VIEW_NAMES = ["Every model", "One model", "Your digit"]
SOURCES = ["a held-out digit", "a drawing", "an upload"]
N_DIGITS = HELD_OUT
ENERGIES = anomaly.energy_models()
OWN = "its energy E(x)"  # model(x); the other choices are models' further energies
ENERGY_CHOICES = [OWN, *sorted({e for cls in KINDS.values() for e in cls.further_energies})]
fields = [links.choice(state.key("view"), "view", VIEW_NAMES), links.choice(state.key("ckpt"), "model", ENERGIES),
          links.choice(state.key("energy"), "energy", ENERGY_CHOICES),
          links.integer(state.key("digit"), "digit", 0, N_DIGITS - 1),
          links.integer(state.key("rotate"), "rotate", -180, 180)]
links.restore(fields)
present = presenting()
st.title("Anomaly detection")
st.markdown(
    "Does this picture look like the pictures the model learned from? An energy model answers with one number "
    "per picture, its energy, low for pictures it finds likely; the **score** is minus the energy, so higher means "
    "more typical. To test the answer we mix **held-out digits** (test digits the model never trained on) with "
    "an **out-of-distribution set**, images of another kind: clothes from Fashion-MNIST, noise, flat grey images, "
    "blends of two digits, digits flipped, rotated or inverted. A good score puts the digits above the others. "
    "Slide a cut down the scores: the **ROC curve** plots, at each cut, the share of digits above it against the "
    "share of the other set above it. The area under it, the **AUROC**, is the chance that a random held-out digit "
    "scores above a random image of the set: 1 always, 0.5 a coin toss, below 0.5 the set looks *more* typical "
    f"than real digits. The project's **goal**: a mean AUROC of at least 0.93 over {len(GOAL_SETS)} sets "
    f"({', '.join(GOAL_SETS)}), none below 0.85.")
with st.expander("The same in the paper's notation", expanded=False) if present else st.container():
    st.markdown("The score is $-E(x)$, since $p(x) \\propto e^{-E(x)}$; the Denoising-EBM paper (Zeng, §5.2) "
                "scores images this way and reports the AUROC.")
    st.latex(r"\mathrm{AUROC} = P\big(-E(x_{\text{digit}}) > -E(x_{\text{other}})\big)")
    st.caption("A model can define more than one energy. The divergence triangle's energy net gives E_α(x); its "
               "generator with the learned prior gives a second, −log p(x) = −log ∫ p_ψ(z) p_θ(x|z) dz, estimated by "
               "importance sampling with the inference model as proposal (16 draws). Its rows read "
               "\"triangle-mnist · generator −log p(x)\".")
seed, device = shared().seed, shared().device


def stored_table() -> list[str]:
    try:
        stored = zoo.read_scores()
    except ValueError as err:
        st.error(f"The stored scores cannot be read: {err}")
        return ["The stored scores cannot be read here.", "Recompute the table to see them.",
                "Or pick one model under “One model”."]
    rows = []
    for name in ENERGIES:
        entry = stored.models.get(name)
        if entry is None or not entry.auroc:
            continue
        stale = " (changed since scored)" if stored.stale(name, checkpoints.named(name)) else ""
        for energy, row in ((None, entry.auroc), *(entry.further_auroc or {}).items()):
            g = goal(row)
            rows.append({"model": anomaly.row_label(name, energy) + stale, **row,
                         "goal mean": None if g is None else g[0], "goal min": None if g is None else g[1]})
    if not rows:
        st.info("No stored AUROC numbers yet: `python -m training scores --skip-quality` computes them.")
    else:
        df = pd.DataFrame(rows).set_index("model")
        order = ["goal mean", "goal min", *GOAL_SETS, *[c for c in SETS if c not in GOAL_SETS]]
        df = df[[c for c in order if c in df.columns]]
        st.dataframe(df.style.format("{:.3f}", na_rep="–").map(
            lambda v: "color: #d62728" if isinstance(v, float) and v < 0.85 else "", subset=list(df.columns)),
            key=state.key("table"), height=36 * (len(df) + 1) + 2)
        st.caption(f"Stored by `python -m training scores` (last run {stored.settings.get('last_run', '?')}): −E on "
                   f"{stored.settings.get('digits', 'the held-out digits')} against as many images of each set. "
                   f"Red: below 0.85. The goal columns average and take the minimum over {', '.join(GOAL_SETS)}.")
    if st.button("Recompute the table now", key=state.key("recompute"),
                 help="Scores every energy model on the same sets in this session (about half a minute)"):
        live = anomaly.auroc_table(device, N_DIGITS, SETS_SEED)
        live_df = pd.DataFrame(live).T
        st.dataframe(live_df.style.format("{:.3f}"), key=state.key("live_table"), height=36 * (len(live_df) + 1) + 2)
        st.caption("Recomputed now on the same digits and sets; nothing is written to disk.")
    if not rows:
        return ["No stored AUROCs yet.", "Recompute the table to see them.", "Or pick one model under “One model”."]
    return anomaly.table_notice(rows)


def your_models() -> None:
    """The user's own energy models' AUROCs, computed live (none is in the stored table)."""
    if not anomaly.user_energy_models():
        return
    st.markdown("**Your models**, computed live now: the stored table holds the shipped models only.")
    rows, notes = anomaly.user_table(device, SETS_SEED)
    for note in notes:
        st.warning(note)
    if rows:
        df = pd.DataFrame(rows).T
        sets = [c for c in df.columns if c not in ("inside", "shape", "images")]
        st.dataframe(df.style.format("{:.3f}", subset=sets, na_rep="–"), key=state.key("yours_table"),
                     height=36 * (len(df) + 1) + 2)
        k = anomaly.USER_HELD_OUT
        st.caption(f"−E on {k} inside images against as many images of each set, on this machine: for a "
                   f"1×28×28 model {k} held-out MNIST digits, for any other shape up to {k} of its "
                   "own images (--data) and sets made in its shape. Pick one under “One model” for its histograms "
                   "and ROC curves.")


def every_model() -> list[str]:
    lines = stored_table()
    your_models()
    return lines


def unmeasured(name: str) -> list[str]:
    """The notice for a model with no inside images here."""
    return [f"{name} has no images of its own here, so no AUROC can be measured for it.",
            "Start ebmviz with --data IMAGES: the images your model should find typical.",
            "The page then makes the other sets in your model's shape: corruptions of your images, noise and "
            "Fashion-MNIST."]


def pick_model() -> tuple[str, str | None, anomaly.SetScores, anomaly.Inside] | None:
    """(model, which of its energies: None for model(x), the scores of the sets under it, its inside images and
    sets); None, with a message, for a model the page cannot measure (another shape than MNIST's, no --data)."""
    name, model = model_picker("Energy model", state.key("ckpt"), lambda cls: cls.is_energy, default="shortrun-mnist")
    energy, asked = None, st.session_state.get(state.key("energy"))
    if asked not in (None, OWN, *model.further_energies):  # a link, or the choice made for another model
        st.info(f"`{name}` has no energy “{asked}”, so its own energy E(x) is shown.")
        st.session_state[state.key("energy")] = OWN  # before the radio exists, so it may be set
    if model.further_energies:
        picked = st.radio("Energy", [OWN, *model.further_energies], horizontal=True, key=state.key("energy"))
        energy = None if picked == OWN else picked
    if (why := anomaly.no_sets_reason(name, model)) is not None:
        st.warning(why)
        return None
    inside = anomaly.inside_sets(name, device, SETS_SEED)
    if not inside.digits:
        c, h, w = model.image_shape
        st.info(f"`{name}` takes {c}×{h}×{w} images, not MNIST's 1×28×28 digits, so the digits' parts of this page "
                f"(held-out digits, drawing or uploading a digit, the goal) do not apply: here the inside images are "
                f"{inside.source}, which it may have trained on. The other sets are made in its shape: noise, flat "
                f"{'colours' if c == 3 else 'greys'}, blends and transformations of your images, and Fashion-MNIST "
                f"resized to {h}×{w}{' and repeated to 3 channels' if c == 3 else ''}.")
    if anomaly.is_user(model):
        st.caption(f"Computed live on this machine ({len(inside.images):,} inside images and as many per set): "
                   "`checkpoints/scores.json` stores the shipped models' numbers only.")
    return name, energy, anomaly.model_scores(name, device, SETS_SEED, energy), inside


def one_model() -> list[str]:
    if (got := pick_model()) is None:
        return unmeasured(st.session_state[state.key("ckpt")])
    name, energy, sc, inside = got
    sets = inside.sets
    if inside.missing:
        st.info(f"Fashion-MNIST is not on this machine, so it is left out: {inside.missing}")
    available = inside.names
    shape = "x".join(str(s) for s in next(iter(sets.values())).shape[1:])
    chosen = st.multiselect("Sets", available, default=[s for s in GOAL_SETS if s in available],
                            key=state.key("sets" if inside.digits else f"sets_{shape}"))
    picked = {k: sc.sets[k] for k in chosen}
    st.plotly_chart(score_histogram_figure(sc.digits, picked, inside=inside.noun), key=state.key("hist"))
    with st.expander("ROC curves and every set's AUROC", expanded=False) if present else st.container():
        left, right = st.columns([3, 2])
        left.plotly_chart(roc_figure({k: sc.roc[k] for k in chosen}, sc.auroc,
                                     inside="digits" if inside.digits else "your images"), key=state.key("roc"))
        g = goal(sc.auroc) if inside.digits else None
        right.dataframe(pd.DataFrame({"AUROC": sc.auroc}).style.format("{:.3f}"), key=state.key("model_auroc"))
        if g is not None:
            right.markdown(f"Over the goal's six sets: mean **{g[0]:.3f}**, lowest **{g[1]:.3f}** (goal: mean ≥ "
                           "0.93, none below 0.85).")
    with st.expander("What the sets look like"):
        names = list(sets)
        st.image(labelled_grid(to_u8(np.concatenate([v[:8] for v in sets.values()])),
                               [n if k == 0 else "" for n in names for k in range(8)], ncol=8,
                               scale=max(1, 84 // max(sets[names[0]].shape[-2:])), font_px=grid_font_px()),
                 caption="Eight images per set, one set per row, named under its first")
    return anomaly.model_notice(anomaly.row_label(name, energy), sc, chosen, inside.digits)


def your_digit() -> list[str]:
    if (got := pick_model()) is None:
        return unmeasured(st.session_state[state.key("ckpt")])
    name, energy, sc, inside = got
    digits, n = inside.images, len(inside.images)
    h, w = digits.shape[-2:]
    size = "" if (h, w) == (28, 28) else f"_{h}x{w}"  # the sliders' keys at another size: their ranges differ
    base = None
    if inside.digits:
        source = st.radio("Start from", SOURCES, horizontal=True, key=state.key("source"))
        if source == "a drawing":
            st.caption("Draw one digit, white on black, as large as the pad. It is centred and scaled as MNIST's "
                       "digits were (the inked box to 20 px, its centre of mass where MNIST's digits have theirs).")
            if (base := drawn_digit(state.key("pad"))) is None:
                st.caption("Meanwhile the page scores the held-out digit chosen below.")
        if source == "an upload":
            if (up := image_upload("A digit picture (PNG, JPEG, …)", state.key("upload"))) is not None:
                base = up.image
            if base is None:
                st.caption("Upload a picture to score it; meanwhile the page scores the held-out digit chosen below.")
    else:
        st.caption(f"Drawing a digit and uploading a picture are for 1×28×28 digit models; for `{name}` you edit one "
                   "of your own images and see where it falls among the others.")
    if base is None:
        what = "Held-out digit" if inside.digits else "Your image"
        idx = st.number_input(what, 0, n - 1, 0, key=state.key("digit" if n == N_DIGITS else f"image_{n}"))
        base = digits[int(idx): int(idx) + 1]
    c = st.columns(3)
    degrees = c[0].slider("Rotate (degrees)", -180, 180, 0, 5, key=state.key("rotate"))
    erase_on = c[1].checkbox("Erase a box", key=state.key("erase_on"))
    stroke_on = c[2].checkbox("Add a stroke", key=state.key("stroke_on"))
    erase = stroke = None
    at = lambda v, side: round(v * (side - 1) / 27)  # noqa: E731  (the 28 px defaults at this size)
    if erase_on:
        rows = c[1].slider("Rows", 0, h - 1, (at(8, h), at(14, h)), key=state.key("erase_rows" + size))
        cols = c[1].slider("Columns", 0, w - 1, (at(8, w), at(20, w)), key=state.key("erase_cols" + size))
        erase = (rows[0], cols[0], rows[1], cols[1])
    if stroke_on:
        start = c[2].slider("From (row, column)", 0, min(h, w) - 1, (at(4, h), at(4, w)),
                            key=state.key("stroke_from" + size))
        end = c[2].slider("To (row, column)", 0, min(h, w) - 1, (at(24, h), at(24, w)),
                          key=state.key("stroke_to" + size))
        stroke = (start[0], start[1], end[0], end[1])
    edited = anomaly.edited(base, degrees, erase, stroke)
    score, below = anomaly.typicality(name, device, edited, SETS_SEED, energy)
    base_score, _ = anomaly.typicality(name, device, base, SETS_SEED, energy)
    a, b = st.columns([1, 3])
    a.image(tile(to_u8(np.concatenate([base, edited])), ncol=2, scale=max(1, 112 // max(h, w))),
            caption="before · after the edits")
    b.markdown(f"Score −E = **{score:.4g}** under `{anomaly.row_label(name, energy)}`: more typical than "
               f"**{100 * below:.1f}%** of {inside.counted}.")
    b.plotly_chart(score_histogram_figure(sc.digits, {}, marker=score, inside=inside.noun), key=state.key("your_hist"))
    order = np.argsort(sc.digits)
    ends = np.concatenate([order[::-1][:10], order[:10]])
    title = "held-out digits" if inside.digits else "of your images"
    with st.expander(f"The most and least typical {title}", expanded=False) if present else st.container():
        st.image(labelled_grid(to_u8(digits[ends]), [f"{sc.digits[i]:.3g}" for i in ends], ncol=10,
                               scale=max(1, 84 // max(h, w)), font_px=grid_font_px()),
                 caption=f"The 10 most typical {title} under {name} (top row) and the 10 least typical "
                         "(bottom), each with its score")
    edits = ([f"rotated {degrees}°"] if degrees else []) + (["a box erased"] if erase else []) + \
        (["a stroke added"] if stroke else [])
    return anomaly.digit_notice(anomaly.row_label(name, energy), score, below, base_score, sc.digits, edits,
                                inside.digits)


VIEWS = dict(zip(VIEW_NAMES, (every_model, one_model, your_digit), strict=True))
view = st.segmented_control("View", VIEW_NAMES, default=VIEW_NAMES[0], key=state.key("view")) or VIEW_NAMES[0]
notice = VIEWS[view]()
share(fields)
what_to_notice("views/anomaly.py", notice)
