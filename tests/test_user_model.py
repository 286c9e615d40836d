"""The user's own model: loading and every check of ``ebmviz.user_model``, the image sets of ``ebmviz.image_sets``,
the ``ebmviz run`` command line, and the catalogue of shipped, added and user models."""

import gzip
import io
import json
import pickle
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import save_file

from ebmviz import catalogue, checkpoints, cli
from ebmviz.checkpoints import REPO_CHECKPOINTS
from ebmviz.image_sets import ImageSetError, load_images
from ebmviz.images import image_for_shape
from ebmviz.sampling import LangevinConfig, langevin
from ebmviz.user_model import UserGenerator, UserModelError, UserSpec, load_user_model
from tests.user_models import ENERGY_FILE, GRAY, RGB, serve

# One module of bad factories, written by the test: each is one problem of the list.
BAD_CODE = '''
import torch
from torch import nn

class Energy(nn.Module):
    image_shape = (1, 12, 12)
    def __init__(self, out="ok"):
        super().__init__()
        self.w = nn.Parameter(torch.ones(1))
        self.out = out
    def forward(self, x):
        e = self.w * x.flatten(1).pow(2).sum(1)
        if self.out == "column":
            return e[:, None]
        if self.out == "nan":
            return e * float("nan")
        if self.out == "detached":
            return self.w * x.detach().flatten(1).pow(2).sum(1)
        return e

def good(): return Energy()
def column(): return Energy("column")
def nan(): return Energy("nan")
def detached(): return Energy("detached")
def raises(): raise RuntimeError("CUDA is not available on this machine")
def not_a_module(): return lambda x: x.sum()
def no_shape():
    m = Energy(); m.image_shape = None; return m
def three_channels():
    m = Energy(); m.image_shape = (3, 12, 12); return m
def too_small():
    m = Energy(); m.image_shape = (1, 4, 4); return m
def two_channels():
    m = Energy(); m.image_shape = (2, 12, 12); return m
def bad_decoder():
    m = Energy(); m.latent_dim = 4; m.decode = lambda z: torch.zeros(len(z), 5); return m
NOT_CALLABLE = 3
'''


@pytest.fixture
def bad(tmp_path):
    path = tmp_path / "bad_models.py"
    path.write_text(BAD_CODE)
    (tmp_path / "import_raises.py").write_text("raise ImportError('needs a package this machine lacks')\n")
    save_file({"w": torch.ones(1)}, str(tmp_path / "good.safetensors"))
    save_file({"w": torch.ones(2)}, str(tmp_path / "wrong_shape.safetensors"))
    save_file({"v": torch.ones(1)}, str(tmp_path / "wrong_name.safetensors"))
    torch.save({"w": torch.ones(1)}, tmp_path / "weights.pt")
    (tmp_path / "corrupt.safetensors").write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json")
    np.savez(tmp_path / "rgb12.npz", images=np.zeros((4, 12, 12, 3), np.uint8))
    np.savez(tmp_path / "grey12.npz", images=np.zeros((4, 12, 12), np.uint8))
    return tmp_path


