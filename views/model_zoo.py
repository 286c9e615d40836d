"""Models: every model the app offers (shipped, from added folders, your own) with its provenance and the shipped
files' stored quality, one model's training history and samples over training, and two models side by side on one
seed and one gradient budget."""

import pandas as pd
import streamlit as st

from ebmviz.app import links
from ebmviz.app.cache import load_model
from ebmviz.app.pages import model_zoo
from ebmviz.app.pages.model_zoo import KINDS, SnapshotSlots, zoo
from ebmviz.app.state import PageState
from ebmviz.app.widgets import share, shared
from ebmviz.figures.charts import class_counts_figure, history_figure
from ebmviz.figures.images import tile

P = "zoo"
state = PageState(P)
VIEW_NAMES = ["All models", "One model", "Side by side"]
LISTED = model_zoo.listing()
USABLE = {m.name: m for m in LISTED if m.usable}
NAMES = list(USABLE)
DRAWERS = [m.name for m in USABLE.values() if m.entry.cls.Draws is not None]
YOURS = [m.name for m in USABLE.values() if m.entry.origin == "yours"]
fields = [links.choice(state.key("view"), "view", VIEW_NAMES), links.choice(state.key("one"), "model", NAMES),
          links.choice(state.key("a"), "a", DRAWERS), links.choice(state.key("b"), "b", DRAWERS),
          links.integer(state.key("budget"), "budget", 1, 2000)]
links.restore(fields)
st.title("Models")
st.markdown("Every model ebmviz offers — shipped, from a folder added with `ebmviz run --checkpoints`, and your own "
            "(`ebmviz run --model`) — how it was trained, and how good its samples are. The numbers were computed "
            "once by `python -m training scores` and stored in `checkpoints/scores.json`, for the shipped files "
            "only; a model whose file changed since is marked.")
seed, device = shared().seed, shared().device
try:
    SCORES = zoo.read_scores()
except ValueError as err:
    st.error(f"The stored scores cannot be read: {err}")
    SCORES = zoo.Scores({}, {})
for listed in LISTED:
    if not listed.usable:
        st.warning(model_zoo.skipped(listed), icon=":material/warning:")


def _scored(name: str) -> zoo.ModelScores | None:
    return model_zoo.scored(USABLE[name], SCORES)


def _quality(name: str) -> dict:
    entry = _scored(name)
    return (entry.quality or {}) if entry else {}


def yours_table(names: list[str], key: str) -> None:
    st.dataframe(pd.DataFrame({n: model_zoo.user_details(n, device) for n in names}), key=state.key(key))


def all_models() -> None:
    if not NAMES:
        st.info("No usable model: every file and model was skipped (the warnings above say why).")
        return
    df = pd.DataFrame(model_zoo.table_rows(list(USABLE.values()), SCORES, device)).set_index("model")
    numeric = [c for c in df.columns if c not in ("from", "kind", "scored file")]
    df[numeric] = df[numeric].apply(pd.to_numeric, errors="coerce")  # None -> NaN, shown as "–" (placeholder)
    st.dataframe(df.style.format(
        {"confident (> 0.9)": "{:.3f}", "class entropy": "{:.3f}", "Fréchet": "{:.1f}", "MB": "{:.1f}",
         "anomaly AUROC (goal mean)": "{:.3f}", "training min": "{:.1f}", "parameters": "{:,.0f}",
         "gradients per sample": "{:.0f}"}, na_rep="–"), key=state.key("table"), height=36 * (len(df) + 1) + 2,
        placeholder="–")  # Streamlit draws a missing number as "None" without it (the Styler's na_rep is not used)
    held = SCORES.settings.get("held_out_quality")
    scale = (f" For scale, {held['n']:,} held-out digits themselves score {held['confident_share']:.3f} confident, "
             f"entropy {held['class_entropy']:.3f}." if held else "")
    st.caption("Quality: the evaluator on samples of `model.draw` at the shipped settings (how many and which seed: "
               "One model shows each entry's note): the share it is more than 90% sure of, the entropy of its digit "
               "labels (ln 10 = 2.303 for all ten equally), the Fréchet distance of its features to the held-out "
               f"digits'.{scale} Anomaly AUROC: the mean over the goal's six sets on the Anomaly detection page. "
               f"Last scoring run {SCORES.settings.get('last_run', '?')}, commit {SCORES.settings.get('commit', '?')}. "
               "Models of added folders and your own are not scored: their numbers show as –.")
    if YOURS:
        st.subheader("Your own models")
        yours_table(YOURS, "yours")
        st.caption("What `ebmviz run --model PATH.py:FACTORY` loaded: the factory's module with the weights (their "
                   "SHA-256 says which file), E(x) on images of the shape shown, pixels mapped from the app's "
                   "[−1, 1] onto the value range, and the images given with --data, which chains and maps start "
                   "from.")


