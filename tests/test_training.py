"""Training smoke runs: a few steps, a checkpoint that loads back and samples; resume after a stop."""

import pytest
import torch

from ebmviz import checkpoints
from ebmviz.models.ebgan import EBGAN, EBGANConfig
from ebmviz.models.triangle import REFINEMENT
from ebmviz.sampling import LangevinConfig, langevin
from ebmviz.transforms import translate
from training.__main__ import main as training_main
from training.ebgan import update

pytestmark = pytest.mark.slow


def test_shortrun_smoke_and_resume(tmp_path):
    out, run_dir = tmp_path / "sr.safetensors", tmp_path / "run"
    flags = ["--out", str(out), "--run-dir", str(run_dir), "--width", "8", "--hidden", "8",
             "--k-steps", "3", "--batch-size", "8", "--buffer-size", "32", "--minutes", "0",
             "--checkpoint-every", "2", "--sample-every", "2", "--log-every", "1", "--app-steps", "5"]
    assert training_main(["shortrun", *flags, "--iterations", "4"]) == 0
    model = checkpoints.load(out)
    assert model.meta["iterations"] >= 3 and len(model.meta["history"]) >= 3
    assert "python -m training" in model.meta["command"] and model.meta["wall_time_s"] >= 0
    cfg = LangevinConfig.from_dict(model.meta["sampler"])
    tr = langevin(model, torch.rand(2, 1, 28, 28) * 2 - 1, cfg)
    assert tr.final.shape == (2, 1, 28, 28) and tr.n_diverged == 0
    assert model.replay_samples(3) is not None and (run_dir / "buffer_000000.png").exists()
    # a stopped run continues where its state file left it
    assert training_main(["shortrun", *flags, "--iterations", "7", "--resume", "--keep"]) == 0
    resumed = checkpoints.load(out)
    assert resumed.meta["iterations"] >= 6
    kept = sorted(p.name for p in run_dir.glob("checkpoint_*.safetensors"))  # --keep: one file per period
    assert kept == ["checkpoint_000005.safetensors", "checkpoint_000007.safetensors"], kept
    assert checkpoints.load(run_dir / kept[0]).meta["iterations"] == 5
    assert resumed.meta["history"][0] == model.meta["history"][0]
    # the app's sampler defaults can be changed afterwards, with the change recorded
    assert training_main(["sampler-defaults", str(out), "--n-steps", "9", "--reason", "test"]) == 0
    retuned = checkpoints.load(out)
    assert retuned.meta["sampler"]["n_steps"] == 9 and retuned.meta["sampler_history"][0]["reason"] == "test"
    torch.testing.assert_close(retuned(torch.zeros(1, 1, 28, 28)), resumed(torch.zeros(1, 1, 28, 28)))
    assert training_main(["sampler-defaults", str(out), "--clamp=-0.5,0.5"]) == 0
    assert checkpoints.load(out).meta["sampler"]["clamp"] == [-0.5, 0.5]
    with pytest.raises(SystemExit):
        training_main(["sampler-defaults", str(out), "--clamp=wide"])


def test_shortrun_from_a_checkpoint_with_negative_augmentation(tmp_path):
    base = tmp_path / "base.safetensors"
    small = ["--width", "8", "--hidden", "8", "--k-steps", "2", "--batch-size", "8", "--buffer-size", "32",
             "--minutes", "0", "--log-every", "1", "--app-steps", "5"]
    assert training_main(["shortrun", *small, "--iterations", "1", "--out", str(base),
                          "--run-dir", str(tmp_path / "a")]) == 0
    out = tmp_path / "nda.safetensors"
    flags = [*small, "--init", str(base), "--nda", "hflip,dim", "--nda-margin", "5", "--lr", "0",
             "--out", str(out), "--run-dir", str(tmp_path / "b")]
    assert training_main(["shortrun", *flags, "--iterations", "2"]) == 0
    model, start = checkpoints.load(out), checkpoints.load(base)
    x = torch.rand(3, 1, 28, 28) * 2 - 1
    torch.testing.assert_close(model(x), start(x))  # lr 0: the weights are the --init checkpoint's
    hinge = [r["nda_hinge"] for r in model.meta["history"]]
    assert all(h > 0 for h in hinge)  # a margin of 5 is not met by an untrained net: the hinge is active
    with pytest.raises(ValueError, match="unknown mirror"):
        training_main(["shortrun", *flags, "--nda", "mirror", "--iterations", "1"])


