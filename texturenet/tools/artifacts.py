"""Blotch check: how much a few spiking pixels set a generator's instance-norm statistics.

The blotches of the documented CPU recipe (oval blobs at the same places at every strength,
docs/QUALITY.md "Blotches") are the "droplet" artefact of Karras et al. 2020 (StyleGAN2, Sec. 2):
the generator puts a strong localised spike into a feature map, and the instance norm that
follows divides the whole channel by a standard deviation the spike inflates, scaling down
everything else. Measured on the held-out photos, about 1.5% of the pixels of the pyramid's
finest join held |z| > 4 and made its worst channel's standard deviation 2.5 times what the
other 98.5% give (2.0-3.6 over the six photos and strengths 0, 1, 2); an untrained pyramid, which has no
blobs, scores 1.2-1.5 on the same photos (its coarse maps have few pixels), a smooth map about 1.0.
They came with six scales on 128-px crops (coarsest training maps 4x4 and 8x8); the same recipe
with four scales (coarsest 16x16) had none and scored 1.5.

:func:`spike_ratio` is that ratio for one feature map; :func:`norm_spikes` hooks every instance
norm of a generator and measures it on a photo. A picture-based measure was tried first and left
out: a style recolours the photo so much that no luminance comparison with it separated the blobs
from the style's own dark areas (docs/QUALITY.md).
"""
from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor, nn

from ..model.noise import IndependentNoise

SPIKE_Z = 4.0
"""A pixel of a channel farther than this many standard deviations from the channel's mean is a spike."""
BLOTCHED = 1.8
"""A model whose worst norm has a spike ratio above this blotches (measured on the held-out photos: 2.0-3.6 blotched, 1.2-1.5 untrained)."""


def spike_ratio(features: Tensor) -> Tensor:
    """(N, C, H, W) -> (N,): per image, the largest over channels of std(all pixels) / std(pixels with |z| <= SPIKE_Z).

    1 when no pixel spikes (a Gaussian map of 10^4 pixels: about 1.0); above 1 by as much as
    the spikes inflate the statistic an instance norm divides by.
    """
    flat = features.detach().float().flatten(2)  # (N, C, HW)
    mean = flat.mean(2, keepdim=True)
    std = flat.std(2, keepdim=True).clamp_min(1e-12)
    rest = (flat - mean).abs() <= SPIKE_Z * std
    count = rest.sum(2, keepdim=True).clamp_min(2)
    rest_mean = (flat * rest).sum(2, keepdim=True) / count
    rest_std = (((flat - rest_mean) * rest).pow(2).sum(2, keepdim=True) / (count - 1)).sqrt().clamp_min(1e-12)
    return (std / rest_std).squeeze(2).amax(1)


@torch.no_grad()
def norm_spikes(generator: nn.Module, photo: Tensor, strength: float = 1.0, seed: int = 0) -> dict[str, float]:
    """Stylise ``photo`` (1, 3, H, W) once and return :func:`spike_ratio` at the input of every instance norm, by module name."""
    ratios: dict[str, float] = {}
    hooks = [module.register_forward_hook(lambda _m, args, _out, name=name: ratios.__setitem__(name, float(spike_ratio(args[0]).max())))
             for name, module in generator.named_modules() if isinstance(module, nn.InstanceNorm2d)]
    try:
        generator(photo, strength=strength, noise=IndependentNoise(torch.Generator(device=photo.device).manual_seed(seed)))
    finally:
        for hook in hooks:
            hook.remove()
    return ratios


def blotch_report(generator: nn.Module, photos: list[Tensor], strengths: list[float], seed: int = 0) -> dict[str, float]:
    """Mean over ``photos`` ((3, H, W) each) of the worst norm's spike ratio, per strength (``"nf 1"``): texturenet-evaluate's blotch check."""
    return {f"nf {strength:g}": sum(worst(norm_spikes(generator, photo.unsqueeze(0), strength, seed))[1] for photo in photos) / len(photos)
            for strength in strengths}


def worst(ratios: dict[str, float]) -> tuple[Optional[str], float]:
    """The norm with the largest spike ratio and that ratio ((None, 1.0) for a generator without instance norms)."""
    if not ratios:
        return None, 1.0
    name = max(ratios, key=ratios.__getitem__)
    return name, ratios[name]
