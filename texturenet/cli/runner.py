"""The one place where a user's mistake becomes one line and exit status 2: :func:`run_command`."""
from __future__ import annotations

import argparse
import sys
import warnings
from typing import Any, Callable, Optional, Sequence

from ..errors import TexturenetError


def _one_line_warnings(message: Any, category: type, filename: str, lineno: int, line: Optional[str] = None) -> str:
    return f"texturenet: warning: {message}\n"


def run_command(
    parser: argparse.ArgumentParser,
    body: Callable[[argparse.Namespace, argparse.ArgumentParser], None],
    argv: Optional[Sequence[str]],
    prog: Optional[str] = None,
) -> None:
    """Parse ``argv`` and run ``body``: the one place where a :class:`TexturenetError` becomes one line and exit status 2.

    ``prog`` names the command in usage and error lines (``texturenet train``); unset, the parser's own (``texturenet-train``).
    """
    if prog is not None:
        parser.prog = prog
    warnings.formatwarning = _one_line_warnings  # type: ignore[assignment]
    for stream in (sys.stdout, sys.stderr):  # file names that are not UTF-8 must print, not crash the run
        if hasattr(stream, "reconfigure"):
            stream.reconfigure(errors="backslashreplace")
    try:
        args = parser.parse_args(argv)
        body(args, parser)
    except TexturenetError as error:
        print(f"{parser.prog}: error: {error}", file=sys.stderr)
        raise SystemExit(2) from None
    except KeyboardInterrupt:  # Ctrl-C before a run's own handler is installed (or in a command without one)
        print(f"{parser.prog}: interrupted; nothing more was written", file=sys.stderr)
        raise SystemExit(130) from None
