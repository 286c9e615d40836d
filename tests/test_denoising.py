"""Denoising-EBM: the energies as the paper writes them, the two-stage hand-off, bad settings, annealed Langevin
against an exact Gaussian answer, a short training run that separates digits from noise, and the trainer."""

import math
from dataclasses import replace

import numpy as np
import pytest
import torch

from ebmviz import checkpoints
from ebmviz.data import load_dataset
from ebmviz.images import to_u8
from ebmviz.models.denoising import DenoisingConfig, DenoisingEBM, TwoStageConfig, texture_only, two_stage
from ebmviz.sampling import annealed_langevin
from training.__main__ import main as training_main

TINY = DenoisingConfig(nz=4, width=4, hidden=16)
FAST = TwoStageConfig(sigma=0.2, k_steps=3, t_steps=4, record_every=1)


def _model(seed: int = 0) -> DenoisingEBM:
    torch.manual_seed(seed)
    return DenoisingEBM(TINY).eval()


def test_energies_are_eqs_7_and_8_on_fixed_tensors():
    model = _model()
    g = torch.Generator().manual_seed(1)
    x = torch.rand(3, 1, 28, 28, generator=g) * 2 - 1
    eps = torch.randn(3, 1, 28, 28, generator=g)
    sigma = 0.3
    with torch.no_grad():
        # r(x̃, σ) = g_β(f_α(x̃, σ)) assembled by hand from the U-net's halves
        x_tilde = x + sigma * eps
        emb = model.dae.sigma_embedding(torch.full((3,), sigma))
        z, skips = model.dae.encode(x_tilde, emb)
        eps_hat = model.dae.decode(z, skips, emb)
        r = x_tilde - sigma * eps_hat
        u_c = ((x - r) ** 2).flatten(1).sum(1) / (2 * sigma**2)  # eq. 7
        torch.testing.assert_close(model.texture_energy(x, sigma, eps), u_c)
        torch.testing.assert_close(u_c, 0.5 * ((eps_hat - eps) ** 2).flatten(1).sum(1), rtol=1e-4, atol=1e-4)
        torch.testing.assert_close(model.energy_map(x, sigma, eps).flatten(1).sum(1), u_c)  # the vector output
        torch.testing.assert_close(model.encode(x_tilde, sigma), z)
        # eq. 8: the texture energy of h(z) with h̃ = h + σε
        w = torch.randn(3, TINY.nz, generator=g)
        h = model.decode(w)
        r_h = model.denoise(h + sigma * eps, sigma)
        u_s = ((h - r_h) ** 2).flatten(1).sum(1) / (2 * sigma**2)
        torch.testing.assert_close(model.semantic_energy(w, sigma, eps), u_s)
        # model(x) is U_c at σ₀ with the stored ε: a function of x
        torch.testing.assert_close(model(x), model.texture_energy(x, TINY.sigma, model.eps.expand_as(x)))
        assert torch.equal(model(x), model(x))
        # σ per image: each row as if alone
        s = torch.tensor([0.05, 0.3, 1.0])
        rows = torch.cat([model.texture_energy(x[i:i + 1], float(s[i]), eps[i:i + 1]) for i in range(3)])
        torch.testing.assert_close(model.texture_energy(x, s, eps), rows, rtol=1e-5, atol=1e-4)


def test_code_uniformity_is_lowest_for_codes_spread_over_the_sphere():
    from ebmviz.models.denoising import code_uniformity

    opposite = torch.tensor([[3.0, 0.0], [-1.0, 0.0]])  # directions e1 and −e1: ‖u_i − u_j‖² = 4
    assert float(code_uniformity(opposite)) == pytest.approx(-8.0)
    spread = torch.eye(4)  # orthogonal: every ‖u_i − u_j‖² = 2
    assert float(code_uniformity(spread)) == pytest.approx(-4.0)
    clustered = torch.tensor([[1.0, 0.0], [1.0, 0.1], [1.0, -0.1], [1.0, 0.05]])
    assert float(code_uniformity(clustered)) > float(code_uniformity(spread)) > float(code_uniformity(opposite))


