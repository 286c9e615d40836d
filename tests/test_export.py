"""Exports: GIF, NPZ, settings JSON, standalone HTML figures and file names round-trip through their readers."""

import dataclasses
import io
import json
import re

import imageio.v3 as iio
import numpy as np
import plotly.graph_objects as go
import pytest
import torch

from ebmviz import export
from ebmviz.export import config_json, figure_html, file_stem, gif_bytes, npz_bytes, trajectory_arrays
from ebmviz.sampling import LangevinConfig, langevin
from ebmviz.sampling.toy2d import gaussian_energy


def _grey_frames(n=6, h=9, w=13, seed=0):
    """Distinct frames (the encoder merges identical consecutive ones)."""
    return np.random.default_rng(seed).integers(0, 256, (n, h, w), dtype=np.uint8)


def _read_gif(b: bytes) -> np.ndarray:
    return iio.imread(b, index=None, extension=".gif")


# --- GIF -----------------------------------------------------------------------------------------

def test_gif_round_trip_grey():
    frames = _grey_frames()
    b = gif_bytes(frames, fps=10)
    assert b[:6] == b"GIF89a"
    back = _read_gif(b)
    assert back.shape[:3] == (6, 9, 13)
    grey = back if back.ndim == 3 else back[..., 0]
    if back.ndim == 4:  # read back as RGB: all channels the same grey
        assert np.array_equal(back[..., 0], back[..., 1]) and np.array_equal(back[..., 0], back[..., 2])
    assert np.abs(grey.astype(int) - frames.astype(int)).max() <= 1
    meta = iio.immeta(b, extension=".gif")
    assert meta["loop"] == 0 and meta["duration"] == 100  # ms per frame at 10 fps


def test_gif_round_trip_rgb_and_single_channel():
    rgb = np.zeros((3, 4, 5, 3), dtype=np.uint8)
    for i, c in enumerate(([255, 0, 0], [0, 255, 0], [0, 0, 255])):
        rgb[i] = c
    back = _read_gif(gif_bytes(rgb))
    assert back.shape == (3, 4, 5, 3)
    np.testing.assert_array_equal(back, rgb)
    one = _grey_frames(n=2)[..., None]  # (F, H, W, 1) counts as grey
    assert _read_gif(gif_bytes(one)).shape[:3] == (2, 9, 13)


@pytest.mark.parametrize("w", [1, 2, 3, 4])
def test_gif_narrow_grey_frames_stay_a_batch(w):
    frames = _grey_frames(n=3, h=5, w=w)  # (3, 5, w) must not be read as one colour image of 3×5
    back = _read_gif(gif_bytes(frames))
    assert back.shape[:3] == (3, 5, w)
    grey = back if back.ndim == 3 else back[..., 0]
    assert np.abs(grey.astype(int) - frames.astype(int)).max() <= 1


def test_gif_scale_repeats_pixels():
    frames = _grey_frames(n=3, h=4, w=5)
    back = _read_gif(gif_bytes(frames, scale=3))
    assert back.shape[:3] == (3, 12, 15)
    grey = back if back.ndim == 3 else back[..., 0]
    expected = np.repeat(np.repeat(frames, 3, axis=1), 3, axis=2)
    assert np.abs(grey.astype(int) - expected.astype(int)).max() <= 1
    assert np.array_equal(grey[:, 0:3, 0:3], np.broadcast_to(grey[:, :1, :1], (3, 3, 3)))  # one 3×3 block


def test_gif_fps_sets_frame_time():
    frames = _grey_frames(n=2)
    assert iio.immeta(gif_bytes(frames, fps=4), extension=".gif")["duration"] == 250
    assert iio.immeta(gif_bytes(frames, fps=1000), extension=".gif")["duration"] == 20  # floor at 20 ms


@pytest.mark.parametrize("frames, match", [
    (np.zeros((2, 4, 4), dtype=np.float32), "uint8"),
    (np.zeros((4, 4), dtype=np.uint8), "shape"),
    (np.zeros((2, 4, 4, 2), dtype=np.uint8), "shape"),
    (np.zeros((2, 1, 4, 4, 3), dtype=np.uint8), "shape"),
    (np.zeros((0, 4, 4), dtype=np.uint8), "at least one"),
])
def test_gif_bad_inputs(frames, match):
    with pytest.raises(ValueError, match=match):
        gif_bytes(frames)


