"""Fit a learned prior p_ψ(z) to the codes of a checkpoint's training digits and store it in the checkpoint.

  python -m training fit-prior triangle-mnist --components 5,10,20,30,50 --draws 4

The prior p(z) of P(x, z) = p(z)·p_θ(x|z) enters the divergence triangle's KL(Q‖P), and over ψ that term is the
negative log-likelihood of codes z̃ = μ_φ(x) + σ_φ(x)·ε of the training digits (``ebmviz.models.prior``; KL(P‖Π)
involves p(z) too, and this step leaves it aside). With θ, φ and α fixed, this command minimises KL(Q‖P) over ψ.
It encodes the training digits ``--draws`` times each, fits a Gaussian mixture for each ``--components`` value on
the codes of 7/8 of the digits, and keeps the K whose fit gives the other 1/8 (held out by digit) the highest mean
log-likelihood. It then refits that K on all codes and writes
the checkpoint with the prior (``arch["prior_components"]``) and a record of the choice in ``meta["prior"]``. The
choice never looks at samples; every other tensor is left as it was.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import sys
import time

import torch

from ebmviz import checkpoints
from ebmviz.data import load_dataset
from ebmviz.models.prior import fit_mixture

HELD_OUT = 8  # every 8th digit's codes score the candidate fits


def components(text: str) -> list[int]:
    """ "5,10,20" -> [5, 10, 20] (each ≥ 1)."""
    try:
        ks = [int(v) for v in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None
    if not ks or min(ks) < 1:
        raise argparse.ArgumentTypeError(f"every K must be at least 1, got {text!r}")
    return ks


@torch.no_grad()
def encode(model: torch.nn.Module, images: torch.Tensor, draws: int, gen: torch.Generator) -> torch.Tensor:
    """Codes z̃ = μ_φ(x) + σ_φ(x)·ε, ``draws`` per image: (draws, N, nz)."""
    mu, logvar = zip(*(model.inference(x) for x in images.split(500)), strict=True)
    mu, std = torch.cat(mu), torch.cat(logvar).mul(0.5).exp()
    return torch.stack([mu + std * torch.randn(mu.shape, generator=gen) for _ in range(draws)])


def main(argv: list[str], prog: str = "python -m training fit-prior") -> int:
    ap = argparse.ArgumentParser(prog=prog, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("checkpoint", help="path or name of a checkpoint with an inference network (the triangle)")
    ap.add_argument("--components", type=components, default=[5, 10, 20, 30, 50],
                    help="the numbers of mixture components K to choose from (default 5,10,20,30,50)")
    ap.add_argument("--draws", type=int, default=4, help="codes z̃ drawn per training digit (default 4)")
    ap.add_argument("--iters", type=int, default=300, help="EM iterations at most per fit (default 300)")
    ap.add_argument("--seed", type=int, default=0, help="seed of the codes' noise and of EM's starts")
    ap.add_argument("--out", default="", help="where to write (default: the checkpoint itself)")
    args = ap.parse_args(argv)
    if args.draws < 1 or args.iters < 1:
        ap.error("--draws and --iters must be at least 1")
    started = time.perf_counter()
    model = checkpoints.load(args.checkpoint)
    if not (hasattr(model, "inference") and "prior_components" in model.arch()):
        ap.error(f"a {type(model).__name__} has no inference network q_φ(z|x), so no codes to fit a prior to")
    record = model.meta.get("dataset", {})
    images, _ = load_dataset(record.get("name", "mnist"), record.get("split", "train"))
    if record.get("n_images") not in (None, len(images)):
        ap.error(f"the checkpoint was trained on {record['n_images']} images ({record.get('source', '?')}), but "
                 f"the dataset found here has {len(images)}: fit the prior on the data the model was trained on "
                 "(the embedded digits are used when $EBMVIZ_DATA, default ./data, holds no MNIST files)")
    gen = torch.Generator().manual_seed(args.seed)
    codes = encode(model, images, args.draws, gen)  # (draws, N, nz)
    held = torch.arange(len(images)) % HELD_OUT == HELD_OUT - 1
    fit_codes, val_codes = codes[:, ~held].flatten(0, 1), codes[:, held].flatten(0, 1)
    table = []
    for k in args.components:
        fit = fit_mixture(fit_codes, k, iters=args.iters, seed=args.seed)
        table.append({"components": k, "fit_log_likelihood": round(fit.log_likelihood[-1], 4),
                      "held_out_log_likelihood": round(float(fit.log_prob(val_codes).mean()), 4),
                      "em_iterations": len(fit.log_likelihood) - 1})
        print(f"K = {k}: mean log p(z) {table[-1]['fit_log_likelihood']:.3f} on the fitted codes, "
              f"{table[-1]['held_out_log_likelihood']:.3f} on held-out digits' codes", flush=True)
    best = max(table, key=lambda row: row["held_out_log_likelihood"])["components"]
    fit = fit_mixture(codes.flatten(0, 1), best, iters=args.iters, seed=args.seed)
    config = dataclasses.replace(model.config, prior_components=best)
    fitted = type(model)(config, model.meta)
    missing, unexpected = fitted.load_state_dict(
        {k: v for k, v in model.state_dict().items() if not k.startswith("prior.")}, strict=False)
    assert not unexpected and all(k.startswith("prior.") for k in missing), (missing, unexpected)
    fitted.prior.load_fit(fit)
    meta = dict(model.meta, arch=fitted.arch())
    meta["prior"] = {
        "components": best, "draws_per_digit": args.draws, "codes": int(codes.shape[0] * codes.shape[1]),
        "log_likelihood": round(fit.log_likelihood[-1], 4), "em_iterations": len(fit.log_likelihood) - 1,
        "choice": table, "held_out": f"every {HELD_OUT}th training digit's codes, for the choice of K only",
        "command": " ".join(["python -m training fit-prior", *argv]), "seed": args.seed,
        "wall_time_s": round(time.perf_counter() - started, 1),
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")}
    path = checkpoints.save(fitted, args.out or checkpoints.resolve(args.checkpoint), meta)
    print(f"{path}: learned prior with K = {best} components (held-out mean log p(z) "
          f"{max(r['held_out_log_likelihood'] for r in table):.3f}), {meta['prior']['wall_time_s']} s")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
