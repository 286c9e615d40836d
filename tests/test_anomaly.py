"""Anomaly scores and the stored zoo numbers: the sets and edits by construction, AUROC on separable cases, the goal,
the scores file (round trip, staleness, bad files) and ``python -m training scores`` against a recomputation."""

import json

import numpy as np
import pytest
import torch

from ebmviz import checkpoints
from ebmviz.analysis import metrics
from ebmviz.analysis.anomaly import GOAL_SETS, SETS, auroc_row, goal, make_sets, scores
from ebmviz.analysis.zoo import (
    ModelScores,
    Scores,
    fingerprint,
    measured,
    read_scores,
    sample_quality,
    store_measured,
)
from ebmviz.data import load_dataset
from ebmviz.transforms import NEGATIVE_AUGMENTATIONS, TRANSFORMS, edit, rotate
from training.__main__ import main as training_main


def _digits(n=6, seed=0):
    return torch.rand(n, 1, 28, 28, generator=torch.Generator().manual_seed(seed)) * 2 - 1


def test_sets_have_one_image_per_digit_and_the_transformations_are_exact():
    x = _digits()
    sets = make_sets(x, seed=3, fashion=_digits(10, 1))
    assert list(sets) == list(SETS) and all(v.shape == x.shape for v in sets.values())
    torch.testing.assert_close(sets["flipped vertically"], x.flip(-2))
    torch.testing.assert_close(sets["rotated 90°"], torch.rot90(x, 1, (-2, -1)))
    torch.testing.assert_close(sets["inverted"], -x)
    shifted = sets["shifted 7 px"]
    assert torch.equal(shifted[..., 7:, 7:], x[..., :-7, :-7]) and (shifted[..., :7, :] == -1).all()
    c = sets["constant images"]
    assert (c == c[:, :, :1, :1]).all()  # each image one value
    assert "Fashion-MNIST" not in make_sets(x)  # only when it is given
    assert set(GOAL_SETS) <= set(SETS)
    for name, t in NEGATIVE_AUGMENTATIONS.items():  # training negatives are none of the goal's transformations
        for goal_set in ("flipped vertically", "rotated 90°", "inverted"):
            assert not torch.allclose(t(x), TRANSFORMS[goal_set](x)), (name, goal_set)


def test_auroc_on_constructed_separable_cases():
    energy = lambda x: (x.flatten(1) ** 2).sum(1)  # noqa: E731  (typical = near zero)
    quiet, loud = 0.1 * _digits(50), _digits(50, 1)
    row = auroc_row(energy, quiet, {"loud": loud, "quiet again": quiet.clone()})
    assert row["loud"] == 1.0 and row["quiet again"] == 0.5
    assert auroc_row(energy, loud, {"quiet": quiet})["quiet"] == 0.0  # the other set looks more typical
    nan_energy = lambda x: torch.where(x.flatten(1)[:, 0] > 0, torch.nan, energy(x))  # noqa: E731
    s = scores(nan_energy, loud)
    assert np.isfinite(s).all() and (s[loud.flatten(1)[:, 0].numpy() > 0] < -1e300).all()  # NaN: least typical


def test_goal_is_the_mean_and_minimum_over_the_six_sets():
    row = {s: 0.9 for s in GOAL_SETS} | {"rotated 90°": 0.84, "shrunk to half": 0.1}
    mean, low = goal(row)
    assert mean == pytest.approx((5 * 0.9 + 0.84) / 6) and low == 0.84
    assert goal({"uniform noise": 1.0}) is None


def test_edits_rotate_erase_and_draw():
    bar = torch.full((1, 1, 28, 28), -1.0)
    bar[..., 4:24, 13:15] = 1.0
    turned = rotate(bar, 90)
    assert turned[0, 0, 13:15, 6:22].mean() > 0.9 and turned[0, 0, 6:22, 13:15].mean() < -0.5
    torch.testing.assert_close(rotate(bar, 0), bar, atol=1e-5, rtol=0)
    erased = edit(bar, erase=(0, 0, 27, 27))
    assert (erased == -1).all()
    drawn = edit(torch.full((1, 1, 28, 28), -1.0), stroke=(3, 3, 3, 20))
    assert (drawn[0, 0, 3, 3:21] == 1).all() and (drawn[0, 0, 10:, :] == -1).all()
    assert edit(bar).equal(bar) and edit(bar) is not bar


def test_scores_file_round_trip_staleness_and_bad_files(tmp_path):
    f = tmp_path / "model.bin"
    f.write_bytes(b"abc")
    s = Scores({"m": ModelScores(fingerprint(f), parameters=12, quality={"confident_share": 0.5},
                                 auroc={"uniform noise": 1.0}, further_auroc={"−log p": {"uniform noise": 0.5}},
                                 notes={"auroc": "x"})}, {"n": 10})
    path = tmp_path / "scores.json"
    path.write_text(s.to_json())
    back = read_scores(path)
    assert back.models["m"] == s.models["m"] and back.settings == {"n": 10}
    assert not back.stale("m", f) and back.stale("other", f)
    f.write_bytes(b"abd")  # same size, other content
    assert back.stale("m", f)
    assert read_scores(tmp_path / "missing.json").models == {}
    path.write_text("{not json")
    with pytest.raises(ValueError, match="not a valid scores file"):
        read_scores(path)
    for bad in ({"models": {"m": {"quality": None}}},  # no fingerprint
                {"models": {"m": {"fingerprint": "1:ab", "auroc": {"uniform noise": "high"}}}},
                {"models": {"m": {"fingerprint": "1:ab", "auroc": "x"}}},
                {"models": {"m": {"fingerprint": "1:ab", "quality": {"n": 3}}}}, {"settings": [1]},
                {"models": {"m": {"fingerprint": "1:ab", "further_auroc": {"−log p": {"noise": None}}}}}):
        path.write_text(json.dumps(bad))
        with pytest.raises(ValueError, match="not a valid scores file"):
            read_scores(path)


