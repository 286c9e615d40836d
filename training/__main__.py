"""python -m training <method> [--flags]; ``python -m training <method> --help`` lists them.

Every model kind in ``ebmviz.models.KINDS`` is trained by the module ``training/<kind>.py`` (its
``main(argv, prog)``); ``sampler-defaults`` edits the sampler a checkpoint ships; ``landscape-map``
computes and stores a checkpoint's landscape map; ``scores`` stores every checkpoint's quality and AUROC numbers;
``fit-prior`` fits a generator's learned prior p_ψ(z) to its training codes.
"""

import importlib
import sys

import torch.distributed as dist

from ebmviz.models import KINDS
from training.run import Diverged

TOOLS = {"sampler-defaults": "sampler_defaults", "landscape-map": "landscape_map", "scores": "scores",
         "fit-prior": "fit_prior"}
METHODS = {**{kind: kind for kind in KINDS}, **TOOLS}  # command -> module under training/


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in METHODS:
        print(f"usage: python -m training {{{','.join(METHODS)}}} [--help | flags]", file=sys.stderr)
        return 2
    module = importlib.import_module(f"training.{METHODS[argv[0]]}")
    try:
        return module.main(argv[1:], prog=f"python -m training {argv[0]}") or 0
    except Diverged as exc:
        if not dist.is_initialized() or dist.get_rank() == 0:  # one message, not one per process
            print(f"error: {exc}", file=sys.stderr)
        return 3
    finally:
        if dist.is_initialized():  # a trainer that stopped early (an error, a divergence) under torchrun
            dist.destroy_process_group()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
