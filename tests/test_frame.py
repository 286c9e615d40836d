"""Deep FRAME: the energy with its Gaussian reference, both flows' parameter steps by hand, and smoke runs."""

import numpy as np
import pytest
import torch

from ebmviz import checkpoints
from ebmviz.analysis.learning_dynamics import Curves, collapse_onset, nearest_training, snapshot_index
from ebmviz.models.frame import FRAME, FlowConfig, FlowLearner, FRAMEConfig
from ebmviz.sampling import JKOConfig, LangevinConfig
from training.__main__ import main as training_main

TINY = FRAMEConfig(width=4, hidden=8, ref_std=0.5, n_snapshots=4, snapshot_size=3, keep_train=5)


def test_energy_is_minus_f_plus_the_gaussian_reference():
    torch.manual_seed(0)
    model = FRAME(TINY)
    x = torch.randn(6, 1, 28, 28)
    expected = -model.f(x) + (x.flatten(1) ** 2).sum(1) / (2 * 0.5**2)
    torch.testing.assert_close(model(x), expected)
    assert model(x).shape == (6,)


@pytest.mark.parametrize("flow", ["kl", "jko"])
def test_parameter_step_matches_a_hand_computation(flow):
    torch.manual_seed(1)
    model = FRAME(TINY)
    data, particles = torch.randn(5, 1, 28, 28) * 0.5, torch.randn(7, 1, 28, 28) * 0.5
    cfg = FlowConfig(flow=flow, penalty=0.3)
    terms = model.parameter_terms(data, particles, cfg)
    # by hand: mean U(data) − mean U(particles) (+ λ·mean‖∇_x U(particles)‖² for JKO)
    x = particles.clone().requires_grad_(True)
    (g,) = torch.autograd.grad(model(x).sum(), x)
    penalty = (g.flatten(1) ** 2).sum(1).mean()
    hand = model(data).mean() - model(particles).mean() + (0.3 * penalty if flow == "jko" else 0.0)
    assert float(terms.loss.detach()) == pytest.approx(float(hand.detach()), rel=1e-5)
    assert terms.gap == pytest.approx(float((model(particles).mean() - model(data).mean()).detach()), rel=1e-5)
    # the loss reaches θ: through U for both, and through ∇_x U (second derivatives) for JKO's penalty
    terms.loss.backward()
    grads = torch.cat([p.grad.flatten() for p in model.parameters() if p.grad is not None])
    assert grads.abs().sum() > 0
    if flow == "jko":
        assert float(terms.penalty) == pytest.approx(float(penalty), rel=1e-5) and float(terms.penalty) > 0
        model.zero_grad()
        model.parameter_terms(data, particles, FlowConfig(flow="jko", penalty=0.0)).loss.backward()
        without = torch.cat([p.grad.flatten() for p in model.parameters() if p.grad is not None])
        assert not torch.allclose(grads, without)  # λ changes the parameter step


def test_flows_use_langevin_or_proximal_particle_steps():
    assert isinstance(FlowConfig(flow="kl").particle_config(), LangevinConfig)
    kl = FlowConfig(flow="kl", step=0.02).particle_config()
    assert kl.temperature == pytest.approx(1.0) and kl.grad_clip is None and kl.clamp is None
    jko = FlowConfig(flow="jko", step=0.05, inner_steps=4).particle_config()
    assert isinstance(jko, JKOConfig) and jko.tau == 0.05 and jko.inner_steps == 4
    with pytest.raises(ValueError, match="unknown flow"):
        FlowConfig(flow="w2").particle_config()


@pytest.mark.parametrize("flow", ["kl", "jko"])
def test_training_smoke_records_the_dynamics(flow, tmp_path):
    out = tmp_path / f"{flow}.safetensors"
    args = ["frame", "--flow", flow, "--n-train", "5", "--iterations", "12", "--n-particles", "6", "--batch-size",
            "4", "--k-steps", "2", "--width", "4", "--hidden", "8", "--log-every", "2", "--sample-every", "4",
            "--minutes", "0", "--out", str(out), "--run-dir", str(tmp_path / flow)]
    assert training_main(args) == 0
    model = checkpoints.load(out)
    row = model.meta["history"][-1]
    assert {"e_data", "e_particles", "gap", "update_norm", "particle_step", "penalty"} <= set(row)
    assert row["gap"] == pytest.approx(row["e_particles"] - row["e_data"], rel=1e-5) and row["update_norm"] > 0
    its, images = model.snapshots()
    assert its.tolist() == [0, 4, 8] and images.shape[1:] == (6, 1, 28, 28)
    assert model.training_images().shape == (5, 1, 28, 28)
    assert model.meta["flow"]["flow"] == flow and model.meta["n_train"] == 5
    assert np.isfinite(model.draw(2, seed=0).final).all()


