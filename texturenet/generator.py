"""The multi-scale ("pyramid") generator of Ulyanov et al., Texture Networks, ICML 2016, Sec. 3.1, Fig. 2.

Scale k (k = 0 finest ... K-1 coarsest) sees the input average-pooled by 2^k, concatenated with
fresh uniform noise. Each scale runs a conv block (3x3, 3x3, 1x1, each followed by a norm and
an activation). From the coarsest scale down, the coarser result is upsampled x2 (nearest),
both branches are normalised, concatenated and run through another conv block; a final 1x1
convolution maps the finest join (K x channels) to RGB. Normalisation is instance norm by
default (Ulyanov, Vedaldi & Lempitsky 2016/2017, "Instance Normalization"), batch norm as in
the 2016 original.

Inputs and outputs are RGB in [0, 1] (the output is not clamped during training; callers that
save pictures clamp). Any size works: photos are padded to a multiple of 2^(K-1) and the
output cropped back; textures are generated with per-scale noise at the requested size, or,
below the size the coarsest scale needs, at that size with the requested corner cropped out.
"""
from __future__ import annotations

import math
from typing import Optional, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .config import GeneratorConfig


def _norm(config: GeneratorConfig, channels: int) -> nn.Module:
    if config.norm == "instance":
        # track_running_stats stays False: instance norm uses each image's own statistics at
        # inference too, and the state dict keeps one layout (a known export/loading trap).
        return nn.InstanceNorm2d(channels, affine=True)
    return nn.BatchNorm2d(channels)


def _act(config: GeneratorConfig) -> nn.Module:
    return nn.LeakyReLU(0.01, inplace=True) if config.activation == "leaky_relu" else nn.ReLU(inplace=True)


