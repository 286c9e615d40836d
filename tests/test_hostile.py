"""Hostile and bad inputs, app-wide (issue 17, items 3 and 5). Every case gets a clear message, no exception escapes,
no file changes, and the pickle payload never runs. In the order the issue lists them:

1. checkpoint files: truncated, zero-length, random bytes, the wrong kind of file, huge or deep headers, metadata of
   the wrong types, architectures too big to build or not matching their tensors;
2. a pickle-based ``.pt`` whose unpickling would create a marker file, offered by path, by name and in the listing;
3. uploads: corrupt, empty, random, text, too many bytes, decompression bombs, animated, RGBA, 16-bit, 1×1, odd modes;
4. URL parameters: paths outside the checkpoint folder, ``.pt`` files, unknown models, and numbers that are not
   numbers or are out of range, on every page;
5. slider and number extremes on the pages that sample: the caps exist and the largest settings are a message;
6. (item 5) safe defaults: the server config, and no code path that unpickles or evaluates text.

Folders are snapshotted (path, size, mtime_ns, sha256) before and after each case.
"""

import ast
import hashlib
import io
import json
import os
import pickle
import pickletools
import random
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
import tomllib
import torch
from PIL import Image
from safetensors.torch import save_file
from streamlit.testing.v1 import AppTest

from ebmviz import checkpoints, images, storage
from ebmviz.app import cache, links, player, widgets
from ebmviz.app.navigation import PAGES
from ebmviz.app.pages import landscape, sampler_lab
from ebmviz.checkpoints import MAX_HEADER, REPO_CHECKPOINTS, CheckpointError
from ebmviz.images import ImageError, image_from_bytes

ROOT = REPO_CHECKPOINTS.parent
GOOD = REPO_CHECKPOINTS / "shortrun-mnist.safetensors"


# ------------------------------------------------------------------------------------------------ helpers
def snapshot(*folders: Path) -> dict[str, tuple[int, int, str]]:
    """Every file under ``folders`` (a symlink counts as its target): path -> (size, mtime_ns, sha256)."""
    out = {}
    for folder in folders:
        for p in sorted(folder.rglob("*")):
            if p.is_file():
                digest = hashlib.sha256()
                with open(p, "rb") as f:
                    while chunk := f.read(1 << 20):
                        digest.update(chunk)
                s = p.stat()
                out[str(p)] = (s.st_size, s.st_mtime_ns, digest.hexdigest())
    return out


@pytest.fixture(scope="module")
def repo_before():
    return snapshot(REPO_CHECKPOINTS)


@pytest.fixture(autouse=True)
def repo_unchanged(repo_before):
    """Nothing in the repository's checkpoints/ changes in any case of this module."""
    yield
    assert snapshot(REPO_CHECKPOINTS) == repo_before


def open_app(page: str | None = None, params: dict[str, str] | None = None) -> AppTest:
    """A fresh session on ``page`` (Home when None), with ``params`` in its URL as a copied link would carry."""
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=180)
    if page is None:
        at.query_params.update(params or {})
        at.run()
    else:
        at.run()
        assert not at.exception, at.exception
        at.switch_page(page)
        at.query_params.update(params or {})
        at.run()
    assert not at.exception, at.exception
    return at


def run(widget) -> AppTest:
    at = widget.run()
    assert not at.exception, at.exception
    return at


def messages(at) -> str:
    """Every warning, error and info on the page, one per line."""
    return "\n".join(m.value for kind in ("warning", "error", "info") for m in getattr(at, kind))


def shared_folder(tmp_path: Path) -> Path:
    """A checkpoint folder of links to the shipped files (checkpoints, maps, scores)."""
    folder = tmp_path / "checkpoints"
    folder.mkdir()
    for f in REPO_CHECKPOINTS.iterdir():
        if f.name != "README.md":
            (folder / f.name).symlink_to(f)
    return folder


# ------------------------------------------------------------------------------------------------ 1. checkpoint files
def _header_bytes(header: dict | bytes, body: bytes = b"") -> bytes:
    raw = header if isinstance(header, bytes) else json.dumps(header).encode()
    return len(raw).to_bytes(8, "little") + raw + body


def _shipped_parts() -> tuple[dict, bytes]:
    """The shipped short-run model's header (without metadata) and its tensor bytes."""
    raw = GOOD.read_bytes()
    n = int.from_bytes(raw[:8], "little")
    header = json.loads(raw[8: 8 + n])
    header.pop("__metadata__")
    return header, raw[8 + n:]


def _with_meta(meta: dict) -> bytes:
    header, body = _shipped_parts()
    return _header_bytes({**header, "__metadata__": {"ebmviz": json.dumps(meta)}}, body)


def _png_bytes() -> bytes:
    buf = io.BytesIO()
    Image.new("L", (28, 28)).save(buf, "PNG")
    return buf.getvalue()


def _torch_zip() -> bytes:
    buf = io.BytesIO()
    torch.save({"w": torch.zeros(2)}, buf)
    return buf.getvalue()


def _plain_safetensors(tmp: Path) -> bytes:
    save_file({"w": torch.zeros(3)}, str(tmp / "plain.tmp"))  # someone else's safetensors: no ebmviz metadata
    raw = (tmp / "plain.tmp").read_bytes()
    (tmp / "plain.tmp").unlink()
    return raw


