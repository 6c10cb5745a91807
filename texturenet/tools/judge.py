"""A second judge: how much a picture looks like the style, measured without the loss network.

The training objective and the quality report's style and content losses come from the same
network, so a model can lower them without looking more like the style. These two measures are
defined by nothing the loss network computes; both compare distributions of the picture with those
of the style image, by the sliced Wasserstein distance (Rabin, Peyré, Delon & Bernot 2011: the
optimal-transport distance between the distributions' 1-D projections, averaged over directions):

* **colour**: the pixels' colours in CIE L*a*b* (sRGB -> linear RGB -> XYZ (D65) -> L*a*b*, the
  standard formulas of IEC 61966-2-1 and CIE 15), in L*a*b* units (a distance of ~2.3 is a just
  noticeable difference). It ignores where the colours are: a palette measure.
* **texture**: the joint responses of a small fixed filter bank on the luminance L*: at each of
  three octaves of a Gaussian pyramid, the Laplacian band and oriented first derivatives at
  0, 45, 90 and 135 degrees (the oriented multi-scale subbands whose marginal statistics Heeger &
  Bergen 1995 match to synthesise a texture, and whose joint statistics Portilla & Simoncelli 2000
  use to describe one), in L* units per pixel, averaged over the octaves. It ignores colour and
  depends on scale: the picture and the style image must show the style at the same scale (the
  style image resized as training resized it, ``style_size``), and a finer or coarser copy of the
  style's cells scores higher.

Both are 0 for the style image against itself and grow as a picture departs from it. Pixels are
subsampled (at most ``SAMPLES`` per image) and the projections are a fixed seeded set, so a score
is a deterministic function of the two images.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

PROJECTIONS = 64
"""Random directions per sliced Wasserstein distance (a fixed seeded set)."""
SAMPLES = 8192
"""Pixels (or filter-bank positions) taken per image and octave at most, a fixed seeded subsample."""
OCTAVES = 3
"""Octaves of the texture filter bank: the picture at full, half and quarter resolution."""
SEED = 0
"""Seed of the projections and of the subsample: a score depends on the two images alone."""

_XYZ_FROM_LINEAR_SRGB = torch.tensor([[0.4124564, 0.3575761, 0.1804375],
                                      [0.2126729, 0.7151522, 0.0721750],
                                      [0.0193339, 0.1191920, 0.9503041]], dtype=torch.float32)
"""IEC 61966-2-1 (sRGB, D65 white)."""
_D65_WHITE = torch.tensor([0.95047, 1.0, 1.08883], dtype=torch.float32)


def srgb_to_lab(image: Tensor) -> Tensor:
    """(3, H, W) sRGB in [0, 1] -> (3, H, W) CIE L*a*b* (D65), float32: L* in 0..100, a*, b* about -128..127."""
    rgb = image.float().clamp(0, 1)
    linear = torch.where(rgb <= 0.04045, rgb / 12.92, ((rgb + 0.055) / 1.055) ** 2.4)
    xyz = torch.einsum("ij,jhw->ihw", _XYZ_FROM_LINEAR_SRGB, linear) / _D65_WHITE[:, None, None]
    delta = 6 / 29
    f = torch.where(xyz > delta**3, xyz.clamp(min=delta**3) ** (1 / 3), xyz / (3 * delta**2) + 4 / 29)
    return torch.stack([116 * f[1] - 16, 500 * (f[0] - f[1]), 200 * (f[1] - f[2])])


def _subsample(points: Tensor, rng: torch.Generator) -> Tensor:
    """(N, D) -> at most SAMPLES of its rows, a seeded choice without replacement."""
    if len(points) <= SAMPLES:
        return points
    return points[torch.randperm(len(points), generator=rng)[:SAMPLES]]


def _quantiles(values: Tensor, count: int) -> Tensor:
    """(P, N) sorted along N -> (P, count): the values at the quantiles (k + 1/2) / count, linearly interpolated."""
    n = values.shape[1]
    position = ((torch.arange(count, dtype=torch.float32) + 0.5) * n / count - 0.5).clamp(0, n - 1)
    low = position.floor().long()
    high = position.ceil().long()
    weight = position - low
    return values[:, low] * (1 - weight) + values[:, high] * weight


def sliced_wasserstein(a: Tensor, b: Tensor) -> float:
    """The sliced 2-Wasserstein distance between two point clouds (N, D) and (M, D), in their units.

    Both are subsampled to at most SAMPLES points and projected on PROJECTIONS fixed random unit
    directions; for each direction the 2-Wasserstein distance of the two 1-D distributions is the
    root mean square difference of their quantiles; the result is the root of the mean over directions.
    """
    rng = torch.Generator().manual_seed(SEED)
    directions = torch.randn(PROJECTIONS, a.shape[1], generator=rng, dtype=torch.float32)
    directions /= directions.norm(dim=1, keepdim=True)
    a, b = (_subsample(points.float(), torch.Generator().manual_seed(SEED + 1)) for points in (a, b))  # same size: same rows
    projected_a, _ = (directions @ a.T).sort(dim=1)  # (P, N): each direction's sorted projections
    projected_b, _ = (directions @ b.T).sort(dim=1)
    count = max(len(a), len(b))
    return math.sqrt(float(((_quantiles(projected_a, count) - _quantiles(projected_b, count)) ** 2).double().mean()))


def colour_distance(picture: Tensor, style: Tensor) -> float:
    """Sliced Wasserstein distance between the L*a*b* colours of two (3, H, W) sRGB images in [0, 1] (any sizes)."""
    return sliced_wasserstein(srgb_to_lab(picture).flatten(1).T, srgb_to_lab(style).flatten(1).T)


def _filter_bank() -> Tensor:
    """(5, 1, 3, 3): the Laplacian, then first derivatives (central differences) along 0, 45, 90 and 135 degrees."""
    dx = torch.tensor([[0.0, 0.0, 0.0], [-0.5, 0.0, 0.5], [0.0, 0.0, 0.0]], dtype=torch.float32)
    dy = dx.T.flip(0)  # upwards: rows grow downwards in an image
    laplacian = torch.tensor([[0.0, 1.0, 0.0], [1.0, -4.0, 1.0], [0.0, 1.0, 0.0]], dtype=torch.float32)
    oriented = [math.cos(angle) * dx + math.sin(angle) * dy for angle in (0, math.pi / 4, math.pi / 2, 3 * math.pi / 4)]
    return torch.stack([laplacian, *oriented])[:, None]


_BLUR = torch.tensor([1.0, 4.0, 6.0, 4.0, 1.0], dtype=torch.float32) / 16
"""Burt & Adelson's binomial kernel: the Gaussian pyramid's blur before each halving."""


def filter_responses(image: Tensor) -> list[Tensor]:
    """(3, H, W) sRGB -> per octave, (N, 5) filter-bank responses on L* at every position (edges reflected)."""
    luminance = srgb_to_lab(image)[:1][None]  # (1, 1, H, W)
    bank = _filter_bank()
    blur = (_BLUR[:, None] * _BLUR[None, :])[None, None]
    responses = []
    for octave in range(OCTAVES):
        if octave:
            if min(luminance.shape[-2:]) < 8:
                break
            luminance = F.conv2d(F.pad(luminance, (2, 2, 2, 2), mode="reflect"), blur)[..., ::2, ::2]
        responses.append(F.conv2d(F.pad(luminance, (1, 1, 1, 1), mode="reflect"), bank)[0].flatten(1).T)
    return responses


def texture_distance(picture: Tensor, style: Tensor) -> float:
    """Mean over octaves of the sliced Wasserstein distance between the two images' filter-bank responses.

    Both (3, H, W) sRGB images must show the style at the same scale (see the module docstring).
    """
    pairs = list(zip(filter_responses(picture), filter_responses(style)))
    return sum(sliced_wasserstein(a, b) for a, b in pairs) / len(pairs)


def judge(picture: Tensor, style: Tensor) -> dict[str, float]:
    """Both measures of a (3, H, W) picture against the (3, H, W) style image, as the report's columns."""
    return {"colour": colour_distance(picture, style), "texture": texture_distance(picture, style)}