# ------------------------------------------------------------------ the learner and the dynamics the page reads
def _learner(flow: str, seed: int = 0) -> FlowLearner:
    torch.manual_seed(seed)
    model = FRAME(TINY)
    data = torch.rand(5, 1, 28, 28, generator=torch.Generator().manual_seed(9)) * 2 - 1
    return FlowLearner(model, data, FlowConfig(flow=flow, k_steps=2, penalty=0.01), torch.Generator().manual_seed(seed),
                       seed=seed, n_particles=4, batch_size=3)


@pytest.mark.parametrize("flow", ["kl", "jko"])
def test_flow_learner_is_deterministic_per_seed_and_reports_its_iteration(flow):
    a, b, c = _learner(flow), _learner(flow), _learner(flow, seed=1)
    rows_a = [a.step().to_dict() for _ in range(3)]
    rows_b = [b.step().to_dict() for _ in range(3)]
    assert rows_a == rows_b and torch.equal(a.particles, b.particles)
    assert [r["iteration"] for r in rows_a] == [0, 1, 2] and a.iteration == 3
    assert c.step().gap != rows_a[0]["gap"]
    for r in rows_a:
        assert r["gap"] == pytest.approx(r["e_particles"] - r["e_data"], rel=1e-5)
        assert r["update_norm"] > 0 and r["particle_step"] > 0
    assert np.isnan(a.step(measure_update=False).update_norm)
    with pytest.raises(ValueError, match="at least one"):
        FlowLearner(FRAME(TINY), torch.zeros(0, 1, 28, 28), FlowConfig(), torch.Generator())


def test_curves_round_trip_through_a_checkpoint(tmp_path):
    learner = _learner("kl")
    rows = [learner.step().to_dict() for _ in range(4)]
    checkpoints.save(learner.model, tmp_path / "f.safetensors", {"history": rows})
    curves = Curves.from_history(checkpoints.load(tmp_path / "f.safetensors").meta["history"])
    assert curves.iteration.tolist() == [0, 1, 2, 3]
    for k in ("e_data", "e_particles", "gap", "update_norm", "particle_step", "penalty"):
        np.testing.assert_allclose(curves.values[k], [r[k] for r in rows], rtol=1e-6)
    assert curves.row_at(2)["gap"] == pytest.approx(rows[2]["gap"]) and curves.row_at(-1) is None
    assert curves.row_at(99)["iteration"] == 3


def _curves(gap) -> Curves:
    gap = np.asarray(gap, dtype=float)
    return Curves(np.arange(len(gap)) * 10.0, {"gap": gap})


def test_collapse_onset_finds_where_the_gap_leaves_for_good():
    rng = np.random.default_rng(0)
    steady = 100 + 30 * rng.standard_normal(200)
    assert collapse_onset(_curves(steady)) is None
    exploding = steady.copy()
    exploding[120:] = 1e3 * 10.0 ** np.arange(80) / 10  # 1e2, 1e3, …: above 100× the early size from index 122
    assert collapse_onset(_curves(exploding)) == 10 * int(np.argmax(exploding > 100 * np.median(steady[:20])))
    spike = steady.copy()
    spike[50:60] = 1e9  # a burst that comes back is not a collapse
    assert collapse_onset(_curves(spike)) is None
    diverged = steady.copy()
    diverged[150:] = np.nan  # non-finite counts as gone
    assert collapse_onset(_curves(diverged)) == 1500
    assert collapse_onset(_curves(steady[:5])) is None


def test_snapshot_index_takes_the_last_snapshot_at_or_before():
    its = np.array([0, 50, 100, 200])
    assert [snapshot_index(its, i) for i in (-5, 0, 49, 50, 199, 200, 10_000)] == [0, 0, 0, 1, 2, 3, 3]


def test_nearest_training_digit_and_near_copies():
    rng = np.random.default_rng(1)
    train = rng.uniform(-1, 1, (4, 1, 28, 28))
    spacing = min(((train[i] - train[j]) ** 2).mean() for i in range(4) for j in range(4) if i != j)
    samples = np.stack([train[2] + 0.01 * rng.standard_normal((1, 28, 28)), np.full((1, 28, 28), 0.9)])
    near = nearest_training(samples, train)
    assert near.index[0] == 2 and near.mse[0] == pytest.approx(((samples[0] - train[2]) ** 2).mean())
    assert near.train_spacing == pytest.approx(spacing)
    assert near.copies.tolist() == [True, False] and near.copy_share == 0.5
    assert near.mse[1] == pytest.approx(min(((samples[1] - t) ** 2).mean() for t in train))
    with pytest.raises(ValueError, match="two training digits"):
        nearest_training(samples, train[:1])