# name -> (builder(tmp) -> bytes, a fragment of the reason, whether read_meta already refuses it)
BAD_CHECKPOINTS = {
    "empty": (lambda tmp: b"", "truncated: 0 bytes", True),
    "seven_bytes": (lambda tmp: b"\x01" * 7, "truncated: 7 bytes", True),
    "truncated": (lambda tmp: GOOD.read_bytes()[:5000], "truncated", True),
    "tensors_cut": (lambda tmp: GOOD.read_bytes()[:-64], "tensor data ends past", True),
    "random_bytes": (lambda tmp: random.Random(0).randbytes(4096), "not a safetensors file", True),
    "a_picture": (lambda tmp: _png_bytes(), "not a safetensors file", True),
    "torch_zip": (lambda tmp: _torch_zip(), "zip archive", True),
    "huge_header": (lambda tmp: (2**62).to_bytes(8, "little") + b"{}", "not a safetensors file", True),
    "deep_header": (lambda tmp: _header_bytes(b"[" * 100_000 + b"]" * 100_000), "not JSON", True),
    "list_header": (lambda tmp: _header_bytes([1, 2, 3]), "not a JSON object", True),
    "bad_offsets": (lambda tmp: _header_bytes({"w": {"dtype": "F32", "shape": [1], "data_offsets": 5}}),
                    "no valid shape and offsets", True),
    "not_ebmviz": (_plain_safetensors, "no ebmviz metadata", True),
    "meta_not_text": (lambda tmp: _header_bytes({"__metadata__": {"ebmviz": 5}}), "not valid JSON", True),
    "deep_meta": (lambda tmp: _header_bytes({"__metadata__": {"ebmviz": "[" * 100_000 + "]" * 100_000}}),
                  "not valid JSON", True),
    "unknown_kind": (lambda tmp: _with_meta({"kind": "gan"}), "unknown kind 'gan'", True),
    "kind_a_list": (lambda tmp: _with_meta({"kind": ["shortrun"]}), "unknown kind", True),
    "meta_wrong_types": (lambda tmp: _with_meta({"kind": "shortrun", "dataset": "mnist", "wall_time_s": "long"}),
                         "metadata field 'dataset' is not an object", True),
    "history_not_rows": (lambda tmp: _with_meta({"kind": "shortrun", "history": [1, 2]}), "'history' is not a list",
                         True),
    "arch_huge": (lambda tmp: _with_meta({"kind": "shortrun", "arch": {"width": 10**12}}),
                  "architecture config is not a small JSON object", True),
    "arch_a_list": (lambda tmp: _with_meta({"kind": "shortrun", "arch": [32, 64]}), "not an object", True),
    "arch_too_wide": (lambda tmp: _with_meta({"kind": "shortrun", "arch": {"width": 500_000, "hidden": 500_000}}),
                      "tensors do not match the architecture", False),  # 10 TB if it were built: never allocated
    "arch_unknown_field": (lambda tmp: _with_meta({"kind": "shortrun", "arch": {"depth": 3}}), "does not fit", False),
    "wrong_kind": (lambda tmp: _with_meta({"kind": "ebgan"}), "tensors do not match the architecture", False),
}


@pytest.fixture
def bad_folder(tmp_path, monkeypatch) -> Path:
    """A checkpoint folder: links to the shipped files and every bad checkpoint, one per ``BAD_CHECKPOINTS`` entry
    (plus a sparse file whose header length is just over ``MAX_HEADER``)."""
    folder = shared_folder(tmp_path)
    for name, (build, _, _) in BAD_CHECKPOINTS.items():
        (folder / f"{name}.safetensors").write_bytes(build(tmp_path))
    with open(folder / "over_max_header.safetensors", "wb") as f:
        f.write((MAX_HEADER + 1).to_bytes(8, "little"))
        f.truncate(MAX_HEADER + 64)  # sparse: the length fits in the file, and is still refused unread
    monkeypatch.setenv("EBMVIZ_SHIPPED_DIR", str(folder))
    return folder


@pytest.mark.parametrize("name", list(BAD_CHECKPOINTS))
def test_bad_checkpoint_is_a_checkpoint_error_naming_the_reason(name, tmp_path):
    build, reason, by_header = BAD_CHECKPOINTS[name]
    path = tmp_path / f"{name}.safetensors"
    path.write_bytes(build(tmp_path))
    before = snapshot(tmp_path)
    calls = [checkpoints.load, checkpoints.read_meta] if by_header else [checkpoints.load]
    for call in calls:
        with pytest.raises(CheckpointError) as err:
            call(path)
        assert str(path) in str(err.value) and reason in err.value.reason, (call.__name__, err.value.reason)
    if not by_header:
        assert checkpoints.read_meta(path)["kind"] in checkpoints.KINDS  # the header is fine; building it is not
    assert snapshot(tmp_path) == before


def test_header_length_over_the_cap_is_refused_without_reading(tmp_path, monkeypatch):
    path = tmp_path / "big.safetensors"
    with open(path, "wb") as f:
        f.write((MAX_HEADER + 1).to_bytes(8, "little"))
        f.truncate(MAX_HEADER + 64)
    monkeypatch.setattr(checkpoints.json, "loads", lambda *a, **k: pytest.fail("the header was parsed"))
    with pytest.raises(CheckpointError, match="not a safetensors file"):
        checkpoints.read_meta(path)


def test_listing_reports_every_bad_file_and_keeps_the_good_ones(bad_folder):
    infos = {i.name: i for i in checkpoints.list_checkpoints()}
    for name, (_, reason, by_header) in BAD_CHECKPOINTS.items():
        if by_header:
            assert infos[name].kind is None and reason in infos[name].error, (name, infos[name].error)
        else:
            assert infos[name].error is None  # listed: the page's loader says why it cannot be used
    assert "not a safetensors file" in infos["over_max_header"].error
    assert infos["shortrun-mnist"].error is None and infos["shortrun-mnist"].kind == "shortrun"


