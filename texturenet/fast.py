"""An inference-optimised copy of a trained PyramidGenerator: same weights, same output, less work.

Why: the pyramid (Ulyanov et al. 2016, Sec. 3.1) needs ~54K multiply-adds per output pixel
against ~153K for the Johnson et al. 2016 network, but a direct implementation spends much of
its time outside the arithmetic: full-resolution concatenations, upsampled copies, separate
padding, normalisation and activation passes. :class:`FastGenerator` keeps the architecture and
the trained state dict unchanged and only computes the same function with fewer passes:

* **No upsampled copy, no full-resolution concatenation in the joins.** The join's first
  convolution acts on ``cat(norm(up2(coarse)), norm(fine))``; it is split into a convolution of
  the fine branch plus one of the coarse branch (``W [a; b] = W_a a + W_b b``). Nearest x2
  upsampling keeps a map's mean and variance, so the coarse instance norm runs at coarse
  resolution, and a 3x3 convolution of a nearest-upsampled map equals four 2x2 convolutions of
  the coarse map (one per output phase, "sub-pixel" decomposition): 4*C_in*C_out instead of
  9*C_in*C_out multiply-adds per output pixel. Reflect padding of the upsampled map equals
  replicate padding of the coarse map (circular and zeros stay themselves).
* **Normalisation fused with the activation**: instance-norm statistics in one reduction, then
  the affine map and the leaky ReLU in place; batch norm (eval) is folded into the convolution.
* **channels_last** memory format, which the CPU (oneDNN) and cuDNN convolutions prefer.

Outputs match the plain generator to float rounding (``tests/test_fast.py``).
"""
from __future__ import annotations

import copy
from typing import Optional

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .generator import ConvBlock, JoinBlock, PyramidGenerator

# Padding of the coarse map that equals the given padding of its nearest x2 upsampling (1 pixel).
_COARSE_PADDING = {"reflect": "replicate", "replicate": "replicate", "circular": "circular", "zeros": "constant"}
# Rows (or columns) of a 3x3 kernel summed into the 2x2 kernel of output phase 0 and phase 1.
_PHASE = torch.tensor([[[1.0, 0.0, 0.0], [0.0, 1.0, 1.0]], [[1.0, 1.0, 0.0], [0.0, 0.0, 1.0]]])


def _pad_mode(padding: str) -> str:
    return "constant" if padding == "zeros" else padding


class _Layer:
    """conv -> (instance norm | folded batch norm) -> activation, as plain tensors."""

    def __init__(self, conv: nn.Conv2d, norm: nn.Module, slope: float, padding: str) -> None:
        weight, bias = conv.weight.detach(), conv.bias.detach()
        self.norm: Optional[tuple[Tensor, Tensor, float]] = None
        if isinstance(norm, nn.BatchNorm2d):  # eval batch norm is affine: fold it into the conv
            scale = norm.weight.detach() / torch.sqrt(norm.running_var + norm.eps)
            weight = weight * scale.view(-1, 1, 1, 1)
            bias = (bias - norm.running_mean) * scale + norm.bias.detach()
        else:
            self.norm = (norm.weight.detach(), norm.bias.detach(), norm.eps)
        self.weight, self.bias = weight.contiguous(memory_format=torch.channels_last), bias
        self.pad = conv.kernel_size[0] // 2
        self.mode = _pad_mode(padding)
        self.slope = slope

    def conv(self, x: Tensor) -> Tensor:
        if self.pad:
            x = F.pad(x, (self.pad,) * 4, mode=self.mode)
        return F.conv2d(x, self.weight.to(x.dtype), self.bias.to(x.dtype))

    def finish(self, x: Tensor) -> Tensor:
        """Normalise (if not folded) and activate ``x`` in place."""
        if self.norm is not None:
            x = instance_norm_(x, *self.norm)
        return F.leaky_relu_(x, self.slope) if self.slope else F.relu_(x)

    def __call__(self, x: Tensor) -> Tensor:
        return self.finish(self.conv(x))


def instance_norm_(x: Tensor, weight: Tensor, bias: Tensor, eps: float) -> Tensor:
    """Affine instance norm of ``x`` in place: one statistics pass and one fused multiply-add."""
    var, mean = torch.var_mean(x, dim=(2, 3), keepdim=True, correction=0)
    scale = weight.view(1, -1, 1, 1).to(x.dtype) * torch.rsqrt(var + eps)
    shift = bias.view(1, -1, 1, 1).to(x.dtype) - mean * scale
    return x.mul_(scale).add_(shift)


