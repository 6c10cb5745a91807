"""Johnson, Alahi & Fei-Fei 2016's residual image-transformation network, with instance norm: ``--generator johnson``.

The architecture of their supplementary material (Table 1), as texture_nets trains it with ``-model johnson``
and as Ulyanov, Vedaldi & Lempitsky 2017 ("Instance Normalization", Sec. 3) improve it: a 9x9 convolution
at full resolution, two 3x3 stride-2 convolutions down to 1/4, five residual blocks there (3x3 conv, norm,
ReLU, 3x3 conv, norm, plus the input; no ReLU after the sum, as in Gross & Wilber's blocks that Johnson et al.
use), two x2 nearest-neighbour upsamplings each followed by a 3x3 convolution (resize-convolution, Odena,
Dumoulin & Olah 2016: no checkerboard artifacts, which transposed convolutions make), and a 9x9 convolution
to RGB. Every convolution but the last is followed by a norm and the activation; padding is the config's
(reflection for photos). The width ``W`` (``GeneratorConfig.channels``) is the residual blocks' channels;
the stages have W/4, W/2 and W (Johnson et al.: 32, 64, 128, i.e. W = 128).

Conditioned on the style strength and fed noise exactly as the pyramid (model/pyramid.py): every norm is a
:class:`~texturenet.model.pyramid.InstanceNorm` (two affine sets, interpolated by the strength), and the
photo, padded by the pyramid's :class:`~texturenet.model.pyramid.InputPlan` to a multiple of 4 (so the two
downsamplings divide exactly), gets ``noise_depth`` channels of uniform noise scaled by the strength
(``--noise_factor``, which without the dial only scales the noise). The body takes the pyramid body's
arguments (a list of per-scale inputs, here one, and the strength), so that export composes it the same way.
"""
from __future__ import annotations

from typing import List, Optional

import torch.nn.functional as F
from torch import Tensor, nn

from ..config import GeneratorConfig
from .pyramid import InputPlan, PyramidGenerator, _act, _norm, per_image, plus_photo, zero_last_layer
from .noise import IndependentNoise, NoiseSource, Strength

RESIDUAL_BLOCKS = 5
"""Johnson et al.'s five residual blocks (supplementary Table 1)."""
DOWNSAMPLINGS = 2
"""Two stride-2 convolutions: the residual blocks work at 1/4 resolution."""


class ConvLayer(nn.Module):
    """Convolution, then a norm that takes the strength, then the activation."""

    def __init__(self, config: GeneratorConfig, c_in: int, c_out: int, kernel: int, stride: int = 1) -> None:
        super().__init__()
        self.conv = nn.Conv2d(c_in, c_out, kernel, stride=stride, padding=kernel // 2, padding_mode=config.padding)
        self.norm = _norm(config, c_out)
        self.act = _act(config)

    def forward(self, x: Tensor, strength: Optional[Tensor] = None) -> Tensor:
        return self.act(self.norm(self.conv(x), strength))


class ResidualBlock(nn.Module):
    """x + norm(conv(act(norm(conv(x))))): Johnson et al.'s residual block (two 3x3 convolutions, nothing after the sum)."""

    def __init__(self, config: GeneratorConfig, channels: int) -> None:
        super().__init__()
        self.conv1 = ConvLayer(config, channels, channels, 3)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1, padding_mode=config.padding)
        self.norm2 = _norm(config, channels)

    def forward(self, x: Tensor, strength: Optional[Tensor] = None) -> Tensor:
        return x + self.norm2(self.conv2(self.conv1(x, strength)), strength)


class Upsample(nn.Module):
    """x2 nearest-neighbour upsampling, then a 3x3 ConvLayer (resize-convolution, not a transposed convolution).

    Upsampled to the size of the downsampling path's map at that resolution (exactly x2, the input being padded to a
    multiple of 4), not by a factor: an exported graph then knows the two sizes are equal (by a factor, onnxruntime's
    buffer reuse met sizes the exporter had declared equal and failed on most sizes).
    """

    def __init__(self, config: GeneratorConfig, c_in: int, c_out: int) -> None:
        super().__init__()
        self.layer = ConvLayer(config, c_in, c_out, 3)

    def forward(self, x: Tensor, size: List[int], strength: Optional[Tensor] = None) -> Tensor:
        """``x`` upsampled to ``size`` (height, width), then the convolution."""
        return self.layer(F.interpolate(x, size=size, mode="nearest"), strength)