@pytest.mark.parametrize("kw", [dict(fps=0), dict(fps=float("nan")), dict(scale=0), dict(scale=1.5)])
def test_gif_bad_fps_or_scale(kw):
    with pytest.raises(ValueError):
        gif_bytes(_grey_frames(n=2), **kw)


def test_gif_caps():
    too_many = np.zeros((export.MAX_GIF_FRAMES + 1, 1, 1), dtype=np.uint8)
    with pytest.raises(ValueError, match="2,000 frames"):
        gif_bytes(too_many)
    gif_bytes(too_many[: export.MAX_GIF_FRAMES])  # the cap itself is allowed
    small = np.zeros((10, 100, 100), dtype=np.uint8)  # 100k pixels; ×scale² over the pixel cap
    with pytest.raises(ValueError, match="50,000,000 pixels"):
        gif_bytes(small, scale=23)


# --- NPZ -----------------------------------------------------------------------------------------

def test_npz_round_trip_without_pickle():
    arrays = {"a": np.arange(12, dtype=np.float32).reshape(3, 4), "b": np.array([True, False]),
              "skip": None, "u8": np.full((2, 2), 7, dtype=np.uint8)}
    meta = {"n_steps": 10, "clamp": (-1.0, 1.0), "seed": np.int64(3), "name": "gauss"}
    with np.load(io.BytesIO(npz_bytes(arrays, meta=meta)), allow_pickle=False) as z:
        assert sorted(z.files) == ["a", "b", "meta_json", "u8"]
        for k in ("a", "b", "u8"):
            np.testing.assert_array_equal(z[k], arrays[k])
            assert z[k].dtype == arrays[k].dtype
        assert z["meta_json"].shape == () and z["meta_json"].dtype.kind == "U"
        assert json.loads(str(z["meta_json"])) == {"n_steps": 10, "clamp": [-1.0, 1.0], "seed": 3, "name": "gauss"}


def test_npz_without_meta_and_refusals():
    with np.load(io.BytesIO(npz_bytes({"x": np.zeros(3)})), allow_pickle=False) as z:
        assert z.files == ["x"]
    with pytest.raises(ValueError, match="object"):
        npz_bytes({"bad": np.array([{"a": 1}, None], dtype=object)})
    with pytest.raises(ValueError, match="reserved"):
        npz_bytes({"meta_json": np.zeros(1)})
    with pytest.raises(ValueError, match="JSON"):
        npz_bytes({"x": np.zeros(1)}, meta={"f": object()})


# --- trajectory ----------------------------------------------------------------------------------

def _run():
    energy = gaussian_energy([0.0, 0.0], np.eye(2))
    cfg = LangevinConfig(n_steps=10, step_size=0.1, noise_std=0.4, grad_clip=None, clamp=None)
    return langevin(energy, torch.zeros(5, 2), cfg, seed=0, frame_format="float32"), cfg


def test_trajectory_arrays_of_a_langevin_run_round_trip():
    traj, cfg = _run()
    arrays = trajectory_arrays(traj)
    assert list(arrays) == ["final", "frames", "frame_steps", "energy", "grad_norm", "step_norm", "accept",
                            "diverged_at", "temperature"]
    assert arrays["accept"] is None  # ULA
    np.testing.assert_allclose(arrays["temperature"], 0.4**2 / (2 * 0.1))  # T = σ²/(2s) at every step
    assert arrays["final"].shape == (5, 2) and arrays["frames"].shape == (11, 5, 2)
    assert arrays["energy"].shape == (11, 5) and arrays["grad_norm"].shape == (10, 5)
    b = npz_bytes(arrays, meta=json.loads(config_json(cfg)))
    with np.load(io.BytesIO(b), allow_pickle=False) as z:
        assert "accept" not in z.files
        for k, v in arrays.items():
            if v is not None:
                np.testing.assert_array_equal(z[k], v)
        assert LangevinConfig.from_dict(json.loads(str(z["meta_json"]))) == cfg


