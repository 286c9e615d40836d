"""The training monitor's alerts (``ebmviz.monitor.alerts``): each fires on its own constructed log at the step the
rule gives by hand, stays quiet on near misses, and none fires on healthy logs of shipped trainers (short-run and
coarse-to-fine TensorBoard logs in tests/fixtures/healthy_run, made by tests/fixtures/make_healthy_run.py) nor on the
shipped checkpoints' histories, while the deep FRAME KL run, whose energies diverge, is caught early."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from safetensors import safe_open
from tensorboard.backend.event_processing.plugin_event_accumulator import EventAccumulator
from tensorboard.util.tensor_util import make_ndarray

from ebmviz.checkpoints import checkpoint_dir
from ebmviz.data import load_dataset
from ebmviz.monitor import alerts
from ebmviz.monitor.alerts import REMEDIES, ROLES, Alert, check
from ebmviz.training_log import SATURATED, role_of
from tests.fixtures.make_healthy_run import CLASS_ENTROPY_TAG

HEALTHY = Path(__file__).parent / "fixtures" / "healthy_run"
N = 120  # points of a constructed log
STEPS = np.arange(N) * 10  # logged every 10 iterations


def healthy_like(seed: int = 0) -> dict[str, np.ndarray]:
    """A constructed log of a run going well, every role: energies near 0 with a small gap of either sign, noise
    rated 2 nats above the data after a start where everything is alike, negatives saturating up to the data's level,
    class entropy rising from one class (noise) to near ln 10."""
    rng = np.random.default_rng(seed)
    ramp = np.minimum(np.arange(N) / 10, 1.0)
    data = 0.1 * rng.standard_normal(N)
    v = {
        "data_mean": data, "sample_mean": data + 0.02 * rng.standard_normal(N),
        "data_std": np.full(N, 0.06), "sample_std": np.full(N, 0.08), "noise_mean": data + 2.0 * ramp,
        "loss": 0.02 * rng.standard_normal(N), "grad_norm": 0.1 + 0.01 * rng.random(N), "lr": np.full(N, 5e-4),
        "step_size": np.full(N, 10.0), "sampler_grad_norm": np.full(N, 0.05), "step_norm": np.full(N, 0.3),
        "saturation": 0.01 + 0.87 * ramp, "class_entropy": 0.2 + (2.2 - 0.2) * ramp + 0.05 * rng.standard_normal(N),
    }
    v["gap"] = v["sample_mean"] - v["data_mean"]
    return v


def run(values: dict[str, np.ndarray], **kw) -> list[Alert]:
    return check({role: (STEPS, v) for role, v in values.items()}, **kw)


def only(found: list[Alert], kind: str) -> Alert:
    assert [a.kind for a in found] == [kind], found
    a = found[0]
    assert a.remedies == REMEDIES[kind] and a.message
    return a


def test_the_constructed_healthy_log_raises_nothing():
    for seed in range(5):
        assert run(healthy_like(seed)) == []


def test_a_non_finite_value_in_any_role_is_a_divergence_at_its_step():
    for role, i in (("loss", 37), ("grad_norm", 80), ("class_entropy", 5)):
        v = healthy_like()
        v[role][i] = math.nan if role != "grad_norm" else math.inf
        v[role][i + 3] = math.nan  # a later one does not move the alert
        a = only(run(v), "divergence")
        assert a.step == STEPS[i] and role in a.message


def test_geometric_growth_of_the_energies_is_a_divergence_where_it_is_large_and_still_climbing():
    v = healthy_like()
    k = np.arange(N - 50)
    v["data_mean"][50:] = -0.05 * 1.5 ** k  # |E| ×1.5 per logged step from step 500
    v["sample_mean"][50:] = 0.9 * v["data_mean"][50:]  # samples above the data: the gap stays positive
    v["gap"] = v["sample_mean"] - v["data_mean"]
    # the early scale is the 1-nat floor; 0.05·1.5^k ≥ 100 first at k = ceil(ln 2000 / ln 1.5) = 19, and 20 points
    # earlier |E| was ~0.1: far more than 10× below
    first = 50 + math.ceil(math.log(2000) / math.log(1.5))
    a = only(run(v), "divergence")
    assert first == 69 and a.step == STEPS[first] and "geometrically" in a.message


def test_a_level_shift_is_no_divergence_until_it_climbs_on():
    v = healthy_like()  # deep FRAME's JKO run: energies ~300 that step 10× and stay there
    v["data_mean"][:] = -300.0 + v["data_mean"]
    v["data_mean"][60:] -= 2700.0
    v["sample_mean"] = v["data_mean"] + 30.0
    v["noise_mean"] = v["data_mean"] + 100.0
    v["gap"] = v["sample_mean"] - v["data_mean"]
    assert run(v) == []  # the early scale is ~300, and 3,000 is 10× it, not 100×
    v["data_mean"][80:] *= 1.5 ** np.arange(1, N - 79)  # then ×1.5 per point: 3,000·1.5^6 = 34,172 is the first ≥
    v["sample_mean"] = v["data_mean"] + 30.0  # 100 × 300 (3,000·1.5^5 = 22,781 is not), and 11× point 65's 3,000
    v["noise_mean"] = v["data_mean"] + 100.0
    v["gap"] = v["sample_mean"] - v["data_mean"]
    assert only(run(v), "divergence").step == STEPS[80 + 5]


def test_the_gap_swapping_sign_for_good_is_a_divergence_but_wandering_near_zero_is_not():
    v = healthy_like()
    v["gap"][60:] = -0.2  # samples below the data by more than the spread 0.08, from step 600 on
    a = only(run(v), "divergence")
    assert a.step == STEPS[60 + alerts.SWAP_POINTS - 1] and "swapped" in a.message
    v = healthy_like()
    v["gap"][60:] = -0.07  # below zero for good, but within the batch spread: CD's usual wandering
    v["gap"][30:39] = -0.5  # 9 points far below, then back: not for good
    assert run(v) == []


def test_the_gap_is_taken_from_the_means_when_the_log_has_none():
    v = healthy_like()
    del v["gap"]
    v["sample_mean"][70:] = v["data_mean"][70:] - 0.3
    assert only(run(v), "divergence").step == STEPS[70 + alerts.SWAP_POINTS - 1]


def test_saturation_counts_only_beyond_the_datas_own_share():
    v = healthy_like()
    v["saturation"][40:] = 0.99  # MNIST's own share is 0.83: odds 99 against 4.9, 20×
    a = only(run(v), "saturation")
    assert a.step == STEPS[40 + alerts.SATURATION_POINTS - 1] and "99.0%" in a.message
    v["saturation"][40:] = 0.90  # the shipped short-run model's samples: 0.89; the scribbles of the NDA model: 0.90
    assert run(v) == []
    v["saturation"][:40] = 0.02
    v["saturation"][40:] = 0.50  # half the pixels at the walls is saturated for images that have 2% there …
    assert only(run(v, data_saturation=0.02), "saturation").step == STEPS[44]
    assert run(v) == []  # … and not for MNIST


def test_mnist_saturation_is_the_share_of_real_digits_at_the_walls():
    x = np.asarray(load_dataset("mnist", "train")[0])
    share = float(np.mean(np.abs(x) >= SATURATED))
    assert abs(share - alerts.MNIST_SATURATION) < 0.005, share
    # odds 0.83/0.17 = 4.88, ×5 = 24.4: a share of 24.4/25.4 = 0.961
    assert alerts.saturation_limit(alerts.MNIST_SATURATION) == pytest.approx(0.9607, abs=1e-4)
    assert alerts.saturation_limit(0.0) == alerts.saturation_limit(0.01) == pytest.approx(0.0481, abs=1e-4)


def test_class_entropy_falling_from_its_peak_is_a_collapse_but_starting_low_is_not():
    v = healthy_like()
    v["class_entropy"][50:] = 1.0  # ~2.7 classes in use, from step 500
    # the median of 5 turns low once 3 of its points are (point 52); 5 such medians in a row end at point 56
    a = only(run(v), "collapse")
    assert a.step == STEPS[56] and "1.00 nats" in a.message
    v = healthy_like()
    v["class_entropy"][:] = np.linspace(0.1, 2.2, N)  # noise put in one class, rising: no peak to fall from
    assert run(v) == []
    v["class_entropy"][60:] -= 0.6  # a fall of 0.6 < ln 2 nats: fewer classes in use, not half as many
    assert run(v) == []


def test_a_gap_near_zero_with_samples_rated_like_noise_for_long_is_a_stall():
    v = healthy_like()
    flat = 0.05 + 0.01 * np.random.default_rng(1).standard_normal(N)  # an energy that learns nothing
    for role in ("data_mean", "sample_mean", "noise_mean"):
        v[role] = flat + 0.02 * np.random.default_rng(len(role)).standard_normal(N)
    v["gap"] = v["sample_mean"] - v["data_mean"]
    v["saturation"][:] = 0.01
    # 20 points in a row from step 0 span 190 iterations; the 21st (step 200) is the first to span ≥ 200
    a = only(run(v), "stall")
    assert a.step == 200 and "from step 0 to 200" in a.message
    del v["noise_mean"]  # without the noise's energy: the negatives' pixels are those of uniform noise
    assert only(run(v), "stall").step == 200
    v["saturation"][:] = 0.6  # the samples moved away from noise: not a stall
    assert run(v) == []


def test_a_rule_whose_inputs_are_missing_does_not_run():
    v = healthy_like()
    v["gap"][60:] = -5.0
    v["saturation"][40:] = 1.0
    assert {a.kind for a in run(v)} == {"divergence", "saturation"}
    assert run({r: v[r] for r in ("gap", "loss", "lr")}) == []  # no spread to judge the gap by, no saturation
    assert check({}) == [] and check({"loss": (np.zeros(0, int), np.zeros(0))}) == []


def test_unsorted_steps_and_series_objects_are_read_as_logged():
    v = healthy_like()
    v["saturation"][40:] = 1.0
    order = np.random.default_rng(0).permutation(N)

    class Series:  # what ebmviz.monitor.events.EventReader gives: .steps and .values
        def __init__(self, steps, values):
            self.steps, self.values = steps, values

    shuffled = {r: Series(STEPS[order], x[order]) for r, x in v.items()}
    assert check(shuffled) == run(v) and run(v)[0].step == STEPS[44]


def test_bad_input_is_refused_with_a_message():
    with pytest.raises(ValueError, match="unknown role.*'energy/gap'"):
        check({"energy/gap": (STEPS, np.zeros(N))})
    with pytest.raises(ValueError, match="1-D of one length"):
        check({"gap": (STEPS, np.zeros(N - 1))})
    with pytest.raises(ValueError, match="whole numbers"):
        check({"gap": (STEPS + 0.5, np.zeros(N))})
    with pytest.raises(ValueError, match="pair"):
        check({"gap": np.zeros(N)})
    with pytest.raises(ValueError, match="data_saturation"):
        check({}, data_saturation=1.0)


def read_fixture(folder: Path) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """A fixture log's scalars by role, through TensorBoard's own reader."""
    acc = EventAccumulator(str(folder), size_guidance={"tensors": 0})
    acc.Reload()
    out = {}
    for tag in acc.Tags()["tensors"]:
        role = "class_entropy" if tag == CLASS_ENTROPY_TAG else role_of(tag)
        if role is not None:
            events = acc.Tensors(tag)
            out[role] = (np.array([e.step for e in events]),
                         np.array([make_ndarray(e.tensor_proto).item() for e in events]))
    return out


@pytest.mark.parametrize("name", ["shortrun", "coarse_to_fine"])
def test_healthy_shipped_trainers_logs_raise_nothing(name):
    series = read_fixture(HEALTHY / name)
    assert set(series) == set(ROLES)  # every rule has its inputs: the silence is the rules', not missing data
    steps = series["gap"][0]
    assert len(steps) >= 30 and len(series["class_entropy"][0]) >= 10
    assert check(series) == []


def test_failures_planted_in_a_healthy_log_are_found_at_their_steps():
    healthy = read_fixture(HEALTHY / "shortrun")  # 70 points, every 10 iterations

    def planted(role: str, value: float) -> list[Alert]:
        steps, v = healthy[role]
        return check(healthy | {role: (steps, np.where(steps >= 400, value, v))})

    assert only(planted("gap", -0.3), "divergence").step == 490  # the spread there is ≤ 0.13; 10 points from 400
    assert only(planted("saturation", 0.99), "saturation").step == 440  # 5 points from 400
    # the smoothed entropy peaked at ~1.8 nats before step 400; 0.7 is below 1.8 − ln 2 once 3 of 5 points are
    # (step 420), and 5 such medians in a row end at step 460
    assert only(planted("class_entropy", 0.7), "collapse").step == 460
    assert only(planted("sample_mean", 1e4), "divergence").step == 400  # 10⁴ ≥ 100 × the 1-nat scale, at once


def history(name: str) -> list[dict]:
    with safe_open(str(checkpoint_dir() / f"{name}.safetensors"), "pt") as f:
        return json.loads(f.metadata()["ebmviz"])["history"]


def energies_of(rows: list[dict], data: str, samples: str) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    steps = np.array([r["iteration"] for r in rows], dtype=np.int64)
    return {"data_mean": (steps, np.array([r[data] for r in rows])),
            "sample_mean": (steps, np.array([r[samples] for r in rows]))}


def test_the_shipped_histories_diverge_only_where_the_run_diverged():
    quiet = {"shortrun-mnist": ("e_real", "e_fake"), "coarse_to_fine-mnist": ("e_real", "e_fake"),
             "ebgan-mnist": ("d_real", "d_fake"), "frame_jko-mnist": ("e_data", "e_particles")}
    for name, keys in quiet.items():
        assert check(energies_of(history(name), *keys)) == [], name
    rows = history("frame_kl-mnist")  # the KL flow's energies run to 10²⁴ (checkpoints/README.md)
    series = energies_of(rows, "e_data", "e_particles")
    a = only(check(series), "divergence")
    big = next(r["iteration"] for r in rows if max(abs(r["e_data"]), abs(r["e_particles"])) > 1e6)
    assert a.step < big, (a.step, big)  # caught while |E| is still below a million
