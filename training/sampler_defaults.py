"""Set the sampling settings a checkpoint ships for the app without retraining.

  python -m training sampler-defaults checkpoints/shortrun-mnist.safetensors --n-steps 2048 --record-every 16
  python -m training sampler-defaults denoising-mnist --key two_stage --sigma 0.2 --t-steps 40

``--key sampler`` (the default) edits ``meta["sampler"]``, the Langevin settings the Langevin page starts with;
``--key`` set to the model's own ``draw_key`` edits the settings ``model.draw`` uses (its ``DrawConfig``). The
flags are that config's fields. The weights are untouched; the change, the previous settings and the reason are
recorded in the metadata (``<key>_history``) so a script still reproduces the page's defaults.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import typing

from ebmviz import checkpoints
from ebmviz.sampling import LangevinConfig


def box(text: str) -> tuple[float, float]:
    """ "-1,1" -> (-1.0, 1.0)."""
    try:
        low, high = (float(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected low,high, got {text!r}") from None
    return low, high


def main(argv: list[str], prog: str = "python -m training sampler-defaults") -> int:
    ap = argparse.ArgumentParser(prog=prog, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("checkpoint", help="path or name of a generative checkpoint")
    ap.add_argument("--key", default="sampler", help="which settings: 'sampler' or the model's draw_key")
    ap.add_argument("--reason", default="", help="why the defaults changed (stored in the metadata)")
    first, _ = ap.parse_known_args(argv)
    model = checkpoints.load(first.checkpoint)
    if first.key == "sampler":
        cls = LangevinConfig
    elif first.key == model.draw_key and model.DrawConfig is not None:
        cls = model.DrawConfig
    else:
        ap.error(f"--key must be 'sampler' or this model's draw_key {model.draw_key!r}, got {first.key!r}")
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        if hints[f.name] in (int, float):
            ap.add_argument("--" + f.name.replace("_", "-"), dest=f.name, type=hints[f.name])
        elif typing.get_origin(hints[f.name]) is tuple:  # e.g. the cascade's steps per stage: "20,20,40"
            ap.add_argument("--" + f.name.replace("_", "-"), dest=f.name,
                            type=lambda text: tuple(int(v) for v in text.split(",")), help='comma-separated: 20,20,40')
        elif f.name == "grad_clip":
            ap.add_argument("--grad-clip", dest=f.name, type=float)
        elif f.name == "clamp":
            ap.add_argument("--clamp", dest=f.name, type=box, help='the box "low,high" states are kept in')
    args = ap.parse_args(argv)
    meta = dict(model.meta)
    old = LangevinConfig.from_dict(meta.get("sampler", {})) if cls is LangevinConfig else model.draw_config()
    names = {f.name for f in dataclasses.fields(cls)}
    new = dataclasses.replace(old, **{k: v for k, v in vars(args).items() if k in names and v is not None})
    if hasattr(new, "validate"):  # configs that check themselves after construction (others do in __post_init__)
        new.validate()
    meta[first.key] = new.to_dict()
    meta.setdefault(f"{first.key}_history", []).append(
        {"previous": old.to_dict(), "reason": args.reason,
         "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")})
    path = checkpoints.save(model, checkpoints.resolve(args.checkpoint), meta)
    print(f"{path}: {first.key} {old} -> {new}")
    return 0
