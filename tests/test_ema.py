"""The weight average of ``training.ema``: the recursion, the swap in and out, and its place in a run's files."""

import pytest
import torch
from safetensors import safe_open

from ebmviz import checkpoints
from training.__main__ import main as training_main
from training.ema import Ema


def test_average_follows_the_recursion_and_is_swapped_in_and_out():
    lin = torch.nn.Linear(2, 1)
    with torch.no_grad():
        lin.weight.fill_(0.0)
        lin.bias.fill_(0.0)
    ema = Ema(lin, 0.5)
    expected = 0.0
    for value in (4.0, 8.0, -2.0):
        with torch.no_grad():
            lin.weight.fill_(value)
        ema.update()
        expected = 0.5 * expected + 0.5 * value  # θ̄ ← d·θ̄ + (1 − d)·θ
    assert expected == 1.5  # 0 → 2 → 5 → 1.5
    torch.testing.assert_close(ema.average["weight"], torch.full((1, 2), expected))
    with ema.applied():
        torch.testing.assert_close(lin.weight.detach(), torch.full((1, 2), expected))
    torch.testing.assert_close(lin.weight.detach(), torch.full((1, 2), -2.0))  # θ is back
    copy = Ema(lin, 0.5)
    copy.load(ema.tensors())
    torch.testing.assert_close(copy.average["weight"], ema.average["weight"])


def test_decay_zero_is_off_and_bad_decays_are_refused():
    lin = torch.nn.Linear(2, 1)
    ema = Ema(lin, 0.0)
    before = lin.weight.detach().clone()
    ema.update()
    with ema.applied():
        torch.testing.assert_close(lin.weight.detach(), before)
    assert ema.tensors() == {}
    for bad in (1.0, -0.1, 2.0):
        with pytest.raises(ValueError, match="decay must be in"):
            Ema(lin, bad)


def test_a_state_without_averages_starts_them_from_the_weights():
    lin = torch.nn.Linear(2, 1)
    ema = Ema(lin, 0.9)
    with torch.no_grad():
        lin.weight.add_(1.0)
    ema.load({})
    torch.testing.assert_close(ema.average["weight"], lin.weight.detach())
    with pytest.raises(ValueError, match="do not match"):
        ema.load({"ema.other": torch.zeros(1)})


CASCADE = ["--minutes", "0", "--stage-iterations", "3,4,4", "--transition-iterations", "0,2,4", "--k-steps", "2,2,2",
           "--batch-size", "8", "--channels", "4,4,4"]  # a tiny coarse-to-fine run


def state_tensors(run_dir, prefix: str) -> dict[str, torch.Tensor]:
    """The tensors of run_dir's resumable state whose names start with ``prefix``, the prefix dropped."""
    with safe_open(str(run_dir / "state.safetensors"), framework="pt") as f:
        return {k[len(prefix):]: f.get_tensor(k) for k in f.keys() if k.startswith(prefix)}  # noqa: SIM118


def cascade_run(tmp_path, name: str, decay: str) -> tuple:
    """A tiny coarse-to-fine run with --ema: (its checkpoint, θ of its state, θ̄ of its state)."""
    out, run_dir = tmp_path / f"{name}.safetensors", tmp_path / name
    assert training_main(["coarse_to_fine", "--out", str(out), "--run-dir", str(run_dir), *CASCADE,
                          "--ema", decay]) == 0
    return checkpoints.load(out), state_tensors(run_dir, "model."), state_tensors(run_dir, "extra.ema.")


@pytest.mark.slow
def test_the_checkpoint_holds_the_average_and_the_state_the_trained_weights(tmp_path):
    model, trained, average = cascade_run(tmp_path, "half", "0.5")
    assert model.meta["weights"].endswith("decay 0.5")
    params = dict(model.named_parameters())
    assert average.keys() == params.keys()
    for name, p in params.items():
        torch.testing.assert_close(p.detach(), average[name], rtol=0, atol=0)
    assert any(not torch.equal(average[n], trained[n]) for n in params)  # θ̄ is not θ after a few updates
    # the snapshots are taken with θ̄ in place: the last (the end of the 28-px stage) is the checkpoint's weights,
    # and the end of the 7-px stage and β = 0 of the 14-px stage (no update between them) are the same weights
    snaps = model.snapshots()
    torch.testing.assert_close(model.snapshot_params[snaps[-1].index], model._param_vector(), rtol=0, atol=0)
    end0, start1 = snaps[0], snaps[1]
    assert (end0.stage, start1.stage, start1.beta) == (0, 1, 0.0)
    torch.testing.assert_close(model.snapshot_params[end0.index], model.snapshot_params[start1.index], rtol=0, atol=0)


@pytest.mark.slow
def test_the_average_takes_in_each_update_after_it_is_made(tmp_path):
    """With a decay of 10⁻⁶, θ̄ is the last θ to within 10⁻⁶ of a step: the average was updated after the last
    optimiser step, not before it."""
    model, trained, _ = cascade_run(tmp_path, "tiny", "1e-6")
    for name, p in model.named_parameters():
        torch.testing.assert_close(p.detach(), trained[name], rtol=0, atol=1e-6, msg=name)


@pytest.mark.slow
def test_a_run_resumed_with_an_average_its_state_lacked_starts_it_from_the_resumed_weights(tmp_path, monkeypatch,
                                                                                          capsys):
    from training.run import Run

    flags = ["coarse_to_fine", "--out", str(tmp_path / "cf.safetensors"), "--run-dir", str(tmp_path / "run"),
             *CASCADE, "--checkpoint-every", "3"]
    checks = iter(range(10**6))
    with monkeypatch.context() as m:  # stopped by its budget at the 5th check, without an average
        m.setattr(Run, "out_of_time", lambda self: next(checks) >= 5)
        assert training_main(flags) == 0
    assert "weights" not in checkpoints.load(tmp_path / "cf.safetensors").meta
    assert training_main([*flags, "--resume", "--ema", "0.5"]) == 0
    assert "the state's run kept no weight average; this run goes on with a weight average with decay 0.5" in (
        capsys.readouterr().out)
    model = checkpoints.load(tmp_path / "cf.safetensors")
    assert model.meta["weights"].endswith("decay 0.5") and model.meta["iterations"] == 11
    trained = state_tensors(tmp_path / "run", "model.")
    assert any(not torch.equal(p.detach(), trained[n]) for n, p in model.named_parameters())