def test_pages_that_list_checkpoints_open_and_name_each_broken_file(bad_folder, tmp_path):
    before = snapshot(bad_folder)
    refused = {n: r for n, (_, r, by_header) in BAD_CHECKPOINTS.items() if by_header}
    home = open_app()
    table = home.dataframe[0].value
    what = dict(zip(table["checkpoint"], table["what"], strict=True))
    for name, reason in refused.items():
        assert reason in what[name], (name, what[name])
    assert what["shortrun-mnist"] and "truncated" not in what["shortrun-mnist"]
    for page in ("views/langevin.py", "views/model_zoo.py"):
        at = open_app(page)
        text = messages(at)
        for name, reason in refused.items():
            assert f"Skipped {name}.safetensors: " in text and reason in text, (page, name)
    assert snapshot(bad_folder) == before


def test_a_listed_checkpoint_that_cannot_be_built_is_a_message_on_its_page(bad_folder):
    before = snapshot(bad_folder)
    at = open_app("views/ebgan.py")
    assert "wrong_kind" in at.selectbox(key="ebgan_ckpt").options
    at = run(at.selectbox(key="ebgan_ckpt").set_value("wrong_kind"))
    assert any("Cannot load this checkpoint — tensors do not match the architecture" in e.value for e in at.error)
    at = run(at.selectbox(key="ebgan_ckpt").set_value("ebgan-mnist"))  # the page keeps serving
    assert not at.error and at.image
    at = open_app("views/langevin.py")
    at = run(at.selectbox(key="langevin_ckpt").set_value("arch_too_wide"))
    assert any("Cannot load this checkpoint — tensors do not match" in e.value for e in at.error)
    assert snapshot(bad_folder) == before


def test_a_folder_of_only_broken_files_is_a_message(tmp_path, monkeypatch):
    for name in ("empty", "random_bytes", "unknown_kind"):
        (tmp_path / f"{name}.safetensors").write_bytes(BAD_CHECKPOINTS[name][0](tmp_path))
    monkeypatch.setenv("EBMVIZ_SHIPPED_DIR", str(tmp_path))
    before = snapshot(tmp_path)
    for page in ("views/langevin.py", "views/coarse_to_fine.py", "views/triangle.py", "views/ebgan.py",
                 "views/semantic_texture.py"):
        at = open_app(page)
        assert any("No usable checkpoint for this page" in e.value for e in at.error), page
    assert snapshot(tmp_path) == before


# ------------------------------------------------------------------------------------------------ 2. the pickle .pt
class Payload:
    """Unpickling this creates ``marker``: proof that something unpickled it."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return Path.touch, (self.marker,)


@pytest.fixture
def pickles(tmp_path, monkeypatch):
    """The payload as a raw pickle (``.pt``, ``.pkl`` and named like a checkpoint) and inside a torch.save zip, in a
    checkpoint folder beside links to the shipped files."""
    marker = tmp_path / "UNPICKLED"
    folder = shared_folder(tmp_path)
    raw = pickle.dumps(Payload(marker), protocol=4)
    ops = [(op.name, arg) for op, arg, _ in pickletools.genops(raw)]
    assert ("SHORT_BINUNICODE", "pathlib") in ops and ("SHORT_BINUNICODE", "Path.touch") in ops
    assert any(name == "REDUCE" for name, _ in ops)  # a live payload: unpickling it calls Path.touch(marker)
    files = {"evil.pt": raw, "evil.pkl": raw, "evil.safetensors": raw}
    for name, data in files.items():
        (folder / name).write_bytes(data)
    buf = io.BytesIO()
    torch.save({"model": Payload(marker)}, buf)
    (folder / "evil_zip.safetensors").write_bytes(buf.getvalue())
    (tmp_path / "outside.pt").write_bytes(raw)
    monkeypatch.setenv("EBMVIZ_SHIPPED_DIR", str(folder))
    return folder, marker


def test_pickle_payload_never_runs_through_the_loaders(pickles, tmp_path, monkeypatch):
    folder, marker = pickles
    for mod, names in ((pickle, ("load", "loads", "Unpickler")), (torch, ("load",))):  # (Streamlit's caches unpickle:
        for n in names:  # so only here, outside the app)
            monkeypatch.setattr(mod, n, lambda *a, _n=n, **k: pytest.fail(f"{_n} was called"))
    before = snapshot(tmp_path)
    for target, reason in ((folder / "evil.pt", "a Python pickle"), (folder / "evil.pkl", "a Python pickle"),
                           (tmp_path / "outside.pt", "a Python pickle"), ("evil", "a Python pickle"),
                           (folder / "evil_zip.safetensors", "zip archive"), ("evil_zip", "zip archive"),
                           (checkpoints.named("evil"), "a Python pickle")):
        for call in (checkpoints.load, checkpoints.read_meta):
            with pytest.raises(CheckpointError) as err:
                call(target)
            assert reason in err.value.reason and "not a safetensors checkpoint" in err.value.reason
            assert "never unpickles" in err.value.reason
    with pytest.raises(CheckpointError, match="no such file"):  # a name is never a path or another suffix
        checkpoints.load(checkpoints.named("evil.pt"))
    infos = {i.name: i for i in checkpoints.list_checkpoints()}
    assert "pickle" in infos["evil"].error and "zip" in infos["evil_zip"].error
    assert not marker.exists()
    assert snapshot(tmp_path) == before


def test_pickle_payload_never_runs_in_the_app(pickles, tmp_path):
    folder, marker = pickles
    before = snapshot(tmp_path)
    at = open_app("views/langevin.py", {"model": "evil"})
    text = messages(at)
    assert "Skipped evil.safetensors: a Python pickle" in text and "Skipped evil_zip.safetensors: a zip archive" in text
    assert "The link's model=`evil` was ignored (not one of the choices" in text
    assert at.selectbox(key="langevin_ckpt").value == "shortrun-mnist"
    for name in ("evil.pt", str(folder / "evil.pt"), "../outside.pt", "evil_zip"):
        at = open_app("views/langevin.py", {"model": name})
        assert f"The link's model={links.shown(name, 40)} was ignored" in messages(at)
    for name in ("evil", "evil.pt", "../outside", str(tmp_path / "outside.pt")):
        with pytest.raises(CheckpointError):
            cache.load_model(name)  # the app's cached loader, by name: refused, never unpickled
    assert not marker.exists()
    assert snapshot(tmp_path) == before


# ------------------------------------------------------------------------------------------------ 3. uploads
def _png(array: np.ndarray, mode: str | None = None) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(array, mode).save(buf, "PNG")
    return buf.getvalue()


def _declared(raw_png: bytes, width: int, height: int) -> bytes:
    """A PNG whose header claims ``width``×``height`` (its IHDR rewritten, CRC fixed): a decompression bomb's head."""
    ihdr = bytearray(raw_png[16:29])
    ihdr[0:8] = struct.pack(">II", width, height)
    crc = struct.pack(">I", zlib.crc32(b"IHDR" + bytes(ihdr)) & 0xFFFFFFFF)
    return raw_png[:16] + bytes(ihdr) + crc + raw_png[33:]


