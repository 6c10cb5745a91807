"""The blotch check (texturenet/tools/artifacts.py): spikes that steer an instance norm score high, clean maps low."""
from __future__ import annotations

import pytest
import torch

from texturenet.tools.artifacts import BLOTCHED, norm_spikes, spike_ratio, worst
from texturenet.config import GeneratorConfig
from texturenet.model.pyramid import PyramidGenerator


def _smooth(seed: int, size: int = 96) -> torch.Tensor:
    """(1, 4, size, size) a feature map without blobs: noise smoothed a little, like a conv layer's output."""
    noise = torch.randn(1, 4, size, size, generator=torch.Generator().manual_seed(seed))
    return torch.nn.functional.avg_pool2d(noise, 3, stride=1, padding=1)


@pytest.mark.parametrize("seed", range(3))
def test_a_map_without_blobs_scores_about_one(seed: int) -> None:
    assert spike_ratio(_smooth(seed)).item() < 1.15


@pytest.mark.parametrize("seed, sign", [(0, 1), (1, 1), (2, -1)])
def test_a_blob_that_steers_the_norm_scores_above_the_limit(seed: int, sign: int) -> None:
    """An oval blob on 1.4% of one channel, 15 standard deviations up or down (the blotched model's finest join: 1.5%, ratio 2.5)."""
    features = _smooth(seed)
    std = features[0, 2].std()
    rows, cols = torch.meshgrid(torch.arange(96.0), torch.arange(96.0), indexing="ij")
    blob = ((rows - 30) / 8) ** 2 + ((cols - 60) / 5) ** 2 <= 1  # ~125 of 9216 pixels
    features[0, 2][blob] += sign * 15 * std
    assert spike_ratio(features).item() > BLOTCHED
    assert spike_ratio(features[:, [0, 1, 3]]).item() < 1.15  # the other channels are untouched


def test_every_instance_norm_of_a_generator_is_measured() -> None:
    generator = PyramidGenerator(GeneratorConfig(scales=3)).eval()
    norms = [name for name, module in generator.named_modules() if isinstance(module, torch.nn.InstanceNorm2d)]
    ratios = norm_spikes(generator, torch.rand(1, 3, 64, 48), strength=1.0)
    assert sorted(ratios) == sorted(norms)
    name, ratio = worst(ratios)
    assert name in norms and ratio == max(ratios.values()) >= 1.0
    assert not any(hook for module in generator.modules() for hook in module._forward_hooks.values())  # hooks removed
