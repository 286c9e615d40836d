"""Trajectory files from any sampler (``ebmviz.sampling.trajectory_file``): every accepted form, ebmviz's own export
read back exactly, a plain PyTorch loop's file, and one bad file per problem, each with its message."""

import io
import zipfile

import numpy as np
import pytest
import torch

from ebmviz import TrajectoryFileError, checkpoints, load_trajectory
from ebmviz.data import load_dataset
from ebmviz.export import npz_bytes, trajectory_arrays
from ebmviz.images import to_u8
from ebmviz.sampling import LangevinConfig, langevin, trajectory_file as tf


def npz(**arrays) -> bytes:
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


def digits(n: int = 4) -> np.ndarray:
    """(n, 1, 28, 28) real MNIST digits in [−1, 1]."""
    return load_dataset("mnist", "test")[0][:n].numpy()


def chains(frames: int = 5, n: int = 4) -> np.ndarray:
    """(F, n, 1, 28, 28) float in [−1, 1]: digits fading from noise (a made-up run, values known exactly)."""
    rng = np.random.default_rng(0)
    noise = rng.uniform(-1, 1, (n, 1, 28, 28))
    w = np.linspace(0, 1, frames)[:, None, None, None, None]
    return ((1 - w) * noise + w * digits(n)).astype(np.float32)


# ---- what loads ----------------------------------------------------------------------------------------------------

def test_uint8_pixels_load_unchanged_and_per_step_arrays_keep_their_values():
    pixels = np.arange(256, dtype=np.uint8).reshape(1, 1, 1, 16, 16).repeat(3, axis=0)  # every value, 3 frames
    rng = np.random.default_rng(1)
    energy, grad, step = rng.normal(size=(9, 1)), rng.random((8, 1)), rng.random((8, 1))
    loaded = load_trajectory(npz(frames=pixels, energy=energy, grad_norm=grad, step_norm=step,
                                 frame_steps=np.array([0, 4, 8])))
    traj = loaded.trajectory
    assert traj.frames.dtype == np.uint8 and np.array_equal(traj.frames, pixels)
    assert loaded.n_steps == 8 and loaded.source_range == (0.0, 255.0) and not loaded.energy_padded
    assert np.array_equal(traj.energy, energy) and np.array_equal(traj.grad_norm, grad)
    assert np.array_equal(traj.step_norm, step) and traj.accept is None
    assert traj.frame_steps.tolist() == [0, 4, 8] and traj.diverged_at.tolist() == [-1]
    assert traj.final.dtype == np.float32 and np.allclose(traj.final, pixels[-1] / 127.5 - 1, atol=1e-6)
    assert any("read as [0, 255]" in n for n in loaded.notes) and any("accept" in n for n in loaded.notes)


def test_float_frames_in_0_1_with_their_range_give_the_same_pixels_as_uint8():
    k = np.arange(256).reshape(1, 1, 16, 16)  # (F=1, B=1, H, W): 4-D grey frames
    loaded = load_trajectory(npz(frames=(k / 255).astype(np.float32), range=np.array([0.0, 1.0])))
    assert loaded.trajectory.frames.shape == (1, 1, 1, 16, 16)
    assert np.array_equal(loaded.trajectory.frames[0, 0, 0], k[0, 0])  # k/255 in [0, 1] is pixel k exactly
    assert loaded.source_range == (0.0, 1.0) and loaded.n_steps == 0


def test_float_frames_default_to_minus_one_one_and_a_positive_file_gets_a_hint():
    x = chains()
    loaded = load_trajectory(npz(frames=x))
    assert np.array_equal(loaded.trajectory.frames, to_u8(x)) and loaded.source_range == (-1.0, 1.0)
    assert loaded.n_steps == 4 and loaded.trajectory.frame_steps.tolist() == [0, 1, 2, 3, 4]
    assert not any("range=[0, 1]" in n for n in loaded.notes)
    hinted = load_trajectory(npz(frames=(x + 1) / 2))
    assert any("add range=[0, 1]" in n for n in hinted.notes)


def test_4d_and_5d_grey_frames_load_alike():
    x = chains()
    four, five = load_trajectory(npz(frames=x[:, :, 0])), load_trajectory(npz(frames=x))
    assert np.array_equal(four.trajectory.frames, five.trajectory.frames)
    assert five.trajectory.frames.shape == (5, 4, 1, 28, 28)


