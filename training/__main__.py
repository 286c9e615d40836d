"""python -m training <method> [--flags]; ``python -m training <method> --help`` lists them."""

import importlib
import sys

METHODS = {"shortrun": "shortrun", "coarse_to_fine": "coarse_to_fine", "triangle": "triangle", "evaluator": "evaluator",
           "sampler-defaults": "sampler_defaults"}


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in METHODS:
        print(f"usage: python -m training {{{','.join(METHODS)}}} [--help | flags]", file=sys.stderr)
        return 2
    module = importlib.import_module(f"training.{METHODS[argv[0]]}")
    return module.main(argv[1:], prog=f"python -m training {argv[0]}") or 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