def test_denoising_from_a_checkpoint(tmp_path):
    base, out = tmp_path / "base.safetensors", tmp_path / "fine.safetensors"
    small = [*TINY["denoising"], "--minutes", "0", "--log-every", "1", "--sample-every", "1000", "--rounds", "1"]
    assert training_main(["denoising", *small, "--out", str(base), "--run-dir", str(tmp_path / "a")]) == 0
    flags = [*small, "--init", str(base), "--lr", "0", "--latent-ml-weight", "1", "--out", str(out),
             "--run-dir", str(tmp_path / "b")]
    assert training_main(["denoising", *flags]) == 0
    for (name, x), y in zip(checkpoints.load(base).state_dict().items(), checkpoints.load(out).state_dict().values(),
                            strict=True):
        torch.testing.assert_close(x, y, rtol=0, atol=0, msg=name)  # lr 0: the weights are the --init checkpoint's
    assert checkpoints.load(out).meta["train_config"]["latent_ml_weight"] == 1
    with pytest.raises(ValueError, match="not a Denoising-EBM with --nz 8"):
        training_main(["denoising", *flags, "--nz", "8"])


def test_evaluator_smoke(tmp_path):
    out = tmp_path / "ev.safetensors"
    assert training_main(["evaluator", "--out", str(out), "--run-dir", str(tmp_path / "run"), "--epochs", "1",
                          "--width", "4"]) == 0
    model = checkpoints.load(out)
    assert set(model.meta["metrics"]) >= {"accuracy", "confident_share", "junk_confident_share"}
    assert model(torch.zeros(2, 1, 28, 28)).shape == (2, 11)


def test_unknown_method_is_a_usage_message(capsys):
    assert training_main(["nonsense"]) == 2
    assert "usage" in capsys.readouterr().err


def test_coarse_to_fine_smoke_through_two_stages(tmp_path):
    """Two grown stages in a few updates; the β = 0 snapshot right after each expansion has the
    previous stage's energy on pooled images (the paper's smooth architecture change)."""
    from ebmviz.models.coarse_to_fine import pool, sample_cascade

    out = tmp_path / "cf.safetensors"
    assert training_main(["coarse_to_fine", "--out", str(out), "--run-dir", str(tmp_path / "run"),
                          "--stage-iterations", "3,4,4", "--transition-iterations", "0,2,4",
                          "--k-steps", "2,2,2", "--batch-size", "8", "--channels", "4,4,4",
                          "--sample-every", "2", "--log-every", "1", "--minutes", "0"]) == 0
    model = checkpoints.load(out)
    assert (model.stage, model.beta) == (2, 1.0)
    snaps = model.snapshots()
    assert [(s.stage, s.beta) for s in snaps] == [
        (0, 1.0), (1, 0.0), (1, 0.5), (1, 1.0), (1, 1.0),
        (2, 0.0), (2, 0.25), (2, 0.5), (2, 0.75), (2, 1.0)]
    x = torch.rand(5, 1, 28, 28) * 2 - 1
    for stage in (1, 2):
        before = model.snapshot_model(max(s.index for s in snaps if s.stage == stage - 1))
        after = model.snapshot_model(min(s.index for s in snaps if s.stage == stage))
        xs = pool(x) if stage == 1 else x
        torch.testing.assert_close(after(xs), before.energy(pool(xs), stage - 1), rtol=1e-5, atol=1e-5)
    assert len(model.meta["history"]) >= 8 and {"stage", "beta", "cd"} <= set(model.meta["history"][0])
    c = sample_cascade(model, 3, seed=0)
    assert c.final.shape == (3, 1, 28, 28) and c.grad_evals == sum(model.meta["cascade"]["steps"])
    # the app's cascade can be changed afterwards, step counts per stage included
    assert training_main(["sampler-defaults", str(out), "--key", "cascade", "--steps", "2,3,4"]) == 0
    retuned = checkpoints.load(out)
    assert retuned.draw_config().steps == (2, 3, 4) and retuned.meta["cascade_history"][0]["previous"]["steps"]