class ConvBlock(nn.Sequential):
    """conv3x3 -> norm -> act, conv3x3 -> norm -> act, conv1x1 -> norm -> act (paper Fig. 2)."""

    def __init__(self, config: GeneratorConfig, in_channels: int, out_channels: int) -> None:
        layers: list[nn.Module] = []
        for kernel, c_in in ((3, in_channels), (3, out_channels), (1, out_channels)):
            layers += [
                nn.Conv2d(c_in, out_channels, kernel, padding=kernel // 2, padding_mode=config.padding),
                _norm(config, out_channels),
                _act(config),
            ]
        super().__init__(*layers)


class JoinBlock(nn.Module):
    """Upsample the coarser path x2, normalise both branches, concatenate, then a ConvBlock."""

    def __init__(self, config: GeneratorConfig, coarse_channels: int, fine_channels: int) -> None:
        super().__init__()
        joined = coarse_channels + fine_channels
        self.norm_coarse = _norm(config, coarse_channels)
        self.norm_fine = _norm(config, fine_channels)
        self.block = ConvBlock(config, joined, joined)

    def forward(self, coarse: Tensor, fine: Tensor) -> Tensor:
        # Nearest upsampling to the finer branch's size: exactly x2 for padded photos, and the
        # nearest fit for textures whose size is not a multiple of 2^(K-1).
        coarse = F.interpolate(coarse, size=fine.shape[-2:], mode="nearest")
        return self.block(torch.cat([self.norm_coarse(coarse), self.norm_fine(fine)], dim=1))


class PyramidGenerator(nn.Module):
    """Texture network generator; see the module docstring for the architecture."""

    def __init__(self, config: GeneratorConfig) -> None:
        super().__init__()
        self.config = config
        in_channels = config.image_channels + config.noise_depth
        c = config.channels
        self.branches = nn.ModuleList(ConvBlock(config, in_channels, c) for _ in range(config.scales))
        # joins[i] merges scale K-2-i into everything coarser (i+1 scales of c channels each).
        self.joins = nn.ModuleList(JoinBlock(config, c * (i + 1), c) for i in range(config.scales - 1))
        self.to_rgb = nn.Conv2d(c * config.scales, 3, kernel_size=1)
        self.noise_shard: tuple[int, int] = (0, 1)
        """(rank, world size) in data-parallel training: see ``texturenet.distributed``."""

    @property
    def multiple(self) -> int:
        """Photo sizes are padded to a multiple of this, so every pooling level divides exactly."""
        return 2 ** (self.config.scales - 1)

    def forward(
        self,
        image: Optional[Tensor] = None,
        *,
        noise_factor: float = 1.0,
        size: Optional[Sequence[int]] = None,
        batch: int = 1,
        generator: Optional[torch.Generator] = None,
        shared_noise: bool = False,
    ) -> Tensor:
        """Stylise ``image`` (N, 3, H, W) in [0, 1], or, in texture mode, sample (batch, 3, *size).

        ``noise_factor`` scales the uniform noise: 1 is what training saw, 0 gives a
        deterministic output. ``generator`` draws the noise (default: torch's global RNG, so
        ``torch.manual_seed`` fixes it). ``shared_noise`` gives every photo of the batch the
        same noise field, the one a batch of one would get (video frames: the texture stays
        put from frame to frame instead of flickering).
        """
        if self.config.mode == "style":
            if image is None:
                raise ValueError("a style-mode generator needs an input image")
            return self._stylise(image, noise_factor, generator, shared_noise)
        if size is None:
            raise ValueError("a texture-mode generator needs a size (height, width)")
        height, width = int(size[0]), int(size[1])
        noise = self.noise_pyramid(batch, *self.sample_size(height, width, batch), noise_factor, generator)
        return self.synthesize(noise)[..., :height, :width]

    def sample_size(self, height: int, width: int, batch: int = 1) -> tuple[int, int]:
        """The size at which a ``height`` x ``width`` texture is sampled before its top-left corner is cropped out.

        Scale K-1 sees ceil(size / 2^(K-1)) pixels (Sec. 3.1). Reflection padding needs 2 of them in each
        direction, and a norm that computes statistics (instance norm; batch norm while training) needs 2
        values per channel: a 32x32 sample of a 6-scale model has a 1x1 coarsest map, which allows neither.
        Such sizes are sampled at 2^(K-1) + 1 (2 coarsest pixels) instead; every size that ran before is
        returned unchanged, so it gives the same picture. (A cropped sample no longer tiles seamlessly.)
        """
        coarsest = 2 ** (self.config.scales - 1)
        per_channel = math.ceil(height / coarsest) * math.ceil(width / coarsest) * (batch if self.config.norm == "batch" else 1)
        statistics = self.config.norm == "instance" or self.training
        if (self.config.padding == "reflect" and min(height, width) <= coarsest) or (statistics and per_channel < 2):
            return max(height, coarsest + 1), max(width, coarsest + 1)
        return height, width

    def noise_pyramid(
        self, batch: int, height: int, width: int, noise_factor: float = 1.0, generator: Optional[torch.Generator] = None
    ) -> list[Tensor]:
        """Texture mode's inputs: independent uniform noise at each scale, ceil(size / 2^k) pixels."""
        device = self.to_rgb.weight.device
        return [
            self._noise(batch, math.ceil(height / 2**k), math.ceil(width / 2**k), noise_factor, device, generator)
            for k in range(self.config.scales)
        ]

    def synthesize(self, noise: Sequence[Tensor]) -> Tensor:
        """Texture mode: the sample for given per-scale noise (finest first), e.g. from :meth:`noise_pyramid`."""
        return self._pyramid(list(noise))

    def _stylise(self, image: Tensor, noise_factor: float, generator: Optional[torch.Generator], shared_noise: bool = False) -> Tensor:
        height, width = image.shape[-2:]
        # At least two pixels at the coarsest scale, so that reflection padding is possible there.
        pad_h = max(-height % self.multiple, 2 * self.multiple - height)
        pad_w = max(-width % self.multiple, 2 * self.multiple - width)
        if pad_h or pad_w:
            # Reflection keeps the border content-like; tiny photos cannot reflect that far.
            mode = "reflect" if pad_h < height and pad_w < width else "replicate"
            image = F.pad(image, (0, pad_w, 0, pad_h), mode=mode)
        inputs = []
        scaled = image
        for k in range(self.config.scales):
            if k:
                scaled = F.avg_pool2d(scaled, 2)
            inputs.append(self.scale_input(scaled, noise_factor, generator, shared_noise))
        return self._pyramid(inputs)[..., :height, :width]

    def scale_input(self, scaled: Tensor, noise_factor: float = 1.0, generator: Optional[torch.Generator] = None,
                    shared_noise: bool = False) -> Tensor:
        """One scale's input: the pooled photo (N, 3, h, w) with fresh noise channels appended."""
        n, _, h, w = scaled.shape
        noise = self._noise(1 if shared_noise else n, h, w, noise_factor, scaled.device, generator, dtype=scaled.dtype)
        if noise is None:
            return scaled
        return torch.cat([scaled, noise.expand(n, -1, -1, -1) if shared_noise else noise], dim=1)

    def _noise(
        self,
        n: int,
        h: int,
        w: int,
        factor: float,
        device: torch.device,
        generator: Optional[torch.Generator],
        dtype: torch.dtype = torch.float32,
    ) -> Optional[Tensor]:
        if self.config.noise_depth == 0:
            return None
        rank, world = self.noise_shard  # distributed: draw the global batch's noise, keep this rank's rows
        noise = torch.rand(n * world, self.config.noise_depth, h, w, device=device, dtype=dtype, generator=generator)
        return noise[rank * n : (rank + 1) * n].mul_(factor)

    def _pyramid(self, inputs: list[Optional[Tensor]]) -> Tensor:
        x = self.branches[-1](inputs[-1])
        for i, k in enumerate(range(self.config.scales - 2, -1, -1)):
            x = self.joins[i](x, self.branches[k](inputs[k]))
        return self.to_rgb(x)
