"""Where the generator's noise comes from: a source each caller picks, so the model holds no RNG state.

Ulyanov et al. 2016 (Sec. 3.1) feed every scale of the pyramid uniform noise beside the pooled
photo (texture mode: noise alone); the strength (``--noise_factor``) scales it. Who draws it, and
how, depends on the caller, not on the model:

* :class:`IndependentNoise`: fresh noise per image (training, stylising a photo);
* :class:`SharedNoise`: one field for the whole batch, the one a batch of one would get (video
  frames keep a steady texture; batching a folder never changes a picture);
* :class:`ShardedNoise`: data-parallel training, each rank keeps its rows of the global batch's noise;
* :class:`PositionalNoise`: a fixed function of position, so overlapping tiles agree.

A source returns noise already multiplied by the strength (a number, or a (n, 1, 1, 1) tensor of
one per image: training's sampled strengths), (n, depth, height, width), drawn in the order the
input plan asks for it (scale 0 first), which is what makes a ``--seed`` give the same picture
as before sources existed.
"""
from __future__ import annotations

from typing import Optional, Protocol, Union

import numpy as np
import torch
from torch import Tensor

from .rank import Rank


Strength = Union[float, Tensor]
"""A strength: one number for the batch, or a tensor of one per image (training's sampled strengths)."""


class NoiseSource(Protocol):
    def __call__(self, scale: int, n: int, height: int, width: int, *, depth: int, strength: Strength,
                 device: torch.device, dtype: torch.dtype, top: int = 0, left: int = 0) -> Tensor:
        """Scale ``scale``'s noise times ``strength``: (n, depth, height, width), at (top, left) of that scale's map."""


class IndependentNoise:
    """Uniform noise, independent for every image, from ``rng`` (default: torch's global RNG)."""

    def __init__(self, rng: Optional[torch.Generator] = None) -> None:
        self.rng = rng

    def __call__(self, scale: int, n: int, height: int, width: int, *, depth: int, strength: Strength,
                 device: torch.device, dtype: torch.dtype, top: int = 0, left: int = 0) -> Tensor:
        return torch.rand(n, depth, height, width, device=device, dtype=dtype, generator=self.rng) * strength


class SharedNoise(IndependentNoise):
    """One noise field for every image of a batch: the field a batch of one would draw."""

    def __call__(self, scale: int, n: int, height: int, width: int, *, depth: int, strength: Strength,
                 device: torch.device, dtype: torch.dtype, top: int = 0, left: int = 0) -> Tensor:
        field = super().__call__(scale, 1, height, width, depth=depth, strength=1.0, device=device, dtype=dtype)
        return (field * strength).expand(n, -1, -1, -1)


class ShardedNoise(IndependentNoise):
    """``rank``'s share: draws the global batch's noise and keeps its own rows (``texturenet.training.distributed``).

    Every rank draws the same numbers from the same seeded RNG, so ranks see independent noise,
    their RNGs stay in step, and a one-process run (rank 0 of 1) is :class:`IndependentNoise`.
    """

    def __init__(self, rank: Rank, rng: Optional[torch.Generator] = None) -> None:
        super().__init__(rng)
        self.rank = rank

    def __call__(self, scale: int, n: int, height: int, width: int, *, depth: int, strength: Strength,
                 device: torch.device, dtype: torch.dtype, top: int = 0, left: int = 0) -> Tensor:
        rows = super().__call__(scale, n * self.rank.world_size, height, width, depth=depth, strength=1.0, device=device, dtype=dtype)
        return rows[self.rank.block(n)] * strength


NOISE_BLOCK = 128
"""Positional noise is drawn in blocks of this many pixels (of its scale), each from a seed of its own."""


def positional_noise(seed: int, scale: int, top: int, left: int, height: int, width: int, depth: int) -> Tensor:
    """(1, depth, height, width) uniform noise in [0, 1) at (top, left) of scale ``scale``: a fixed function of position.

    Why: overlapping tiles then see the same noise where they overlap, so a blend mixes two
    views of one texture rather than two different textures (which would fade the texture
    along every seam), and the picture does not depend on the tile size. Each block comes from
    its own PCG64 stream, keyed by (seed, scale, block row, block column).
    """
    out = np.empty((1, depth, height, width), dtype=np.float32)
    b = NOISE_BLOCK
    for by in range(top // b, -(-(top + height) // b)):
        for bx in range(left // b, -(-(left + width) // b)):
            block = np.random.Generator(np.random.PCG64([seed, scale, by, bx])).random((depth, b, b), dtype=np.float32)
            y0, y1 = max(top, by * b), min(top + height, (by + 1) * b)
            x0, x1 = max(left, bx * b), min(left + width, (bx + 1) * b)
            out[0, :, y0 - top:y1 - top, x0 - left:x1 - left] = block[:, y0 - by * b:y1 - by * b, x0 - bx * b:x1 - bx * b]
    return torch.from_numpy(out)


class PositionalNoise:
    """:func:`positional_noise` from ``seed``: the same numbers wherever two tiles overlap (one image per call)."""

    def __init__(self, seed: int) -> None:
        self.seed = seed

    def __call__(self, scale: int, n: int, height: int, width: int, *, depth: int, strength: Strength,
                 device: torch.device, dtype: torch.dtype, top: int = 0, left: int = 0) -> Tensor:
        if isinstance(strength, (float, int)) and not strength:  # no need to draw what is multiplied by 0
            return torch.zeros(n, depth, height, width, device=device, dtype=dtype)
        noise = positional_noise(self.seed, scale, top, left, height, width, depth)
        return (noise.to(device=device, dtype=dtype) * strength).expand(n, -1, -1, -1)