def _save(img: Image.Image, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **kw)
    return buf.getvalue()


def _gif() -> bytes:
    frames = [Image.fromarray(np.full((28, 28), v, np.uint8)) for v in (255, 100, 60)]
    return _save(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)


def _corrupt_png() -> bytes:
    raw = bytearray(_png(np.random.default_rng(0).integers(0, 255, (64, 64), dtype=np.uint8)))
    idat = raw.index(b"IDAT") + 4
    raw[idat + 10: idat + 200] = bytes(b ^ 0xA5 for b in raw[idat + 10: idat + 200])  # scrambled image data
    return bytes(raw)


_DIGIT = np.zeros((28, 28), np.uint8)
_DIGIT[6:22, 12:16] = 255  # a white "1" on black
_NAN = np.full((28, 28), np.nan, np.float32)
_NAN[3, 3] = np.inf
REFUSED_UPLOADS = {  # name -> (bytes, a fragment of the message)
    "zero_bytes": (b"", "the file is empty"),
    "random_bytes": (random.Random(1).randbytes(3000), "not a readable image"),
    "text": (b"hello, I am a text file\n" * 10, "not a readable image"),
    # an EPS picture: PIL would hand it to Ghostscript; uploads reach only the picture decoders
    "eps": (b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 28 28\nnewpath 0 0 moveto 28 28 lineto stroke\n"
            b"showpage\n%%EOF\n", "not a readable image"),
    "pdf": (b"%PDF-1.4\n1 0 obj << >> endobj\n", "not a readable image"),
    "svg": (b"<svg xmlns='http://www.w3.org/2000/svg'><circle r='9'/></svg>", "not a readable image"),
    "truncated_png": (_png(_DIGIT)[:60], "not a readable image"),
    "corrupt_png": (_corrupt_png(), "not a readable image"),
    "too_many_bytes": (b"\x89PNG\r\n\x1a\n" + bytes(images.MAX_BYTES), "the limit is 5 MB"),
    "bomb_100k": (_declared(_png(np.zeros((64, 64), np.uint8)), 100_000, 100_000), "decompression bomb"),
    "declared_10k": (_declared(_png(np.zeros((64, 64), np.uint8)), 10_000, 10_000), "the limit is 4096×4096"),
    "declared_5k": (_declared(_png(np.zeros((64, 64), np.uint8)), 5_000, 5_000), "the limit is 4096×4096"),
    "one_pixel": (_png(np.zeros((1, 1), np.uint8)), "a digit needs at least 8"),
    "lab_tiff": (_save(Image.new("LAB", (28, 28)), "TIFF"), "not a readable image"),
    "nan_tiff": (_save(Image.fromarray(_NAN, "F"), "TIFF"), "non-finite pixel values"),
}
ACCEPTED_UPLOADS = {  # name -> (bytes, fragments every one of which is in the notes)
    "animated_gif": (_gif(), ["animated: its first frame was used", "mode P"]),
    "rgba": (_png(np.dstack([np.full((40, 60, 3), 255, np.uint8), np.full((40, 60), 255, np.uint8)]), "RGBA"),
             ["mode RGBA", "resized from 60×40", "inverted"]),
    "sixteen_bit": (_png((np.arange(784).reshape(28, 28) * 80).astype(np.uint16)), ["mode I;16"]),
    "small_14": (_png(_DIGIT[::2, ::2].copy()), ["resized from 14×14 to 28×28"]),
    "cmyk_jpeg": (_save(Image.new("CMYK", (28, 28)), "JPEG"), ["mode CMYK"]),
}