# spec fields -> the words its message must hold: every bad model of issue 32, item 2
BAD_MODELS = {
    "file missing": ({"target": "{d}/nowhere.py:good"}, "no such file"),
    "module missing": ({"target": "no_such_module_here:build"}, "cannot import no_such_module_here"),
    "import raises": ({"target": "{d}/import_raises.py:build"}, "importing"),
    "factory missing": ({"target": "{d}/bad_models.py:buidl"}, "has no 'buidl' (it defines: Energy"),
    "not callable": ({"target": "{d}/bad_models.py:NOT_CALLABLE"}, "is not callable"),
    "no factory given": ({"target": "{d}/bad_models.py"}, "PATH.py:FACTORY"),
    "factory raises": ({"target": "{d}/bad_models.py:raises"}, "raised RuntimeError: CUDA is not available"),
    "not a module": ({"target": "{d}/bad_models.py:not_a_module"}, "returned function, not a torch nn.Module"),
    "output (B, 1)": ({"target": "{d}/bad_models.py:column"}, "forward returned (16, 1) for 16 images"),
    "not finite": ({"target": "{d}/bad_models.py:nan"}, "energies not finite on uniform noise: 16 of 16"),
    "not finite on data": ({"target": "{d}/bad_models.py:nan", "data": "{d}/grey12.npz"},
                           "energies not finite on the data: 4 of 4 images"),
    "no gradient": ({"target": "{d}/bad_models.py:detached"}, "no gradient with respect to x"),
    "shape unknown": ({"target": "{d}/bad_models.py:no_shape"}, "image shape is unknown"),
    "shape vs data": ({"target": "{d}/bad_models.py:good", "data": "{d}/rgb12.npz"},
                      "image shape not matching the data: the module's image_shape says 1×12×12, the data says "
                      "3×12×12"),
    "--shape vs module": ({"target": "{d}/bad_models.py:good", "shape": [1, 16, 16]},
                          "the image shapes given disagree: --shape says 1×16×16, the module's image_shape says "
                          "1×12×12"),
    "sides too small": ({"target": "{d}/bad_models.py:too_small"}, "image sides must be 8–128 pixels, got 4×4"),
    "two channels": ({"target": "{d}/bad_models.py:two_channels"}, "1 (grey) or 3 (RGB) channels, got 2"),
    "weights .pt": ({"target": "{d}/bad_models.py:good", "weights": "{d}/weights.pt"},
                    "weights load from safetensors only"),
    "weights corrupt": ({"target": "{d}/bad_models.py:good", "weights": "{d}/corrupt.safetensors"},
                        "corrupt or truncated safetensors header"),
    "weights missing": ({"target": "{d}/bad_models.py:good", "weights": "{d}/none.safetensors"}, "no such file"),
    "weight shapes": ({"target": "{d}/bad_models.py:good", "weights": "{d}/wrong_shape.safetensors"},
                      "w is (2,) in the file, (1,) in the module"),
    "weight names": ({"target": "{d}/bad_models.py:good", "weights": "{d}/wrong_name.safetensors"},
                     "missing w; not in the module v"),
    "data unreadable": ({"target": "{d}/bad_models.py:good", "data": "{d}/bad_models.py"},
                        "--data"),
    "range": ({"target": "{d}/bad_models.py:good", "value_range": [1, 0]}, "--range must be LO,HI with LO < HI"),
    "decoder of another size": ({"target": "{d}/bad_models.py:bad_decoder"},
                                "decode(z) for z of shape (4, 4) (latent_dim) raised RuntimeError"),
}


@pytest.mark.parametrize("case", list(BAD_MODELS))
def test_every_bad_user_model_is_a_message_naming_the_problem(case, bad):
    fields, words = BAD_MODELS[case]
    d = {k: (v.replace("{d}", str(bad)) if isinstance(v, str) else v) for k, v in fields.items()}
    spec = UserSpec.from_dict({"name": case, **d})
    with pytest.raises(UserModelError) as err:
        load_user_model(spec)
    assert words in err.value.reason, err.value.reason
    assert str(err.value).startswith(f"model {case}: ")


def test_a_pickled_weights_file_is_never_unpickled(bad, monkeypatch):
    calls = []
    monkeypatch.setattr(pickle, "loads", lambda *a, **k: calls.append(a))
    monkeypatch.setattr(torch, "load", lambda *a, **k: calls.append(a))
    raw = (bad / "weights.pt").read_bytes()
    (bad / "disguised.safetensors").write_bytes(raw)
    with pytest.raises(UserModelError, match="zip archive"):
        load_user_model(UserSpec(f"{bad}/bad_models.py:good", weights=str(bad / "disguised.safetensors")))
    assert calls == []


def test_the_fixture_models_load_with_their_weights_data_and_shape():
    rgb, gray = load_user_model(RGB), load_user_model(GRAY)
    assert rgb.image_shape == (3, 32, 32) and gray.image_shape == (1, 28, 28)
    assert len(rgb.data) == 400 and rgb.data.labels is not None and rgb.data.images.shape == (400, 3, 32, 32)
    assert rgb.config.parameters == sum(p.numel() for p in rgb.net.parameters()) > 0
    import hashlib

    assert rgb.config.weights_sha256 == hashlib.sha256(Path(RGB.weights).read_bytes()).hexdigest()[:16]
    x = torch.from_numpy(rgb.data.images[:8])
    assert rgb(x).shape == (8,) and torch.isfinite(rgb(x)).all()
    assert not any(p.requires_grad for p in rgb.parameters())
    # the trained energy prefers its own images to uniform noise
    noise = torch.rand(8, 3, 32, 32, generator=torch.Generator().manual_seed(0)) * 2 - 1
    assert rgb(x).mean() < rgb(noise).mean()
    traj = rgb.draw(4, seed=0, config=LangevinConfig(n_steps=6, record_every=3))
    assert traj.final.shape == (4, 3, 32, 32) and traj.frames.shape[1:] == (4, 3, 32, 32)


