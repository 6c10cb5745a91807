"""The inference engine: a trained PyramidGenerator's body computed fused: same weights, same output, less work.

Why: the pyramid (Ulyanov et al. 2016, Sec. 3.1) needs ~54K multiply-adds per output pixel
against ~153K for the Johnson et al. 2016 network, but a direct implementation spends much of
its time outside the arithmetic: full-resolution concatenations, upsampled copies, separate
padding, normalisation and activation passes. :class:`FusedPyramid` is a sibling of the
:class:`~texturenet.model.pyramid.PyramidBody`, built from a trained generator's weights, and
:class:`FastGenerator` runs the generator with it in place of its own body (the input plan,
noise and strengths stay the generator's). It keeps the architecture and only computes the same
function with fewer passes:

* **No upsampled copy, no full-resolution concatenation in the joins.** The join's first
  convolution acts on ``cat(norm(up2(coarse)), norm(fine))``; it is split into a convolution of
  the fine branch plus one of the coarse branch (``W [a; b] = W_a a + W_b b``). Nearest x2
  upsampling keeps a map's mean and variance, so the coarse instance norm runs at coarse
  resolution, and a 3x3 convolution of a nearest-upsampled map equals four 2x2 convolutions of
  the coarse map (one per output phase, "sub-pixel" decomposition): 4*C_in*C_out instead of
  9*C_in*C_out multiply-adds per output pixel. Reflect padding of the upsampled map equals
  replicate padding of the coarse map (circular and zeros stay themselves).
* **Instance-norm statistics at BLAS speed**: means and variances as products with a row of
  ones on the (H*W, C) view of the channels_last map (see :func:`instance_stats`); ``var_mean`` took
  half of the fast path's time at 1024^2 before (profile in BENCHMARKS.md).
* **Padding without a pass of its own**: the normalised, activated map is written once, into
  the interior of the padded buffer the next convolution reads; only the border is filled
  afterwards (:func:`norm_act`). Batch norm (eval) is folded into the convolution.
* **channels_last** memory format, which the CPU (oneDNN) and cuDNN convolutions prefer.

Outputs match the plain generator to float rounding (``tests/test_speed.py``: exact in float64
for every padding mode and both norms).
"""
from __future__ import annotations

import copy
import math
from dataclasses import dataclass
from typing import Any, Callable, Optional, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .pyramid import ConvBlock, InstanceNorm, JoinBlock, PyramidGenerator, join_for_scale, plus_photo

Statistics = Callable[[Tensor], tuple[Tensor, Tensor]]
"""(mean, variance), each (N, C), with which an instance norm normalises the map it is given."""
LayerStatistics = Callable[[int, Tensor], tuple[Tensor, Tensor]]
"""The same for instance norm number j (in the order a pass applies them) of a pass: tiling's whole-photo statistics."""
Affine = tuple[Tensor, Tensor, float]
"""An instance norm's scale and shift, each (C,), (1, C) or (N, C) (one per image's strength), and epsilon."""

# Padding of the coarse map that equals the given padding of its nearest x2 upsampling (1 pixel).
_COARSE_PADDING = {"reflect": "replicate", "replicate": "replicate", "circular": "circular", "zeros": "constant"}
# Rows (or columns) of a 3x3 kernel summed into the 2x2 kernel of output phase 0 and phase 1.
_PHASE = torch.tensor([[[1.0, 0.0, 0.0], [0.0, 1.0, 1.0]], [[1.0, 1.0, 0.0], [0.0, 0.0, 1.0]]])


_CHUNK = 16384
"""Pixels per block of the squared-deviation pass: a scratch block that stays in cache."""


def _rows(x: Tensor) -> Tensor:
    """The (N, H*W, C) view of a channels_last (N, C, H, W) tensor: it shares ``x``'s memory."""
    n, c, h, w = x.shape
    return x.permute(0, 2, 3, 1).view(n, h * w, c)


