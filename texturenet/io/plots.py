"""Pictures of numbers and of pictures, drawn with Pillow (no matplotlib): log-scale charts and picture grids.

The loss plot beside a run's checkpoints (training/monitor/files.py) and the quality report's curves
(tools/evaluate.py) are charts on one frame, :class:`LogChart`; the training samples and the
diversity grid are :func:`sample_grid`; the report's labelled grid is :func:`write_grid`.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Iterable, Sequence

import torch
from PIL import Image, ImageDraw
from torch import Tensor
from torchvision.utils import make_grid

from .images import save_pil, to_image

PALETTE = [(31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189), (140, 86, 75)]
"""Line colours, in the order series are drawn."""
INK = (60, 60, 60)
"""Axis labels and tick texts."""


class LogChart:
    """A white canvas with a framed plot area whose y axis is logarithmic, one grey line per decade.

    The frame starts 70 pixels from the left (room for the decade labels) and 20 from the top; the
    right margin holds the legend, the bottom one the x axis's labels. Series are drawn by the caller
    through :meth:`y` and the frame's edges (``left``, ``top``, ``right``, ``bottom``).
    """

    def __init__(self, size: tuple[int, int], legend_width: int, bottom_margin: int) -> None:
        self.image = Image.new("RGB", size, "white")
        self.draw = ImageDraw.Draw(self.image)
        self.left, self.top, self.right, self.bottom = 70, 20, size[0] - legend_width, size[1] - bottom_margin
        self.draw.rectangle((self.left, self.top, self.right, self.bottom), outline=(120, 120, 120))
        self.y0, self.y1 = 0, 1

    def decades(self, values: Iterable[float]) -> None:
        """Span the y axis over the whole decades that hold ``values`` (positive; at least one decade), each labelled ``1eN``."""
        logs = [math.log10(value) for value in values]
        self.y0 = math.floor(min(logs))
        self.y1 = max(math.ceil(max(logs) + 1e-9), self.y0 + 1)
        for decade in range(self.y0, self.y1 + 1):
            y = self.y(10.0**decade)
            self.draw.line((self.left, y, self.right, y), fill=(225, 225, 225))
            self.draw.text((8, y - 6), f"1e{decade}", fill=INK)

    def y(self, value: float) -> float:
        """The row of ``value`` (> 0) on the log axis."""
        return self.bottom - (math.log10(value) - self.y0) / (self.y1 - self.y0) * (self.bottom - self.top)

    def legend(self, index: int, text: str, colour: tuple[int, int, int]) -> None:
        """Line ``index`` of the legend, right of the frame."""
        self.draw.text((self.right + 12, self.top + 16 * index), text, fill=colour)

    def save(self, path: Path) -> None:
        save_pil(self.image, path)


def plot_losses(history: list[dict[str, float]], keys: list[str], path: Path, size: tuple[int, int] = (720, 420)) -> None:
    """A log-scale line plot of ``keys`` against the iteration."""
    points = {k: [(h["iteration"], h[k]) for h in history if k in h and h[k] > 0 and math.isfinite(h[k])] for k in keys}
    points = {k: v for k, v in points.items() if v}
    chart = LogChart(size, legend_width=150, bottom_margin=40)
    if points:
        xs = [x for v in points.values() for x, _ in v]
        x0, x1 = min(xs), max(max(xs), min(xs) + 1)
        chart.decades(y for v in points.values() for _, y in v)
        chart.draw.text((chart.left, chart.bottom + 8), f"iteration {x0}", fill=INK)
        chart.draw.text((chart.right - 90, chart.bottom + 8), f"iteration {x1}", fill=INK)
        for n, (key, series) in enumerate(points.items()):
            colour = PALETTE[n % len(PALETTE)]
            xy = [(chart.left + (x - x0) / (x1 - x0) * (chart.right - chart.left), chart.y(y)) for x, y in series]
            chart.draw.line(xy, fill=colour, width=2) if len(xy) > 1 else chart.draw.ellipse(
                (xy[0][0] - 2, xy[0][1] - 2, xy[0][0] + 2, xy[0][1] + 2), fill=colour
            )
            chart.legend(n, f"{key} {series[-1][1]:.4g}", colour)
    chart.save(path)


def sample_grid(inputs: Tensor | None, *outputs: Tensor) -> Tensor:
    """One picture: inputs on the top row, a row of outputs below for each of ``outputs`` (outputs alone for textures)."""
    rows = torch.cat([*([] if inputs is None else [inputs]), *outputs])
    return make_grid(rows.detach().float().clamp(0, 1).cpu(), nrow=len(outputs[0]), padding=4, pad_value=1.0)


def write_grid(tiles: Sequence[Sequence[Tensor]], labels: Sequence[str], path: Path, height: int = 128,
               gap: int = 6) -> list[list[tuple[int, int, int, int]]]:
    """Rows: photos; columns: methods; each picture scaled to ``height`` pixels and drawn whole, labels on top.

    Each column is as wide as its widest picture (or label), with ``gap`` white pixels between columns and
    rows, so photos of different aspect ratios neither overlap nor touch. Returns each tile's (left, top,
    right, bottom) box.
    """
    images = [[to_image(t) for t in row] for row in tiles]
    scaled = [[image.resize((max(1, round(image.width * height / image.height)), height), Image.Resampling.LANCZOS)
               for image in row] for row in images]
    columns = max(len(labels), *(len(row) for row in scaled))
    widths = [max([6 * len(labels[c]) + 6 if c < len(labels) else 1] + [row[c].width for row in scaled if c < len(row)])
              for c in range(columns)]
    lefts = [sum(widths[:c]) + gap * c for c in range(columns)]
    header = 16
    grid = Image.new("RGB", (lefts[-1] + widths[-1], header + (height + gap) * len(scaled) - gap), "white")
    draw = ImageDraw.Draw(grid)
    for column, label in enumerate(labels):
        draw.text((lefts[column] + 3, 2), label, fill="black")
    boxes = []
    for r, row in enumerate(scaled):
        top = header + r * (height + gap)
        boxes.append([(lefts[c], top, lefts[c] + tile.width, top + height) for c, tile in enumerate(row)])
        for tile, box in zip(row, boxes[-1]):
            grid.paste(tile, box[:2])
    save_pil(grid, path)
    return boxes