def test_rgb_frames_in_their_own_range():
    rng = np.random.default_rng(2)
    x = rng.uniform(-3, 5, (3, 2, 3, 12, 10))
    loaded = load_trajectory(npz(frames=x, range=np.array([-3, 5])))
    assert loaded.trajectory.frames.shape == (3, 2, 3, 12, 10)
    expected = np.round((x + 3) / 8 * 255).astype(np.uint8)  # [−3, 5] onto 0 … 255 by hand
    assert np.abs(loaded.trajectory.frames.astype(int) - expected).max() <= 1  # float32 rounding at .5 only
    assert (loaded.trajectory.frames == expected).mean() > 0.999


def test_frames_without_steps_spread_evenly_over_the_per_step_arrays():
    loaded = load_trajectory(npz(frames=chains(5), grad_norm=np.ones((8, 4))))
    assert loaded.trajectory.frame_steps.tolist() == [0, 2, 4, 6, 8] and loaded.n_steps == 8
    assert any("evenly spread" in n for n in loaded.notes)


def test_energy_before_each_step_is_padded_with_nan_and_kept_measured():
    energy = np.arange(12.0).reshape(6, 2)  # T = 6 rows: E(x_0) … E(x_5)
    loaded = load_trajectory(npz(frames=chains(4, 2), energy=energy, step_norm=np.ones((6, 2)),
                                 frame_steps=np.array([0, 2, 4, 6])))
    e = loaded.trajectory.energy
    assert loaded.energy_padded and e.shape == (7, 2) and np.isnan(e[-1]).all()
    assert np.array_equal(loaded.measured_energy, energy)
    assert (loaded.trajectory.diverged_at == -1).all()  # the padding is not a divergence


def test_non_finite_per_step_values_mark_the_chain_stopped_at_its_first_one():
    energy, grad = np.zeros((11, 4)), np.ones((10, 4))
    step, accept = np.ones((10, 4)), np.ones((10, 4))
    energy[7, 0], energy[9, 0] = np.nan, np.inf  # chain 0: energy of x_7 → step 7
    grad[3, 1] = np.inf  # chain 1: ‖∇E(x_3)‖ → step 3
    step[4, 2] = np.nan  # chain 2: ‖x_5 − x_4‖ → step 5
    accept[2, 3] = np.nan  # chain 3: the accept of step 3
    loaded = load_trajectory(npz(frames=chains(11), energy=energy, grad_norm=grad, step_norm=step, accept=accept))
    assert loaded.trajectory.diverged_at.tolist() == [7, 3, 5, 3]
    assert any("4 chain(s) hold non-finite" in n and "chain 0 at step 7" in n for n in loaded.notes)
    kept = load_trajectory(npz(frames=chains(11), energy=energy, diverged_at=np.array([6, -1, -1, -1])))
    assert kept.trajectory.diverged_at.tolist() == [6, -1, -1, -1]  # the file's own verdict stands


def test_sources_path_bytes_and_file_object(tmp_path):
    raw = npz(frames=chains())
    path = tmp_path / "chains.npz"
    path.write_bytes(raw)
    with open(path, "rb") as f:
        from_file = load_trajectory(f)
    for loaded in (load_trajectory(path), load_trajectory(str(path)), load_trajectory(raw), from_file):
        assert loaded.trajectory.frames.shape == (5, 4, 1, 28, 28)


def test_ebmviz_own_export_reads_back_exactly():
    torch.manual_seed(0)
    model = checkpoints.load("shortrun-mnist")
    cfg = LangevinConfig.from_dict({**model.meta["sampler"], "n_steps": 6, "record_every": 2})
    run = langevin(model, torch.rand(4, 1, 28, 28) * 2 - 1, cfg, seed=3)
    loaded = load_trajectory(npz_bytes(trajectory_arrays(run), meta={"model": "shortrun-mnist", "seed": 3}))
    traj = loaded.trajectory
    assert np.array_equal(traj.frames, run.frames) and np.array_equal(traj.frame_steps, run.frame_steps)
    for name in ("final", "energy", "grad_norm", "step_norm", "diverged_at"):
        assert np.array_equal(getattr(traj, name), getattr(run, name)), name
    assert traj.accept is None and run.accept is None and np.array_equal(traj.temperature, run.temperature)
    assert traj.config == {"model": "shortrun-mnist", "seed": 3} and loaded.n_steps == 6