def instance_stats(x: Tensor) -> tuple[Tensor, Tensor]:
    """Per (image, channel) mean and variance of channels_last ``x``, each (N, C).

    Instance-norm statistics (Ulyanov, Vedaldi & Lempitsky 2017, Eq. 2) as matrix products on the
    (H*W, C) view: a row of ones times a block of pixels reduces every channel at once at BLAS
    speed, where ``var_mean`` over a channels_last tensor walks memory with a stride (measured
    ~8x slower at 48 x 1024^2 on CPU). Two passes (the mean, then squared deviations formed in a
    cache-sized scratch block) keep float32 accurate where E[x^2] - E[x]^2 would cancel.
    """
    rows = _rows(x)
    n, pixels, c = rows.shape
    block = min(pixels, _CHUNK)
    ones = x.new_ones(1, block)
    scratch = x.new_empty(block, c)
    means, variances = x.new_zeros(n, c), x.new_zeros(n, c)
    for image, mean, variance in zip(rows, means, variances):
        mean = mean.view(1, c)
        for start in range(0, pixels, block):
            part = image[start:start + block]
            mean.addmm_(ones[:, :len(part)], part, alpha=1 / pixels)
        for start in range(0, pixels, block):
            part = image[start:start + block]
            deviation = torch.sub(part, mean, out=scratch[:len(part)])
            variance.view(1, c).addmm_(ones[:, :len(part)], deviation.mul_(deviation), alpha=1 / pixels)
    return means, variances


def fill_border_(padded: Tensor, pad: int, mode: str) -> Tensor:
    """Fill the ``pad``-pixel border of ``padded`` from its interior, as F.pad(interior, mode) would."""
    if not pad:
        return padded
    if mode == "constant":
        for edge in (padded[..., :pad, :], padded[..., -pad:, :], padded[..., :, :pad], padded[..., :, -pad:]):
            edge.zero_()
        return padded
    height, width = padded.shape[-2] - 2 * pad, padded.shape[-1] - 2 * pad
    for axis, size in ((-2, height), (-1, width)):  # rows first (interior columns), then whole columns
        inner = slice(pad, pad + width) if axis == -2 else slice(None)
        for i in range(pad):
            if mode == "reflect":
                sources = (2 * pad - i, pad + size - 2 - (pad - 1 - i))
            elif mode == "replicate":
                sources = (pad, pad + size - 1)
            else:  # circular
                sources = (size + i, pad + i)
            targets = (i, pad + size + (pad - 1 - i) if mode != "circular" else pad + size + i)
            for target, source in zip(targets, sources):
                if axis == -2:
                    padded[..., target, inner] = padded[..., source, inner]
                else:
                    padded[..., :, target] = padded[..., :, source]
    return padded


def norm_act(x: Tensor, norm: Optional[Affine], slope: Optional[float], pad: int = 0, mode: str = "constant",
             stats: Statistics = instance_stats) -> Tensor:
    """activation(affine instance norm(``x``)), written with a ``pad``-pixel border in padding ``mode``.

    ``x`` is a channels_last map; without padding the result overwrites it. The normalised
    values are written once, into the interior of the padded buffer the next convolution
    reads, so padding costs no extra pass over the map. ``norm`` None: no normalisation
    (batch norm folded into the convolution); ``slope`` None: no activation, 0: ReLU, else
    leaky ReLU. ``stats``: where an instance norm's statistics come from (default: ``x``'s own).
    """
    if pad:
        n, c, h, w = x.shape
        out = torch.empty((n, c, h + 2 * pad, w + 2 * pad), dtype=x.dtype, device=x.device, memory_format=torch.channels_last)
        target = out[..., pad:pad + h, pad:pad + w]
    else:
        out = target = x
    if norm is not None:
        weight, bias, eps = norm
        mean, variance = stats(x)
        scale = weight.to(x.dtype) * torch.rsqrt(variance + eps)
        shift = bias.to(x.dtype) - mean * scale
        torch.addcmul(shift.view(*x.shape[:2], 1, 1), x, scale.view(*x.shape[:2], 1, 1), out=target)
    elif pad:
        target.copy_(x)
    if slope is not None:
        F.leaky_relu_(target, slope) if slope else F.relu_(target)
    return fill_border_(out, pad, mode)


def _pad_mode(padding: str) -> str:
    return "constant" if padding == "zeros" else padding


def _frozen(norm: nn.Module) -> nn.Module:
    """An eval copy of a trained norm: the fused body keeps its own, as it keeps its own weights (the network may train on)."""
    return copy.deepcopy(norm).eval().requires_grad_(False)


def _instance_norm(norm: nn.Module) -> Optional[InstanceNorm]:
    """The instance norm that :func:`norm_act` normalises with (its :meth:`~InstanceNorm.scale_shift` at each pass's
    strengths); None for other norms."""
    return norm if isinstance(norm, InstanceNorm) else None


