"""The chain-file panel in AppTest: an uploaded trajectory plays with its status line, traces and diagnostics; a bad
file shows the loader's message; a file with energy alone draws what it has; every session key carries the prefix."""

import base64
import io
import json

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from ebmviz.data import load_dataset
from ebmviz.sampling.diagnostics import ess, rhat


def panel_app():
    from ebmviz.app.chain_file_panel import chain_file_panel

    chain_file_panel("probe")


def npz(**arrays) -> bytes:
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


@pytest.fixture(scope="module")
def chains() -> dict:
    """16 chains × 41 steps walking from noise to real MNIST digits: frames every 10 steps, every per-step array."""
    rng = np.random.default_rng(0)
    target = load_dataset("mnist", "test")[0][:16].numpy()
    x = rng.uniform(-1, 1, (16, 1, 28, 28))
    states = [x]
    for _ in range(40):
        x = np.clip(x + 0.1 * (target - x) + 0.02 * rng.normal(size=x.shape), -1, 1)
        states.append(x)
    states = np.stack(states)  # (41, 16, 1, 28, 28)
    energy = 0.5 * ((states - target) ** 2).reshape(41, 16, -1).sum(2)
    steps = np.linalg.norm(np.diff(states, axis=0).reshape(40, 16, -1), axis=2)
    return {"frames": states[::10].astype(np.float32), "frame_steps": np.arange(0, 41, 10), "energy": energy,
            "grad_norm": np.sqrt(2 * energy[:-1]), "step_norm": steps}


def start() -> AppTest:
    at = AppTest.from_function(panel_app, default_timeout=60)
    at.run()
    return at


def status(at: AppTest) -> str:
    return next(m.value for m in at.markdown if m.value.startswith("**Step "))


def test_an_upload_plays_with_its_traces_and_diagnostics(chains):
    at = start()
    assert not at.exception and "Plain arrays only" in at.caption[0].value
    at.file_uploader[0].upload("chains.npz", npz(**chains)).run()
    assert not at.exception and not at.error
    assert "16 chain(s) of 28×28 grey images, 5 frames over 40 steps" in at.markdown[0].value
    assert status(at).startswith("**Step 0 / 40** · frame 1 of 5")
    at.button(key="probe_file_step").click().run()
    assert status(at).startswith("**Step 10 / 40** · frame 2 of 5")
    chart = at.get("plotly_chart")
    assert len(chart) == 1  # traces_figure: energy, the two norms and the per-frame rows in one figure
    second = chains["energy"][20:]  # the second half, as the Langevin page reads it
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["ESS of the energy"] == f"{ess(second):.0f}"
    assert metrics["R-hat of the energy"] == f"{rhat(second):.3f}" and metrics["Acceptance"] == "—"
    keys = list(at.session_state)
    assert "probe_file_opened" in keys and all(k.startswith("probe_file_") for k in keys), keys


def test_a_bad_file_shows_the_loaders_message_and_a_good_one_replaces_it(chains):
    at = start()
    bad = dict(chains, energy=chains["energy"][:, :15])
    at.file_uploader[0].upload("bad.npz", npz(**bad)).run()
    assert not at.exception and len(at.error) == 1
    assert "**bad.npz** cannot be opened: `energy` has 15 chains (columns) but `frames` has 16" in at.error[0].value
    assert not any(m.value.startswith("**Step ") for m in at.markdown)
    at.file_uploader[0].upload("chains.npz", npz(**chains)).run()
    assert not at.error and status(at).startswith("**Step 0 / 40**")


def test_energy_alone_is_drawn_alone_and_a_diverged_chain_is_left_out(chains):
    energy = chains["energy"].copy()
    energy[25:, 3] = np.nan  # chain 3 diverges at step 25
    at = start()
    at.file_uploader[0].upload("energy.npz", npz(frames=chains["frames"], frame_steps=chains["frame_steps"],
                                                 energy=energy)).run()
    assert not at.exception
    assert "1 of 16 chains met a non-finite value (first at step 25)" in at.warning[0].value
    assert len(at.get("plotly_chart")) == 2  # the energy's medians, and the per-frame pixel rows
    assert any("the file has no grad_norm or step_norm" in c.value for c in at.caption)
    alive = np.delete(energy, 3, axis=1)[20:]
    assert {m.label: m.value for m in at.metric}["ESS of the energy"] == f"{ess(alive):.0f}"


def test_a_long_wide_file_is_drawn_thinned_and_diversity_reads_its_first_chains():
    rng = np.random.default_rng(3)
    steps, chains = 6_000, 300
    at = start()
    at.file_uploader[0].upload("long.npz", npz(frames=rng.integers(0, 256, (3, chains, 4, 4), dtype=np.uint8),
                                               energy=rng.normal(size=(steps + 1, chains)),
                                               grad_norm=rng.random((steps, chains)),
                                               step_norm=rng.random((steps, chains)))).run()
    assert not at.exception and status(at).startswith(f"**Step 0 / {steps}**")
    captions = " ".join(c.value for c in at.caption)
    assert "6,000 steps are drawn at 2,000 of them" in captions and "the first 256 of the 300 chains" in captions
    charts = [json.loads(c.proto.spec) for c in at.get("plotly_chart")]
    assert len(charts) == 4  # energy, the two norms, the per-frame rows
    xs = [[decoded(trace["x"]) for trace in chart["data"]] for chart in charts[:3]]
    assert all(len(x) == 2_000 for chart in xs for x in chart)
    assert xs[0][0][-1] == steps and xs[1][0][-1] == steps - 1  # E(x_T); ‖∇E(x_{T−1})‖
    assert xs[2][0][0] == 1 and xs[2][0][-1] == steps  # ‖x_1 − x_0‖ is step 1's, ‖x_T − x_{T−1}‖ step T's


def decoded(values) -> np.ndarray:
    """A plotly array as its JSON holds it: a list, or base64 bytes with their dtype."""
    if isinstance(values, dict):
        return np.frombuffer(base64.b64decode(values["bdata"]), np.dtype(values["dtype"]))
    return np.asarray(values)