def test_triangle_smoke(tmp_path):
    out = tmp_path / "tri.safetensors"
    assert training_main(["triangle", "--out", str(out), "--run-dir", str(tmp_path / "run"), "--epochs", "1",
                          "--batch-size", "200", "--nz", "4", "--width", "4", "--hidden", "16",
                          "--log-every", "2", "--sample-every", "10", "--minutes", "0",
                          "--checkpoint-every", "10", "--keep"]) == 0
    model = checkpoints.load(out)
    kept = sorted(p.name for p in (tmp_path / "run").glob("checkpoint_*.safetensors"))
    assert kept == ["checkpoint_000010.safetensors", "checkpoint_000020.safetensors"]  # --keep: periodic + final
    assert model.meta["iterations"] == 20  # 4,000 embedded training digits / 200
    row = model.meta["history"][-1]
    assert {"kl_qp", "energy_gap", "sleep_nll", "recon", "mse"} <= set(row)
    assert model.generate(2).shape == (2, 1, 28, 28) and model.reconstruct(model.generate(2)).shape == (2, 1, 28, 28)
    assert model.data_mean.abs().sum() > 0  # the mean image for the fill-with-the-mean baseline
    assert model.meta["sampler"] == REFINEMENT.to_dict()  # the page's refinement default, from the trainer


def test_triangle_learns_from_occluded_images(tmp_path):
    """--occlusion: hidden pixels start at the observed mean and are re-filled by reconstructions during training;
    the recovery error on them is logged and stored, and falls as training goes on."""
    out = tmp_path / "tri.safetensors"
    flags = ["triangle", "--out", str(out), "--run-dir", str(tmp_path / "run"), "--batch-size", "100",
             "--nz", "8", "--width", "8", "--hidden", "32", "--log-every", "5", "--sample-every", "1000",
             "--minutes", "0", "--occlusion", "P.5"]
    assert training_main([*flags, "--epochs", "1"]) == 0
    m1 = checkpoints.load(out).meta["metrics"]
    assert m1["occlusion"] == "P.5" and abs(m1["hidden_share"] - 0.5) < 0.01
    assert training_main([*flags, "--epochs", "3"]) == 0
    m3 = checkpoints.load(out).meta
    assert "recovery_error" in m3["history"][-1]
    assert 0.01 < m3["metrics"]["recovery_error"] < m1["recovery_error"]  # more rounds, lower error, not zero
    with pytest.raises(SystemExit, match="unknown"):
        training_main([*flags, "--occlusion", "P.9"])


def test_ebgan_smoke_with_and_without_pt(tmp_path):
    flags = ["--batch-size", "200", "--epochs", "1", "--nz", "4", "--width", "4", "--hidden", "16", "--code", "4",
             "--log-every", "2", "--sample-every", "5", "--minutes", "0", "--margin", "0.2"]
    for pt in ("--pt", "--no-pt"):
        out = tmp_path / f"{pt}.safetensors"
        assert training_main(["ebgan", pt, "--out", str(out), "--run-dir", str(tmp_path / pt), *flags]) == 0
        model = checkpoints.load(out)
        assert model.meta["iterations"] == 20 and model.meta["pt"] == (pt == "--pt") and model.meta["margin"] == 0.2
        row = model.meta["history"][-1]
        assert {"loss_d", "loss_g", "d_real", "d_fake", "above_margin", "pt"} <= set(row)
        assert 0 <= row["above_margin"] <= 1 and 0 <= row["pt"] <= 1
        assert model.snapshots()[0].tolist() == [0, 5, 10, 15]  # G's samples every --sample-every iterations
        assert model.draw(2, seed=0).final.shape == (2, 1, 28, 28)
    out = tmp_path / "translate.safetensors"  # DiffAugment's translation: recorded, and a different run
    assert training_main(["ebgan", "--translate", "2", "--out", str(out), "--run-dir", str(tmp_path / "t"),
                          *flags]) == 0
    moved, plain = checkpoints.load(out), checkpoints.load(tmp_path / "--pt.safetensors")
    assert moved.meta["translate"] == 2 and plain.meta["translate"] == 0
    assert moved.meta["history"][-1]["loss_d"] != plain.meta["history"][-1]["loss_d"]



def test_ebgan_update_shows_d_the_moved_digits_and_fakes():
    """With --translate, D's step sees translate(x) and translate(G(z)) with the shifts given (learning rate 0, so
    the returned terms are D's energies of exactly those images)."""
    torch.manual_seed(0)
    model = EBGAN(EBGANConfig(width=4, hidden=16, code=4, nz=4)).eval()
    opts = {k: torch.optim.Adam(getattr(model, k).parameters(), lr=0.0) for k in ("discriminator", "generator")}
    x, z = torch.rand(5, 1, 28, 28) * 2 - 1, torch.randn(5, 4)
    shifts = tuple(torch.randint(-2, 3, (5, 2), generator=torch.Generator().manual_seed(i)) for i in range(3))
    d_terms, g_terms, _ = update(model, opts, x, z, 0.1, 0.1, shifts=shifts)
    with torch.no_grad():
        fake = model.generator(z)
        assert torch.allclose(d_terms.d_real, model(translate(x, shifts[0])))
        assert torch.allclose(d_terms.d_fake, model(translate(fake, shifts[1])))
        assert torch.allclose(g_terms.d_fake, model(translate(fake, shifts[2])))
        assert not torch.allclose(d_terms.d_real, model(x))  # the shifts did move the digits