def test_trajectory_arrays_leapfrog_is_optional():
    traj, _ = _run()
    fields = {k: getattr(traj, k) for k in ("final", "frames", "frame_steps", "energy", "grad_norm", "step_norm",
                                            "accept", "diverged_at")}
    hmc_like = type("HMCLike", (), {**fields, "leapfrog": np.ones((10, 5))})()
    assert trajectory_arrays(hmc_like)["leapfrog"].shape == (10, 5)
    no_leap = type("Old", (), {**fields, "leapfrog": None})()
    assert "leapfrog" not in trajectory_arrays(no_leap)
    with pytest.raises(TypeError, match="energy"):
        trajectory_arrays(type("Broken", (), {k: v for k, v in fields.items() if k != "energy"})())


# --- settings JSON -------------------------------------------------------------------------------

def test_config_json_of_langevin_config():
    cfg = LangevinConfig(n_steps=17, step_size=0.2, noise_std=0.3, clamp=(-2.0, 2.0), metropolis=True)
    text = config_json(cfg)
    d = json.loads(text)
    assert d["type"] == "LangevinConfig" and d["clamp"] == [-2.0, 2.0]
    assert list(d) == sorted(d) and "\n  " in text  # sorted, indented
    d.pop("type")
    assert LangevinConfig.from_dict(d) == cfg


def test_config_json_of_dataclass_and_dict():
    @dataclasses.dataclass(frozen=True)
    class Plain:
        size: tuple = (2, 3)
        name: str = "x"

    assert json.loads(config_json(Plain())) == {"size": [2, 3], "name": "x", "type": "Plain"}
    assert json.loads(config_json({"b": (1, 2), "a": np.float32(0.5)})) == {"a": 0.5, "b": [1, 2]}
    with pytest.raises(TypeError):
        config_json(42)


# --- HTML figures --------------------------------------------------------------------------------

def test_figure_html_is_standalone():
    fig = go.Figure(go.Scatter(x=[0, 1], y=[2, 3]), layout_title_text="Energy per step ✓")
    html = figure_html(fig)
    assert isinstance(html, bytes)
    text = html.decode("utf-8")
    assert "<html" in text[:200].lower() and "</html>" in text[-200:].lower() and "plotly" in text.lower()
    assert '"Energy per step \\u2713"' in text or '"Energy per step ✓"' in text  # the title, in the figure JSON
    assert not re.search(r"<script[^>]*\bsrc=", text)  # no CDN (or any external) script
    assert len(html) > 1_000_000  # plotly.js itself is inlined


# --- file names ----------------------------------------------------------------------------------

@pytest.mark.parametrize("parts, stem", [
    (("sampler lab", 7), "sampler-lab-7"),
    (("Shortrun / MNIST", "seed", 0, 0.5), "Shortrun-MNIST-seed-0-0.5"),
    (("../etc/passwd",), "etc-passwd"),
    (("a__b", "c..d", "été"), "a__b-c..d-t"),
    (("", None, "   "), "ebmviz"),
    ((), "ebmviz"),
    (("x" * 200,), "x" * 80),
])
def test_file_stem(parts, stem):
    assert file_stem(*parts) == stem


def test_file_stem_is_always_safe():
    s = file_stem("a" * 79, "!!!", "b")
    assert len(s) <= 80 and re.fullmatch(r"[A-Za-z0-9._-]+", s) and not s.endswith("-")


# --- the Streamlit panel -------------------------------------------------------------------------

def _panel_app():
    import numpy as np
    import plotly.graph_objects as go

    from ebmviz.app.export_panel import export_panel
    from ebmviz.sampling import LangevinConfig

    export_panel("sampler lab/seed 3", frames=lambda: np.zeros((2, 4, 4), np.uint8),
                 trajectory=lambda: {"x": np.zeros(3)}, config=LangevinConfig(),
                 figures={"Energy": lambda: go.Figure()}, key="t")


def test_export_panel_renders_in_apptest():
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_function(_panel_app, default_timeout=60).run()
    assert not at.exception
    assert [e.label for e in at.expander] == ["Export"]
    buttons = at.get("download_button")
    assert [b.proto.label for b in buttons] == ["GIF of the chains", "Trajectory arrays (NPZ)", "Settings (JSON)",
                                                "Energy (HTML)"]
    assert all(b.proto.ignore_rerun for b in buttons)  # on_click="ignore": a download does not rerun the page
    assert [bool(b.proto.deferred_file_id) for b in buttons] == [True, True, False, True]  # built on click
    assert "pickle" in at.caption[0].value