@pytest.mark.parametrize("name", list(REFUSED_UPLOADS))
def test_refused_upload_is_an_image_error_naming_why(name):
    raw, reason = REFUSED_UPLOADS[name]
    with pytest.raises(ImageError) as err:
        image_from_bytes(raw)
    assert reason in str(err.value), str(err.value)
    assert "BytesIO object at" not in str(err.value)  # a message for people, not a repr


@pytest.mark.parametrize("name", list(ACCEPTED_UPLOADS))
def test_odd_but_usable_upload_is_converted_with_notes(name):
    raw, fragments = ACCEPTED_UPLOADS[name]
    x, notes = image_from_bytes(raw)
    assert x.shape == (1, 1, 28, 28) and x.dtype == torch.float32 and torch.isfinite(x).all()
    assert x.min() >= -1 and x.max() <= 1
    for fragment in fragments:
        assert any(fragment in n for n in notes), (fragment, notes)


def test_animated_gif_gives_its_first_frame_and_small_pictures_are_enlarged():
    x, _ = image_from_bytes(ACCEPTED_UPLOADS["animated_gif"][0])
    assert torch.all(x == -1)  # frame 0, all white: inverted to all black (frames 1 and 2 are dark grey)
    x, _ = image_from_bytes(ACCEPTED_UPLOADS["small_14"][0])
    assert int((x[0, 0] > 0).sum()) > 40  # the 14×14 "1" fills the 28×28 frame (2×2 → 4× as many pixels)


def test_uploads_through_the_widget_are_messages_and_the_page_keeps_serving(tmp_path):
    at = open_app("views/langevin.py")
    at = run(at.radio(key="langevin_start").set_value("upload"))
    uploader = at.file_uploader(key="langevin_upload")
    assert set(uploader.allowed_type) >= {".png", ".gif", ".tiff"}
    for name, (raw, reason) in REFUSED_UPLOADS.items():
        at = run(at.file_uploader(key="langevin_upload").set_value((f"{name}.png", raw, "image/png")))
        errors = [e.value for e in at.error]
        assert any(e.startswith("Cannot use this file: ") and reason in e for e in errors), (name, errors)
    for name, (raw, fragments) in ACCEPTED_UPLOADS.items():
        at = run(at.file_uploader(key="langevin_upload").set_value((f"{name}.png", raw, "image/png")))
        infos = " ".join(i.value for i in at.info)
        assert all(f in infos for f in fragments) and not at.error, (name, infos)
        assert "Step 0 /" in " ".join(m.value for m in at.markdown)  # chains start from the picture
    at = run(at.button(key="langevin_step").click())
    assert "Step 0 /" not in " ".join(m.value for m in at.markdown)


@pytest.mark.parametrize("page,state,usable", [
    ("views/anomaly.py", {"anomaly_view": "Your digit", "anomaly_source": "an upload"}, True),
    ("views/landscape.py", {"ls_view": "Your digit", "ls_how": "upload a picture"}, False),  # (a descent: slow)
])
def test_uploads_on_the_other_pages_are_messages(page, state, usable):
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=180)
    at.run()
    at.switch_page(page)
    for key, value in state.items():
        at.session_state[key] = value
    at = run(at)
    (uploader,) = at.file_uploader
    for name in ("bomb_100k", "random_bytes", "too_many_bytes", "one_pixel", "nan_tiff"):
        raw, reason = REFUSED_UPLOADS[name]
        at = run(at.file_uploader(key=uploader.key).set_value((f"{name}.png", raw, "image/png")))
        assert any("Cannot use this file" in e.value and reason in e.value for e in at.error), name
    if usable:
        at = run(at.file_uploader(key=uploader.key).set_value(("rgba.png", ACCEPTED_UPLOADS["rgba"][0], "image/png")))
        assert not at.error and any("mode RGBA" in i.value for i in at.info)


# ------------------------------------------------------------------------------------------------ 4. URL parameters
HOSTILE_VALUES = ["../../etc/passwd", "/etc/passwd", "evil.pt", "no-such-model", "1e308", "-1", "nan", "inf",
                  "-inf", "abc", "9" * 5000, ""]


@pytest.fixture
def link_folder(tmp_path, monkeypatch):
    """A checkpoint folder of links to the shipped files, a pickle inside it, a good checkpoint outside it; every
    path a checkpoint or map reader is asked for is recorded."""
    folder = shared_folder(tmp_path)
    (folder / "evil.pt").write_bytes(pickle.dumps(Payload(tmp_path / "UNPICKLED")))
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside" / "secret.safetensors").symlink_to(GOOD)
    asked = []
    for module, name in ((checkpoints, "_read"), (storage, "safe_open")):  # storage: every tensor read, maps too
        real = getattr(module, name)
        monkeypatch.setattr(module, name, lambda p, *a, _real=real, **k: (asked.append(Path(p)), _real(p, *a, **k))[1])
    monkeypatch.setenv("EBMVIZ_SHIPPED_DIR", str(folder))
    return folder, asked


def _assert_inside(folder: Path, asked: list[Path]):
    root = os.path.abspath(folder)
    outside = [p for p in asked if not os.path.abspath(p).startswith(root + os.sep)]
    assert not outside, outside


def test_link_parsers_refuse_every_hostile_value():
    fields = [links.integer("k", "n", 0, 64), links.number("k", "x", 0.0, 1e6), links.flag("k", "f"),
              links.choice("k", "model", ["shortrun-mnist"]), *widgets.sampler_fields("p")]
    for f in fields:
        for value in HOSTILE_VALUES:
            try:
                parsed = f.parse(value)
            except ValueError as exc:
                assert str(exc)
                continue
            pytest.fail(f"{f.name}={value[:20]!r} was taken as {parsed!r}")


