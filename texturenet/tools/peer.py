"""A mosaic generator from an earlier public PyTorch texture-network project (2019), to compare ours with.

Its architecture is the pyramid of Ulyanov et al., Texture Networks, ICML 2016, Sec. 3.1, Fig. 2:
6 scales of 8 channels, batch norm, LeakyReLU(0.01), hand-made 1-pixel circular padding. The
conventions below were found by experiment on held-out photos (the alternatives in brackets):
image channels before noise in each scale's 6 inputs [noise first: pure noise]; Caffe BGR space
in and out, (pixel - mean) * 255 [RGB in or out: the sky turns orange or brown]; Gaussian noise
* 255 [noise << 255: almost no mosaic cells]; the photo average-pooled per scale [nearest or
bilinear: the same]; the coarse path first in each join [fine first: garbled]; batch statistics
of the one picture, as the peer's own sampler did [running estimates: fewer, open cells].
"""
from __future__ import annotations

from pathlib import Path
from typing import List

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..errors import TexturenetError
from ..io.weights import load_plain

SIZE = 1024  # the peer square-resizes every photo to this
SCALES = 6
CHANNELS = 8
MEAN_BGR = (0.40760392, 0.45795686, 0.48501961)  # Caffe VGG's ImageNet mean, in BGR order


class _PictureNorm(nn.BatchNorm2d):
    """Batch norm with the picture's own statistics; the running estimates are loaded but unused.

    The peer's own sampler never called eval(), so its pictures were made this way. The running
    estimates (from multi-image training batches) find one picture's coarse-scale activations
    2-100x lower in variance than expected; they give scattered glass shards, not closed cells.
    """

    def forward(self, x: Tensor) -> Tensor:
        return F.batch_norm(x, None, None, self.weight, self.bias, True, 0.0, self.eps)


def _wrap(x: Tensor) -> Tensor:
    """The peer's circular 1-pixel padding: last row/column prepended, first appended."""
    return F.pad(x, (1, 1, 1, 1), mode="circular")


class _ConvBlock(nn.Module):
    """conv 3x3, conv 3x3, conv 1x1, each followed by batch norm and LeakyReLU (paper Fig. 2)."""

    def __init__(self, in_channels: int, channels: int) -> None:
        super().__init__()
        self.conv1, self.bn1 = nn.Conv2d(in_channels, channels, 3), _PictureNorm(channels)
        self.conv2, self.bn2 = nn.Conv2d(channels, channels, 3), _PictureNorm(channels)
        self.conv3, self.bn3 = nn.Conv2d(channels, channels, 1), _PictureNorm(channels)

    def forward(self, x: Tensor) -> Tensor:
        x = F.leaky_relu(self.bn1(self.conv1(_wrap(x))))
        x = F.leaky_relu(self.bn2(self.conv2(_wrap(x))))
        return F.leaky_relu(self.bn3(self.conv3(x)))


class _Up(nn.Module):
    """Nearest x2 upsampling of the coarse path, then its batch norm (the fine branch has none)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.bn = _PictureNorm(channels)

    def forward(self, x: Tensor) -> Tensor:
        return self.bn(F.interpolate(x, scale_factor=2, mode="nearest"))


class PeerGenerator(nn.Module):
    """The peer's pyramid, with its state-dict names: cb{k}_1 runs on scale k (1 coarsest, 6 full size),
    up{k} and cb{k+1}_2 join everything coarser with scale k+1, last_conv maps 48 channels to BGR."""

    def __init__(self) -> None:
        super().__init__()
        for k in range(1, SCALES + 1):
            self.add_module(f"cb{k}_1", _ConvBlock(6, CHANNELS))
            if k > 1:
                self.add_module(f"up{k - 1}", _Up(CHANNELS * (k - 1)))
                self.add_module(f"cb{k}_2", _ConvBlock(CHANNELS * k, CHANNELS * k))
        self.last_conv = nn.Conv2d(CHANNELS * SCALES, 3, 1)

    def forward(self, inputs: List[Tensor]) -> Tensor:
        """``inputs[k - 1]``: scale k's (image, noise) in Caffe space, coarsest first, each twice the last's size."""
        y = self.get_submodule("cb1_1")(inputs[0])
        for k in range(2, SCALES + 1):
            fine = self.get_submodule(f"cb{k}_1")(inputs[k - 1])
            y = self.get_submodule(f"cb{k}_2")(torch.cat([self.get_submodule(f"up{k - 1}")(y), fine], dim=1))
        return self.last_conv(y)


class Peer:
    """The loaded peer generator with its input and output conventions (RGB [0, 1] photos in and out)."""

    def __init__(self, generator: PeerGenerator, device: torch.device) -> None:
        self.generator = generator.to(device)
        self.device = device
        self.mean = torch.tensor(MEAN_BGR, device=device).view(1, 3, 1, 1)

    @torch.inference_mode()
    def stylize(self, photo: Tensor, strength: float = 1.0, seed: int = 0) -> Tensor:
        """(3, H, W) RGB in [0, 1] -> the peer's mosaic stylisation, same size; noise drawn on the CPU for ``seed``.

        Called as :meth:`Stylizer.stylize` is; the peer has no strength dial, so ``strength`` only scales its noise.
        """
        if photo.ndim != 3 or photo.shape[0] != 3:
            raise TexturenetError(f"the peer stylises one RGB photo of shape (3, H, W), not {tuple(photo.shape)}")
        height, width = photo.shape[-2:]
        x = photo[None].to(self.device, torch.float32)
        x = F.interpolate(x, size=(SIZE, SIZE), mode="bilinear", antialias=True)
        x = (x.flip(1) - self.mean) * 255
        rng = torch.Generator().manual_seed(seed)
        inputs = []
        for k in reversed(range(SCALES)):  # scale k sees the photo average-pooled by 2^k (Sec. 3.1)
            image = F.avg_pool2d(x, 2**k)
            noise = torch.randn(image.shape, generator=rng) * (255 * strength)
            inputs.append(torch.cat([image, noise.to(self.device)], dim=1))
        y = (self.generator(inputs) / 255 + self.mean).flip(1)
        y = F.interpolate(y, size=(height, width), mode="bilinear", antialias=True)
        return y.clamp(0, 1)[0].to(photo.device)


def load_peer(path: Path, device: torch.device = torch.device("cpu")) -> Peer:
    """Load the peer's state dict (weights_only: a file with code in it is refused, not run)."""
    state = load_plain(path, "{name} is not a readable PyTorch state dict ({why})")  # saved on CUDA, loaded on the CPU
    if not isinstance(state, dict):
        raise TexturenetError(f"{path} holds a {type(state).__name__}, not the peer's generator state dict")
    generator = PeerGenerator()
    try:
        generator.load_state_dict(state)
    except RuntimeError as error:  # its second line names the first mismatching keys or shapes
        detail = (str(error).splitlines()[1:] or [""])[0].strip()
        detail = detail if len(detail) <= 160 else detail[:157] + "..."
        raise TexturenetError(f"{path} is not the peer's 2019 mosaic generator ({detail})") from None
    return Peer(generator, device)
