"""Stylise images of any size in bounded memory: overlapping tiles, blended without seams.

A full-resolution pass keeps several 48-channel float maps of the image alive (hundreds of
bytes per pixel), so an 8000x8000 photo would need tens of GB. Here the generator runs on
``tile`` x ``tile`` windows that overlap by ``overlap`` pixels; each window's output is weighted
by a separable ramp (1 inside, falling linearly to 0 across the overlap) and the weights are
normalised so that they sum to one at every pixel. Memory is the uint8 input and output, one
strip of tile rows in float32, and the whole photo's coarse scales.

Windows alone are not enough for a texture network: instance norm would normalise each tile
by its own statistics and its coarse scales would see only the tile, so the style's strength
and colour would change from tile to tile. :func:`stylize_with_context` computes the coarse
scales once for the whole photo and pools the fine scales' statistics over the tiles.
"""
from __future__ import annotations

from typing import Callable, Optional

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor
from tqdm import tqdm

from .fast import FastGenerator, SharedStatistics

AUTO_TILE_PIXELS = 2048 * 2048
"""Images with more pixels than this are tiled automatically (a 2048x2048 pass peaks near 2 GB on CPU)."""
AUTO_TILE = 512
"""Tile size used by automatic tiling: a 512x512 pass peaks near 0.4 GB on CPU (1024x1024 near 1.5 GB)."""


