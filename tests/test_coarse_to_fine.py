"""CF-EBM: continuity at expansion, cascade shapes and hand-offs, snapshots, checkpoint round trip."""

import numpy as np
import pytest
import torch

from ebmviz import checkpoints
from ebmviz.models.coarse_to_fine import (
    CascadeConfig,
    CoarseToFineConfig,
    CoarseToFineEBM,
    Snapshot,
    pool,
    pyramid,
    sample_cascade,
    upsample,
)


@pytest.fixture
def model():
    torch.manual_seed(0)
    m = CoarseToFineEBM(CoarseToFineConfig(channels=(4, 6, 8), n_snapshots=3))
    with torch.no_grad():  # a non-trivial head so energies differ between images
        for p in m.parameters():
            p.add_(0.3 * torch.randn_like(p))
    return m.eval()


@pytest.mark.parametrize("stage", [1, 2])
def test_expansion_at_beta_zero_is_the_previous_energy_of_the_pooled_image(model, stage):
    side = (7, 14, 28)[stage]
    x = torch.rand(6, 1, side, side) * 2 - 1
    e_prev = model.energy(pool(x), stage - 1, 1.0)
    torch.testing.assert_close(model.energy(x, stage, 0.0), e_prev, rtol=1e-6, atol=1e-6)
    # the check can fail: with the new block switched on the energy is a different function
    assert (model.energy(x, stage, 1.0) - e_prev).abs().max() > 1e-3
    assert (model.energy(x, stage, 0.5) - e_prev).abs().max() > 1e-4


def test_expand_parts_split_by_beta(model):
    x = torch.rand(4, 1, 28, 28) * 2 - 1
    primal, fade = model.expand_parts(x, 2, 0.0)
    assert torch.all(primal == 0) and torch.all(fade > 0)
    primal, fade = model.expand_parts(x, 2, 1.0)
    assert torch.all(primal > 0) and torch.all(fade == 0)


def test_forward_picks_the_stage_by_side_and_refuses_ungrown_stages(model):
    model.set_growth(1, 0.5)
    x = torch.rand(3, 1, 14, 14)
    torch.testing.assert_close(model(x), model.energy(x, 1, 0.5))
    with pytest.raises(ValueError, match="stage 1 only"):
        model(torch.rand(3, 1, 28, 28))
    with pytest.raises(ValueError, match="sides"):
        model(torch.rand(3, 1, 20, 20))
    with pytest.raises(ValueError):
        model.set_growth(3, 1.0)


def test_pyramid_is_exact_mean_pooling():
    x = torch.rand(2, 1, 28, 28)
    p7, p14, p28 = pyramid(x)
    assert p7.shape[-1] == 7 and p14.shape[-1] == 14 and p28 is x
    torch.testing.assert_close(p7[0, 0, 0, 0], x[0, 0, :4, :4].mean())
    torch.testing.assert_close(pool(upsample(p14)), p14)


def test_cascade_shapes_handoffs_and_budget(model):
    model.set_growth(2, 1.0)
    cfg = CascadeConfig(steps=(4, 3, 2), handoff_noise=0.0, record_every=1)
    c = sample_cascade(model, 5, seed=1, config=cfg)
    assert c.final.shape == (5, 1, 28, 28) and c.grad_evals == 9
    assert [t.frames.shape for t in c.trajectories] == [(5, 5, 1, 7, 7), (4, 5, 1, 14, 14), (3, 5, 1, 28, 28)]
    for (coarse, fine), traj in zip(c.handoffs, c.trajectories, strict=False):
        # the hand-off carries the coarse run's final state, upsampled (no noise here)
        torch.testing.assert_close(torch.from_numpy(coarse), torch.from_numpy(traj.final))
        torch.testing.assert_close(pool(torch.from_numpy(fine)), torch.from_numpy(coarse))
    # the next stage starts where the hand-off put it
    assert abs(c.trajectories[1].frames[0].astype(float) - (c.handoffs[0][1] + 1) * 127.5).max() <= 1
    again = model.draw(5, seed=1, config=cfg)  # the model's sampling entry is the cascade
    np.testing.assert_array_equal(again.final, c.final)
    noisy = sample_cascade(model, 5, seed=1, config=CascadeConfig(steps=(4, 3, 2), handoff_noise=0.2))
    assert not np.array_equal(noisy.final, c.final)
    top1 = sample_cascade(model, 2, seed=0, config=cfg, top=1, beta=0.5)
    assert top1.final.shape == (2, 1, 14, 14) and top1.beta == 0.5 and len(top1.handoffs) == 1


def test_snapshots_and_checkpoint_round_trip(model, tmp_path):
    model.set_growth(1, 0.25)
    model.record_snapshot(0, iteration=7)
    x = torch.rand(3, 1, 14, 14)
    e_then = model.energy(x, 1, 0.25)
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(1.5)
    model.set_growth(2, 1.0)
    assert model.snapshots() == [Snapshot(index=0, stage=1, beta=0.25, iteration=7)]
    path = checkpoints.save(model, tmp_path / "cf.safetensors", {"note": "test"})
    loaded = checkpoints.load(path)
    assert (loaded.stage, loaded.beta) == (2, 1.0) and loaded.config.channels == (4, 6, 8)
    snap = loaded.snapshot_model(0)
    assert (snap.stage, snap.beta) == (1, 0.25)
    torch.testing.assert_close(snap(x), e_then)
    with pytest.raises(ValueError, match="never recorded"):
        loaded.snapshot_model(1)
