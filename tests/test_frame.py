"""Deep FRAME: the energy with its Gaussian reference, both flows' parameter steps by hand, and smoke runs."""

import numpy as np
import pytest
import torch

from ebmviz import checkpoints
from ebmviz.models.frame import FRAME, FlowConfig, FRAMEConfig
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