def tile_starts(length: int, tile: int, overlap: int, align: int = 1) -> list[int]:
    """Start offsets of windows of ``tile`` pixels covering ``length``, neighbours overlapping by at least ``overlap``.

    With ``align`` > 1 every start is a multiple of ``align``, and the last window may reach up
    to ``align - 1`` pixels past the end (read there as reflect padding, as the generator pads).
    """
    if length <= tile:
        return [0]
    stride = tile - overlap - (2 * align if align > 1 else 0)  # room for rounding the starts
    count = -(-(length - tile) // stride) + 1
    last = -(-(length - tile) // align) * align
    # Spread the windows evenly so that every overlap is at least ``overlap`` pixels.
    return [round(i * last / (count - 1) / align) * align for i in range(count)]


def reflect_index(length: int, padded: int) -> np.ndarray:
    """Indices 0..padded-1 into an axis of ``length``, reflected past the end (as F.pad(mode="reflect"))."""
    index = np.arange(padded)
    return np.where(index < length, index, 2 * (length - 1) - index)


def window(image: np.ndarray, y: int, x: int, height: int, width: int) -> Tensor:
    """(1, 3, height, width) in [0, 1]: the image's window at (y, x), reflect-padded where it passes the edge."""
    rows = reflect_index(image.shape[0], y + height)[y:]
    cols = reflect_index(image.shape[1], x + width)[x:]
    part = image[y:y + height, x:x + width] if y + height <= image.shape[0] and x + width <= image.shape[1] else image[np.ix_(rows, cols)]
    writable = np.array(part)  # a copy: a PIL-backed array is read-only, which torch warns about
    return torch.from_numpy(writable).permute(2, 0, 1)[None].float().div_(255)


def _window_size(length: int, tile: int, align: int) -> int:
    """Windows are ``tile`` long, or the whole (aligned) length when that is shorter."""
    return min(tile, -(-length // align) * align)


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


def _axis_weights(length: int, tile: int, overlap: int, align: int) -> tuple[list[int], list[Tensor], Tensor]:
    starts = tile_starts(length, tile, overlap, align)
    size = _window_size(length, tile, align)
    ramps = [_ramp(s, size, length, overlap) for s in starts]
    total = torch.zeros(starts[-1] + size)
    for s, r in zip(starts, ramps):
        total[s:s + size] += r
    return starts, ramps, total[:length]


def stylize_tiled(
    run: Callable[[Tensor, int, int], Tensor],
    image: np.ndarray,
    tile: int,
    overlap: int = 64,
    progress: bool = True,
    align: int = 1,
) -> np.ndarray:
    """Stylise an (H, W, 3) uint8 array window by window with ``run`` and blend the windows.

    ``run(window, y, x)`` maps the (1, 3, h, w) window in [0, 1] at (y, x) to its (1, 3, h, w)
    output in [0, 1]. Returns the (H, W, 3) uint8 result. ``overlap`` must be smaller than half
    the tile; ``align`` as in :func:`tile_starts`.
    """
    if not 0 <= 2 * overlap < tile:
        raise ValueError(f"tile overlap must be >= 0 and less than half the tile size; got tile {tile}, overlap {overlap}")
    height, width = image.shape[:2]
    ys, ramps_y, total_y = _axis_weights(height, tile, overlap, align)
    xs, ramps_x, total_x = _axis_weights(width, tile, overlap, align)
    th, tw = _window_size(height, tile, align), _window_size(width, tile, align)
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
        flush(min(y, height))
        rows = min(th, height - y)  # the last window may pass the end: its extra rows are dropped
        for x, rx in zip(xs, ramps_x):
            columns = min(tw, width - x)
            result = run(window(image, y, x, th, tw), y, x)[0].float().cpu()
            weight = ry[:rows, None] * rx[None, :columns]
            strip[:, :rows, x:x + columns] += result[:, :rows, :columns] * weight
            bar.update()
    bar.close()
    flush(height)
    return output


CONTEXT_PIXELS = 1024 * 1024
"""The whole photo's coarse scales run at the finest scale whose maps have at most this many pixels."""
STATISTICS_TILES = 16
"""Tiles, spread evenly, whose fine-scale statistics are pooled (a stable estimate at a small extra cost)."""


def stylize_with_context(
    fast: FastGenerator,
    image: np.ndarray,
    tile: int,
    overlap: int,
    noise_factor: float = 1.0,
    generator: Optional[torch.Generator] = None,
    progress: bool = True,
) -> np.ndarray:
    """Tiled stylisation whose coarse scales are computed once, on the whole photo.

    Why: a tile run alone sees only itself at its coarse scales, and instance norm normalises
    each of its maps by the tile's own statistics, so the style's strength and colour change
    from tile to tile. The pyramid (Ulyanov et al. 2016, Sec. 3.1) makes the fix cheap: scale
    k sees the photo pooled by 2^k, so scales ``level``..K-1 of the whole photo fit in memory
    (:data:`CONTEXT_PIXELS`). They run once (:meth:`FastGenerator.context`); each tile then
    runs only the fine scales below ``level`` on its window and joins them onto its crop of
    the shared coarse map (:meth:`FastGenerator.finish`). Tiles start at multiples of
    2^level so that the crops line up; the photo is padded by reflection as an untiled pass
    pads it.
    """
    scales, device = fast.config.scales, fast.to_rgb.weight.device
    height, width = image.shape[:2]
    level = next((k for k in range(1, scales) if -(-height // 2**k) * -(-width // 2**k) <= CONTEXT_PIXELS), scales - 1)
    factor = 2**level
    tile -= tile % factor  # crops of the coarse map must line up with the windows
    padded_h, padded_w = (-(-n // fast.multiple) * fast.multiple for n in (height, width))
    rows, cols = reflect_index(height, padded_h), reflect_index(width, padded_w)
    strips = []  # the padded photo pooled to scale ``level``, a strip of rows at a time (never all of it in float)
    for y in range(0, padded_h, 64 * factor):
        part = torch.from_numpy(np.ascontiguousarray(image[np.ix_(rows[y:y + 64 * factor], cols)]))
        strips.append(F.avg_pool2d(part.permute(2, 0, 1)[None].float().div_(255), factor))
    scaled = torch.cat(strips, dim=2).to(device)
    inputs: list[Optional[Tensor]] = [None] * scales
    for k in range(level, scales):
        scaled = F.avg_pool2d(scaled, 2) if k > level else scaled
        inputs[k] = fast.scale_input(scaled, noise_factor, generator)
    context = fast.context(inputs, level)
    del inputs, scaled

    def run(window: Tensor, y: int, x: int) -> Tensor:
        fine: list[Optional[Tensor]] = [None] * scales
        scaled = window.to(device)
        for k in range(level):
            scaled = F.avg_pool2d(scaled, 2) if k else scaled
            fine[k] = fast.scale_input(scaled, noise_factor, generator)
        h, w = window.shape[-2:]
        crop = context[..., y // factor:(y + h) // factor, x // factor:(x + w) // factor]
        return fast.finish(crop.contiguous(memory_format=torch.channels_last), fine, level)

    statistics = SharedStatistics()  # the fine scales' normalisation, pooled over a sample of the tiles
    th, tw = _window_size(height, tile, factor), _window_size(width, tile, factor)
    corners = [(y, x) for y in tile_starts(height, tile, overlap, factor) for x in tile_starts(width, tile, overlap, factor)]
    for y, x in corners[::max(1, -(-len(corners) // STATISTICS_TILES))]:
        with statistics.recording():
            run(window(image, y, x, th, tw), y, x)
    statistics.pool()

    def shared(window: Tensor, y: int, x: int) -> Tensor:
        with statistics.sharing():
            return run(window, y, x)

    return stylize_tiled(shared, image, tile, overlap, progress, align=factor)
