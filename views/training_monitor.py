"""Training monitor: follow a run's TensorBoard log live — energies, gap, loss, gradient norm, learning rate,
saturation, the negatives over training, class entropy, alerts with remedies — and overlay a second run."""

import numpy as np
import streamlit as st

from ebmviz.app import links
from ebmviz.app.pages.training_monitor import (
    LIVE_SECONDS,
    MEANING,
    ROLES,
    age,
    by_role,
    check_alerts,
    class_counts,
    entropy_series,
    find,
    image_tags,
    listing,
    load_images,
    mapping_of,
    read,
    saturation_of,
)
from ebmviz.app.state import PageState
from ebmviz.app.widgets import share
from ebmviz.figures.images import tile
from ebmviz.figures.monitor import class_histogram_figure, training_figure

P = "monitor"
state = PageState(P)
NONE = "(none)"
root, found = listing()
names = [r.name for r in found.runs]
fields = [links.choice(state.key("run"), "run", names), links.choice(state.key("other"), "compare", [NONE, *names]),
          links.flag(state.key("live"), "live")]
links.restore(fields)
st.title("Training monitor")
st.markdown("EBM training fails late and quietly: energies drift apart and blow up, data and samples swap places, "
            "samples saturate or collapse onto a few digits, or nothing is learnt while the loss looks calm. Follow a "
            "run's TensorBoard log here as it is written — any trainer of ebmviz (`python -m training …` writes one "
            "in its run folder) or your own loop through `ebmviz.training_log` or your own `SummaryWriter`.")
if found.problem and not found.runs:
    st.info(f"No runs to show: {found.problem}.", icon=":material/folder_off:")
    share(fields)
    st.stop()
if found.problem:
    st.caption(found.problem)
top = st.columns([1.4, 1.4, 0.8])
name = top[0].selectbox(f"Run (in {root})", names, key=state.key("run"),
                        help="Folders under the runs folder that hold TensorBoard event files, newest first")
other = top[1].selectbox("Overlay a second run", [NONE, *[n for n in names if n != name]], key=state.key("other"))
st.session_state.setdefault(state.key("live"), True)
live = top[2].toggle("Follow live", key=state.key("live"), help=f"Read the log again every {LIVE_SECONDS:g} s")
run = find(found, name)
first = read(run)
tags = sorted(first.scalars)
chosen = st.session_state.setdefault(state.key(f"mapping:{name}"), {})  # role -> tag the user picked for this run
mapping = mapping_of(tags, chosen)
foreign = [t for t in tags if t not in mapping.values()]
with st.expander("Tags → roles" + (f" ({len(foreign)} tag(s) of your own)" if foreign else ""), expanded=False):
    st.caption("Which of the run's scalar tags plays which role. ebmviz's own tags are mapped already (and as soon as "
               "a live run logs them); map your own once (remembered for this run in this session).")
    cols = st.columns(3)
    for k, role in enumerate(ROLES):
        key = state.key(f"tag:{name}:{role}")
        if role not in chosen:  # not picked by the user: the widget shows the default, which a live run may change
            st.session_state[key] = mapping.get(role) or NONE
        cols[k % 3].selectbox(role, [NONE, *tags], key=key, help=MEANING[role],
                              on_change=lambda role=role, key=key: chosen.update(
                                  {role: None if st.session_state[key] == NONE else st.session_state[key]}))
share(fields)


@st.fragment(run_every=LIVE_SECONDS if live else None)
def follow():
    snap = read(run)
    mapping = mapping_of(sorted(snap.scalars), chosen)  # tags a live run logs later are mapped as they come
    series = {name: by_role(snap, mapping)}
    full = by_role(snap, mapping, full=True)
    refs = snap.images.get(image_tags(snap)[0], []) if image_tags(snap) else []
    entropy = entropy_series(refs)
    if entropy is not None:
        series[name]["class_entropy"] = entropy
        full["class_entropy"] = entropy
    if other != NONE and (o := find(found, other)) is not None:
        osnap = read(o)
        series[other] = by_role(osnap, mapping_of(sorted(osnap.scalars),
                                                  st.session_state.get(state.key(f"mapping:{other}"), {})))
    alerts = check_alerts(full)
    st.markdown(f"**Last logged step {snap.last_step if snap.last_step is not None else '–'}** · written "
                f"{age(snap.last_wall)} · read in {1000 * snap.read_seconds:.0f} ms"
                + (" · following live" if live else ""))
    for note in snap.notes:
        st.caption(f"Note: {note}")
    for a in alerts:
        st.warning(f"**{a.kind.capitalize()} from step {a.step}.** {a.message}\n\n"
                   + "\n".join(f"- {r}" for r in a.remedies), icon=":material/warning:")
    if not series[name]:
        st.info("No scalars under the mapped tags yet: map the run's tags to roles above, or wait for its first "
                "logged step.")
        return
    st.plotly_chart(training_figure(series, markers={name: [a.step for a in alerts]}), width="stretch",
                    key=state.key("curves"))
    st.caption("Shaded: ±1 standard deviation of E over the batch. A log axis where a series spans decades. Lower "
               "energy is more likely (p ∝ exp(−E)): a healthy run keeps E(x⁺) below E(x⁻), both well below the "
               "energy of noise.")
    return refs


refs = follow()
st.header("The negatives over training")
if not refs:
    st.info("This log has no negatives images (`samples/negatives`, written by `EBMLogger.negatives`).")
    st.stop()
at = st.select_slider("Logged step", [r.step for r in refs], value=refs[-1].step, key=state.key("image_step"))
ref = next(r for r in refs if r.step == at)
images = load_images(ref)
left, right = st.columns([1.2, 1])
left.image(tile(images, ncol=8, scale=3 if images.shape[-1] <= 32 else 1),
           caption=f"{len(images)} negatives at step {at}: {100 * saturation_of(images):.0f}% of pixels at the walls")
counts = class_counts(images)
if counts is None:
    right.caption("The digit evaluator reads 28×28 grey digits only: no class histogram for these images.")
else:
    p = counts / max(counts.sum(), 1)
    right.plotly_chart(class_histogram_figure(counts, float(-(p[p > 0] * np.log(p[p > 0])).sum())),
                       width="stretch")