def one_model() -> None:
    if not NAMES:
        st.info("No usable model to show.")
        return
    name = st.selectbox("Model", NAMES, key=state.key("one"), format_func=lambda n: n if USABLE[n].entry.origin ==
                        "shipped" else f"{n} ({USABLE[n].entry.origin})")
    info = USABLE[name].info
    if info is None:
        st.markdown(f"**{name}** · your own energy model")
        yours_table([name], "prov")
        st.caption("ebmviz stores no training history or scores for a model of your own: the Langevin, landscape "
                   "and anomaly pages run it as it is.")
        return
    p = model_zoo.provenance(info)
    st.markdown(f"**{p.title}** · kind `{p.kind}`")
    st.dataframe(pd.DataFrame({"": {
        "command": p.command, **({"then": p.afterwards} if p.afterwards else {}), "data": p.data,
        "wall time": "–" if p.wall_minutes is None else f"{p.wall_minutes:.1f} min"
        + ("" if p.iterations is None else f", {p.iterations:,} iterations"),
        "device": p.device, "parameters": "–" if not (e := _scored(name)) or e.parameters is None
        else f"{e.parameters:,}", "file": f"{p.megabytes:.2f} MB, written {p.written}",
        "commit": p.commit}}), key=state.key("prov"))
    q = _quality(name)
    if (entry := _scored(name)) is not None and entry.notes:
        st.caption("Scored: " + "; ".join(f"{k}: {v}" for k, v in sorted(entry.notes.items())))
    if q:
        c = st.columns(4)
        c[0].metric("Confident (> 0.9)", f"{q['confident_share']:.3f}")
        c[1].metric("Class entropy", f"{q['class_entropy']:.3f}")
        c[2].metric("Fréchet", "–" if q.get("frechet") is None else f"{q['frechet']:.1f}")
        c[3].metric("Gradients per sample", f"{q.get('grad_evals', 0):,}")
        st.plotly_chart(class_counts_figure({"samples": q["class_counts"]}, 220, "digit the evaluator sees"),
                        key=state.key("counts"))
    elif USABLE[name].entry.origin == "added":
        st.info(f"Added from {info.path.parent}: scores are stored for the shipped files only (`python -m training "
                "scores` computes them for the checkpoints folder).")
    elif KINDS[info.kind].Draws is not None:
        st.info("No stored quality for this model: `python -m training scores` computes it.")
    hist = info.meta.get("history") or []
    keys = [k for k in (hist[0] if hist else {}) if k not in ("iteration", "epoch", "round", "minutes")
            and isinstance(hist[0][k], int | float)]
    if keys:
        chosen = st.multiselect("Training curves", keys, default=keys[:2], key=state.key(f"curves_{name}"))
        if chosen:
            st.plotly_chart(history_figure(hist, chosen), key=state.key("history"))
    model = load_model(name, device)
    if isinstance(model, SnapshotSlots):
        its, images = model.snapshots()
        if len(its) > 1:
            its = [int(i) for i in its]
            pick = st.select_slider("Samples over training (iteration)", its, value=its[-1],
                                    key=state.key(f"snap_{name}"))
            st.image(tile(images[its.index(pick)], ncol=16, scale=2),
                     caption=f"stored at iteration {pick:,} of {its[-1]:,}")


def side_by_side() -> None:
    if len(DRAWERS) < 2:
        st.info("Side by side needs two models that draw samples.")
        return
    c = st.columns(3)
    a = c[0].selectbox("Model A", DRAWERS, index=DRAWERS.index("shortrun-mnist") if "shortrun-mnist" in DRAWERS else 0,
                       key=state.key("a"))
    b = c[1].selectbox("Model B", DRAWERS, index=DRAWERS.index("coarse_to_fine-mnist")
                       if "coarse_to_fine-mnist" in DRAWERS else 1, key=state.key("b"))
    same = c[2].checkbox("Same gradient budget", value=True, key=state.key("same"),
                         help="Langevin models sample with this many steps; others keep their own sampler")
    budget = c[2].number_input("Gradients per sample", 1, 2000, 60, key=state.key("budget"), disabled=not same)
    cols = st.columns(2)
    for col, name in zip(cols, (a, b), strict=True):
        d = model_zoo.drawn(name, device, 16, seed, int(budget) if same else None)
        col.image(tile(d.images, ncol=4, scale=3), caption=f"{name}: {d.how}; {d.grad_evals:,} gradient "
                                                                    f"evaluations per sample, seed {seed}")


VIEWS = dict(zip(VIEW_NAMES, (all_models, one_model, side_by_side), strict=True))
view = st.segmented_control("View", VIEW_NAMES, default=VIEW_NAMES[0], key=state.key("view")) or VIEW_NAMES[0]
VIEWS[view]()
share(fields)