def test_eq_13_reaches_the_encoder_only_in_code_losses_and_projected_codes_decode_from_the_sphere():
    model = DenoisingEBM(replace(TINY, project_codes=True))
    g = torch.Generator().manual_seed(2)
    x, eps, sigma = torch.rand(4, 1, 28, 28, generator=g) * 2 - 1, torch.randn(4, 1, 28, 28, generator=g), \
        torch.full((4,), 0.3)
    for train_encoder in (False, True):
        model.zero_grad(set_to_none=True)
        if train_encoder:
            rec, uni = model.code_losses(x, sigma, eps)
            torch.testing.assert_close(rec, model.decoder_loss(x, sigma, eps))  # the same eq. 13 value
            assert float(uni.detach()) <= 0.0
            (rec + uni).backward()
        else:
            model.decoder_loss(x, sigma, eps).backward()
        reached = [p.grad is not None and p.grad.abs().sum() > 0 for p in model.dae.parameters()]
        assert any(reached) == train_encoder
        assert all(p.grad is not None for p in model.decoder.parameters())
    z = torch.randn(5, TINY.nz, generator=g)
    with torch.no_grad():
        on_sphere = torch.nn.functional.layer_norm(z, (TINY.nz,))
        torch.testing.assert_close(model.decode(z), model.decoder(on_sphere))
        torch.testing.assert_close(model.decode(3 * z + 1), model.decode(z), atol=1e-5, rtol=1e-4)
    plain = _model()  # the shipped kind of model (project_codes off) decodes z as it is
    with torch.no_grad():
        torch.testing.assert_close(plain.decode(z), plain.decoder(z))


def test_the_ladder_is_geometric_from_one_to_a_hundredth():
    s = DenoisingEBM(TINY).sigmas()
    assert len(s) == 128 and math.isclose(s[0].item(), 1.0) and math.isclose(s[-1].item(), 0.01, rel_tol=1e-5)
    ratios = s[1:] / s[:-1]
    torch.testing.assert_close(ratios, torch.full_like(ratios, ratios[0].item()))


def test_two_stages_hand_off_and_repeat_per_seed():
    model = _model()
    a = two_stage(model, 5, seed=3, config=FAST)
    sem, tex = a.semantic, a.texture
    assert sem.frames.shape == (FAST.k_steps + 1, 5, 1, 28, 28) and sem.frames.dtype == np.uint8
    assert a.latents.shape == (FAST.k_steps + 1, 5, TINY.nz) and sem.energy.shape == (FAST.k_steps + 1, 5)
    assert tex.frames.shape == (FAST.t_steps + 1, 5, 1, 28, 28) and tex.energy.shape == (FAST.t_steps + 1, 5)
    with torch.no_grad():
        h_zk = model.decode(torch.from_numpy(a.latents[-1])).numpy()
    np.testing.assert_allclose(sem.final, h_zk, atol=1e-6)  # x⁰ = h(z_K)
    np.testing.assert_array_equal(tex.frames[0], to_u8(torch.from_numpy(h_zk)).numpy())  # the texture stage's start
    np.testing.assert_array_equal(sem.frames[0], to_u8(model.decode(model.latents(5, 3)).detach()).numpy())
    assert a.final.shape == (5, 1, 28, 28) and a.grad_evals == FAST.k_steps + FAST.t_steps
    b = two_stage(model, 5, seed=3, config=FAST)
    np.testing.assert_array_equal(a.final, b.final)
    np.testing.assert_array_equal(a.latents, b.latents)
    assert not np.array_equal(two_stage(model, 5, seed=4, config=FAST).final, a.final)
    only = texture_only(model, 5, seed=3, config=FAST)
    assert only.frames.shape == tex.frames.shape and only.grad_evals == FAST.t_steps
    np.testing.assert_array_equal(only.final, texture_only(model, 5, seed=3, config=FAST).final)


@pytest.mark.parametrize(("change", "message"), [
    ({"sigma": 3.0}, "outside the trained noise ladder"),
    ({"sigma": 0.001, "sigma_end": 0.001}, "outside the trained noise ladder"),
    ({"k_steps": 0}, "K must be at least 1"),
    ({"texture_step": 50.0}, "overshoots"),
    ({"latent_step": 1e4}, "η₁ must be in"),
    ({"sigma_end": 0.5}, "at most σ"),
    ({"t_steps": -1}, "T must be"),
])
def test_bad_settings_are_a_readable_error(change, message):
    model = _model()
    cfg = TwoStageConfig(**{**FAST.to_dict(), **change})
    with pytest.raises(ValueError, match=message):
        model.draw(2, 0, cfg)
    with pytest.raises(ValueError, match=message):
        texture_only(model, 2, 0, cfg)


def test_annealed_langevin_reaches_the_exact_gaussian_variance():
    """E(x, σ) = ‖x‖²/(2σ²): η = εσ² gives the ULA chain x' = (1−ε)x + √(2εσ²)ξ, whose stationary variance is
    exactly σ²/(1 − ε/2); annealing from 1 to σ ends there too (the last levels are held long enough)."""
    eps_step, sigma = 0.2, 0.3
    x0 = torch.randn(4000, 2, generator=torch.Generator().manual_seed(0)) * 3

    def energy(x, s):
        return (x**2).sum(1) / (2 * s**2)

    exact = sigma**2 / (1 - eps_step / 2)
    flat = annealed_langevin(energy, x0, [sigma] * 150, eps_step, seed=1, clamp=None, record_every=50)
    annealed = annealed_langevin(energy, x0, list(np.geomspace(1.0, sigma, 50)) + [sigma] * 100, eps_step, seed=2,
                                 clamp=None, record_every=50)
    for run in (flat, annealed):
        var = run.final.var(axis=0)  # (2,) per coordinate, 4,000 chains: relative standard error ≈ 2.2%
        np.testing.assert_allclose(var, exact, rtol=0.08)
        assert run.n_diverged == 0 and run.grad_evals == 150 and run.frame_steps.tolist() == [0, 50, 100, 150]
        np.testing.assert_allclose(run.energy[-1], energy(torch.from_numpy(run.final), sigma).numpy(), rtol=1e-5)
    with pytest.raises(ValueError, match="step must be positive"):
        annealed_langevin(energy, x0, [sigma], 0.0)


