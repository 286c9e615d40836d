"""Set the sampler a checkpoint ships for the app (``meta["sampler"]``) without retraining.

  python -m training sampler-defaults checkpoints/shortrun-mnist.safetensors --n-steps 2048 --record-every 16

The weights are untouched; the change, the previous settings and the reason are recorded in the
metadata (``sampler_history``) so a script still reproduces the page's defaults.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime

from ebmviz import checkpoints
from ebmviz.sampling import LangevinConfig


def main(argv: list[str], prog: str = "python -m training sampler-defaults") -> int:
    ap = argparse.ArgumentParser(prog=prog, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("checkpoint", help="path or name of a generative checkpoint")
    for f in dataclasses.fields(LangevinConfig):
        if f.name in ("n_steps", "record_every"):
            ap.add_argument("--" + f.name.replace("_", "-"), dest=f.name, type=int)
        elif f.name in ("step_size", "noise_std", "grad_clip"):
            ap.add_argument("--" + f.name.replace("_", "-"), dest=f.name, type=float)
    ap.add_argument("--reason", default="", help="why the defaults changed (stored in the metadata)")
    args = ap.parse_args(argv)
    model = checkpoints.load(args.checkpoint)
    meta = dict(model.meta)
    old = LangevinConfig.from_dict(meta.get("sampler", {}))
    changes = {k: v for k, v in vars(args).items() if k in {f.name for f in dataclasses.fields(LangevinConfig)}
               and v is not None}
    new = dataclasses.replace(old, **changes)
    new.validate()
    meta["sampler"] = new.to_dict()
    meta.setdefault("sampler_history", []).append(
        {"previous": old.to_dict(), "reason": args.reason,
         "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")})
    path = checkpoints.save(model, checkpoints.resolve(args.checkpoint), meta)
    print(f"{path}: sampler {old} -> {new}")
    return 0