@pytest.mark.parametrize("page", [p.script for p in PAGES])
def test_every_page_names_each_hostile_link_value_and_reads_only_its_folder(page, link_folder, tmp_path,
                                                                          monkeypatch):
    folder, asked = link_folder
    restored: dict[str, links.Field] = {}
    real_restore = links.restore
    monkeypatch.setattr(links, "restore", lambda fields: (restored.update({f.name: f for f in fields}),
                                                          real_restore(fields))[1])
    open_app(page if page != PAGES[0].script else None)  # which fields the page links
    assert {"seed", "device"} <= set(restored)
    names = sorted(restored) + [links.FRAME]
    before = snapshot(tmp_path)
    for value in HOSTILE_VALUES:
        at = open_app(page if page != PAGES[0].script else None, {name: value for name in names})
        warned = " ".join(w.value for w in at.warning)
        for name, f in restored.items():
            try:
                f.parse(value)
            except ValueError:
                assert f"The link's {name}={links.shown(value, 40)} was ignored" in warned, (page, name, value)
                continue
            assert f"The link's {name}=" not in warned  # a value in range is taken
        assert not (tmp_path / "UNPICKLED").exists()
    _assert_inside(folder, asked)
    assert asked  # the pages did read checkpoints, all of them inside the folder
    assert snapshot(tmp_path) == before


def test_links_to_paths_never_reach_a_loader(link_folder, tmp_path):
    folder, asked = link_folder
    for value in ("../outside/secret", str(tmp_path / "outside" / "secret.safetensors"), "evil.pt",
                  "../../etc/passwd", "shortrun-mnist/../../outside/secret"):
        for page, name in (("views/langevin.py", "model"), ("views/coarse_to_fine.py", "shortrun"),
                           ("views/model_zoo.py", "a"), ("views/landscape.py", "map")):
            at = open_app(page, {name: value})
            assert f"The link's {name}={links.shown(value, 40)} was ignored" in messages(at), (page, value)
        if "/" in value:
            with pytest.raises(CheckpointError, match="not a checkpoint name"):
                checkpoints.named(value)
        else:  # a name with a dot is still a file in the folder: evil.pt.safetensors
            assert checkpoints.named(value) == folder / f"{value}.safetensors"
    for value in ("..", ".", "", "a\\b", "c:evil", "/etc/passwd"):
        with pytest.raises(CheckpointError, match="not a checkpoint name"):
            checkpoints.named(value)
    for value in ("../outside/secret", str(tmp_path / "outside" / "secret.safetensors")):  # a good file, outside
        with pytest.raises(CheckpointError, match="not a checkpoint name"):
            cache.load_model(value)  # the app's loader takes names only
    _assert_inside(folder, asked)


def test_a_link_frame_far_ahead_samples_for_a_bounded_time(monkeypatch):
    monkeypatch.setattr(player, "SEEK_SECONDS", 0.3)
    at = open_app("views/langevin.py", {"steps": "20000", "record": "1", "chains": "64", "frame": "1000"})
    assert any("Recording every 20 steps: a run keeps at most 1,000 frames" in w.value for w in at.warning)
    assert any("The link's frame 1,000 is not recorded yet" in i.value for i in at.info), messages(at)


# ------------------------------------------------------------------------------------------------ 5. extremes
def open_with(page: str, **state) -> AppTest:
    """A fresh session on ``page`` whose first run already has the widget values ``state`` (one run, not one per
    value: each run of a sampling page samples)."""
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=180)
    at.run()
    at.switch_page(page)
    for key, value in state.items():
        at.session_state[key] = value
    return run(at)


def test_langevin_caps_and_extremes():
    at = open_app("views/langevin.py")
    assert at.number_input(key="langevin_n_steps").max == widgets.MAX_STEPS == 20_000
    assert at.slider(key="langevin_n").max == 64 and at.number_input(key="langevin_record_every").max == 1000
    at = run(at.number_input(key="langevin_record_every").set_value(3))  # not a playback speed (was an exception)
    assert at.select_slider(key="langevin_speed").value == 8  # the speed already chosen stays
    at = run(at.slider(key="langevin_n").set_value(64))
    at = run(at.number_input(key="langevin_n_steps").set_value(widgets.MAX_STEPS))
    at = run(at.number_input(key="langevin_record_every").set_value(1))
    at = run(at.number_input(key="langevin_step_size").set_value(1e6))
    at = run(at.number_input(key="langevin_noise_std").set_value(0.0))
    at = run(at.checkbox(key="langevin_clip_on").uncheck())
    at = run(at.checkbox(key="langevin_clamp").uncheck())
    text = messages(at)
    assert "Recording every 20 steps: a run keeps at most 1,000 frames" in text
    assert "without gradient clipping: chains may diverge" in text
    at = run(at.select_slider(key="langevin_speed").set_value(32))
    at = run(at.button(key="langevin_step").click())
    assert "Step 20 / 20000" in " ".join(m.value for m in at.markdown)  # 64 chains at s = 1e6 step on
    at = run(at.select_slider(key="langevin_mult").set_value(20))
    at = run(at.button(key="langevin_compare").click())
    assert "The comparison: 8 chains × 420,000 steps is over the cap of 100,000" in messages(at)
    at = run(at.radio(key="langevin_method").set_value("MALA"))  # MALA starts from its own s and σ …
    assert at.number_input(key="langevin_noise_std").value > 0
    at = run(at.number_input(key="langevin_noise_std").set_value(0.0))  # … and σ = 0 is refused in words
    assert "MALA needs noise σ > 0" in messages(at)


