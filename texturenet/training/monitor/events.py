"""The run's progress as JSON lines on a file descriptor, for a supervising process (the GUI) to read."""
from __future__ import annotations

import fcntl
import json
import os
import re
import reprlib
from pathlib import Path
from typing import Any, Optional

from torch import Tensor

from ...errors import TexturenetError


EVENTS_FD = "TEXTURENET_EVENTS_FD"
"""Environment variable: a file descriptor on which ``texturenet-train`` writes its progress as JSON lines (the GUI's)."""


class JsonLinesMonitor:
    """The Monitor protocol as one JSON object per line, for a supervising process (the GUI) instead of parsing a progress bar.

    Events: ``{"event": "start", "name", "iterations"}``, ``{"event": "log", "iteration", "losses", "lr"}``,
    ``{"event": "samples", "iteration"}``, ``{"event": "checkpoint", "iteration", "path"}``, ``{"event": "close"}``.
    A reader that goes away must not stop training: a broken pipe ends the stream, not the run.
    """

    def __init__(self, stream: Any) -> None:
        self.stream: Any = stream

    @classmethod
    def from_environment(cls) -> Optional["JsonLinesMonitor"]:
        """The monitor :data:`EVENTS_FD` asks for, or None when it is not set; one line for a value that is not a
        descriptor open for writing (not a number, negative, past a C int, closed, read-only)."""
        text = os.environ.get(EVENTS_FD)
        if not text:
            return None
        try:
            if not re.fullmatch(r"[0-9]+", text):
                raise ValueError("not a whole number >= 0")
            descriptor = int(text)
            flags = fcntl.fcntl(descriptor, fcntl.F_GETFL)  # OverflowError past a C int, OSError (EBADF) when closed
            if flags & os.O_ACCMODE not in (os.O_WRONLY, os.O_RDWR):
                raise ValueError("it is open for reading only")
            return cls(os.fdopen(descriptor, "w", buffering=1, encoding="utf-8"))
        except OverflowError:
            why = "too large"
        except OSError as error:
            why = error.strerror or str(error)
        except ValueError as error:
            why = str(error)
        raise TexturenetError(f"{EVENTS_FD}={reprlib.repr(text)} is not an open file descriptor ({why}); unset it")

    def _send(self, event: dict[str, Any]) -> None:
        if self.stream is None:
            return
        try:
            self.stream.write(json.dumps(event) + "\n")
        except (OSError, ValueError):  # the reader is gone
            self.stream = None

    def start(self, run_name: str, config: dict[str, Any]) -> None:
        self._send({"event": "start", "name": run_name, "iterations": config.get("iterations")})

    def log(self, iteration: int, losses: dict[str, float], lr: float, images_per_second: float) -> None:
        self._send({"event": "log", "iteration": iteration, "losses": losses, "lr": lr})

    def samples(self, iteration: int, grid: Tensor) -> None:
        self._send({"event": "samples", "iteration": iteration})

    def checkpoint(self, iteration: int, path: Path) -> None:
        self._send({"event": "checkpoint", "iteration": iteration, "path": str(path)})

    def close(self) -> None:
        self._send({"event": "close"})
