"""The one ``texturenet`` command: its subcommands, each a line in ``texturenet --help``, and where each is handled.

Every subcommand is an existing command (``texturenet train`` is ``texturenet-train``, same flags,
messages and exit codes), so the table names entry points rather than building their parsers: only
the chosen subcommand's modules are imported (``texturenet visdom`` never loads torch, ``texturenet
--help`` answers at once). Each entry point parses its own flags and turns a user's mistake into one
line and exit status 2 in one place, :func:`texturenet.cli.runner.run_command`.
"""
from __future__ import annotations

import argparse
import importlib
import sys
from dataclasses import dataclass
from typing import Optional, Sequence

from ..version import __version__


@dataclass(frozen=True)
class Subcommand:
    """A subcommand: its line in ``texturenet --help`` and its entry point, ``module:function(argv, prog)``."""

    summary: str
    entry: str

    def run(self, argv: Sequence[str], prog: str) -> None:
        module, function = self.entry.split(":")
        getattr(importlib.import_module(module), function)(list(argv), prog=prog)


SUBCOMMANDS: dict[str, Subcommand] = {
    "train": Subcommand("train a generator for one style or texture", "texturenet.cli:train_main"),
    "stylize": Subcommand("stylise photos or videos, or sample a texture, in one pass", "texturenet.cli:stylize_main"),
    "optimize": Subcommand("per-image optimisation (Gatys et al.): slow, the quality reference", "texturenet.cli:optimize_main"),
    "evaluate": Subcommand("score a style model against per-image optimisation", "texturenet.cli:evaluate_main"),
    "export": Subcommand("export a style model to ONNX, torch.export or TorchScript", "texturenet.cli:export_main"),
    "diversity": Subcommand("how varied a model's samples are", "texturenet.cli:diversity_main"),
    "gui": Subcommand("a page in the browser to stylise photos and to train", "texturenet.apps.gui:main"),
    "visdom": Subcommand("a Visdom server for train --viz that downloads nothing", "texturenet.apps.visdom_server:main"),
    "info": Subcommand("versions, devices, where the loss-network weights are looked for", "texturenet.cli:info_main"),
}


def command_parser(prog: str = "texturenet") -> argparse.ArgumentParser:
    """The top level: ``--help`` lists the subcommands, ``--version``; each subcommand's own flags are its parser's.

    The list is written out in the epilog, a line each, rather than left to argparse's subcommand listing, which puts
    a name as long as "diversity" on a line of its own.
    """
    width = max(map(len, SUBCOMMANDS)) + 2
    listing = "\n".join(f"  {name:<{width}}{subcommand.summary}" for name, subcommand in SUBCOMMANDS.items())
    parser = argparse.ArgumentParser(
        prog=prog,
        description="Texture networks (Ulyanov et al. 2016): train feed-forward generators for a style or a texture,\n"
        "then stylise photos or sample textures in one pass.",
        epilog=f"commands:\n{listing}\n\n'{prog} COMMAND --help' shows a command's flags. Each command but info is also\n"
        "installed as texturenet-COMMAND (texturenet-train, ...).",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"texturenet {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True, help="the command to run, listed below")
    for name in SUBCOMMANDS:
        commands.add_parser(name, add_help=False)
    return parser


def main(argv: Optional[Sequence[str]] = None, prog: str = "texturenet") -> None:
    """Entry point of ``texturenet`` and ``python -m texturenet``: the first word picks the subcommand, the rest is its own."""
    argv = sys.argv[1:] if argv is None else list(argv)
    chosen = command_parser(prog).parse_args(argv[:1]).command  # --help, --version, a missing or unknown command: answered here
    SUBCOMMANDS[chosen].run(argv[1:], prog=f"{prog} {chosen}")