def test_a_plain_pytorch_loop_file_opens():
    """A sampler outside ebmviz: Langevin on a quadratic energy around real digits, frames in [0, 1] as a torchvision
    user keeps them, energy recorded before each step."""
    target = torch.from_numpy(digits(4))
    x = torch.rand(4, 1, 28, 28) * 2 - 1
    frames, energy, grad_norm, step_norm = [], [], [], []
    for t in range(20):
        x.requires_grad_(True)
        e = 0.5 * ((x - target) ** 2).flatten(1).sum(1)
        (g,) = torch.autograd.grad(e.sum(), x)
        new = (x - 0.1 * g + 0.01 * torch.randn_like(x)).clamp(-1, 1).detach()
        energy.append(e.detach())
        grad_norm.append(g.flatten(1).norm(dim=1))
        step_norm.append((new - x).flatten(1).norm(dim=1).detach())
        if t % 5 == 0:
            frames.append((x.detach() + 1) / 2)
        x = new
    frames.append((x + 1) / 2)
    loaded = load_trajectory(npz(frames=torch.stack(frames).numpy(), range=np.array([0.0, 1.0]),
                                 frame_steps=np.array([0, 5, 10, 15, 20]), energy=torch.stack(energy).numpy(),
                                 grad_norm=torch.stack(grad_norm).numpy(), step_norm=torch.stack(step_norm).numpy()))
    traj = loaded.trajectory
    assert traj.frames.shape == (5, 4, 1, 28, 28) and loaded.n_steps == 20 and loaded.energy_padded
    assert np.abs(traj.frames[-1].astype(int) - to_u8(x.numpy()).astype(int)).max() <= 1
    e = loaded.measured_energy
    assert e.shape == (20, 4) and (e[-1] < 0.05 * e[0]).all()  # x − 0.1·(x − target): the energy shrinks 0.81× a step


# ---- what is refused -----------------------------------------------------------------------------------------------

def header_only(name: str, shape: tuple[int, ...], dtype=np.uint8) -> bytes:
    """An .npz whose member claims ``shape`` and holds no data: refused from its header, nothing decompressed."""
    head = io.BytesIO()
    np.lib.format.write_array_header_1_0(head, {"descr": np.dtype(dtype).str, "fortran_order": False,
                                                "shape": shape})
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr(f"{name}.npy", head.getvalue())
    return buf.getvalue()


class Planted:
    """Unpickling this would set ``ran``: the test sees that pickle never ran."""

    ran = False

    def __reduce__(self):
        return (_plant, ())


def _plant():
    Planted.ran = True
    return "planted"


def pickled() -> bytes:
    buf = io.BytesIO()
    np.savez(buf, frames=np.array([Planted()], dtype=object))
    return buf.getvalue()


def damaged() -> bytes:
    raw = bytearray(npz(frames=np.arange(4096, dtype=np.uint8).reshape(1, 1, 1, 64, 64)))
    raw[300] ^= 0xFF  # inside the array's data: the zip's CRC no longer matches
    return bytes(raw)


def nan_frames() -> bytes:
    x = chains()
    x[1, 2, 0, 3, :3] = np.nan
    x[4, 0, 0, 0, 0] = np.inf
    return npz(frames=x)


def single_npy() -> bytes:
    buf = io.BytesIO()
    np.save(buf, chains())
    return buf.getvalue()


