"""The pyramid generator: sizes, parameter count, noise, determinism, seamless textures."""
from __future__ import annotations

import pytest
import torch

from texturenet.model.noise import IndependentNoise
from texturenet.config import GeneratorConfig
from texturenet.model.pyramid import PyramidGenerator


def expected_parameters(config: GeneratorConfig) -> int:
    """Parameter count written out from the paper's description (Fig. 2), independently of the code."""
    def conv(c_in: int, c_out: int, k: int) -> int:
        return c_in * c_out * k * k + c_out

    # An affine norm has 2 parameters per channel; conditioned on the style strength, 2 more (scale and shift slopes).
    affine = 4 if config.max_strength else 2

    def block(c_in: int, c_out: int) -> int:  # 3x3, 3x3, 1x1, each with an affine norm
        return conv(c_in, c_out, 3) + conv(c_out, c_out, 3) + conv(c_out, c_out, 1) + 3 * affine * c_out

    c, k = config.channels, config.scales
    branches = k * block(config.image_channels + config.noise_depth, c)
    joins = sum(affine * c * (i + 1) + affine * c + block(c * (i + 2), c * (i + 2)) for i in range(k - 1))
    return branches + joins + conv(c * k, 3, 1)


@pytest.mark.parametrize("config", [
    GeneratorConfig(),
    GeneratorConfig(max_strength=0),
    GeneratorConfig(norm="batch", scales=4, channels=6),
    GeneratorConfig(mode="texture", padding="circular", noise_depth=5),
])
def test_parameter_count_matches_the_architecture(config: GeneratorConfig) -> None:
    generator = PyramidGenerator(config)
    assert sum(p.numel() for p in generator.parameters()) == expected_parameters(config)


def test_default_pyramid_has_six_scales_and_48_channels_at_the_finest_join() -> None:
    generator = PyramidGenerator(GeneratorConfig())
    assert len(generator.branches) == 6 and generator.to_rgb.in_channels == 48


@pytest.mark.parametrize("height,width", [(333, 517), (32, 32), (7, 10), (1, 1), (65, 31)])
def test_any_photo_size_comes_out_the_same_size(height: int, width: int) -> None:
    generator = PyramidGenerator(GeneratorConfig()).eval()
    with torch.no_grad():
        out = generator(torch.rand(2, 3, height, width))
    assert out.shape == (2, 3, height, width)
    assert torch.isfinite(out).all()


def test_noise_factor_zero_is_deterministic_and_noise_changes_the_output() -> None:
    generator = PyramidGenerator(GeneratorConfig()).eval()
    photo = torch.rand(1, 3, 64, 80)
    with torch.no_grad():
        a, b = generator(photo, strength=0), generator(photo, strength=0)
        c, d = generator(photo, strength=1), generator(photo, strength=1)
        e = generator(photo, strength=1, noise=IndependentNoise(torch.Generator().manual_seed(3)))
        f = generator(photo, strength=1, noise=IndependentNoise(torch.Generator().manual_seed(3)))
    assert torch.equal(a, b)
    assert not torch.allclose(c, d)  # fresh noise at every forward pass
    assert torch.equal(e, f)  # same seed, same picture
    assert not torch.allclose(a, c)


def test_padding_defaults_by_mode_where_the_config_is_made() -> None:
    """Texture models pad circularly (samples tile seamlessly) without anyone choosing it; photos reflect."""
    assert GeneratorConfig(mode="texture").padding == "circular"
    assert GeneratorConfig().padding == "reflect"
    assert GeneratorConfig(mode="texture", padding="zeros").padding == "zeros"


def test_texture_mode_samples_non_square_sizes() -> None:
    generator = PyramidGenerator(GeneratorConfig(mode="texture", padding="circular")).eval()
    with torch.no_grad():
        assert generator(size=(70, 101), batch=3).shape == (3, 3, 70, 101)
    with pytest.raises(ValueError):
        generator(torch.rand(1, 3, 8, 8))  # texture models take no photo... but need a size


def _tiled_equals_sample_on_doubled_noise(padding: str) -> bool:
    """Seamless tiling, exactly: the network's output on 2x2-tiled noise equals the 2x2-tiled output.

    If it holds, the pixels across every tile edge are exactly those the network draws in the
    interior of a larger texture: opposite edges of one sample continue each other.
    """
    torch.manual_seed(0)
    generator = PyramidGenerator(GeneratorConfig(mode="texture", padding=padding, scales=4)).eval()
    noise = generator.noise_inputs(1, 64, 96, IndependentNoise())
    with torch.no_grad():
        tile = generator.body(noise)
        big = generator.body([n.repeat(1, 1, 2, 2) for n in noise])
    return torch.allclose(big, tile.repeat(1, 1, 2, 2), atol=1e-4)


def test_circular_padding_makes_textures_tile_seamlessly() -> None:
    assert _tiled_equals_sample_on_doubled_noise("circular")


def test_the_seamless_check_detects_seams_with_other_padding() -> None:
    assert not _tiled_equals_sample_on_doubled_noise("zeros")
    assert not _tiled_equals_sample_on_doubled_noise("reflect")


def test_batch_norm_generator_uses_running_statistics_at_inference() -> None:
    generator = PyramidGenerator(GeneratorConfig(norm="batch"))
    generator.train()
    generator(torch.rand(4, 3, 32, 32))
    generator.eval()
    with torch.no_grad():
        single = generator(torch.rand(1, 3, 32, 32), strength=0)
    assert torch.isfinite(single).all() and single.std() > 0