def test_sampler_lab_caps_and_extremes():
    at = open_app("views/sampler_lab.py")
    assert at.number_input(key="lab_n").max == sampler_lab.MAX_PARTICLES
    assert at.number_input(key="lab_steps").max == sampler_lab.MAX_STEPS
    at = run(at.number_input(key="lab_n").set_value(sampler_lab.MAX_PARTICLES))
    at = run(at.number_input(key="lab_steps").set_value(sampler_lab.MAX_STEPS))
    assert any("over the lab's cap of 3,000,000 gradient evaluations" in e.value for e in at.error)
    at = open_with("views/sampler_lab.py", lab_steps=40, lab_stride=16, lab_b_kind="HMC")
    assert at.number_input(key="lab_b_leapfrog").max == sampler_lab.MAX_LEAPFROG
    at = run(at.number_input(key="lab_b_leapfrog").set_value(sampler_lab.MAX_LEAPFROG))
    at = run(at.number_input(key="lab_a_step").set_value(100.0))  # the largest step: ULA overflows in ~15 steps
    at = run(at.number_input(key="lab_b_temp").set_value(0.05))
    assert not at.error
    for _ in range(2):
        at = run(at.button(key="lab_step").click())
    status = " ".join(m.value for m in at.markdown)
    assert "Step 32 / 40" in status and "particle(s) stopped at a non-finite value" in status  # inf: a message


def test_coarse_to_fine_caps_and_extremes():
    at = open_with("views/coarse_to_fine.py", cf_n=64, cf_hand=1.0, cf_k0=0, cf_k1=0, cf_k2=0)
    assert at.slider(key="cf_n").max == 64 and all(at.number_input(key=f"cf_k{i}").max == 500 for i in range(3))
    assert "Stage 0" in " ".join(m.value for m in at.markdown)  # no steps at all: the cascade only hands off
    at = open_with("views/coarse_to_fine.py", cf_view="Restoration", cf_rsteps=1, cf_noise=1.0)
    assert at.number_input(key="cf_rsteps").max == 1000 and "MSE" in " ".join(c for im in at.image for c in im.captions)


def test_semantic_texture_caps_and_extremes():
    k = lambda f: f"st_denoising-mnist_{f}"  # noqa: E731
    at = open_with("views/semantic_texture.py", **{k("n"): 64, k("t"): 1000, k("k"): 500})
    assert at.number_input(key=k("k")).max == 500 and at.number_input(key=k("t")).max == 1000
    assert at.slider(key=k("n")).max == 64
    assert any("Both samplers together: 64 chains × 2,500 steps is over the cap" in e.value for e in at.error)
    at = run(at.number_input(key=k("k")).set_value(1))  # 64 × 2,001: still over the cap, nothing runs
    assert any("64 chains × 2,001 steps is over the cap" in e.value for e in at.error)
    at = run(at.number_input(key=k("t")).set_value(0))
    assert not at.error  # one latent step and no pixel steps: a (dull) run, not an error
    at = run(at.number_input(key=k("eta1")).set_value(1e6))
    assert any("These settings cannot run" in e.value for e in at.error)


def test_ebgan_langevin_caps_and_extremes():
    at = open_with("views/ebgan.py", ebgan_view="Langevin on D", ebgan_lv_n=32)
    assert at.number_input(key="ebgan_lv_n_steps").max == widgets.MAX_STEPS and at.slider(key="ebgan_lv_n").max == 32
    at = run(at.number_input(key="ebgan_lv_n_steps").set_value(widgets.MAX_STEPS))
    assert any("Langevin from both starts: 64 chains × 20,000 steps is over the cap" in e.value for e in at.error)
    at = run(at.number_input(key="ebgan_lv_n_steps").set_value(3))
    at = run(at.number_input(key="ebgan_lv_step_size").set_value(1e6))
    at = run(at.number_input(key="ebgan_lv_noise_std").set_value(0.0))
    at = run(at.checkbox(key="ebgan_lv_clip_on").uncheck())
    assert not at.error and any("after 3 steps" in c for im in at.image for c in im.captions)


def test_triangle_refinement_at_its_extremes():
    at = open_with("views/triangle.py", tri_view="Refinement", tri_k=300, tri_s=100.0, tri_clip=1.0)
    assert at.slider(key="tri_k").max == 300 and at.number_input(key="tri_s").max == 100.0
    assert any("after 300 Langevin steps" in c for im in at.image for c in im.captions)


def test_live_training_at_its_extremes():
    at = open_with("views/learning_dynamics.py", ld_view="Train live", ld_live_lr=3e-3, ld_live_step=0.03,
                   ld_live_its=50)
    assert at.slider(key="ld_live_its").max == 1000
    at = run(at.button(key="ld_step").click())
    assert "Iteration" in " ".join(str(p.proto.text) for p in at.get("progress"))


def test_model_zoo_side_by_side_at_the_largest_budget():
    at = open_with("views/model_zoo.py", zoo_view="Side by side", zoo_budget=2000)
    assert at.number_input(key="zoo_budget").max == 2000
    assert any("2,000 gradient evaluations per sample" in c for im in at.image for c in im.captions)


def test_landscape_map_now_caps():
    at = open_with("views/landscape.py", ls_view="Map now")
    assert at.number_input(key="ls_new_n").max == landscape.MAX_STARTS == 500
    assert at.number_input(key="ls_new_steps").max == 5000 and at.number_input(key="ls_new_k").max == 128


