"""Stylise images of any size in bounded memory: overlapping tiles, blended without seams.

A full-resolution pass keeps several 48-channel float maps of the image alive (hundreds of
bytes per pixel), so an 8000x8000 photo would need tens of GB. Here the generator runs on
``tile`` x ``tile`` windows that overlap by ``overlap`` pixels; each window's output is weighted
by a separable ramp (1 inside, falling linearly to 0 across the overlap) and the weights are
normalised so that they sum to one at every pixel. Instance norm sees each window's own
statistics, so neighbouring windows differ slightly; the ramps turn that difference into a
gradual blend instead of a visible edge. Memory is the uint8 input and output plus one strip
of tile rows in float32, whatever the image size.
"""
from __future__ import annotations

from typing import Callable

import numpy as np
import torch
from torch import Tensor
from tqdm import tqdm

AUTO_TILE_PIXELS = 2048 * 2048
"""Images with more pixels than this are tiled automatically (a 2048x2048 pass peaks near 2 GB on CPU)."""
AUTO_TILE = 512
"""Tile size used by automatic tiling: a 512x512 pass peaks near 0.4 GB on CPU (1024x1024 near 1.5 GB)."""


def tile_starts(length: int, tile: int, overlap: int) -> list[int]:
    """Start offsets of windows of ``tile`` pixels covering ``length``, neighbours overlapping by at least ``overlap``."""
    if length <= tile:
        return [0]
    stride = tile - overlap
    count = -(-(length - tile) // stride) + 1
    # Spread the windows evenly so that every overlap is at least ``overlap`` pixels.
    return [round(i * (length - tile) / (count - 1)) for i in range(count)]


def _ramp(start: int, size: int, length: int, overlap: int) -> Tensor:
    """1D blend weight of one window: linear ramps over ``overlap`` pixels at inner edges."""
    weight = torch.ones(size)
    if overlap:
        ramp = (torch.arange(overlap, dtype=torch.float32) + 0.5) / overlap
        if start > 0:
            weight[:overlap] = ramp
        if start + size < length:
            weight[-overlap:] = ramp.flip(0)
    return weight


def _axis_weights(length: int, tile: int, overlap: int) -> tuple[list[int], list[Tensor], Tensor]:
    starts = tile_starts(length, tile, overlap)
    size = min(tile, length)
    ramps = [_ramp(s, size, length, overlap) for s in starts]
    total = torch.zeros(length)
    for s, r in zip(starts, ramps):
        total[s:s + size] += r
    return starts, ramps, total


def stylize_tiled(
    run: Callable[[Tensor], Tensor],
    image: np.ndarray,
    tile: int,
    overlap: int = 64,
    progress: bool = True,
) -> np.ndarray:
    """Stylise an (H, W, 3) uint8 array window by window with ``run`` ((1, 3, h, w) -> (1, 3, h, w) in [0, 1]).

    Returns the (H, W, 3) uint8 result. ``overlap`` must be smaller than half the tile.
    """
    if not 0 <= 2 * overlap < tile:
        raise ValueError(f"tile overlap must be >= 0 and less than half the tile size; got tile {tile}, overlap {overlap}")
    height, width = image.shape[:2]
    ys, ramps_y, total_y = _axis_weights(height, tile, overlap)
    xs, ramps_x, total_x = _axis_weights(width, tile, overlap)
    th, tw = min(tile, height), min(tile, width)
    output = np.empty_like(image)
    strip = torch.zeros(3, th, width)  # rows [base, base + th) of the weighted sum
    base = 0

    def flush(end: int) -> None:
        """Rows [base, end) are complete: normalise them and write them as uint8."""
        nonlocal strip, base
        rows = end - base
        done = strip[:, :rows] / (total_y[base:end, None] * total_x[None, :])
        output[base:end] = done.clamp_(0, 1).mul_(255).round_().byte().permute(1, 2, 0).numpy()
        strip = torch.cat([strip[:, rows:], torch.zeros(3, rows, width)], dim=1)
        base = end

    bar = tqdm(total=len(ys) * len(xs), desc="tiles", unit="tile", disable=not progress)
    for y, ry in zip(ys, ramps_y):
        flush(y)
        for x, rx in zip(xs, ramps_x):
            window = torch.from_numpy(np.ascontiguousarray(image[y:y + th, x:x + tw])).permute(2, 0, 1)
            result = run(window.unsqueeze(0).float().div_(255))[0].float().cpu()
            strip[:, :, x:x + tw] += result * (ry[:, None] * rx[None, :])
            bar.update()
    bar.close()
    flush(height)
    return output