class JohnsonBody(nn.Module):
    """The network itself: the padded photo with its noise channels -> RGB. Its state dict is the checkpoint's; scriptable."""

    def __init__(self, config: GeneratorConfig) -> None:
        super().__init__()
        width = config.channels
        assert width is not None
        quarter, half = width // 4, width // 2
        self.down = nn.ModuleList([
            ConvLayer(config, config.image_channels + config.noise_depth, quarter, 9),
            ConvLayer(config, quarter, half, 3, stride=2),
            ConvLayer(config, half, width, 3, stride=2),
        ])
        self.residuals = nn.ModuleList(ResidualBlock(config, width) for _ in range(RESIDUAL_BLOCKS))
        self.up = nn.ModuleList([Upsample(config, width, half), Upsample(config, half, quarter)])
        self.to_rgb = nn.Conv2d(quarter, 3, 9, padding=4, padding_mode=config.padding)
        self.residual = config.residual
        """The output is the photo plus the network's (generator.plus_photo)."""
        self.fade = config.faded_at
        """The strength at which the photo's share has faded to 0 (pyramid.plus_photo); 0: no fading."""
        if self.residual:
            zero_last_layer(self.to_rgb)

    def forward(self, inputs: List[Tensor], strength: Optional[Tensor] = None) -> Tensor:
        """``inputs``: one tensor, the padded photo and its noise (a list, the pyramid body's call); ``strength`` (N,) or (1,)."""
        x = inputs[0]
        sizes: List[List[int]] = []  # each resolution's size on the way down, for the upsampling back to it
        for layer in self.down:
            x = layer(x, strength)
            sizes.append([x.shape[2], x.shape[3]])
        for block in self.residuals:
            x = block(x, strength)
        for i, layer in enumerate(self.up):
            x = layer(x, sizes[len(sizes) - 2 - i], strength)
        rgb = self.to_rgb(x)
        return plus_photo(rgb, inputs[0], strength, self.fade) if self.residual else rgb


class JohnsonGenerator(JohnsonBody):
    """``--generator johnson``: the pyramid's :class:`InputPlan` (pad to a multiple of 4, crop back) around a :class:`JohnsonBody`.

    Called like :class:`~texturenet.model.pyramid.PyramidGenerator` in style mode, so training, stylising and
    evaluation use either one.
    """

    def __init__(self, config: GeneratorConfig) -> None:
        super().__init__(config)
        self.config = config
        self.plan = InputPlan(DOWNSAMPLINGS + 1, config.noise_depth)

    def forward(self, image: Tensor, *, strength: Strength = 1.0, noise: Optional[NoiseSource] = None) -> Tensor:
        """Stylise ``image`` (N, 3, H, W) in [0, 1]; ``strength`` and ``noise`` as in PyramidGenerator.forward (style mode)."""
        noise = noise or IndependentNoise()
        height, width = image.shape[-2:]
        padded = self.plan.pad(image)
        n, _, padded_height, padded_width = padded.shape
        extra = None
        if self.config.noise_depth:
            extra = noise(0, n, padded_height, padded_width, depth=self.config.noise_depth, strength=per_image(strength),
                          device=padded.device, dtype=padded.dtype)
        strengths = self.strengths(strength, image.device)
        return self.plan.crop(self.body([self.plan.with_noise(padded, extra)], strengths), height, width)

    def body(self, inputs: List[Tensor], strength: Optional[Tensor] = None) -> Tensor:
        """The padded input -> RGB (:class:`JohnsonBody`)."""
        return JohnsonBody.forward(self, inputs, strength)

    strengths = PyramidGenerator.strengths
    """The pyramid's: the strength itself, (1,) or (N,); None without the dial."""
