"""Watching a run: what the trainer reports, and the monitors that show it.

The trainer calls a list of :class:`Monitor` objects; it never knows how they show things.
:class:`FileMonitor` (always on) writes pictures next to the checkpoints: a sample grid and a
loss plot, which people would rather look at than read, plus the losses as CSV.
"""
from __future__ import annotations

import csv
import math
import warnings
from pathlib import Path
from typing import Any, Protocol

import torch
from PIL import Image, ImageDraw
from torch import Tensor
from torchvision.utils import make_grid

from .data import save_image


class Monitor(Protocol):
    """Receives a run's progress. Every method must return quickly and never raise into training."""

    def start(self, run_name: str, config: dict[str, Any]) -> None: ...

    def log(self, iteration: int, losses: dict[str, float], lr: float, images_per_second: float) -> None: ...

    def samples(self, iteration: int, grid: Tensor) -> None: ...

    def checkpoint(self, iteration: int, path: Path) -> None: ...

    def close(self) -> None: ...


def sample_grid(inputs: Tensor | None, outputs: Tensor) -> Tensor:
    """One picture: inputs on the top row, outputs below (or outputs alone for textures)."""
    rows = outputs if inputs is None else torch.cat([inputs, outputs])
    return make_grid(rows.detach().float().clamp(0, 1).cpu(), nrow=len(outputs), padding=4, pad_value=1.0)


_COLOURS = [(31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189), (140, 86, 75)]


def plot_losses(history: list[dict[str, float]], keys: list[str], path: Path, size: tuple[int, int] = (720, 420)) -> None:
    """A log-scale line plot of ``keys`` against the iteration, drawn with Pillow (no matplotlib)."""
    points = {k: [(h["iteration"], h[k]) for h in history if k in h and h[k] > 0 and math.isfinite(h[k])] for k in keys}
    points = {k: v for k, v in points.items() if v}
    image = Image.new("RGB", size, "white")
    draw = ImageDraw.Draw(image)
    left, top, right, bottom = 70, 20, size[0] - 150, size[1] - 40
    draw.rectangle((left, top, right, bottom), outline=(120, 120, 120))
    if points:
        xs = [x for v in points.values() for x, _ in v]
        ys = [math.log10(y) for v in points.values() for _, y in v]
        x0, x1 = min(xs), max(max(xs), min(xs) + 1)
        y0, y1 = math.floor(min(ys)), math.ceil(max(ys) + 1e-9)
        y1 = max(y1, y0 + 1)
        for decade in range(y0, y1 + 1):
            y = bottom - (decade - y0) / (y1 - y0) * (bottom - top)
            draw.line((left, y, right, y), fill=(225, 225, 225))
            draw.text((8, y - 6), f"1e{decade}", fill=(60, 60, 60))
        draw.text((left, bottom + 8), f"iteration {x0}", fill=(60, 60, 60))
        draw.text((right - 90, bottom + 8), f"iteration {x1}", fill=(60, 60, 60))
        for n, (key, series) in enumerate(points.items()):
            colour = _COLOURS[n % len(_COLOURS)]
            xy = [
                (left + (x - x0) / (x1 - x0) * (right - left), bottom - (math.log10(y) - y0) / (y1 - y0) * (bottom - top))
                for x, y in series
            ]
            draw.line(xy, fill=colour, width=2) if len(xy) > 1 else draw.ellipse(
                (xy[0][0] - 2, xy[0][1] - 2, xy[0][0] + 2, xy[0][1] + 2), fill=colour
            )
            draw.text((right + 12, top + 16 * n), f"{key} {series[-1][1]:.4g}", fill=colour)
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path)


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
            save_image(grid, self.folder / f"{self.name}_samples.png")
        except OSError as error:  # a full disk must not stop training; the checkpoint writer reports it
            warnings.warn(f"could not write the sample grid in {self.folder} ({error.strerror or error})")

    def checkpoint(self, iteration: int, path: Path) -> None:
        try:
            self._write_history()
        except OSError as error:
            warnings.warn(f"could not write the loss plot or CSV in {self.folder} ({error.strerror or error})")

    def _write_history(self) -> None:
        keys = [k for k in ("total", "content", "style", "tv") if any(k in h for h in self.history)]
        plot_losses(self.history, keys, self.folder / f"{self.name}_loss.png")
        columns = list(dict.fromkeys(k for h in self.history for k in h))
        with open(self.folder / f"{self.name}_losses.csv", "w", newline="") as file:
            writer = csv.DictWriter(file, fieldnames=columns)
            writer.writeheader()
            writer.writerows(self.history)

    def close(self) -> None:
        pass
