"""The phase map: each cell runs its own (s, σ) whichever batch it shares, and each verdict comes from what the chains
did, on energies whose behaviour is known in closed form."""

import math

import numpy as np
import pytest
import torch

from ebmviz.analysis.phase_map import PhaseSpec, log_grid, phase_map, verdict
from ebmviz.sampling import LangevinConfig

FREE = LangevinConfig(grad_clip=None, clamp=None)  # no clip, no box: the closed forms below hold


def quadratic(x: torch.Tensor) -> torch.Tensor:
    """E = ‖x‖²/2: ULA without noise is x_t = (1 − s)^t x_0."""
    return 0.5 * (x**2).flatten(1).sum(1)


def run(energy, spec, x0, **kwargs):
    return [c for batch in phase_map(energy, x0, spec, 0, **kwargs) for c in batch]


def test_log_grid_and_its_errors():
    assert log_grid(0.1, 100, 4) == (0.1, 1.0, 10.0, 100.0)
    for bad in ((1, 1, 3), (0, 1, 3), (1, 2, 1)):
        with pytest.raises(ValueError, match="grid"):
            log_grid(*bad)


@pytest.mark.parametrize("batch_chains", [3, 9, 100])
def test_every_cell_runs_its_own_step_size_in_any_batch(batch_chains):
    x0 = torch.rand(3, 1, 4, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(0)) * 2 - 1
    spec = PhaseSpec(FREE, (0.01, 0.1, 0.5), (1e-12, 2e-12), n_chains=3, n_steps=10, batch_chains=batch_chains)
    cells = run(quadratic, spec, x0)
    assert sorted((c.i, c.j) for c in cells) == sorted(spec.cells)
    rms0 = float(x0.pow(2).mean().sqrt())
    for c in cells:
        # x_T − x_0 = ((1 − s)^T − 1) x_0, so the RMS change is |(1 − s)^T − 1| · RMS(x_0) (σ ~ 1e-12 adds nothing)
        assert c.moved == pytest.approx(abs((1 - c.step_size) ** 10 - 1) * rms0, rel=1e-6)
        assert c.energy_end == pytest.approx(c.energy_start * (1 - c.step_size) ** 20, rel=1e-4)


def test_verdicts_from_what_the_chains_did():
    x0 = torch.rand(8, 1, 6, 6, generator=torch.Generator().manual_seed(1)) * 1.6 - 0.8
    # s = 3 on E = ‖x‖²/2 multiplies x by −2 per step: it overflows to inf in ~130 steps; s = 1e-4 barely moves
    spec = PhaseSpec(FREE, (1e-4, 3.0), (1e-6, 1e-5), n_chains=8, n_steps=200)
    by = {(c.i, c.j): c for c in run(quadratic, spec, x0)}
    assert by[1, 0].verdict == "diverged" and by[1, 0].diverged == 1.0
    assert by[0, 0].verdict == "stalled" and by[0, 0].moved < 0.01
    # a linear energy E = −Σx pushes every pixel to the +1 wall of the box: saturated against images with none there
    boxed = PhaseSpec(LangevinConfig(grad_clip=None), (0.05, 1e-4), (1e-3, 2e-3), n_chains=8, n_steps=100)
    cells = run(lambda x: -x.flatten(1).sum(1), boxed, x0, reference=0.0)
    pushed = [c for c in cells if c.i == 0]
    assert all(c.verdict == "saturated" and c.saturation == 1.0 for c in pushed)


def test_a_gaussian_at_temperature_one_is_mixing_and_a_slow_descent_is_travelling():
    x0 = torch.randn(16, 1, 2, 2, generator=torch.Generator().manual_seed(2)) * 0.5
    # T = σ²/(2s) = 1 at s = 0.2: ULA on N(0, I) forgets its start in a few dozen steps (contraction 1 − s per
    # step); at s = 0.01 and σ ≈ 0 each chain still shrinks by (0.99)^t from its own start: R-hat far above 1
    spec = PhaseSpec(FREE, (0.01, 0.2), (1e-6, math.sqrt(0.4)), n_chains=16, n_steps=400)
    by = {(c.i, c.j): c for c in run(quadratic, spec, x0)}
    hot = by[1, 1]
    assert hot.verdict == "mixing" and hot.rhat < 1.1 and hot.ess >= 16
    slow = by[0, 0]
    assert slow.verdict == "travelling" and slow.rhat > 1.1 and slow.moved > 0.05


def test_verdict_order_and_the_saturation_reference():
    args = dict(moved=0.5, rhat=1.0, ess=100.0, chains=16)
    assert verdict(0.1, 1.0, 0.0, **args) == "diverged"
    # MNIST-like reference: 83% of pixels at the walls already; saturated from 83% + ½·17% = 91.5% on
    assert verdict(0.0, 0.90, 0.83, **args) == "mixing"
    assert verdict(0.0, 0.92, 0.83, **args) == "saturated"
    assert verdict(0.0, 0.2, 0.0, moved=0.01, rhat=1.0, ess=100.0, chains=16) == "stalled"
    assert verdict(0.0, 0.2, 0.0, moved=0.5, rhat=1.5, ess=100.0, chains=16) == "travelling"
    assert verdict(0.0, 0.2, 0.0, moved=0.5, rhat=1.05, ess=3.0, chains=16) == "travelling"


def test_the_judge_and_diversity_see_each_cells_final_images():
    x0 = torch.rand(4, 1, 8, 8, generator=torch.Generator().manual_seed(3)) * 2 - 1
    spec = PhaseSpec(LangevinConfig(grad_clip=None), (1e-4, 0.5), (1e-6, 2e-6), n_chains=4, n_steps=60)
    seen = []
    cells = run(quadratic, spec, x0, judge=lambda u8: seen.append(u8.copy()) or float(u8.mean()) / 255)
    assert len(seen) == 4 and all(s.shape == (4, 1, 8, 8) and s.dtype == np.uint8 for s in seen)
    sunk = next(c for c in cells if c.i == 1)  # s = 0.5: every chain sinks to x = 0, the same grey image
    assert sunk.diversity < 0.01 and sunk.duplicates == 3
    kept = next(c for c in cells if c.i == 0)  # s = 1e-4: the four distinct starts stay apart
    assert kept.diversity > 0.1 and kept.duplicates == 0
    assert sunk.quality == pytest.approx(float(sunk.images.mean()) / 255)