def test_a_measurement_belongs_to_the_file_it_was_made_on(tmp_path, monkeypatch):
    """Numbers a benchmark stores (``store_measured``) are quoted only while the checkpoint's file is the one they
    were measured on; storing for a file that was not scored in its present form is refused."""
    monkeypatch.setenv("EBMVIZ_SHIPPED_DIR", str(tmp_path))
    f, path = tmp_path / "m.safetensors", tmp_path / "scores.json"
    f.write_bytes(b"weights")
    with pytest.raises(ValueError, match="run python -m training scores --only m first"):
        store_measured("m", "long_run", {"top_count": 37}, "a benchmark", path)
    path.write_text(Scores({"m": ModelScores(fingerprint(f))}, {}).to_json())
    store_measured("m", "long_run", {"top_count": 37}, "a benchmark, today", path)
    assert measured("m", "long_run", path) == {"top_count": 37, "source": "a benchmark, today"}
    assert measured("m", "latent_langevin", path) is None and measured("other", "long_run", path) is None
    f.write_bytes(b"retrained")  # another file under the same name: its numbers are not these
    assert measured("m", "long_run", path) is None
    with pytest.raises(ValueError, match="no entry for its present file"):
        store_measured("m", "long_run", {"top_count": 12}, "a benchmark", path)
    path.write_text(json.dumps({"models": {"m": {"fingerprint": "1:ab", "measured": {"long_run": {"top_count": 3}}}}}))
    with pytest.raises(ValueError, match="not a valid scores file"):  # a number without where it came from
        read_scores(path)


@pytest.mark.filterwarnings("ignore:Matrix is singular")  # a Fréchet distance of 8 samples in 128-d features
def test_training_scores_match_a_recomputation(tmp_path):
    out = tmp_path / "scores.json"
    args = ["scores", "--only", "shortrun-mnist", "--n", "8", "--out", str(out)]
    assert training_main(args) == 0
    entry = read_scores(out).models["shortrun-mnist"]
    model = checkpoints.load("shortrun-mnist")
    assert entry.fingerprint == fingerprint(checkpoints.resolve("shortrun-mnist"))
    assert entry.parameters == sum(p.numel() for p in model.parameters()) > 0
    test, _ = load_dataset("mnist", "test")
    try:
        fashion = load_dataset("fashion-mnist", "test")[0]
    except Exception:  # noqa: BLE001  (the CI machine may lack Debian's Fashion-MNIST)
        fashion = None
    again = auroc_row(model, test, make_sets(test, 0, fashion))
    assert entry.auroc == pytest.approx(again, abs=1e-9)
    evaluator = checkpoints.load("evaluator-mnist")
    q = sample_quality(model, evaluator, metrics.features(evaluator, test), n=8, seed=0)
    assert entry.quality["class_counts"] == q["class_counts"] and entry.quality["grad_evals"] == q["grad_evals"] > 0
    for k in ("confident_share", "mean_confidence", "class_entropy", "frechet"):
        assert entry.quality[k] == pytest.approx(q[k])
    assert training_main(args) == 0  # unchanged file: kept as it was
    assert read_scores(out).models["shortrun-mnist"] == entry
    assert entry.further_auroc is None  # the short-run model has one energy


@pytest.mark.slow  # scores 12,000 images twice with 16 draws each through the triangle
@pytest.mark.filterwarnings("ignore:Matrix is singular")  # the held-out digits' Fréchet scale the command stores
def test_training_scores_store_a_models_further_energies(tmp_path):
    out = tmp_path / "scores.json"
    assert training_main(["scores", "--only", "triangle-mnist", "--skip-quality", "--out", str(out)]) == 0
    triangle = checkpoints.load("triangle-mnist")
    further = read_scores(out).models["triangle-mnist"].further_auroc
    assert list(further) == list(triangle.further_energies)
    test, _ = load_dataset("mnist", "test")
    try:
        fashion = load_dataset("fashion-mnist", "test")[0]
    except Exception:  # noqa: BLE001  (the CI machine may lack Debian's Fashion-MNIST)
        fashion = None
    again = auroc_row(triangle.named_energy("generator −log p(x)"), test, make_sets(test, 0, fashion))
    assert further["generator −log p(x)"] == pytest.approx(again, abs=1e-9)


def test_numpy_roc_area_equals_scikit_learns_auroc_with_ties():
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(4)
    inside, outside = rng.integers(0, 20, 300).astype(float), rng.integers(3, 25, 200).astype(float)  # many ties
    fpr, tpr, area = metrics.roc(inside, outside)
    assert area == pytest.approx(roc_auc_score(np.r_[np.ones(300), np.zeros(200)], np.r_[inside, outside]), abs=1e-12)
    assert metrics.auroc(inside, outside) == area
    assert fpr[0] == tpr[0] == 0 and fpr[-1] == tpr[-1] == 1 and (np.diff(fpr) >= 0).all() and (np.diff(tpr) >= 0).all()
    assert metrics.roc(np.array([2.0, 3.0]), np.array([0.0, 1.0]))[2] == 1.0