BAD = {
    "empty": (lambda: b"", "the file is empty"),
    "not a zip": (lambda: b"frames,energy\n1,2\n", "not an .npz file (an .npz is a zip archive"),
    "a single .npy": (single_npy, "a single .npy array, not an .npz"),
    "damaged": (damaged, "the .npz is damaged and cannot be read"),
    "pickled objects": (pickled, "array(s) frames hold Python objects, which only pickle can read"),
    "no frames": (lambda: npz(energy=np.zeros((3, 2)), x=np.zeros(3)), "no `frames` array (the file holds energy, x)"),
    "3 axes": (lambda: npz(frames=chains()[:, 0, 0]), "`frames` must be (F, B, C, H, W) or (F, B, H, W), got 3 axes "
               "(5, 28, 28) (one chain? add its axis"),
    "2 channels": (lambda: npz(frames=np.zeros((2, 2, 2, 8, 8))), "has 2 channels (axis 2); C must be 1 (grey) or 3"),
    "channels last": (lambda: npz(frames=np.zeros((2, 2, 8, 8, 3))), "channels last? np.moveaxis(frames, -1, 2)"),
    "text frames": (lambda: npz(frames=np.array([["a"]])), "`frames` must be numbers (uint8 or float), not <U1"),
    "tiny image": (lambda: npz(frames=np.zeros((2, 2, 3, 3))), "images of 3×3 pixels: each side must be 4 to 1024"),
    "huge image": (lambda: npz(frames=np.zeros((1, 1, 8, 1100), np.uint8)), "images of 8×1100 pixels"),
    "no chains": (lambda: npz(frames=np.zeros((3, 0, 8, 8))), "is empty: it needs at least one frame of one chain"),
    "NaN frames": (nan_frames, "`frames` holds 3 NaN and 1 infinite values (the first at frame 1, chain 2)"),
    "out of range": (lambda: npz(frames=chains() * 1.5), "values of `frames` lie outside its range [-1, 1] (they "
                     "run from -1.5 to 1.5"),
    "bad range": (lambda: npz(frames=chains(), range=np.array([1.0, 1.0])), "`range` must be two finite numbers"),
    "chains disagree": (lambda: npz(frames=chains(), energy=np.zeros((5, 3))),
                        "`energy` has 3 chains (columns) but `frames` has 4"),
    "per-step 1-D": (lambda: npz(frames=chains(), grad_norm=np.zeros(4)), "`grad_norm` must be (steps, B)"),
    "steps disagree": (lambda: npz(frames=chains(), grad_norm=np.zeros((10, 4)), step_norm=np.zeros((9, 4))),
                       "disagree on the number of steps T: `grad_norm` has 10 rows, `step_norm` has 9 rows"),
    "energy rows": (lambda: npz(frames=chains(), energy=np.zeros((5, 4)), grad_norm=np.zeros((10, 4))),
                    "`energy` has 5 rows but the per-step arrays hold T = 10 steps"),
    "empty energy": (lambda: npz(frames=chains(), energy=np.zeros((0, 4))), "`energy` has no rows"),
    "frames past T": (lambda: npz(frames=chains(5), grad_norm=np.zeros((3, 4))),
                      "5 frames but `grad_norm` holds T = 3 steps, and no `frame_steps`"),
    "frame_steps past T": (lambda: npz(frames=chains(), grad_norm=np.zeros((3, 4)), frame_steps=np.arange(5)),
                           "`frame_steps` reach step 4 but `grad_norm` holds T = 3 steps"),
    "frame_steps past the energy": (lambda: npz(frames=chains(), energy=np.zeros((4, 4)), frame_steps=np.arange(5)),
                                    "`frame_steps` reach step 4 but `energy` has 4 rows, E(x_0) … E(x_T): T = 3 steps"),
    "frame_steps backwards": (lambda: npz(frames=chains(), frame_steps=np.array([0, 2, 1, 3, 4])),
                              "`frame_steps` must be ≥ 0 and nondecreasing; got [0, 2, 1, 3, 4]"),
    "frame_steps count": (lambda: npz(frames=chains(), frame_steps=np.arange(4)),
                          "`frame_steps` must be (F,) = (5,)"),
    "accept above 1": (lambda: npz(frames=chains(), accept=np.full((4, 4), 2.0)),
                       "`accept` must be 0/1 or a probability in [0, 1]"),
    "final shape": (lambda: npz(frames=chains(), final=np.zeros((3, 1, 28, 28))),
                    "`final` (3, 1, 28, 28) does not match a frame of `frames` (4, 1, 28, 28)"),
    "diverged_at shape": (lambda: npz(frames=chains(), diverged_at=np.zeros(3, int)),
                          "`diverged_at` must be (4,) integers"),
    "values cap": (lambda: header_only("frames", (1000, 256, 1, 16, 17)), "holds 69,632,000 values (frames × chains "
                   "× pixel values); the cap is 67,108,864 (64 M)"),
}


@pytest.mark.parametrize("case", list(BAD))
def test_each_bad_file_is_refused_with_its_reason(case):
    make, message = BAD[case]
    with pytest.raises(TrajectoryFileError) as err:
        load_trajectory(make())
    assert message in str(err.value)
    assert not Planted.ran


def test_the_byte_cap_refuses_a_file_before_reading_it(tmp_path, monkeypatch):
    raw = npz(frames=chains())
    monkeypatch.setattr(tf, "MAX_FILE_BYTES", len(raw) - 1)
    path = tmp_path / "big.npz"
    path.write_bytes(raw)
    for source in (raw, path, io.BytesIO(raw)):
        with pytest.raises(TrajectoryFileError, match=f"over the cap of {len(raw) - 1:,} bytes"):
            load_trajectory(source)
    monkeypatch.setattr(tf, "MAX_FILE_BYTES", len(raw))
    assert load_trajectory(path).trajectory.frames.shape[0] == 5


def test_a_missing_path_says_so(tmp_path):
    with pytest.raises(TrajectoryFileError, match="cannot read .*nowhere.npz: No such file"):
        load_trajectory(tmp_path / "nowhere.npz")
