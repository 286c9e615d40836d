"""EBGAN: the paper's losses against hand computations, the hinge's dead zone, snapshots, training."""

import math

import pytest
import torch
from torch import nn

from ebmviz import checkpoints
from ebmviz.models.ebgan import EBGAN, EBGANConfig, pulling_away, reconstruction_energy
from ebmviz.transforms import translate


class FixedAutoEncoder(nn.Module):
    """A stand-in discriminator: reconstructs every image as 0 and gives the codes it is told to."""

    def __init__(self, codes: torch.Tensor):
        super().__init__()
        self.codes = codes

    def forward(self, x):
        return torch.zeros_like(x), self.codes[: len(x)]


class FixedGenerator(nn.Module):
    def __init__(self, images: torch.Tensor):
        super().__init__()
        self.images = nn.Parameter(images.clone())

    def forward(self, z):
        return self.images[: len(z)]


def test_pulling_away_squares_the_cosines_and_skips_the_diagonal():
    s = torch.tensor([[1.0, 0.0], [1.0, 1.0], [0.0, 2.0]])
    # cos²: (1,2) = 1/2, (1,3) = 0, (2,3) = 1/2; each pair twice over i ≠ j, N(N−1) = 6
    assert pulling_away(s).item() == pytest.approx(2 * (0.5 + 0 + 0.5) / 6)
    unsquared = 2 * (math.sqrt(0.5) + 0 + math.sqrt(0.5)) / 6  # what the public ports compute
    assert pulling_away(s).item() != pytest.approx(unsquared)
    assert pulling_away(torch.eye(4)).item() == 0.0  # orthogonal codes: nothing to pull away
    assert pulling_away(torch.ones(5, 3) * torch.arange(1.0, 6.0)[:, None]).item() == pytest.approx(1.0)
    with pytest.raises(ValueError):
        pulling_away(torch.ones(1, 3))


def test_energy_is_the_per_pixel_squared_error_on_the_unit_scale():
    x = torch.full((2, 1, 28, 28), 1.0)
    assert reconstruction_energy(x, torch.zeros_like(x)).tolist() == [0.25, 0.25]  # ((1 − 0)/2)²
    assert reconstruction_energy(x, -x).tolist() == [1.0, 1.0]  # white reconstructed as black: the whole range


def test_discriminator_loss_by_hand():
    model = EBGAN()
    model.discriminator = FixedAutoEncoder(torch.randn(4, 32))  # D(x) = mean((x/2)²)
    real = torch.full((2, 1, 28, 28), 1.0)  # D = 0.25
    fake = torch.cat([torch.zeros(1, 1, 28, 28), torch.full((1, 1, 28, 28), -1.0)])  # D = 0 and 0.25
    t = model.discriminator_step(real, fake, margin=1.0)
    # L_D = mean D(x) + mean [m − D(G(z))]⁺ = 0.25 + ((1 − 0) + (1 − 0.25)) / 2
    assert t.loss.item() == pytest.approx(0.25 + 0.875)
    assert t.d_fake.tolist() == [0.0, 0.25] and t.above_margin == 0.0
    t = model.discriminator_step(real, fake, margin=0.1)  # [0.1 − 0]⁺ = 0.1, [0.1 − 0.25]⁺ = 0
    assert t.loss.item() == pytest.approx(0.25 + 0.05) and t.above_margin == 0.5


def test_generator_loss_by_hand():
    codes = torch.tensor([[1.0, 0.0], [1.0, 1.0], [0.0, 2.0]])
    model = EBGAN()
    model.discriminator = FixedAutoEncoder(codes)
    model.generator = FixedGenerator(torch.stack([torch.full((1, 28, 28), v) for v in (1.0, 0.0, -0.5)]))
    z = torch.zeros(3, model.config.nz)
    t = model.generator_step(z, pt_weight=0.1)
    d = [0.25, 0.0, 0.0625]  # mean((x/2)²) for x = 1, 0, −0.5
    assert t.d_fake.tolist() == pytest.approx(d)
    assert t.pt.item() == pytest.approx(1 / 3)
    assert t.loss.item() == pytest.approx(sum(d) / 3 + 0.1 / 3)
    assert model.generator_step(z, pt_weight=0.0).loss.item() == pytest.approx(sum(d) / 3)


def test_generator_step_with_shifts_is_the_loss_on_the_moved_samples():
    torch.manual_seed(0)
    model = EBGAN(EBGANConfig(width=8, hidden=16, code=8)).eval()
    z, shifts = torch.randn(6, model.config.nz), torch.tensor([[0, 0], [1, 0], [0, -2], [2, 2], [-1, 1], [0, 1]])
    moved = model.generator_step(z, 0.1, shifts)
    fake = translate(model.generator(z), shifts)
    recon, codes = model.discriminator(fake)
    assert moved.d_fake.tolist() == pytest.approx(reconstruction_energy(fake, recon).tolist())
    assert moved.pt.item() == pytest.approx(pulling_away(codes).item())
    assert moved.loss.item() != pytest.approx(model.generator_step(z, 0.1).loss.item())


def test_hinge_gives_no_gradient_from_fakes_above_the_margin():
    torch.manual_seed(0)
    model = EBGAN(EBGANConfig(width=8, hidden=16, code=8))
    x, fake = torch.rand(4, 1, 28, 28) * 2 - 1, torch.rand(4, 1, 28, 28) * 2 - 1

    def grads(margin):
        model.zero_grad()
        t = model.discriminator_step(x, fake, margin)
        t.loss.backward()
        return [p.grad.clone() for p in model.discriminator.parameters()], t

    model.zero_grad()
    model(x).mean().backward()
    real_only = [p.grad.clone() for p in model.discriminator.parameters()]
    dead, t = grads(margin=0.0)  # every D(G(z)) ≥ 0 = m: the hinge is flat
    assert t.above_margin == 1.0
    assert all(torch.equal(a, b) for a, b in zip(dead, real_only, strict=True))
    live, t = grads(margin=10.0)  # every fake below the margin: D is pushed to raise their energy
    assert t.above_margin == 0.0
    assert any(not torch.allclose(a, b) for a, b in zip(live, real_only, strict=True))
    assert model.generator.fc[0].weight.grad is None  # the D step never reaches G


def test_snapshots_stay_evenly_spread_and_survive_a_checkpoint(tmp_path):
    model = EBGAN(EBGANConfig(width=8, hidden=16, code=8, n_snapshots=4, snapshot_size=2))
    offered = []
    for it in range(0, 800, 50):  # the trainer offers samples every 50 iterations
        if model.snapshot_due(it):
            offered.append(it)
            model.record_snapshot(it, torch.full((2, 1, 28, 28), it / 1000))
    iters, images = model.snapshots()
    assert iters.tolist() == [0, 200, 400, 600]  # thinned twice: stride 50 → 100 → 200
    assert images.shape == (4, 2, 1, 28, 28) and images.dtype.name == "uint8"
    assert images[1].mean() > images[0].mean()  # the frames moved with their iterations
    loaded = checkpoints.load(checkpoints.save(model, tmp_path / "e.safetensors", {}))
    assert loaded.snapshots()[0].tolist() == [0, 200, 400, 600]
