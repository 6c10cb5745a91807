"""The command line's building blocks: value types, the help formatter, and flags named after config fields.

A flag that is a config field gets its default and help from the field (:func:`add_flag`), and the parsed flags become
the config again by the same names (:func:`from_args`): one source of truth, config/.
"""
from __future__ import annotations

import argparse
import dataclasses
import math
import textwrap
from pathlib import Path
from typing import Any

from ..config import GeneratorConfig, LossConfig, TrainConfig, field_doc, scales_for


def layer_names(text: str) -> tuple[str, ...]:
    names = tuple(part.strip() for part in text.split(",") if part.strip())
    if not names:
        raise argparse.ArgumentTypeError("give at least one layer name, e.g. relu4_2")
    return names


def number_list(text: str) -> tuple[float, ...]:
    try:
        values = tuple(float(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers, got {text!r}") from None
    if not all(math.isfinite(v) and v >= 0 for v in values):
        raise argparse.ArgumentTypeError(f"weights must be finite and >= 0, got {text!r}")
    return values


def finite_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"expected a finite number, got {text!r}")
    return value


def width_height(text: str) -> tuple[int, int]:
    """``WxH`` -> (width, height), both positive."""
    try:
        width, height = (int(part) for part in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected WIDTHxHEIGHT such as 1024x768, got {text!r}") from None
    if width < 1 or height < 1:
        raise argparse.ArgumentTypeError(f"width and height must be positive, got {text!r}")
    return width, height


def count_list(text: str) -> tuple[int, ...]:
    try:
        values = tuple(int(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated whole numbers, got {text!r}") from None
    if not all(v >= 1 for v in values):
        raise argparse.ArgumentTypeError(f"iteration counts must be at least 1, got {text!r}")
    return values


class LinesFormatter(argparse.HelpFormatter):
    """Wraps the description and epilog to the terminal width, but line by line: argparse's default joins a list
    (the optimize presets) into one paragraph, and RawDescriptionHelpFormatter leaves its long lines unwrapped.
    A line's leading spaces are its indentation; its continuation lines hang 4 spaces further in."""

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        lines: list[str] = []
        for line in text.splitlines():
            body = line.lstrip()
            inset = indent + line[: len(line) - len(body)]
            lines.append(textwrap.fill(body, width, initial_indent=inset, subsequent_indent=inset + "    ") if body else "")
        return "\n".join(lines)


_FROM_FIELD = object()


def add_flag(group: Any, cls: type, name: str, *, default: Any = _FROM_FIELD, shown: Any = None, **kwargs: Any) -> None:
    """A flag named after a config field: its default and help come from the field (one source of truth)."""
    if default is _FROM_FIELD:
        field = cls.__dataclass_fields__[name]
        default = field.default if field.default is not dataclasses.MISSING else field.default_factory()
    if shown is None:
        shown = ",".join(map(str, default)) if isinstance(default, tuple) else default
    text = kwargs.pop("help", None) or field_doc(cls, name)
    group.add_argument(f"--{name}", default=default, help=f"{text} (default: {shown})", **kwargs)


def loss_config(args: argparse.Namespace) -> LossConfig:
    """The LossConfig of parsed loss flags (the flags of ``parsers._add_loss_flags``)."""
    return from_args(LossConfig, args)


def from_args(cls: type, args: argparse.Namespace, **overrides: Any) -> Any:
    """Build config dataclass ``cls`` from the flags named like its fields, plus ``overrides``."""
    values = {name: getattr(args, name) for name in cls.__dataclass_fields__ if hasattr(args, name)}
    return cls(**{**values, **overrides})


def train_config(args: argparse.Namespace) -> TrainConfig:
    """The one config object of a run, from parsed flags. Raises ValueError for invalid values."""
    if args.mode == "texture" and args.data_dir is not None:
        raise ValueError("--data_dir is for style mode; texture mode learns from --texture alone")
    return from_args(
        TrainConfig,
        args,
        resume=None if args.resume is None else Path(args.resume),
        generator=from_args(GeneratorConfig, args, scales=scales_for(args.image_size) if args.scales is None else args.scales),
        loss=loss_config(args),
    )