def test_negate_and_range_change_what_the_module_sees(bad):
    plain = load_user_model(UserSpec(f"{bad}/bad_models.py:good"))
    flipped = load_user_model(UserSpec(f"{bad}/bad_models.py:good", negate=True))
    unit = load_user_model(UserSpec(f"{bad}/bad_models.py:good", value_range=(0.0, 1.0)))
    x = torch.rand(3, 1, 12, 12) * 2 - 1
    torch.testing.assert_close(flipped(x), -plain(x))
    torch.testing.assert_close(unit(x), ((x + 1) / 2).flatten(1).pow(2).sum(1))  # the module sees [0, 1]


def test_a_module_with_generate_offers_generator_starts(tmp_path):
    (tmp_path / "gen.py").write_text(
        "import torch\n"
        "class G(torch.nn.Module):\n"
        "    image_shape = (1, 10, 10)\n"
        "    def forward(self, x): return x.flatten(1).pow(2).sum(1)\n"
        "    def generate(self, n, seed):\n"
        "        return torch.rand(n, 1, 10, 10, generator=torch.Generator().manual_seed(seed))  # in [0, 1]\n"
        "def build(): return G()\n")
    m = load_user_model(UserSpec(f"{tmp_path}/gen.py:build", value_range=(0.0, 1.0)))
    assert isinstance(m, UserGenerator)
    g = m.generate(5, 3)
    assert g.shape == (5, 1, 10, 10) and g.min() >= -1 and g.max() <= 1 and g.min() < -0.5  # mapped into [−1, 1]
    assert not hasattr(load_user_model(RGB), "generate")
    m.net.generate = lambda n, seed: torch.zeros(n, 5)
    with pytest.raises(ValueError, match=r"returned \(5, 5\), not 5 images of shape \(1, 10, 10\)"):
        m.generate(5, 0)


def test_a_user_energy_that_turns_nan_flags_its_chains_without_raising(tmp_path):
    (tmp_path / "tilt.py").write_text(
        "import torch\n"
        "class T(torch.nn.Module):\n"
        "    image_shape = (1, 8, 8)\n"
        "    def forward(self, x):\n"
        "        e = -x.flatten(1).sum(1)\n"
        "        return torch.where(x.flatten(1).mean(1) > 0.3, torch.full_like(e, float('nan')), e)\n"
        "def build(): return T()\n")
    m = load_user_model(UserSpec(f"{tmp_path}/tilt.py:build"))
    x0 = torch.rand(6, 1, 8, 8, generator=torch.Generator().manual_seed(0)) * 2 - 1
    x0[:3] = -1.0  # three chains start far from the NaN region
    # each step moves every pixel up by s·clip = 0.02: the noise chains (mean ≈ 0) cross 0.3 within 40 steps, the
    # chains at −1 end near −0.2
    traj = langevin(m, x0, LangevinConfig(n_steps=40, step_size=1.0, noise_std=0.0, grad_clip=0.02), seed=0)
    assert (traj.diverged_at[:3] == -1).all() and (traj.diverged_at[3:] > 0).all()
    assert np.isfinite(traj.final).all()  # a stopped chain keeps its last finite state


# ---- the user's images ----

def _png(path: Path, array: np.ndarray) -> None:
    Image.fromarray(array).save(path)


def test_a_folder_of_pngs_and_an_imagefolder_give_images_and_labels(tmp_path):
    flat = tmp_path / "flat"
    flat.mkdir()
    rng = np.random.default_rng(0)
    pics = rng.integers(0, 256, (3, 16, 16, 3), dtype=np.uint8)
    for i, p in enumerate(pics):
        _png(flat / f"{i}.png", p)
    s = load_images(flat)
    assert s.images.shape == (3, 3, 16, 16) and s.labels is None
    np.testing.assert_allclose(s.images[1], pics[1].transpose(2, 0, 1) / 127.5 - 1, atol=1e-6)
    tree = tmp_path / "tree"
    for cls in ("cat", "ant"):
        (tree / cls).mkdir(parents=True)
        for i in range(2):
            _png(tree / cls / f"{i}.jpg", rng.integers(0, 256, (12, 12), dtype=np.uint8))
    s = load_images(tree)
    assert s.images.shape == (4, 1, 12, 12) and s.classes == ("ant", "cat") and s.labels.tolist() == [0, 0, 1, 1]


