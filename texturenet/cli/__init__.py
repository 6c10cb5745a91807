"""Command line: argparse -> config -> the package. ``scripts/*.py``, the console entry points and ``texturenet COMMAND`` call
the entry points here, each a parser (parsers.py) and its handler (handlers.py) run by :func:`runner.run_command`.

Help texts and defaults come from the config dataclasses (one source of truth). User mistakes
(:class:`~texturenet.errors.TexturenetError`, invalid values) print one line and exit with status 2, no traceback.
"""
from __future__ import annotations

import argparse
import functools
from typing import Optional, Sequence

from . import handlers, parsers
from .runner import run_command


def diversity_main(argv: Optional[Sequence[str]] = None, prog: Optional[str] = None) -> None:
    """Entry point of ``texturenet diversity``, ``texturenet-diversity`` and ``scripts/diversity.py``."""
    run_command(parsers.diversity_parser(), handlers.diversity, argv, prog)


def train_main(argv: Optional[Sequence[str]] = None, prog: Optional[str] = None) -> None:
    """Entry point of ``texturenet train``, ``texturenet-train`` and ``scripts/train.py``."""
    run_command(parsers.train_parser(), functools.partial(handlers.train, argv=argv), argv, prog)


def stylize_main(argv: Optional[Sequence[str]] = None, prog: Optional[str] = None) -> None:
    """Entry point of ``texturenet stylize``, ``texturenet-stylize`` and ``scripts/stylize.py``."""
    run_command(parsers.stylize_parser(), handlers.stylize, argv, prog)


def export_main(argv: Optional[Sequence[str]] = None, prog: Optional[str] = None) -> None:
    """Entry point of ``texturenet export``, ``texturenet-export`` and ``scripts/export.py``."""
    run_command(parsers.export_parser(), handlers.export, argv, prog)


def optimize_main(argv: Optional[Sequence[str]] = None, prog: Optional[str] = None) -> None:
    """Entry point of ``texturenet optimize``, ``texturenet-optimize`` and ``scripts/optimize.py``."""
    from ..tools.optimize import PRESETS

    first = argparse.ArgumentParser(add_help=False)  # the preset decides the other flags' defaults
    first.add_argument("--preset")
    preset = first.parse_known_args(argv)[0].preset
    run_command(parsers.optimize_parser(preset if preset in PRESETS else None), handlers.optimize, argv, prog)


def evaluate_main(argv: Optional[Sequence[str]] = None, prog: Optional[str] = None) -> None:
    """Entry point of ``texturenet evaluate``, ``texturenet-evaluate`` and ``scripts/evaluate.py``."""
    run_command(parsers.evaluate_parser(), handlers.evaluate, argv, prog)


def info_main(argv: Optional[Sequence[str]] = None, prog: Optional[str] = None) -> None:
    """Entry point of ``texturenet info``."""
    run_command(parsers.info_parser(), handlers.info, argv, prog)

