"""The monitor that is always on: pictures and a loss table beside the checkpoints.

People would rather look at a sample grid and a loss plot than read numbers; the CSV keeps the numbers.
"""
from __future__ import annotations

import csv
import io
import warnings
from pathlib import Path
from typing import Any

from torch import Tensor

from ...errors import TexturenetError
from ...io.files import write_atomic
from ...io.images import save_image
from ...io.plots import plot_losses
from ...loss.terms import TERMS
from ..run import run_output


class FileMonitor:
    """Writes ``<name>_samples.png``, ``<name>_loss.png`` and ``<name>_losses.csv`` into the checkpoint folder."""

    def __init__(self, folder: Path, history: list[dict[str, float]]) -> None:
        self.folder = folder
        self.history = history  # shared with the trainer, which resumes it from checkpoints
        self.name = "run"

    def start(self, run_name: str, config: dict[str, Any]) -> None:
        self.name = run_name

    def log(self, iteration: int, losses: dict[str, float], lr: float, images_per_second: float) -> None:
        pass  # the trainer appends to the shared history; pictures are drawn at checkpoints

    def samples(self, iteration: int, grid: Tensor) -> None:
        try:
            save_image(grid, run_output(self.folder, self.name, "samples"))
        except TexturenetError as error:  # a full disk must not stop training; the checkpoint writer reports it
            warnings.warn(str(error))

    def checkpoint(self, iteration: int, path: Path) -> None:
        try:
            self._write_history()
        except TexturenetError as error:
            warnings.warn(str(error))

    def _write_history(self) -> None:
        keys = [k for k in TERMS if any(k in h for h in self.history)]
        plot_losses(self.history, keys, run_output(self.folder, self.name, "loss"))
        columns = list(dict.fromkeys(k for h in self.history for k in h))
        text = io.StringIO(newline="")
        writer = csv.DictWriter(text, fieldnames=columns)
        writer.writeheader()
        writer.writerows(self.history)
        write_atomic(run_output(self.folder, self.name, "losses"), lambda file: file.write(text.getvalue().encode()), "loss history")

    def close(self) -> None:
        pass
