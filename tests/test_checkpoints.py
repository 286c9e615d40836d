"""Checkpoints: round trip, every kind of bad file, no pickle, atomic writes, shipped models."""

import json
import os
import pickle
from pathlib import Path

import pytest
import torch

from ebmviz import checkpoints
from ebmviz.checkpoints import CheckpointError, list_checkpoints, load, read_meta, save
from ebmviz.models import KINDS
from ebmviz.models.shortrun import ShortRunConfig, ShortRunEBM
from ebmviz.sampling import LangevinConfig


@pytest.fixture
def saved(tmp_path):
    torch.manual_seed(0)
    model = ShortRunEBM(ShortRunConfig(width=8, hidden=8, replay_keep=4))
    path = save(model, tmp_path / "tiny.safetensors",
                {"sampler": LangevinConfig(n_steps=7).to_dict(), "metrics": {"x": 1.0}})
    return model, path


def test_round_trip(saved):
    model, path = saved
    loaded = load(path)
    assert isinstance(loaded, ShortRunEBM) and not loaded.training
    assert all(not p.requires_grad for p in loaded.parameters())
    assert loaded.meta["kind"] == "shortrun" and loaded.meta["arch"]["width"] == 8
    assert LangevinConfig.from_dict(loaded.meta["sampler"]).n_steps == 7
    x = torch.rand(3, 1, 28, 28) * 2 - 1
    torch.testing.assert_close(loaded(x), model(x))
    assert list(path.parent.iterdir()) == [path]  # the temp file was renamed, nothing left over


def test_load_by_name_from_env_folder(saved, monkeypatch):
    _, path = saved
    monkeypatch.setenv("EBMVIZ_SHIPPED_DIR", str(path.parent))
    assert load("tiny").meta["kind"] == "shortrun" == read_meta("tiny")["kind"]
    assert [i.name for i in list_checkpoints()] == ["tiny"]


def _expect(path, fragment):
    with pytest.raises(CheckpointError) as err:
        load(path)
    assert str(path) in str(err.value) and fragment in err.value.reason, err.value.reason


def test_missing_truncated_and_corrupt(saved, tmp_path):
    _, path = saved
    raw = path.read_bytes()
    _expect(tmp_path / "nope.safetensors", "no such file")
    for cut in (4, 100, len(raw) - 50):
        bad = tmp_path / f"cut{cut}.safetensors"
        bad.write_bytes(raw[:cut])
        _expect(bad, "truncated")
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00" + b"{not json at all" + b"\x00" * 64)
    _expect(junk, "not JSON")


def _rewrite_meta(path, out, change):
    n = int.from_bytes(path.read_bytes()[:8], "little")
    header = json.loads(path.read_bytes()[8 : 8 + n])
    meta = json.loads(header["__metadata__"]["ebmviz"])
    change(meta)
    header["__metadata__"]["ebmviz"] = json.dumps(meta)
    new = json.dumps(header).encode()
    out.write_bytes(len(new).to_bytes(8, "little") + new + path.read_bytes()[8 + n :])
    return out


def test_unknown_kind_and_wrong_architecture(saved, tmp_path):
    _, path = saved
    _expect(_rewrite_meta(path, tmp_path / "k.safetensors", lambda m: m.update(kind="gan")), "unknown kind")
    _expect(_rewrite_meta(path, tmp_path / "a.safetensors", lambda m: m["arch"].update(width=16)),
            "do not match")
    _expect(_rewrite_meta(path, tmp_path / "b.safetensors", lambda m: m["arch"].update(depth=3)),
            "does not fit")


def test_pickle_files_are_never_unpickled(tmp_path):
    class Boom:
        def __reduce__(self):
            return (exec, ("raise SystemExit('unpickled!')",))

    bad = tmp_path / "evil.safetensors"
    bad.write_bytes(pickle.dumps(Boom()))
    _expect(bad, "")  # a CheckpointError, and the payload never ran
    torch.save({"w": torch.zeros(2)}, tmp_path / "model.pt")
    _expect(tmp_path / "model.pt", "")


def test_list_reports_broken_files(saved, tmp_path):
    (tmp_path / "broken.safetensors").write_bytes(b"xx")
    infos = {i.name: i for i in list_checkpoints(tmp_path)}
    assert infos["tiny"].error is None and infos["tiny"].kind == "shortrun"
    assert infos["broken"].error and infos["broken"].kind is None


def test_shipped_checkpoints_load_with_provenance():
    infos = {i.name: i for i in list_checkpoints(checkpoints.REPO_CHECKPOINTS)}
    assert {"shortrun-mnist", "evaluator-mnist"} <= set(infos)
    for name in ("shortrun-mnist", "evaluator-mnist"):
        meta = read_meta(infos[name].path)
        for key in ("arch", "dataset", "train_config", "command", "wall_time_s", "device", "history"):
            assert key in meta, (name, key)
        assert infos[name].path.stat().st_size < 5_000_000
    sampler = LangevinConfig.from_dict(load("shortrun-mnist").meta["sampler"])
    sampler.validate()


def test_loading_every_shipped_model_stays_light():
    """The architecture probe on the "meta" device never pulls in torch's compiler (about 1 s and 150 MB of
    server memory, once per process): checked in a fresh process over every shipped checkpoint."""
    import subprocess
    import sys

    code = ("import sys; from ebmviz import checkpoints\n"
            "names = [i.name for i in checkpoints.list_checkpoints() if i.kind]\n"
            "[checkpoints.load(n) for n in names]\n"
            "print(len(names), 'torch._dynamo' in sys.modules)")
    root = Path(__file__).resolve().parent.parent
    out = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True, timeout=300,
                         env={**os.environ, "PYTHONPATH": str(root)})
    n, dynamo = out.stdout.split()
    assert int(n) >= 10 and dynamo == "False", out.stderr[-2000:]


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_every_kind_builds_on_the_meta_device_as_on_the_cpu(kind):
    """The loader's probe (the "meta" device, random initialisation skipped) gives each kind's default
    architecture the tensors a real build has, so no valid checkpoint is refused by it."""
    cls = KINDS[kind]
    with torch.device("meta"), checkpoints._NoInit():
        probe = cls.from_arch({}, {})
    real = cls.from_arch({}, {})
    assert {k: tuple(v.shape) for k, v in probe.state_dict().items()} == \
           {k: tuple(v.shape) for k, v in real.state_dict().items()}
    assert all(v.device.type == "meta" for v in probe.state_dict().values())