def test_npz_layouts_and_value_ranges(tmp_path):
    u8 = np.arange(2 * 10 * 10, dtype=np.uint8).reshape(2, 10, 10)
    np.savez(tmp_path / "hw.npz", images=u8, labels=np.array([3, 4]))
    s = load_images(tmp_path / "hw.npz")
    assert s.images.shape == (2, 1, 10, 10) and s.labels.tolist() == [3, 4]
    assert s.images.min() == -1.0 and abs(s.images.max() - (199 / 127.5 - 1)) < 1e-6
    unit = np.linspace(0, 1, 2 * 3 * 9 * 9, dtype=np.float32).reshape(2, 3, 9, 9)  # (N, C, H, W) floats in [0, 1]
    np.savez(tmp_path / "chw.npz", images=unit)
    s = load_images(tmp_path / "chw.npz")
    assert s.images.shape == (2, 3, 9, 9) and s.images.min() == -1.0 and s.images.max() == 1.0
    sym = unit * 2 - 1
    np.savez(tmp_path / "sym.npz", images=sym.transpose(0, 2, 3, 1))
    np.testing.assert_allclose(load_images(tmp_path / "sym.npz").images, sym)


def test_idx_files_with_their_labels(tmp_path):
    images = np.arange(3 * 8 * 8, dtype=np.uint8).reshape(3, 8, 8)
    head = bytes([0, 0, 8, 3]) + b"".join(n.to_bytes(4, "big") for n in images.shape)
    with gzip.open(tmp_path / "t10k-images-idx3-ubyte.gz", "wb") as f:
        f.write(head + images.tobytes())
    (tmp_path / "t10k-labels-idx1-ubyte.gz").write_bytes(
        gzip.compress(bytes([0, 0, 8, 1]) + (3).to_bytes(4, "big") + bytes([7, 1, 2])))
    s = load_images(tmp_path / "t10k-images-idx3-ubyte.gz")
    assert s.images.shape == (3, 1, 8, 8) and s.labels.tolist() == [7, 1, 2]


def _bad_sets(d: Path) -> dict:
    """name -> (path, words of its message): every bad image input tried."""
    np.savez(d / "no_images.npz", pictures=np.zeros((2, 8, 8), np.uint8))
    np.savez(d / "objects.npz", images=np.array([{"a": 1}, None], dtype=object))
    np.savez(d / "nan.npz", images=np.full((2, 8, 8), np.nan, np.float32))
    np.savez(d / "range.npz", images=np.full((2, 8, 8), 7.0, np.float32))
    np.savez(d / "flat.npz", images=np.zeros((4, 64), np.uint8))
    np.savez(d / "tiny.npz", images=np.zeros((4, 4, 4), np.uint8))
    np.savez(d / "huge.npz", images=np.zeros((1, 200, 200), np.uint8))
    np.savez(d / "labels.npz", images=np.zeros((2, 8, 8), np.uint8), labels=np.array([1, 2, 3]))
    np.savez(d / "empty.npz", images=np.zeros((0, 8, 8), np.uint8))
    (d / "broken.npz").write_bytes(b"PK\x03\x04 this is not a zip")
    (d / "empty_dir").mkdir()
    (d / "mixed").mkdir()
    _png(d / "mixed" / "a.png", np.zeros((8, 8), np.uint8))
    _png(d / "mixed" / "b.png", np.zeros((9, 9), np.uint8))
    (d / "notimg").mkdir()
    (d / "notimg" / "x.png").write_bytes(b"not a png")
    (d / "images-idx3-ubyte").write_bytes(b"\x00\x00\x08\x03\x00")
    (d / "readme.txt").write_text("hello")
    return {
        "missing": (d / "nothing.npz", "no such file or folder"),
        "no 'images'": (d / "no_images.npz", "no array called 'images' (found: pictures)"),
        "pickled objects": (d / "objects.npz", "pickled objects, which are never loaded"),
        "NaN": (d / "nan.npz", "128 pixel values are NaN or infinite"),
        "out of range": (d / "range.npz", "float pixels must lie in [0, 1] or [−1, 1]"),
        "flat vectors": (d / "flat.npz", "images must be (N, H, W), (N, H, W, C) or (N, C, H, W)"),
        "too small": (d / "tiny.npz", "image sides must be 8–128 pixels, got 4×4"),
        "too large": (d / "huge.npz", "image sides must be 8–128 pixels, got 200×200"),
        "labels count": (d / "labels.npz", "labels must be 2 integers"),
        "no images": (d / "empty.npz", "no images"),
        "not a zip": (d / "broken.npz", "not a readable .npz file"),
        "empty folder": (d / "empty_dir", "no .png, .jpg or .jpeg files"),
        "mixed sizes": (d / "mixed", "every image must have one size"),
        "not an image": (d / "notimg", "not a readable image"),
        "truncated IDX": (d / "images-idx3-ubyte", "truncated IDX header"),
        "unknown file": (d / "readme.txt", "not a folder of images, an .npz or an IDX file"),
    }