def _slope(block: ConvBlock) -> float:
    act = block[2]
    return act.negative_slope if isinstance(act, nn.LeakyReLU) else 0.0


def _layers(block: ConvBlock, padding: str) -> list[_Layer]:
    slope = _slope(block)
    return [_Layer(block[i], block[i + 1], slope, padding) for i in range(0, len(block), 3)]


class _FastJoin:
    """A :class:`JoinBlock` computed without upsampling copies or concatenation (see module docstring)."""

    def __init__(self, join: JoinBlock, padding: str) -> None:
        self.layers = _layers(join.block, padding)
        coarse_channels = join.norm_coarse.num_features
        weight = self.layers[0].weight.contiguous()  # batch norm already folded in
        self.weight_fine = weight[:, coarse_channels:].contiguous(memory_format=torch.channels_last)
        w = weight[:, :coarse_channels]
        # Kernel of output phase (a, b): rows combined by _PHASE[a], columns by _PHASE[b].
        phase = _PHASE.to(w)
        phases = [torch.einsum("ri,oqij,cj->oqrc", phase[a], w, phase[b]) for a in (0, 1) for b in (0, 1)]
        self.weight_coarse = torch.cat(phases).contiguous(memory_format=torch.channels_last)
        self.out_channels = weight.shape[0]
        self.coarse_mode = _COARSE_PADDING[padding]
        self.norms = [(n.weight.detach(), n.bias.detach(), n.eps) if isinstance(n, nn.InstanceNorm2d) else n
                      for n in (join.norm_coarse, join.norm_fine)]
        self.join = join

    def _norm(self, index: int, x: Tensor) -> Tensor:
        norm = self.norms[index]
        return instance_norm_(x.clone(), *norm) if isinstance(norm, tuple) else norm(x)

    def __call__(self, coarse: Tensor, fine: Tensor) -> Tensor:
        n, _, h, w = coarse.shape
        if fine.shape[-2:] != (2 * h, 2 * w):  # a texture whose size is not a multiple of 2^(K-1)
            return self.join(coarse, fine)
        first = self.layers[0]
        out = F.conv2d(F.pad(self._norm(1, fine), (1,) * 4, mode=first.mode), self.weight_fine.to(fine.dtype),
                       first.bias.to(fine.dtype))
        phases = F.conv2d(F.pad(self._norm(0, coarse), (1,) * 4, mode=self.coarse_mode), self.weight_coarse.to(fine.dtype))
        c = self.out_channels
        for index, (a, b) in enumerate(((0, 0), (0, 1), (1, 0), (1, 1))):
            out[:, :, a::2, b::2] += phases[:, index * c:(index + 1) * c, a:a + h, b:b + w]
        x = first.finish(out)
        for layer in self.layers[1:]:
            x = layer(x)
        return x


class FastGenerator(PyramidGenerator):
    """Same weights and outputs as the trained generator it is built from; inference only.

    Padding, pooling and noise drawing are inherited (so the same seed gives the same noise);
    only the pyramid's convolution stack is computed differently.
    """

    def __init__(self, trained: PyramidGenerator) -> None:
        super().__init__(trained.config)
        self.load_state_dict(trained.state_dict())
        self.to(trained.to_rgb.weight)  # same device and dtype
        self.eval().requires_grad_(False)
        padding = trained.config.padding
        self._branches = [_layers(branch, padding) for branch in self.branches]
        self._joins = [_FastJoin(join, padding) for join in self.joins]
        self._rgb = self.to_rgb.weight.detach().contiguous(memory_format=torch.channels_last)

    def train(self, mode: bool = True) -> "FastGenerator":
        if mode:
            raise RuntimeError("FastGenerator is for inference only; train the PyramidGenerator")
        return super().train(False)

    def _run(self, layers: list[_Layer], x: Tensor) -> Tensor:
        x = x.contiguous(memory_format=torch.channels_last)
        for layer in layers:
            x = layer(x)
        return x

    def _pyramid(self, inputs: list[Optional[Tensor]]) -> Tensor:
        with torch.no_grad():
            x = self._run(self._branches[-1], inputs[-1])
            for i, k in enumerate(range(self.config.scales - 2, -1, -1)):
                x = self._joins[i](x, self._run(self._branches[k], inputs[k]))
            return F.conv2d(x, self._rgb.to(x.dtype), self.to_rgb.bias.to(x.dtype))


def fast_generator(trained: PyramidGenerator) -> FastGenerator:
    """The inference-optimised equivalent of ``trained`` (which is left untouched)."""
    return FastGenerator(copy.deepcopy(trained).eval())
