"""The Johnson, Alahi & Fei-Fei 2016 transformer network: the speed baseline of ``scripts/benchmark.py``.

Not used for training or stylising: it exists so that the benchmark measures our generator
against the architecture most feed-forward style transfer uses (the network that
pytorch/examples ``fast_neural_style`` trains), in the same run on the same machine.
Architecture (Johnson et al. 2016, supplementary Table 1, with instance norm as in
Ulyanov et al. 2016/2017): 9x9 conv 32, stride-2 3x3 conv 64, stride-2 3x3 conv 128, five
residual blocks of 128 channels, two x2 upsample + 3x3 convs (64, 32), 9x9 conv to RGB;
reflection padding, affine instance norm, ReLU.
"""
from __future__ import annotations

from torch import Tensor, nn


def _conv(c_in: int, c_out: int, kernel: int, stride: int = 1, upsample: bool = False, norm_act: bool = True) -> nn.Sequential:
    layers: list[nn.Module] = [nn.Upsample(scale_factor=2, mode="nearest")] if upsample else []
    layers += [nn.ReflectionPad2d(kernel // 2), nn.Conv2d(c_in, c_out, kernel, stride)]
    if norm_act:
        layers += [nn.InstanceNorm2d(c_out, affine=True), nn.ReLU(inplace=True)]
    return nn.Sequential(*layers)


class Residual(nn.Module):
    """x + (conv-norm-relu, conv-norm)(x): Johnson et al.'s residual block, without the final ReLU."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.body = nn.Sequential(_conv(channels, channels, 3), _conv(channels, channels, 3, norm_act=False),
                                  nn.InstanceNorm2d(channels, affine=True))

    def forward(self, x: Tensor) -> Tensor:
        return x + self.body(x)


class JohnsonNet(nn.Module):
    """Image transformation network; RGB in [0, 1] in and out (sizes divisible by 4 keep their shape)."""

    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(
            _conv(3, 32, 9),
            _conv(32, 64, 3, stride=2),
            _conv(64, 128, 3, stride=2),
            *(Residual(128) for _ in range(5)),
            _conv(128, 64, 3, upsample=True),
            _conv(64, 32, 3, upsample=True),
            _conv(32, 3, 9, norm_act=False),
        )

    def forward(self, image: Tensor) -> Tensor:
        return self.net(image)
