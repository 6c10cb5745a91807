"""Stylise images of any size in bounded memory: overlapping tiles, blended without seams.

A full-resolution pass keeps several 48-channel float maps of the image alive (hundreds of
bytes per pixel), so an 8000x8000 photo would need tens of GB. Here the generator runs on
``tile`` x ``tile`` windows that overlap by ``overlap`` pixels; each window's output is weighted
by a separable ramp (1 inside, falling linearly to 0 across the overlap, 0 at the outermost
pixels) and the weights are normalised so that they sum to one at every pixel. Memory is the
uint8 input and output, one strip of tile rows in float32, and the whole photo's coarse scales.

Windows alone are not enough for a texture network: instance norm would normalise each tile
by its own statistics and its coarse scales would see only the tile, so the style's strength
and colour would change from tile to tile. :func:`stylize_with_context` computes the coarse
scales once for the whole photo, gathers the fine scales' statistics over the tiles layer by
layer and draws noise as a function of position, so that the result is the untiled pass's up to
float rounding (at strength 0; above it, the noise field differs from an untiled pass's).
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import Callable, Optional, Protocol, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor
from tqdm import tqdm

from .fused import FastGenerator, LayerStatistics, instance_stats
from .pyramid import pad_indices
from ..io.images import to_pixels, to_tensor
from .noise import IndependentNoise, PositionalNoise

AUTO_TILE_PIXELS = 2048 * 2048
"""Images with more pixels than this are tiled automatically (a 2048x2048 pass peaks near 2 GB on CPU)."""
AUTO_TILE = 512
"""Tile size used by automatic tiling: a 512x512 pass peaks near 0.4 GB on CPU (1024x1024 near 1.5 GB)."""
PIXELS_PER_WINDOW = 256 * 256
"""A tiled pass cuts a photo into at most one window per this many pixels (or :data:`FEW_WINDOWS`): see :func:`max_windows`."""
FEW_WINDOWS = 64
"""Any photo may be cut into this many windows, however small the tiles (small photos in small tiles are cheap)."""


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


def padded_indices(image: np.ndarray, height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """Rows and columns of ``image`` padded to ``height`` x ``width`` as the generator pads (:func:`pad_indices`)."""
    rows, cols = pad_indices(image.shape[0], image.shape[1], height, width, torch.device("cpu"))
    return rows.numpy(), cols.numpy()


def window(image: np.ndarray, rows: np.ndarray, cols: np.ndarray, y: int, x: int, height: int, width: int) -> Tensor:
    """(1, 3, height, width) in [0, 1]: the window at (y, x) of the image padded by ``rows`` and ``cols`` (:func:`padded_indices`)."""
    if y + height <= image.shape[0] and x + width <= image.shape[1]:
        part = image[y:y + height, x:x + width]
    else:
        part = image[np.ix_(rows[y:y + height], cols[x:x + width])]
    return to_tensor(part)[None]


def _window_size(length: int, tile: int, align: int) -> int:
    """Windows are ``tile`` long, or the whole (aligned) length when that is shorter."""
    return min(tile, -(-length // align) * align)


def _ramp(start: int, size: int, length: int, overlap: int, margin: int = 0) -> Tensor:
    """1D blend weight of one window: at inner edges 0 for ``margin`` pixels, then linear up to 1 at ``overlap``."""
    weight = torch.ones(size)
    if overlap:
        ramp = torch.zeros(overlap)
        ramp[margin:] = (torch.arange(overlap - margin, dtype=torch.float32) + 0.5) / (overlap - margin)
        if start > 0:
            weight[:overlap] = ramp
        if start + size < length:
            weight[-overlap:] = torch.minimum(weight[-overlap:], ramp.flip(0))
    return weight


def _axis_weights(length: int, tile: int, overlap: int, align: int, margin: int) -> tuple[list[int], list[Tensor], Tensor]:
    starts = tile_starts(length, tile, overlap, align)
    size = _window_size(length, tile, align)
    ramps = [_ramp(s, size, length, overlap, margin) for s in starts]
    total = torch.zeros(starts[-1] + size)
    for s, r in zip(starts, ramps):
        total[s:s + size] += r
    return starts, ramps, total[:length]


def stylize_tiled(
    run: Callable[[Tensor, int, int], Tensor],
    image: np.ndarray,
    tile: int,
    overlap: int,
    progress: bool = True,
    align: int = 1,
    cover: Optional[tuple[int, int]] = None,
    margin: int = 0,
) -> np.ndarray:
    """Stylise an (H, W, 3) uint8 array window by window with ``run`` and blend the windows.

    ``run(window, y, x)`` maps the (1, 3, h, w) window in [0, 1] at (y, x) to its (1, 3, h, w)
    output in [0, 1]. Returns the (H, W, 3) uint8 result. ``overlap`` must be smaller than half
    the tile; ``align`` as in :func:`tile_starts`. ``cover``: the (height, width) the windows
    cover, at least the image's (beyond it they read padding, as the generator pads; default: the image's).
    ``margin``: pixels at each inner window edge whose output is dropped (those that the
    window's own border changes), less than half the overlap.
    """
    if not 0 <= 2 * overlap < tile:
        raise ValueError(f"tile overlap must be >= 0 and less than half the tile size; got tile {tile}, overlap {overlap}")
    if overlap and not 0 <= 2 * margin < overlap:
        raise ValueError(f"the dropped margin must be less than half the overlap; got overlap {overlap}, margin {margin}")
    height, width = image.shape[:2]
    cover_h, cover_w = cover or (height, width)
    ys, ramps_y, total_y = _axis_weights(cover_h, tile, overlap, align, margin)
    xs, ramps_x, total_x = _axis_weights(cover_w, tile, overlap, align, margin)
    total_y, total_x = total_y[:height], total_x[:width]
    th, tw = _window_size(cover_h, tile, align), _window_size(cover_w, tile, align)
    rows_index, cols_index = padded_indices(image, ys[-1] + th, xs[-1] + tw)
    output = np.empty_like(image)
    strip = torch.zeros(3, th, width)  # rows [base, base + th) of the weighted sum
    base = 0

    def flush(end: int) -> None:
        """Rows [base, end) are complete: normalise them and write them as uint8."""
        nonlocal strip, base
        rows = end - base
        done = strip[:, :rows] / (total_y[base:end, None] * total_x[None, :])
        output[base:end] = to_pixels(done)
        strip = torch.cat([strip[:, rows:], torch.zeros(3, rows, width)], dim=1)
        base = end

    bar = tqdm(total=len(ys) * len(xs), desc="tiles", unit="tile", disable=not progress)
    for y, ry in zip(ys, ramps_y):
        flush(min(y, height))
        rows = min(th, height - y)  # the last window may pass the end: its extra rows are dropped
        for x, rx in zip(xs, ramps_x):
            columns = min(tw, width - x)
            result = run(window(image, rows_index, cols_index, y, x, th, tw), y, x)[0].float().cpu()
            weight = ry[:rows, None] * rx[None, :columns]
            strip[:, :rows, x:x + columns] += result[:, :rows, :columns] * weight
            bar.update()
    bar.close()
    flush(height)
    return output


CONTEXT_PIXELS = 1024 * 1024
"""The whole photo's coarse scales run at the finest scale whose maps have at most this many pixels."""


class TiledBody(Protocol):
    """What tiling asks of a pyramid body (``texturenet.model.fused.FusedPyramid`` is one): three parts of a pass, two facts.

    A pass splits at scale ``level``: scales ``level``..K-1 are the context, run once on the whole
    photo; the scales below run per window. ``inputs[k]`` is scale k's input, ``strength`` each
    image's style strength (None without the dial), as for the body itself.
    """

    def context(self, inputs: Sequence[Optional[Tensor]], level: int, strength: Optional[Tensor] = None) -> Tensor:
        """The whole photo's coarse scales: scale ``level``'s map (only ``inputs[level:]`` are read)."""

    def fine(self, context: Tensor, inputs: Sequence[Optional[Tensor]], level: int,
             statistics: Optional[LayerStatistics] = None, strength: Optional[Tensor] = None) -> Tensor:
        """One window's RGB: its fine scales joined onto its crop of the context, instance norm j normalised with ``statistics(j, map)``."""

    def norm_input(self, context: Tensor, inputs: Sequence[Optional[Tensor]], level: int, layer: int,
                   statistics: Optional[LayerStatistics] = None, strength: Optional[Tensor] = None) -> Tensor:
        """What instance norm number ``layer`` of :meth:`fine`'s pass normalises; the pass runs up to there and returns it."""

    def instance_norms(self, level: int) -> int:
        """How many instance norms :meth:`fine` applies (0 for batch norm)."""

    def border_reach(self, level: int) -> int:
        """How far, in full-resolution pixels, a window's own border changes :meth:`fine`'s output."""


class SharedStatistics:
    """Instance-norm statistics of a whole photo, gathered over its tiles, then used by every tile.

    Why: instance norm (Ulyanov, Vedaldi & Lempitsky 2017, Eq. 2) normalises a map by the
    statistics of the whole image; a tile normalised by its own is stretched to the contrast of
    a whole photo, so style strength and colour change from tile to tile.

    How (:meth:`gather`): layer j's statistics depend on how layers < j were normalised, so
    they are gathered in rounds, one layer a round. Round j runs each tile up to layer j
    (:meth:`TiledBody.norm_input`, layers < j normalised with what earlier rounds pooled)
    and adds the statistics of layer j's map over the tile's *core* (its share of a partition of
    the photo into disjoint rectangles). The cores cover the photo once, so the pooled
    statistics are the untiled pass's own, up to float rounding. Every tile is then normalised
    with them (:meth:`__call__`), as an untiled pass normalises the whole photo with one set.
    (One round for all layers, each recorded under the tiles' own statistics for the layers
    before it, left a visible colour shift.)
    """

    def __init__(self) -> None:
        self._pooled: list[tuple[Tensor, Tensor]] = []  # per layer in the order a pass applies them: mean, variance (float64)
        self._complete = False

    def gather(self, passes: Sequence[tuple[Callable[[int, "SharedStatistics"], Tensor], tuple[int, int], tuple[int, int, int, int]]],
               layers: int, progress: bool = True) -> None:
        """Pool ``layers`` layers' statistics over ``passes``: (layer j's input on one tile, its window's (height, width), its core).

        A pass is called as ``norm_input(j, self)``. A core is (top, bottom, left, right) in the
        window's pixels; the cores of all the passes should be disjoint, and the tiles' starts and
        cores multiples of every map's downsampling factor. ``layers`` is the number of instance
        norms a pass applies (:meth:`TiledBody.instance_norms`).
        """
        if self._complete:
            raise RuntimeError("the statistics are already gathered")
        with tqdm(total=layers * len(passes), desc="tile statistics", unit="pass", disable=not progress) as bar:
            for layer in range(layers):
                sums: Optional[tuple[float, Tensor, Tensor]] = None
                for norm_input, size, core in passes:
                    sums = _pooled(sums, _core_of(norm_input(layer, self), size, core))
                    bar.update()
                pixels, mean, squares = sums
                self._pooled.append((mean, squares / pixels))
        self._complete = True

    def __call__(self, index: int, x: Tensor) -> tuple[Tensor, Tensor]:
        """The (mean, variance) with which instance norm number ``index`` of a tile's pass normalises ``x``."""
        if index >= len(self._pooled):
            raise RuntimeError(f"instance norm number {index} of a tile pass has no gathered statistics "
                               f"({len(self._pooled)} gathered; gather them first)")
        mean, variance = self._pooled[index]
        return mean.to(x.dtype).expand(len(x), -1), variance.to(x.dtype).expand(len(x), -1)


def _core_of(x: Tensor, size: tuple[int, int], core: tuple[int, int, int, int]) -> Tensor:
    """The part of map ``x`` (of a ``size`` window, downsampled by some factor) inside the tile's core."""
    (height, width), (top, bottom, left, right) = size, core
    fy, fx = height // x.shape[2], width // x.shape[3]
    if (fy * x.shape[2], fx * x.shape[3]) != (height, width) or any(v % f for v, f in ((top, fy), (bottom, fy), (left, fx), (right, fx))):
        raise ValueError(f"tile core {core} does not align with a {tuple(x.shape[2:])} map of a {size} window")
    return x[..., top // fy:bottom // fy, left // fx:right // fx].contiguous(memory_format=torch.channels_last)


def _pooled(sums: Optional[tuple[float, Tensor, Tensor]], core: Tensor) -> Optional[tuple[float, Tensor, Tensor]]:
    """(pixels, mean, sum of squared deviations) with a core's statistics added (Chan et al.'s pairwise update: no cancellation)."""
    pixels = core.shape[0] * core.shape[2] * core.shape[3]
    if not pixels:
        return sums
    means, variances = (t.double() for t in instance_stats(core))
    mean = means.mean(0)
    variance = (variances + (means - mean) ** 2).mean(0)  # the batch's images pooled (equal pixel counts)
    if sums is None:
        return float(pixels), mean, variance * pixels
    total, pooled_mean, squares = sums
    delta, merged = mean - pooled_mean, total + pixels
    return merged, pooled_mean + delta * (pixels / merged), squares + variance * pixels + delta * delta * (total * pixels / merged)


class _OnDemand(Sequence):
    """A sequence whose item k is ``make(k)``, made when first read: a gathering pass that stops early reads few."""

    def __init__(self, make: Callable[[int], Tensor], length: int) -> None:
        self._make, self._length, self._made = make, length, {}

    def __len__(self) -> int:
        return self._length

    def __getitem__(self, k: int) -> Tensor:
        if k not in self._made:
            self._made[k] = self._make(k)
        return self._made[k]


def tile_cores(starts: list[int], size: int, length: int, align: int) -> list[tuple[int, int]]:
    """Each window's core: disjoint spans that partition [0, length), cut in the middle of each overlap (multiples of ``align``)."""
    cuts = [round((start + size + following) / 2 / align) * align for start, following in zip(starts, starts[1:])]
    bounds = [0, *cuts, length]
    return list(zip(bounds, bounds[1:]))


@dataclass(frozen=True)
class TileLayout:
    """Where the windows of :func:`stylize_with_context` lie on a photo, and why there."""

    level: int
    """Scales ``level``..K-1 run once on the whole photo; the windows run the scales below."""
    tile: int
    """Window side (a multiple of 2^level), at least the asked one and room for two overlaps."""
    overlap: int
    """Least overlap of neighbouring windows: the asked one, or more where ``margin`` needs it."""
    margin: int
    """Pixels at inner window edges that the window's border changes (:meth:`TiledBody.border_reach`): dropped."""
    cover: tuple[int, int]
    """(height, width) the windows cover: the photo padded as an untiled pass pads it."""
    window: tuple[int, int]
    """(height, width) of every window."""
    ys: list[int]
    xs: list[int]
    """Window starts (multiples of 2^level)."""

    @property
    def factor(self) -> int:
        return 2**self.level

    def cores(self) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
        """Rows and columns of the windows' cores (:func:`tile_cores`): a partition of the covered photo."""
        return (tile_cores(self.ys, self.window[0], self.cover[0], self.factor),
                tile_cores(self.xs, self.window[1], self.cover[1], self.factor))

    def statistics_windows(self) -> list[tuple[int, int, int, int, tuple[int, int, int, int]]]:
        """Windows (y, x, height, width, core) for gathering statistics: each core with just the margin it needs around it.

        The cores partition the photo, so their statistics are the photo's (exact). A sample
        of the photo would be cheaper, but a photo's statistics vary from place to place, and
        instance norm turns a few per cent of error in them into a visible colour shift
        (measured: sampling a quarter of a photo in 128-pixel cores shifted it by 28 grey levels).
        Cores are given in window pixels.
        """
        reach = -(-(self.margin + 1) // self.factor) * self.factor  # past the margin, to a multiple of 2^level
        windows = []
        cores_y, cores_x = self.cores()
        for top, bottom in cores_y:
            for left, right in cores_x:
                y, x = max(0, top - reach), max(0, left - reach)
                height, width = min(self.cover[0], bottom + reach) - y, min(self.cover[1], right + reach) - x
                windows.append((y, x, height, width, (top - y, bottom - y, left - x, right - x)))
        return windows


def tile_layout(fast: FastGenerator, height: int, width: int, tile: int, overlap: int) -> TileLayout:
    """The windows for a ``height`` x ``width`` photo, asked for as ``tile``-pixel tiles overlapping by ``overlap``."""
    scales = fast.generator.config.scales
    level = next((k for k in range(1, scales) if -(-height // 2**k) * -(-width // 2**k) <= CONTEXT_PIXELS), scales - 1)
    factor = 2**level
    margin = fast.body.border_reach(level)
    overlap = max(overlap, 2 * (margin + factor))  # cores, cut mid-overlap, then lie past the margins
    tile = max(tile - tile % factor, 2 * overlap + 2 * factor)  # crops of the coarse map must line up with the windows
    cover = fast.generator.plan.padded_size(height, width)
    window_size = (_window_size(cover[0], tile, factor), _window_size(cover[1], tile, factor))
    return TileLayout(level, tile, overlap, margin, cover, window_size,
                      tile_starts(cover[0], tile, overlap, factor), tile_starts(cover[1], tile, overlap, factor))


def max_windows(height: int, width: int) -> int:
    """The most windows a tiled pass of a ``height`` x ``width`` photo may use: a lower bound on the work a window does.

    Why: every window costs one generator pass per instance norm to gather statistics and one
    more to stylise (:func:`stylize_with_context`), and each pass has a fixed cost that small
    windows do not pay back. Measured on one core, a 534x356 photo: untiled 1.4 s, 256-pixel
    tiles 3.7 s, 64-pixel tiles 9.0 s; a 1600x1068 photo in 64-pixel tiles planned 900 windows,
    7200 statistics passes, and was not done after 120 s where the untiled pass took 37 s
    (issue 21, case 16). Tiles exist to bound memory, which 256-pixel windows already do.
    """
    return max(FEW_WINDOWS, height * width // PIXELS_PER_WINDOW)


def tile_work(fast: FastGenerator, height: int, width: int, tile: int) -> tuple[int, int]:
    """(windows, generator passes) of :func:`stylize_with_context` on a ``height`` x ``width`` photo in ``tile``-pixel tiles."""
    layout = tile_layout(fast, height, width, tile, tile // 8)
    windows = len(layout.ys) * len(layout.xs)
    return windows, windows * (fast.body.instance_norms(layout.level) + 1)


def smallest_tile(fast: FastGenerator, height: int, width: int, tile: int = 64) -> int:
    """The least tile size from ``tile`` up (in steps of 64) within :func:`max_windows` for this photo.

    The automatic tile size is ``smallest_tile(..., AUTO_TILE)``, so it always keeps within the bound
    (for any photo that load_rgb accepts, that is AUTO_TILE itself).
    """
    while tile_work(fast, height, width, tile)[0] > max_windows(height, width):
        tile += 64
    return tile


def stylize_with_context(
    fast: FastGenerator,
    image: np.ndarray,
    tile: int,
    overlap: Optional[int] = None,
    strength: float = 1.0,
    rng: Optional[torch.Generator] = None,
    progress: bool = True,
) -> np.ndarray:
    """Tiled stylisation that computes, as far as memory allows, what an untiled pass computes.

    Why: a tile run alone sees only itself at its coarse scales, instance norm normalises each
    of its maps by the tile's own statistics, and its noise is its own, so the style's strength
    and colour change from tile to tile. Four things make tiles agree with the untiled pass
    (:func:`tile_layout` places them):

    * **Coarse scales from the whole photo.** The pyramid (Ulyanov et al. 2016, Sec. 3.1) makes
      this cheap: scale k sees the photo pooled by 2^k, so scales ``level``..K-1 of the whole
      photo fit in memory (:data:`CONTEXT_PIXELS`). They run once (:meth:`TiledBody.context`);
      each tile runs only the fine scales below ``level`` on its window and joins them onto its
      crop of the shared coarse map (:meth:`TiledBody.fine`). Windows start at multiples
      of 2^level so that the crops line up, and cover the photo padded as an untiled pass pads it.
    * **The whole photo's statistics** for the fine scales' instance norms, gathered layer by
      layer (:class:`SharedStatistics`) over the tiles' cores, which partition the photo
      (:meth:`TileLayout.statistics_windows`). This costs two to four more passes over the photo.
    * **Noise that is a function of position** (``texturenet.model.noise.PositionalNoise``), so overlapping tiles
      agree; the coarse scales' noise is drawn once for the whole photo.
    * **Margins**: what a window's own border changes is dropped, so only pixels that the
      untiled pass would compute are blended.

    ``strength``: as in the generator's forward. ``rng`` draws the coarse scales' noise and the tiles' noise
    seed (default: torch's global RNG). ``overlap``: the least overlap of neighbouring tiles asked for (default:
    an eighth of the tile); :func:`tile_layout` widens it where the margins need more.
    """
    network = fast.generator  # the input plan, noise and strengths
    body: TiledBody = fast.body  # the pass, through the tiling interface alone
    device = network.to_rgb.weight.device
    height, width = image.shape[:2]
    layout = tile_layout(fast, height, width, tile, tile // 8 if overlap is None else overlap)
    level, factor, (padded_h, padded_w) = layout.level, layout.factor, layout.cover
    rows, cols = padded_indices(image, padded_h, padded_w)
    strips = []  # the padded photo pooled to scale ``level``, a strip of rows at a time (never all of it in float)
    for y in range(0, padded_h, 64 * factor):
        strips.append(F.avg_pool2d(to_tensor(image[np.ix_(rows[y:y + 64 * factor], cols)])[None], factor))
    scaled = torch.cat(strips, dim=2).to(device)
    strengths = network.strengths(strength, device)
    context = body.context([None] * level + network.inputs(scaled, IndependentNoise(rng), strength, first=level), level, strengths)
    del scaled
    rng_device = rng.device if rng is not None else torch.device("cpu")
    noise = PositionalNoise(int(torch.randint(0, 2**62, (1,), generator=rng, device=rng_device).item()))  # the tiles' noise

    def tile_inputs(window: Tensor, y: int, x: int) -> tuple[Tensor, Sequence[Tensor]]:
        """The window's crop of the coarse map, and its fine scales' inputs (made when the pass reads them)."""
        h, w = window.shape[-2:]
        crop = context[..., y // factor:(y + h) // factor, x // factor:(x + w) // factor].contiguous(memory_format=torch.channels_last)
        pooled = network.plan.pool(window.to(device), level)
        return crop, _OnDemand(lambda k: network.scale_input(pooled[k], k, noise, strength, y >> k, x >> k), level)

    def norm_input(y: int, x: int, height: int, width: int, layer: int, statistics: SharedStatistics) -> Tensor:
        crop, inputs = tile_inputs(window(image, rows, cols, y, x, height, width), y, x)
        return body.norm_input(crop, inputs, level, layer, statistics, strengths)

    passes = [(partial(norm_input, y, x, height, width), (height, width), core)
              for y, x, height, width, core in layout.statistics_windows()]
    statistics = SharedStatistics()
    statistics.gather(passes, body.instance_norms(level), progress)

    def run(window: Tensor, y: int, x: int) -> Tensor:
        return body.fine(*tile_inputs(window, y, x), level, statistics, strengths)

    return stylize_tiled(run, image, layout.tile, layout.overlap, progress, align=factor, cover=layout.cover,
                         margin=layout.margin)
