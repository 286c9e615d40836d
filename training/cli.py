"""Command-line flags generated from a frozen config dataclass (one flag per field, help from its reason), and a
trainer's ``main`` built from its config and ``train``."""

from __future__ import annotations

import argparse
import dataclasses
import types
import typing
from collections.abc import Callable
from typing import Any


def field(default, help: str):  # noqa: A002 (mirrors argparse's name)
    """A dataclass field with its one-line reason, shown as the flag's help."""
    return dataclasses.field(default=default, metadata={"help": help})


def _strip_optional(tp):
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        return args[0] if len(args) == 1 else tp
    return tp


def tuple_flag(tp):
    """Argparse type of a tuple field, "7,14,28" -> (7, 14, 28); ``tuple[int, int, int]`` takes exactly three."""
    args = typing.get_args(tp)
    variadic = len(args) == 2 and args[1] is Ellipsis
    item, n = args[0], None if variadic else len(args)

    def parse(text: str) -> tuple:
        try:
            values = tuple(item(v) for v in text.split(","))
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected comma-separated {item.__name__}s, got {text!r}") from None
        if n is not None and len(values) != n:
            raise argparse.ArgumentTypeError(f"expected {n} comma-separated {item.__name__}s, got {text!r}")
        return values

    parse.__name__ = f"{n or 'n'} comma-separated {item.__name__}s"
    return parse


def parse_config(cls, argv: list[str], prog: str):
    """Build ``cls`` from ``--field value`` flags (``--flag/--no-flag`` for booleans, "a,b,c" for tuples)."""
    hints = typing.get_type_hints(cls)
    parser = argparse.ArgumentParser(prog=prog, description=cls.__doc__)
    for f in dataclasses.fields(cls):
        tp = _strip_optional(hints[f.name])
        flag = "--" + f.name.replace("_", "-")
        shown = ",".join(map(str, f.default)) if isinstance(f.default, tuple) else f.default
        helptext = f.metadata.get("help", "") + f" (default: {shown})"
        if tp is bool:
            parser.add_argument(flag, dest=f.name, default=f.default,
                                action=argparse.BooleanOptionalAction, help=helptext)
        elif typing.get_origin(tp) is tuple:
            parser.add_argument(flag, dest=f.name, type=tuple_flag(tp), default=f.default, help=helptext)
        else:
            parser.add_argument(flag, dest=f.name, type=tp, default=f.default, help=helptext)
    return cls(**vars(parser.parse_args(argv)))


def command(cls: type, train: Callable[[Any], Any], kind: str) -> Callable[..., int]:
    """A trainer's ``main(argv, prog)``: ``train(cls from the flags in argv)``, then exit status 0.

    ``python -m training <kind>`` looks the trainer up by its module's ``main``; ``prog`` (what ``--help`` and
    argparse's errors call the command) defaults to that command line.
    """

    def main(argv: list[str], prog: str = f"python -m training {kind}") -> int:
        train(parse_config(cls, argv, prog))
        return 0

    main.__doc__ = f"python -m training {kind} [flags]: parse ``{cls.__name__}``'s flags and train."
    return main