TINY = {  # a few seconds each; the flags every method's smoke run uses
    "shortrun": ["--width", "8", "--hidden", "8", "--k-steps", "3", "--batch-size", "8", "--buffer-size", "32",
                 "--iterations", "8", "--checkpoint-every", "3", "--app-steps", "5"],
    "coarse_to_fine": ["--stage-iterations", "3,4,4", "--transition-iterations", "0,2,4", "--k-steps", "2,2,2",
                       "--batch-size", "8", "--channels", "4,4,4", "--checkpoint-every", "3"],
    "triangle": ["--epochs", "2", "--batch-size", "400", "--nz", "4", "--width", "4", "--hidden", "16",
                 "--checkpoint-every", "3"],
    "ebgan": ["--epochs", "2", "--batch-size", "400", "--nz", "4", "--width", "4", "--hidden", "16", "--code", "4",
              "--checkpoint-every", "3", "--lr-end", "0.1"],
    "denoising": ["--rounds", "8", "--recon-steps", "2", "--batch-size", "16", "--chains", "4", "--k-steps", "2",
                  "--t-steps", "2", "--nz", "4", "--width", "4", "--hidden", "16", "--checkpoint-every", "3"],
    "evaluator": ["--epochs", "2", "--batch-size", "400", "--width", "4", "--checkpoint-every", "3"],
    "frame": ["--flow", "jko", "--n-train", "5", "--iterations", "8", "--n-particles", "4", "--batch-size", "4",
              "--k-steps", "2", "--width", "4", "--hidden", "8", "--checkpoint-every", "3"],
}


RESUMED = {**TINY, "coarse_to_fine --ema": [*TINY["coarse_to_fine"], "--ema", "0.6"]}  # θ̄ is resumed too


@pytest.mark.parametrize("case", list(RESUMED))
def test_every_trainer_resumes_where_it_stopped(case, tmp_path, monkeypatch):
    """A run stopped by its time budget mid-way and continued with --resume ends with the same weights and
    the same history as a run that never stopped (weights, optimiser moments, RNGs and position restored)."""
    from training.run import Run

    def flags(name):
        return [case.split()[0], "--out", str(tmp_path / f"{name}.safetensors"), "--run-dir", str(tmp_path / name),
                "--minutes", "0", "--log-every", "1", "--sample-every", "1000", *RESUMED[case]]

    assert training_main(flags("straight")) == 0
    checks = iter(range(10**6))
    with monkeypatch.context() as m:  # the budget runs out at the 5th iteration's check
        m.setattr(Run, "out_of_time", lambda self: next(checks) >= 5)
        assert training_main(flags("stopped")) == 0
    stopped = checkpoints.load(tmp_path / "stopped.safetensors").meta["iterations"]
    assert training_main([*flags("stopped"), "--resume"]) == 0
    a, b = checkpoints.load(tmp_path / "straight.safetensors"), checkpoints.load(tmp_path / "stopped.safetensors")
    assert 0 < stopped < a.meta["iterations"] == b.meta["iterations"]
    for (name, x), y in zip(a.state_dict().items(), b.state_dict().values(), strict=True):
        torch.testing.assert_close(x, y, rtol=0, atol=0, msg=name)
    strip = lambda rows: [{k: v for k, v in r.items() if k != "minutes"} for r in rows]  # noqa: E731
    assert strip(a.meta["history"]) == strip(b.meta["history"])


def test_tuple_flags_are_typed(capsys):
    from training.cli import parse_config
    from training.coarse_to_fine import CoarseToFineTrainConfig

    cfg = parse_config(CoarseToFineTrainConfig, ["--k-steps", "5,6,7", "--channels", "4,4,4"], "cf")
    assert cfg.k_steps == (5, 6, 7) and cfg.channels == (4, 4, 4) and cfg.stage_iterations == (800, 1500, 2000)
    for bad in ("5,6", "5,x,7"):
        with pytest.raises(SystemExit):
            parse_config(CoarseToFineTrainConfig, ["--k-steps", bad], "cf")
        assert "comma-separated ints" in capsys.readouterr().err