def test_anomaly_your_digit_at_its_extremes():
    at = open_with("views/anomaly.py", anomaly_view="Your digit", anomaly_rotate=-180, anomaly_erase_on=True,
                   anomaly_erase_rows=(0, 27), anomaly_erase_cols=(0, 27))  # the whole picture erased
    assert "Score −E = " in " ".join(m.value for m in at.markdown)


def test_sampler_form_clamps_a_checkpoints_settings_into_its_ranges(tmp_path, monkeypatch):
    folder = shared_folder(tmp_path)
    meta = checkpoints.read_meta(GOOD)
    meta["sampler"] = {**meta["sampler"], "n_steps": 10**9, "step_size": 1e300, "record_every": 0}
    (folder / "odd-defaults.safetensors").write_bytes(_with_meta(meta))
    monkeypatch.setenv("EBMVIZ_SHIPPED_DIR", str(folder))
    at = open_app("views/langevin.py", {"model": "odd-defaults"})
    assert at.number_input(key="langevin_n_steps").value == widgets.MAX_STEPS
    assert at.number_input(key="langevin_step_size").value == 1e6
    assert at.number_input(key="langevin_record_every").value == 1


# ------------------------------------------------------------------------------------------------ 6. safe defaults
def test_server_config_binds_locally_keeps_xsrf_and_cors_and_hides_developer_items():
    config = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text())
    assert config["server"]["address"] == "127.0.0.1"
    assert config["server"]["enableXsrfProtection"] is True and config["server"]["enableCORS"] is True
    assert config["server"]["maxUploadSize"] * 2**20 == images.MAX_BYTES
    assert config["client"]["toolbarMode"] == "viewer"
    from streamlit import config as st_config

    for section, options in config.items():
        for option in options:
            st_config.get_option(f"{section}.{option}")  # the installed Streamlit knows it (else RuntimeError)
    with pytest.raises(RuntimeError):
        st_config.get_option("client.noSuchOption")


UNPICKLERS = {"pickle", "_pickle", "cPickle", "cloudpickle", "dill", "joblib", "shelve", "marshal"}
UNSAFE_CALLS = {"torch.load", "torch.jit.load", "yaml.load", "yaml.unsafe_load", "yaml.full_load", "pd.read_pickle",
                "pandas.read_pickle", "np.load", "numpy.load"}


def _dotted(node: ast.AST) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return f"{_dotted(node.value)}.{node.attr}"
    return ""


def unsafe_code(source: str, filename: str = "<string>") -> list[str]:
    """Where ``source`` could unpickle or evaluate text: imports or names of pickle-like modules, ``eval``/``exec``,
    ``torch.load``, ``yaml.load`` and friends, ``np.load`` unless ``allow_pickle=False``, ``allow_pickle=True``,
    ``weights_only=False``. Docstrings and comments that mention them do not count."""
    found = []
    for node in ast.walk(ast.parse(source, filename)):
        where = f"{filename}:{getattr(node, 'lineno', '?')}"
        if isinstance(node, ast.Import):
            found += [f"{where} import {a.name}" for a in node.names if a.name.split(".")[0] in UNPICKLERS]
        elif isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] in UNPICKLERS:
            found.append(f"{where} from {node.module} import")
        elif isinstance(node, ast.Name) and node.id in UNPICKLERS | {"eval", "exec", "__import__"}:
            found.append(f"{where} {node.id}")
        elif isinstance(node, ast.Call):
            name = _dotted(node.func)
            keywords = {k.arg: k.value for k in node.keywords}
            safe_np = (isinstance(keywords.get("allow_pickle"), ast.Constant)
                       and keywords["allow_pickle"].value is False)
            if name in UNSAFE_CALLS and not (name in ("np.load", "numpy.load") and safe_np):
                found.append(f"{where} {name}(")
            for kw, bad in (("allow_pickle", True), ("weights_only", False)):
                if isinstance(keywords.get(kw), ast.Constant) and keywords[kw].value is bad:
                    found.append(f"{where} {kw}={bad}")
    return found


@pytest.mark.parametrize("planted", [
    "import pickle", "from pickle import loads", "import cloudpickle as cp", "x = pickle.loads(b)",
    "eval(text)", "exec(code)", "f = eval", "m = torch.load(path)", "m = torch.load(path, weights_only=False)",
    "d = yaml.load(s)", "a = np.load(p, allow_pickle=True)", "a = np.load(p)", "a = numpy.load(p)",
    "df = pd.read_pickle(p)", "m = __import__('pickle')", "f(weights_only=False)",
])
def test_scanner_finds_a_planted_example(planted):
    assert unsafe_code(f"def f(p, text, code, b, s):\n    {planted}\n"), planted


def test_scanner_passes_harmless_look_alikes():
    source = ('"""We never pickle, never eval( and never call torch.load( here."""\n'
              "# pickle, eval(, exec(, allow_pickle=True, weights_only=False, yaml.load( in a comment\n"
              "model.eval()\nnp.load(f, allow_pickle=False)\nx = 'eval(1)'\n")
    assert unsafe_code(source) == []


def test_no_product_code_unpickles_or_evaluates_text():
    files = [ROOT / "app.py", *[p for d in ("ebmviz", "views", "training") for p in sorted((ROOT / d).rglob("*.py"))
                                if not p.name.startswith("test_")]]
    assert len(files) > 40
    found = [hit for p in files for hit in unsafe_code(p.read_text(), str(p.relative_to(ROOT)))]
    assert found == []
