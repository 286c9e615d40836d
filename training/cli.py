"""Command-line flags generated from a frozen config dataclass (one flag per field)."""

from __future__ import annotations

import argparse
import dataclasses
import typing


def _field_type(tp):
    args = [a for a in typing.get_args(tp) if a is not type(None)]
    return args[0] if args else tp


def parse_config(cls, argv: list[str], prog: str):
    """Build ``cls`` from ``--field value`` flags; help text is the field's comment via metadata."""
    hints = typing.get_type_hints(cls)
    parser = argparse.ArgumentParser(prog=prog, description=cls.__doc__)
    for f in dataclasses.fields(cls):
        tp = _field_type(hints[f.name])
        flag = "--" + f.name.replace("_", "-")
        helptext = f.metadata.get("help", "") + f" (default: {f.default})"
        if tp is bool:
            parser.add_argument(flag, dest=f.name, default=f.default,
                                action=argparse.BooleanOptionalAction, help=helptext)
        else:
            parser.add_argument(flag, dest=f.name, type=tp, default=f.default, help=helptext)
    ns = parser.parse_args(argv)
    return cls(**vars(ns))


def field(default, help: str):  # noqa: A002 (mirrors argparse's name)
    """A dataclass field with its one-line reason, shown as the flag's help."""
    return dataclasses.field(default=default, metadata={"help": help})