@dataclass(frozen=True)
class Normalisation:
    """How one pass normalises: where each instance norm's statistics come from, and each image's style strength."""

    stats: Statistics = instance_stats
    strength: Optional[Tensor] = None
    """(N,) or (1,) strengths of a model with the strength dial (generator.InstanceNorm); None for others."""

    def __call__(self, x: Tensor, norm: Optional[InstanceNorm], slope: Optional[float], pad: int = 0, mode: str = "constant") -> Tensor:
        """:func:`norm_act` with this pass's statistics and strengths (callers run under ``torch.no_grad``)."""
        return norm_act(x, None if norm is None else (*norm.scale_shift(self.strength), norm.eps), slope, pad, mode, self.stats)


class _Layer:
    """conv -> (instance norm | folded batch norm) -> activation, as plain tensors."""

    def __init__(self, conv: nn.Conv2d, norm: nn.Module, slope: float, padding: str) -> None:
        weight, bias = conv.weight.detach(), conv.bias.detach()
        self.norm: Optional[InstanceNorm] = None
        if isinstance(norm, nn.BatchNorm2d):  # eval batch norm is affine: fold it into the conv
            scale = norm.weight.detach() / torch.sqrt(norm.running_var + norm.eps)
            weight = weight * scale.view(-1, 1, 1, 1)
            bias = (bias - norm.running_mean) * scale + norm.bias.detach()
        else:
            self.norm = _instance_norm(_frozen(norm))
        self.weight, self.bias = weight.clone(memory_format=torch.channels_last), bias.clone()
        self.pad = conv.kernel_size[0] // 2
        self.mode = _pad_mode(padding)
        self.slope = slope

    def conv(self, padded: Tensor) -> Tensor:
        """The convolution of an input that already carries this layer's padding."""
        out = F.conv2d(padded, self.weight.to(padded.dtype), self.bias.to(padded.dtype))
        return out.contiguous(memory_format=torch.channels_last)  # a no-op except for float64 (no oneDNN)

    def __call__(self, padded: Tensor, pad_next: int, norms: Normalisation) -> Tensor:
        """Convolve, normalise and activate; the result carries ``pad_next`` pixels of padding."""
        return norms(self.conv(padded), self.norm, self.slope, pad_next, self.mode)


def _slope(block: ConvBlock) -> float:
    act = block[2]
    return act.negative_slope if isinstance(act, nn.LeakyReLU) else 0.0


def _layers(block: ConvBlock, padding: str) -> list[_Layer]:
    slope = _slope(block)
    return [_Layer(block[i], block[i + 1], slope, padding) for i in range(0, len(block), 3)]


def _run(layers: list[_Layer], padded: Tensor, norms: Normalisation, pad_out: int = 0, until: Optional[int] = None) -> Tensor:
    """A conv block on an input padded for its first layer; the output carries ``pad_out`` pixels.

    ``until``: run up to layer ``until``'s norm and return what it normalises (``len(layers)``: the output).
    """
    for index, (layer, following) in enumerate(zip(layers, [*layers[1:], None])):
        if index == until:
            return layer.conv(padded)
        padded = layer(padded, following.pad if following else pad_out, norms)
    return padded


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
        self.norms = [(norm, _instance_norm(norm)) for norm in map(_frozen, (join.norm_coarse, join.norm_fine))]
        self.instance_norms = len(self.layers) + 1
        """Norms of an instance-norm model's join pass (:meth:`__call__`): the coarse map's, then its layers'."""

    def _normalised(self, index: int, x: Tensor, mode: str, norms: Normalisation) -> Tensor:
        """The join's norm of ``x`` with one pixel of ``mode`` padding (``x`` itself is kept)."""
        module, instance = self.norms[index]
        if instance is not None:  # with padding, norm_act writes a new buffer
            return norms(x, instance, None, 1, mode)
        return norm_act(module(x).contiguous(memory_format=torch.channels_last), None, None, 1, mode)

    def prepare(self, fine: Tensor, norms: Normalisation) -> tuple[Tensor, Tensor]:
        """The fine branch and the join's normalisation of it (with the padding its convolution reads), for __call__."""
        return fine, self._normalised(1, fine, self.layers[0].mode, norms)

    def __call__(self, coarse: Tensor, prepared: tuple[Tensor, Tensor], norms: Normalisation, until: Optional[int] = None) -> Tensor:
        """The join of ``coarse`` and the prepared fine branch; ``until``: stop at the pass's norm number ``until``
        (:attr:`instance_norms`; 0 the coarse map's) and return what it normalises."""
        fine, normalised = prepared
        n, _, h, w = coarse.shape
        first = self.layers[0]
        if until == 0:
            return coarse
        if fine.shape[-2:] != (2 * h, 2 * w):  # a texture whose size is not a multiple of 2^(K-1): the plain join's arithmetic
            upsampled = F.interpolate(coarse, size=fine.shape[-2:], mode="nearest")
            return _run(self.layers, torch.cat([self._normalised(0, upsampled, first.mode, norms), normalised], dim=1), norms)
        dtype = fine.dtype
        out = F.conv2d(normalised, self.weight_fine.to(dtype), first.bias.to(dtype))
        out = out.contiguous(memory_format=torch.channels_last)
        phases = F.conv2d(self._normalised(0, coarse, self.coarse_mode, norms), self.weight_coarse.to(dtype))
        c = self.out_channels
        for index, (a, b) in enumerate(((0, 0), (0, 1), (1, 0), (1, 1))):
            out[:, :, a::2, b::2] += phases[:, index * c:(index + 1) * c, a:a + h, b:b + w]
        if until == 1:
            return out
        x = norms(out, first.norm, first.slope, self.layers[1].pad, first.mode)
        return _run(self.layers[1:], x, norms, until=None if until is None else until - 2)