def test_every_bad_image_input_is_a_message(tmp_path):
    seen = {}
    for name, (path, words) in _bad_sets(tmp_path).items():
        with pytest.raises(ImageSetError) as err:
            load_images(path)
        assert words in str(err.value), (name, str(err.value))
        seen[name] = str(err.value)
    assert len(seen) == 16


def test_more_images_than_the_cap_are_cut_with_a_note(tmp_path, monkeypatch):
    from ebmviz import image_sets

    monkeypatch.setattr(image_sets, "MAX_IMAGES", 5)
    np.savez(tmp_path / "many.npz", images=np.zeros((9, 8, 8), np.uint8), labels=np.arange(9))
    s = load_images(tmp_path / "many.npz")
    assert len(s) == 5 and s.labels.tolist() == [0, 1, 2, 3, 4] and s.notes == ("kept the first 5 of 9 images",)


def test_an_upload_is_made_the_models_shape():
    buf = io.BytesIO()
    Image.fromarray(np.full((40, 60, 3), (200, 10, 10), np.uint8)).save(buf, "PNG")
    x, notes = image_for_shape(buf.getvalue(), (3, 32, 32))
    assert x.shape == (1, 3, 32, 32) and "resized from 60×40 to 32×32" in notes
    assert x[0, 0].mean() > 0.5 and x[0, 1].mean() < -0.5  # red stays red
    assert image_for_shape(buf.getvalue(), (1, 28, 28))[0].shape == (1, 1, 28, 28)


# ---- the command line and the catalogue ----

def test_the_command_line_groups_options_by_model(tmp_path):
    rest, groups = cli._split(["run", "--port", "9000", "--model", "a.py:f", "--weights", "w.safetensors",
                               "--negate", "--checkpoints", "runs", "--model=m:g", "--shape", "3,32,32",
                               "--name", "two"])
    assert rest == ["run", "--port", "9000", "--checkpoints", "runs"]
    specs = cli.specs_from(groups)
    assert specs[0].target == f"{Path('a.py').resolve()}:f" and specs[0].negate
    assert specs[0].weights == str(Path("w.safetensors").resolve())
    assert specs[1].target == "m:g" and specs[1].shape == (3, 32, 32) and specs[1].label == "two"
    with pytest.raises(SystemExit, match="belongs to a model"):
        cli._split(["run", "--weights", "w.safetensors"])


def test_ebmviz_run_check_loads_each_model_and_reports(capsys):
    ok = ["run", "--check", "--model", RGB.target, "--weights", RGB.weights, "--data", RGB.data, "--name", "rgb"]
    assert cli.main(ok) == 0
    assert "✓ rgb: 3×32×32 images, " in capsys.readouterr().out
    assert cli.main([*ok, "--model", f"{ENERGY_FILE}:nope"]) == 1
    assert "✗ nope will not load: " in capsys.readouterr().out
    with pytest.raises(SystemExit, match="two models are called 'rgb'"):
        cli.main([*ok, "--model", GRAY.target, "--name", "rgb"])