def test_a_diverging_annealed_chain_is_stopped_and_reported():
    def energy(x, s):  # a slope −x/s² that pushes chains up, and undefined (NaN) once they pass x = 1
        e = -x.sum(1) / s**2
        return torch.where(x.sum(1) < 1, e, torch.full_like(e, float("nan")))

    x0 = torch.tensor([[0.0], [0.5]])
    run = annealed_langevin(energy, x0, [1.0] * 20, 1.0, seed=0, clamp=None)
    assert run.n_diverged == 2 and (run.diverged_at > 0).all() and np.isfinite(run.final).all()
    kept = annealed_langevin(energy, x0, [1.0] * 20, 1.0, seed=0, clamp=(-1.0, 0.9))  # the box keeps x below 1
    assert kept.n_diverged == 0


@pytest.mark.slow
def test_a_short_training_gives_digits_a_lower_texture_energy_than_noise():
    from training.denoising import reconstruction_update

    torch.manual_seed(0)
    model = DenoisingEBM(DenoisingConfig(nz=8, width=8, hidden=32))
    opts = {"dae": torch.optim.Adam(model.dae.parameters(), 1e-3),
            "decoder": torch.optim.Adam(model.decoder.parameters(), 1e-3)}
    digits, _ = load_dataset("mnist", "train")
    g = torch.Generator().manual_seed(0)
    ladder = model.sigmas()
    for _ in range(150):
        x = digits[torch.randint(len(digits), (32,), generator=g)]
        sigma = ladder[torch.randint(len(ladder), (32,), generator=g)]
        reconstruction_update(model, opts, x, sigma, torch.randn(x.shape, generator=g))
    model.eval()
    test, _ = load_dataset("mnist", "test")
    noise = torch.rand(200, 1, 28, 28, generator=g) * 2 - 1
    with torch.no_grad():
        e_digits, e_noise = model(test[:200]), model(noise)
    assert e_digits.median() < e_noise.median()
    assert (e_digits[:, None] < e_noise[None, :]).float().mean() > 0.9  # AUROC of −U_c above 0.9


@pytest.mark.slow
def test_trainer_smoke_writes_a_checkpoint_that_draws(tmp_path):
    out = tmp_path / "dn.safetensors"
    flags = ["--out", str(out), "--run-dir", str(tmp_path / "run"), "--rounds", "4", "--recon-steps", "2",
             "--batch-size", "16", "--chains", "4", "--k-steps", "2", "--t-steps", "2", "--nz", "4", "--width", "4",
             "--hidden", "16", "--minutes", "0", "--log-every", "1", "--sample-every", "2"]
    assert training_main(["denoising", *flags]) == 0
    model = checkpoints.load(out)
    assert model.meta["iterations"] == 4 and len(model.meta["history"]) == 4
    row = model.meta["history"][-1]
    assert {"dae_loss", "decoder_loss", "uniformity", "us_data", "us_fake", "uc_data", "uc_fake"} <= set(row)
    assert row["decoder_loss"] >= 0  # eq. 13 alone, a squared error (the uniformity term is logged apart)
    assert all(math.isfinite(v) for v in row.values())
    assert model.draw_config() == TwoStageConfig.from_dict(model.meta["two_stage"])
    assert model.draw(2, seed=0, config=FAST).final.shape == (2, 1, 28, 28)
    assert (tmp_path / "run" / "samples_000002.png").exists()
    # the two-stage settings it ships can be changed afterwards, with the change recorded
    assert training_main(["sampler-defaults", str(out), "--key", "two_stage", "--sigma", "0.2", "--t-steps", "7",
                          "--reason", "test"]) == 0
    changed = checkpoints.load(out)
    assert changed.draw_config() == replace(model.draw_config(), sigma=0.2, t_steps=7)
    assert changed.meta["two_stage_history"][-1]["reason"] == "test"
    with pytest.raises(SystemExit):
        training_main(["sampler-defaults", str(out), "--key", "cascade"])
    no_ml = ["--no-ml", "--no-codes", "--rounds", "2", "--out", str(tmp_path / "b.safetensors")]  # later flags win
    assert training_main(["denoising", *flags, *no_ml]) == 0
    assert "us_fake" not in checkpoints.load(tmp_path / "b.safetensors").meta["history"][-1]