class FusedPyramid:
    """The pyramid's body (:class:`PyramidBody`: per-scale inputs -> RGB) computed with fewer passes: its sibling, not a subclass.

    Built from a trained generator's weights, of which it keeps its own copies (plain tensors and
    eval copies of the norms), so the trained network is neither changed nor read again. Called
    as the body is; :meth:`context`, :meth:`fine` and :meth:`norm_input` are the parts of one pass
    that tiling composes (``texturenet.model.tiled.TiledBody``), and the untiled pass is the
    first two on the whole photo.
    """

    def __init__(self, trained: PyramidGenerator) -> None:
        padding = trained.config.padding
        self.scales = trained.config.scales
        self.residual = trained.residual
        self.fade = trained.fade
        self._branches = [_layers(branch, padding) for branch in trained.branches]
        self._joins = [_FastJoin(join, padding) for join in trained.joins]
        self._rgb = trained.to_rgb.weight.detach().clone(memory_format=torch.channels_last)
        self._rgb_bias = trained.to_rgb.bias.detach().clone()

    def __call__(self, inputs: Sequence[Tensor], strength: Optional[Tensor] = None) -> Tensor:
        """Per-scale inputs (finest first) -> RGB, as :meth:`PyramidBody.forward`; ``strength``: each image's style strength."""
        return self.fine(self.context(inputs, 0, strength), inputs, 0, strength=strength)

    def context(self, inputs: Sequence[Optional[Tensor]], level: int, strength: Optional[Tensor] = None) -> Tensor:
        """The coarse part of the pyramid: scales K-1 down to ``level``; returns scale ``level``'s map.

        ``inputs[k]`` is scale k's input (pooled photo and noise); only scales >= ``level`` are
        read. Tiling runs this once on the whole photo, so that every tile sees the same coarse
        scales as an untiled pass would (``texturenet.model.tiled``).
        """
        norms = Normalisation(strength=strength)
        with torch.no_grad():
            return self._descend(self._branch(-1, inputs[-1], norms), inputs, self.scales - 2, level, norms)

    def fine(self, context: Tensor, inputs: Sequence[Optional[Tensor]], level: int,
             statistics: Optional[LayerStatistics] = None, strength: Optional[Tensor] = None) -> Tensor:
        """The fine part: joins scales ``level - 1`` down to 0 onto ``context`` (from :meth:`context`), then RGB.

        ``statistics``: the statistics of each of its instance norms, by number in the order this
        pass applies them (tiling's whole-photo statistics); default: each map's own. A residual
        model adds the photo here (scale 0's input: a tile's own window, whose blend is then the photo's).
        """
        norms = Normalisation(_Numbered(statistics) if statistics else instance_stats, strength)
        with torch.no_grad():
            x = self._descend(context, inputs, level - 1, 0, norms)
            rgb = F.conv2d(x, self._rgb.to(x.dtype), self._rgb_bias.to(x.dtype))
            return plus_photo(rgb, inputs[0], strength, self.fade) if self.residual else rgb

    def norm_input(self, context: Tensor, inputs: Sequence[Optional[Tensor]], level: int, layer: int,
                   statistics: Optional[LayerStatistics] = None, strength: Optional[Tensor] = None) -> Tensor:
        """What instance norm number ``layer`` of :meth:`fine` normalises: :meth:`fine`'s pass run up to that norm, no further.

        Norms before it are normalised with ``statistics`` as in :meth:`fine`. Tiling gathers a
        whole photo's statistics layer by layer with this (``texturenet.model.tiled.SharedStatistics``).
        """
        if not 0 <= layer < self.instance_norms(level):
            raise ValueError(f"this pass applies {self.instance_norms(level)} instance norms; there is no number {layer}")
        norms = Normalisation(_Numbered(statistics) if statistics else instance_stats, strength)
        with torch.no_grad():
            return self._descend(context, inputs, level - 1, 0, norms, until=layer)

    def instance_norms(self, level: int) -> int:
        """How many instance norms :meth:`fine` applies below ``level`` (0 for batch norm, folded away)."""
        count = 0
        for k in range(level):
            join = self._join(k)
            layers = [*self._branches[k], *join.layers]
            count += sum(layer.norm is not None for layer in layers) + sum(norm is not None for _, norm in join.norms)
        return count

    def border_reach(self, level: int) -> int:
        """How far (in full-resolution pixels) a window's own border can change :meth:`fine`'s output.

        A tile's fine scales pad at the window's edges, and its crop of the coarse map is padded
        there too, where the untiled pass sees real neighbours. With the architecture's 3x3
        convolutions, the output of the join at scale k reaches D_k = D_{k-1} + 2^(k+1) pixels
        past the final output (the sub-pixel convolution reads one coarse pixel, the block's two
        3x3 convolutions one fine pixel each): D_k = 2^(k+2) - 4. The crop at scale ``level``
        adds one pixel of padding there, 2^level; the fine branches (two 3x3 each) reach less.
        """
        return 2 ** (level + 2) - 4 + 2**level

    def _descend(self, x: Tensor, inputs: Sequence[Optional[Tensor]], top: int, bottom: int, norms: Normalisation,
                 until: Optional[int] = None) -> Tensor:
        """Join scales ``top`` down to ``bottom`` onto ``x``, the scale ``top + 1`` map.

        Every branch runs (and is normalised for its join) before the first join: a branch
        depends only on its own scale's input, so a pass that gathers statistics of a branch's
        norm stops before the costly joins. The branches are small (8 channels), so keeping
        them costs little memory. ``until``: stop at instance norm number ``until`` and return
        its input (instance-norm models, whose every layer has one; :meth:`norm_input`).
        """
        scales = range(top, bottom - 1, -1)
        joins = {k: self._join(k) for k in scales}
        left = math.inf if until is None else until  # norms still to apply before the stop
        prepared: dict[int, tuple[Tensor, Tensor]] = {}
        for k in scales:  # branch k's norms, then its join's norm of the branch (whose input is the branch's output)
            if left <= len(self._branches[k]):
                return self._branch(k, inputs[k], norms, int(left))
            prepared[k] = joins[k].prepare(self._branch(k, inputs[k], norms), norms)
            left -= len(self._branches[k]) + 1
        for k in scales:
            if left < joins[k].instance_norms:
                return joins[k](x, prepared.pop(k), norms, int(left))
            x = joins[k](x, prepared.pop(k), norms)
            left -= joins[k].instance_norms
        return x

    def _join(self, k: int) -> _FastJoin:
        return self._joins[join_for_scale(self.scales, k)]

    def _branch(self, k: int, x: Tensor, norms: Normalisation, until: Optional[int] = None) -> Tensor:
        layers = self._branches[k]
        first = layers[0]
        padded = F.pad(x, (first.pad,) * 4, mode=first.mode) if first.pad else x
        return _run(layers, padded.contiguous(memory_format=torch.channels_last), norms, until=until)