class _FakeSt:
    """Stands in for streamlit inside export_panel: records each download button's arguments."""

    def __init__(self):
        self.buttons, self.captions = [], []
        self.query_params = {"seed": "3", "model": "shortrun-mnist"}  # the page's link, as st.query_params

    def expander(self, label, **kw):
        import contextlib
        return contextlib.nullcontext()

    def download_button(self, label, data, **kw):
        self.buttons.append(dict(label=label, data=data, **kw))

    def caption(self, text):
        self.captions.append(text)


def test_export_panel_buttons_make_valid_files(monkeypatch):
    import ebmviz.app.export_panel as panel

    fake = _FakeSt()
    monkeypatch.setattr(panel, "st", fake)
    calls = []
    frames = _grey_frames(n=4)
    traj, cfg = _run()
    fig = go.Figure(layout_title_text="Chains")

    def make_frames():
        calls.append("frames")
        return frames

    panel.export_panel("Sampler lab / seed 3", frames=make_frames, trajectory=lambda: trajectory_arrays(traj),
                       config=cfg, figures={"Energy trace": lambda: fig}, fps=5, key="lab")
    assert calls == []  # nothing heavy is built until a button is clicked
    by_label = {b["label"]: b for b in fake.buttons}
    assert list(by_label) == ["GIF of the chains", "Trajectory arrays (NPZ)", "Settings (JSON)", "Energy trace (HTML)"]
    assert {b["key"] for b in fake.buttons} == {"lab_gif", "lab_npz", "lab_json", "lab_html_0"}
    assert all(b["on_click"] == "ignore" for b in fake.buttons)
    assert [b["mime"] for b in fake.buttons] == ["image/gif", "application/octet-stream", "application/json",
                                                 "text/html"]
    assert [b["file_name"] for b in fake.buttons] == ["Sampler-lab-seed-3-chains.gif",
                                                      "Sampler-lab-seed-3-trajectory.npz",
                                                      "Sampler-lab-seed-3-settings.json",
                                                      "Sampler-lab-seed-3-Energy-trace.html"]
    gif = by_label["GIF of the chains"]["data"]()
    assert calls == ["frames"] and _read_gif(gif).shape[:3] == (4, 9, 13)
    assert iio.immeta(gif, extension=".gif")["duration"] == 200  # fps=5 passed through
    with np.load(io.BytesIO(by_label["Trajectory arrays (NPZ)"]["data"]()), allow_pickle=False) as z:
        np.testing.assert_array_equal(z["energy"], traj.energy)
        meta = json.loads(str(z["meta_json"]))
        assert meta["type"] == "LangevinConfig" and LangevinConfig.from_dict(meta) == cfg
        assert meta["link"] == "?seed=3&model=shortrun-mnist"  # the query string that reopens the view
    assert json.loads(by_label["Settings (JSON)"]["data"]) == {**json.loads(config_json(cfg)), "link": meta["link"]}
    assert b"Chains" in by_label["Energy trace (HTML)"]["data"]()
    assert len(fake.captions) == 1


def test_export_panel_draws_only_what_is_given(monkeypatch):
    import ebmviz.app.export_panel as panel

    fake = _FakeSt()
    monkeypatch.setattr(panel, "st", fake)
    panel.export_panel("x", trajectory=lambda: {"a": np.ones(2)}, key="k")
    assert [b["label"] for b in fake.buttons] == ["Trajectory arrays (NPZ)"]
    with np.load(io.BytesIO(fake.buttons[0]["data"]()), allow_pickle=False) as z:
        assert z.files == ["a"]  # no config, no meta_json


def test_gif_picks_fit_the_pixel_cap_and_keep_both_ends():
    from ebmviz.export import MAX_GIF_PIXELS, gif_picks

    picks = gif_picks(300, (360, 1200, 3))  # two wide panels: 150 frames would exceed the cap
    assert picks[0] == 0 and picks[-1] == 299
    assert len(picks) * 360 * 1200 <= MAX_GIF_PIXELS and len(picks) == MAX_GIF_PIXELS // (360 * 1200)
    frames = np.zeros((len(picks), 360, 1200), np.uint8) + np.arange(len(picks), dtype=np.uint8)[:, None, None]
    assert gif_bytes(frames)[:6] == b"GIF89a"  # the picked frames are accepted
    assert gif_picks(10, (28, 28)).tolist() == list(range(10)) and gif_picks(1, (28, 28)).tolist() == [0]