def test_the_catalogue_adds_folders_and_user_models_to_the_shipped(tmp_path, monkeypatch):
    shutil.copy(REPO_CHECKPOINTS / "shortrun-mnist.safetensors", tmp_path / "shortrun-mnist.safetensors")
    (tmp_path / "broken.safetensors").write_bytes(b"nonsense")
    (tmp_path / "state.safetensors").write_bytes(b"a run's resumable state: not listed")
    monkeypatch.setenv("EBMVIZ_CHECKPOINT_DIR", f"{tmp_path}{':'}{tmp_path / 'absent'}")
    serve(monkeypatch, RGB, UserSpec(RGB.target, name="shortrun-mnist"))
    by_name = {e.name: e for e in catalogue.entries()}
    shipped = {i.name for i in checkpoints.list_checkpoints(REPO_CHECKPOINTS)}
    assert shipped <= set(by_name)
    added = by_name[f"shortrun-mnist@{tmp_path.name}"]
    assert added.origin == "added" and added.error is None
    assert by_name["broken"].origin == "added" and by_name["broken"].error
    assert "does not exist" in by_name["absent"].error and "state" not in by_name
    assert by_name["rgb-digits"].origin == "yours" and by_name["rgb-digits"].error is None
    assert "taken by another model" in [e for e in catalogue.entries() if e.origin == "yours"][1].error
    assert catalogue.load(f"shortrun-mnist@{tmp_path.name}").meta["kind"] == "shortrun"
    assert catalogue.load("rgb-digits").image_shape == (3, 32, 32)
    assert catalogue.load("shortrun-mnist").meta["kind"] == "shortrun"  # the shipped file, not the user model
    monkeypatch.setenv("EBMVIZ_USER_MODELS", "{not json")
    assert "not a JSON list" in [e for e in catalogue.entries() if e.origin == "yours"][0].error


def test_names_never_reach_outside_the_folders(tmp_path, monkeypatch):
    monkeypatch.setenv("EBMVIZ_CHECKPOINT_DIR", str(tmp_path))
    for name in ("../shortrun-mnist", "/etc/passwd", "a:b", "x\\y"):
        with pytest.raises(checkpoints.CheckpointError):
            catalogue.load(name)


def test_user_specs_survive_the_trip_through_the_environment():
    spec = UserSpec("a.py:f", "w.safetensors", "d.npz", "n", (3, 16, 16), True, (0.0, 1.0))
    assert UserSpec.from_dict(json.loads(json.dumps(spec.to_dict()))) == spec


def test_another_device_gets_a_copy_of_the_shared_user_model(monkeypatch):
    serve(monkeypatch, RGB)
    shared = catalogue.load("rgb-digits")
    moved = catalogue.load("rgb-digits", torch.device("meta"))  # a device of its own, as cuda would be
    assert moved is not shared and moved.device.type == "meta"
    assert shared.device.type == "cpu" and catalogue.load("rgb-digits") is shared


def test_a_model_trained_with_python_m_training_is_added_from_its_run_folder(tmp_path, monkeypatch):
    """``python -m training shortrun`` without --out writes into its run folder, never over a shipped file, and
    ``ebmviz run --checkpoints <run folder>`` adds it (the run's resumable state is not listed)."""
    from training.__main__ import main as training_main

    shipped = {p.name: p.stat().st_mtime_ns for p in REPO_CHECKPOINTS.glob("*.safetensors")}
    run_dir = tmp_path / "mine"
    assert training_main(["shortrun", "--run-dir", str(run_dir), "--width", "8", "--hidden", "8", "--k-steps", "2",
                          "--batch-size", "8", "--buffer-size", "16", "--minutes", "0", "--iterations", "2",
                          "--app-steps", "5"]) == 0
    assert (run_dir / "shortrun-mnist.safetensors").is_file() and (run_dir / "state.safetensors").is_file()
    assert {p.name: p.stat().st_mtime_ns for p in REPO_CHECKPOINTS.glob("*.safetensors")} == shipped
    monkeypatch.setenv("EBMVIZ_CHECKPOINT_DIR", str(run_dir))
    names = catalogue.names()
    assert "shortrun-mnist@mine" in names and "shortrun-mnist" in names and not any("state" in n for n in names)
    assert catalogue.load("shortrun-mnist@mine").meta["iterations"] >= 1


def test_a_run_told_to_stop_on_error_keeps_what_ran_and_says_why():
    from ebmviz.sampling import LiveRun

    def picky(x):
        if float(x.detach().mean()) > 0.3:
            raise ValueError("too bright")
        return -0.01 * x.flatten(1).sum(1)

    x0 = torch.zeros(3, 1, 8, 8)
    cfg = LangevinConfig(n_steps=100, step_size=1.0, noise_std=0.0, record_every=50)
    with pytest.raises(ValueError, match="too bright"):  # the library raises, as any Python call
        LiveRun(picky, x0, cfg).advance()
    run = LiveRun(picky, x0, cfg, stop_on_error=True)
    run.advance()
    assert run.done and run.error == "ValueError: too bright" and 0 < run.t < 100
    traj = run.trajectory()
    assert traj.frame_steps[-1] == run.t and len(traj.energy) == run.t + 1 and np.isnan(traj.energy[-1]).all()