class FastGenerator:
    """A trained PyramidGenerator whose body runs fused: called as the generator is, the same pictures, inference only.

    Composes the trained generator (its input plan, noise and strengths: padding, pooling and
    noise drawing are its own, so the same seed gives the same noise; it is read, never changed)
    with a :class:`FusedPyramid` made from its weights.
    """

    def __init__(self, trained: PyramidGenerator) -> None:
        self.generator = trained
        self.body = FusedPyramid(trained)

    def __call__(self, image: Optional[Tensor] = None, **options: Any) -> Tensor:
        """The generator's forward (``strength``, ``size``, ``batch``, ``noise`` as there) with the fused body."""
        return self.generator(image, body=self.body, **options)


class _Numbered:
    """Numbers a pass's instance norms in the order it applies them and asks ``statistics`` for each one's."""

    def __init__(self, statistics: LayerStatistics) -> None:
        self.statistics = statistics
        self.index = 0

    def __call__(self, x: Tensor) -> tuple[Tensor, Tensor]:
        index, self.index = self.index, self.index + 1
        return self.statistics(index, x)


def fast_generator(trained: PyramidGenerator) -> FastGenerator:
    """The inference-optimised equivalent of ``trained`` (which is left untouched; its weights are copied, not the model)."""
    return FastGenerator(trained)
