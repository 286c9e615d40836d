"""Initial states for Langevin chains: (n, C, H, W) float32 in [-1, 1], (n, 1, 28, 28) for the shipped models."""

from __future__ import annotations

import torch

START_KINDS = {  # start -> what the app calls it
    "noise": "uniform noise U(−1, 1)",
    "data": "real digits",
    "data+noise": "real digits + Gaussian noise",
    "replay": "the model's replay buffer",
    "generator": "the model's generator G(z)",
    "upload": "an uploaded image",
}


def make_starts(start: str, n: int, seed: int = 0, *, data: torch.Tensor | None = None,
                data_noise: float = 0.3, model=None, image: torch.Tensor | None = None,
                shape: tuple[int, int, int] = (1, 28, 28)) -> torch.Tensor:
    """n start states of the kind ``start`` (a key of ``START_KINDS``), deterministic in ``seed``.

    Args:
        data: (N, C, H, W) images for "data" / "data+noise".
        data_noise: std of the noise added for "data+noise".
        model: a module with ``replay_samples(n, seed)`` for "replay", with ``generate(n, seed)`` for "generator".
        image: (1, C, H, W) for "upload"; every chain starts from it.
        shape: (C, H, W) of the noise and of the uploaded image.
    Raises:
        ValueError with a readable reason when the start cannot be served.
    """
    g = torch.Generator().manual_seed(int(seed))
    if start == "noise":
        return torch.rand(n, *shape, generator=g) * 2 - 1
    if start in ("data", "data+noise"):
        if data is None or len(data) == 0:
            raise ValueError("no data loaded to start chains from")
        x = data[torch.randint(len(data), (n,), generator=g)].float().cpu()
        if start == "data+noise":
            x = (x + data_noise * torch.randn(x.shape, generator=g)).clamp(-1, 1)
        return x
    if start == "replay":
        out = None if model is None or not hasattr(model, "replay_samples") else model.replay_samples(n, seed)
        if out is None:
            raise ValueError("this checkpoint has no replay buffer; pick another start")
        return out.float().cpu()
    if start == "generator":
        if model is None or not hasattr(model, "generate"):
            raise ValueError("this checkpoint has no generator; pick another start")
        with torch.no_grad():
            return model.generate(n, seed).float().cpu()
    if start == "upload":
        if image is None:
            raise ValueError("upload an image first")
        return image.reshape(1, *shape).float().cpu().repeat(n, 1, 1, 1)
    raise ValueError(f"unknown start {start!r}; choose one of {', '.join(START_KINDS)}")
