"""The multi-scale ("pyramid") generator of Ulyanov et al., Texture Networks, ICML 2016, Sec. 3.1, Fig. 2.

Scale k (k = 0 finest ... K-1 coarsest) sees the input average-pooled by 2^k, concatenated with
fresh uniform noise. Each scale runs a conv block (3x3, 3x3, 1x1, each followed by a norm and
an activation). From the coarsest scale down, the coarser result is upsampled x2 (nearest),
both branches are normalised, concatenated and run through another conv block; a final 1x1
convolution maps the finest join (K x channels) to RGB. Normalisation is instance norm by
default (Ulyanov, Vedaldi & Lempitsky 2016/2017, "Instance Normalization"), batch norm as in
the 2016 original.

Inputs and outputs are RGB in [0, 1] (the output is not clamped during training; callers that
save pictures clamp). With ``--residual`` the output is the photo plus what the network computes,
whose last layer starts at zero (:func:`plus_photo`), for both generators and every path. Any size works: photos are padded to a multiple of 2^(K-1) and the
output cropped back; textures are generated with per-scale noise at the requested size, or,
below the size the coarsest scale needs, at that size with the requested corner cropped out.

The model is written in two parts that every path composes (training, the fast inference path
in model/fused.py, tiling, export): the :class:`InputPlan` (pad, pool per scale, add noise, crop back)
and a body (per-scale inputs -> RGB): the :class:`PyramidBody`, or the fused body of model/fused.py
that a generator runs in its place (``forward(..., body=)``). Noise comes from a source the caller
passes in (``texturenet.model.noise``).
"""
from __future__ import annotations

import math
from typing import Callable, List, Optional, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..config import GeneratorConfig
from .noise import IndependentNoise, NoiseSource, Strength

Body = Callable[[List[Tensor], Optional[Tensor]], Tensor]
"""Per-scale inputs (finest first) and each image's strength (or None) -> RGB: :class:`PyramidBody`'s function,
which the fused body (model/fused.py) computes too."""


def per_image(strength: Strength) -> Strength:
    """A strength in the shape that scales (N, C, H, W) noise: a number as it is, a (N,) tensor as (N, 1, 1, 1)."""
    return strength.view(-1, 1, 1, 1) if isinstance(strength, Tensor) else strength


def plus_photo(change: Tensor, finest: Tensor, strength: Optional[Tensor] = None, fade: float = 0.0) -> Tensor:
    """A residual generator's picture: the photo plus the network's change (``GeneratorConfig.residual``).

    ``finest`` is the finest scale's input, the padded photo with its noise channels appended; its first
    three channels are the photo. Added in the photo's type (float32 under autocast: no bfloat16 rounding of the
    photo). Why: the strength-0 end of training (content loss only) then has only to
    keep the change at 0, where a plain generator has to rebuild the photo through its bottleneck.
    ``fade`` (the dial's top, 0: off; ``GeneratorConfig.fade``): the photo is weighted by 1 - strength / fade, each
    image by its own strength, so that the top of the dial is the network's picture alone.
    """
    photo = finest[:, :3]
    if fade == 0.0 or strength is None:
        return change + photo
    return change + photo * (1.0 - strength / fade).clamp(0.0, 1.0).view(-1, 1, 1, 1)


def zero_last_layer(conv: nn.Conv2d) -> None:
    """Start a residual generator at the identity: its last layer (the change) zero, weights and bias."""
    nn.init.zeros_(conv.weight)
    nn.init.zeros_(conv.bias)


class InstanceNorm(nn.InstanceNorm2d):
    """Affine instance norm (Ulyanov, Vedaldi & Lempitsky 2017, Eq. 2), optionally conditioned on the style strength.

    Conditioned, it holds two affine sets, one for strength 0 (``weight``, ``bias``) and one for
    the strongest strength the model is trained for (``weight_max``, ``bias_max``), and each image's
    scale and shift interpolate linearly between them with its strength s: at t = s / max_strength,
    (1 - t) * gamma_0 + t * gamma_max (conditional instance normalisation, Dumoulin, Shlens & Kudlur
    2017, whose per-style sets interpolate the same way; conditioned on a loss weight as in
    Babaeizadeh & Ghiasi 2020). Why: instance norm removes the noise input's amplitude, so without
    it the network could not see how strong a style is asked for. Two end points rather than a base
    and a slope: training draws only the two ends (Trainer._strengths), each set learns from the
    photos drawn at its end, and strengths in between interpolate (measured: a slope started at
    zero learnt only a faint dial in 300 iterations). Both start equal. Unconditioned norms (models
    trained before the strength dial) have one set, and their state dict is an ``nn.InstanceNorm2d``'s.
    ``track_running_stats`` stays False: instance norm uses each image's own statistics at
    inference too, and the state dict keeps one layout (a known export/loading trap).
    """

    def __init__(self, channels: int, max_strength: float = 0.0) -> None:
        super().__init__(channels, affine=True)
        self.max_strength = max_strength
        for name, start in (("weight_max", 1.0), ("bias_max", 0.0)):
            self.register_parameter(name, nn.Parameter(torch.full((channels,), start)) if max_strength else None)

    def scale_shift(self, strength: Optional[Tensor] = None) -> tuple[Tensor, Tensor]:
        """Scale and shift for images of ``strength`` (N,) or (1,): (N, C) each, (1 - t) * end 0 + t * end max at
        t = s / max_strength; (C,) each for an unconditioned norm or ``strength`` None (s = 0). The one place the
        dial's interpolation is written: the module's pass and the fused inference engine (model/fused.py) both use it."""
        weight_max, bias_max = self.weight_max, self.bias_max
        if strength is None or weight_max is None or bias_max is None:
            return self.weight, self.bias
        t = (strength.to(self.weight) / self.max_strength).view(-1, 1)  # (N or 1, 1)
        return torch.lerp(self.weight, weight_max, t), torch.lerp(self.bias, bias_max, t)

    def forward(self, x: Tensor, strength: Optional[Tensor] = None) -> Tensor:
        """Normalise ``x`` (N, C, H, W); ``strength`` (N,) conditions it (ignored by an unconditioned norm; None: s = 0)."""
        weight, bias = self.scale_shift(strength)
        if weight.dim() == 1:
            return F.instance_norm(x, weight=weight, bias=bias, eps=self.eps)
        return F.instance_norm(x, eps=self.eps) * weight[:, :, None, None] + bias[:, :, None, None]


class BatchNorm(nn.BatchNorm2d):
    """Batch norm (the 2016 original), with the call every norm of the pyramid shares; it takes no strength.

    The same computation as ``nn.BatchNorm2d`` (written out because a scripted module cannot call ``super()``).
    """

    def forward(self, x: Tensor, strength: Optional[Tensor] = None) -> Tensor:
        momentum = self.momentum if self.momentum is not None else 0.0
        if self.training and self.num_batches_tracked is not None:
            self.num_batches_tracked.add_(1)
        return F.batch_norm(x, self.running_mean, self.running_var, self.weight, self.bias, self.training, momentum, self.eps)


def _norm(config: GeneratorConfig, channels: int) -> nn.Module:
    if config.norm == "instance":
        return InstanceNorm(channels, config.max_strength)
    return BatchNorm(channels)


def _act(config: GeneratorConfig) -> nn.Module:
    return nn.LeakyReLU(0.01, inplace=True) if config.activation == "leaky_relu" else nn.ReLU(inplace=True)


class ConvBlock(nn.Sequential):
    """conv3x3 -> norm -> act, conv3x3 -> norm -> act, conv1x1 -> norm -> act (paper Fig. 2).

    Indexed like the ``nn.Sequential`` it was (``0.weight`` ... ``8``), so every checkpoint loads.
    """

    def __init__(self, config: GeneratorConfig, in_channels: int, out_channels: int) -> None:
        layers: list[nn.Module] = []
        for kernel, c_in in ((3, in_channels), (3, out_channels), (1, out_channels)):
            layers += [
                nn.Conv2d(c_in, out_channels, kernel, padding=kernel // 2, padding_mode=config.padding),
                _norm(config, out_channels),
                _act(config),
            ]
        super().__init__(*layers)

    def forward(self, x: Tensor, strength: Optional[Tensor] = None) -> Tensor:
        x = self[2](self[1](self[0](x), strength))
        x = self[5](self[4](self[3](x), strength))
        return self[8](self[7](self[6](x), strength))


class JoinBlock(nn.Module):
    """Upsample the coarser path x2, normalise both branches, concatenate, then a ConvBlock."""

    def __init__(self, config: GeneratorConfig, coarse_channels: int, fine_channels: int) -> None:
        super().__init__()
        joined = coarse_channels + fine_channels
        self.norm_coarse = _norm(config, coarse_channels)
        self.norm_fine = _norm(config, fine_channels)
        self.block = ConvBlock(config, joined, joined)

    def forward(self, coarse: Tensor, fine: Tensor, strength: Optional[Tensor] = None) -> Tensor:
        # Nearest upsampling to the finer branch's size: exactly x2 for padded photos, and the
        # nearest fit for textures whose size is not a multiple of 2^(K-1).
        coarse = F.interpolate(coarse, size=fine.shape[-2:], mode="nearest")
        return self.block(torch.cat([self.norm_coarse(coarse, strength), self.norm_fine(fine, strength)], dim=1), strength)


def join_for_scale(scales: int, k: int) -> int:
    """Which join merges scale ``k`` into everything coarser: joins[i] merges scale K-2-i (so this is its own inverse)."""
    return scales - 2 - k


def _axis_indices(size: int, padded: int, device: torch.device) -> tuple[Tensor, Tensor]:
    """Indices of the ``padded`` rows (or columns) made from ``size``: reflected, and edge-replicated."""
    index = torch.arange(padded, device=device)
    reflected = torch.where(index < size, index, 2 * (size - 1) - index)
    return reflected, index.clamp(max=size - 1)


def pad_indices(height: int, width: int, padded_height: int, padded_width: int, device: torch.device) -> tuple[Tensor, Tensor]:
    """Rows and columns of a photo padded at the bottom and right: the padding rule of every path.

    Reflected, which keeps the border content-like; edge-replicated (both axes) where a pad is
    as large as the photo, which cannot reflect that far. Chosen by a tensor condition, so an
    exported graph keeps both.
    """
    reflect_h, edge_h = _axis_indices(height, padded_height, device)
    reflect_w, edge_w = _axis_indices(width, padded_width, device)
    reflect = (reflect_h.min() >= 0) & (reflect_w.min() >= 0)
    return torch.where(reflect, reflect_h, edge_h), torch.where(reflect, reflect_w, edge_w)


class InputPlan(nn.Module):
    """How a photo becomes the pyramid's per-scale inputs, and how the output is cropped back (Sec. 3.1).

    Written once, in the form export needs: sizes from the input's shape with integer arithmetic
    that symbolic shapes follow (no Python branch on a size), padding and cropping as index
    gathers (reflected, or edge-replicated for photos too small to reflect, chosen by a tensor
    condition). Traced or exported, any size then runs. No parameters: the state dict is the body's.
    """

    def __init__(self, scales: int, noise_depth: int) -> None:
        super().__init__()
        self.scales = scales
        self.noise_depth = noise_depth
        self.multiple = 2 ** (scales - 1)
        """Photo sizes are padded to a multiple of this, so every pooling level divides exactly."""

    def padded_size(self, height: int, width: int) -> tuple[int, int]:
        """A multiple of 2^(K-1) with at least two blocks: two pixels at the coarsest scale, which reflection padding needs.

        max(c, 2) is written c + 1 // c (c >= 1), which symbolic shapes handle without a branch.
        """
        m = self.multiple
        blocks_h, blocks_w = (height + m - 1) // m, (width + m - 1) // m
        return (blocks_h + 1 // blocks_h) * m, (blocks_w + 1 // blocks_w) * m

    def pad(self, image: Tensor) -> Tensor:
        """(N, C, H, W) -> padded to :meth:`padded_size` by :func:`pad_indices`."""
        height, width = image.shape[2], image.shape[3]
        padded_height, padded_width = self.padded_size(height, width)
        rows, cols = pad_indices(height, width, padded_height, padded_width, image.device)
        return image.index_select(2, rows).index_select(3, cols)

    def pool(self, image: Tensor, count: int) -> List[Tensor]:
        """``image`` and ``count - 1`` successive 2x2 average poolings of it: scales k..k+count-1 from scale k."""
        pooled = [image]
        for _ in range(1, count):
            pooled.append(F.avg_pool2d(pooled[-1], 2))
        return pooled

    def with_noise(self, pooled: Tensor, noise: Optional[Tensor]) -> Tensor:
        """One scale's input: the pooled photo with the noise channels appended (none without noise)."""
        return pooled if noise is None else torch.cat([pooled, noise], dim=1)

    def crop(self, output: Tensor, height: int, width: int) -> Tensor:
        """The top-left ``height`` x ``width`` of the output, by index gathers.

        A slice would be a view whose layout depends on whether the photo was padded, and
        torch.export would fix that for all sizes from the example's.
        """
        rows = torch.arange(height, device=output.device)
        cols = torch.arange(width, device=output.device)
        return output.index_select(2, rows).index_select(3, cols)


class PyramidBody(nn.Module):
    """The pyramid itself: per-scale inputs (finest first) -> RGB, the join loop written once (Fig. 2).

    Its state dict is the checkpoint's (``branches``, ``joins``, ``to_rgb``). Scriptable, so that
    export composes it with the :class:`InputPlan`.
    """

    def __init__(self, config: GeneratorConfig) -> None:
        super().__init__()
        in_channels = config.image_channels + config.noise_depth
        c = config.channels
        self.branches = nn.ModuleList(ConvBlock(config, in_channels, c) for _ in range(config.scales))
        # joins[i] merges scale K-2-i (join_for_scale) into everything coarser (i+1 scales of c channels each).
        self.joins = nn.ModuleList(JoinBlock(config, c * (i + 1), c) for i in range(config.scales - 1))
        self.to_rgb = nn.Conv2d(c * config.scales, 3, kernel_size=1)
        self.residual = config.residual
        """The output is the photo plus the network's (:func:`plus_photo`)."""
        self.fade = config.faded_at
        """The strength at which the photo's share has faded to 0 (:func:`plus_photo`); 0: no fading."""
        if self.residual:
            zero_last_layer(self.to_rgb)

    def forward(self, inputs: List[Tensor], strength: Optional[Tensor] = None) -> Tensor:
        """``strength`` (N,): each image's style strength, for a model with the strength dial (see :class:`InstanceNorm`)."""
        # Every branch depends only on its own scale's input, so all run before the joins.
        branched: List[Tensor] = []
        for k, branch in enumerate(self.branches):
            branched.append(branch(inputs[k], strength))
        x = branched[-1]
        for i, join in enumerate(self.joins):
            x = join(x, branched[join_for_scale(len(branched), i)], strength)
        rgb = self.to_rgb(x)
        return plus_photo(rgb, inputs[0], strength, self.fade) if self.residual else rgb


class PyramidGenerator(PyramidBody):
    """Texture network generator: the :class:`InputPlan` around a :class:`PyramidBody`; see the module docstring."""

    def __init__(self, config: GeneratorConfig) -> None:
        super().__init__(config)
        self.config = config
        self.plan = InputPlan(config.scales, config.noise_depth)

    def forward(
        self,
        image: Optional[Tensor] = None,
        *,
        strength: Strength = 1.0,
        size: Optional[Sequence[int]] = None,
        batch: int = 1,
        noise: Optional[NoiseSource] = None,
        body: Optional[Body] = None,
    ) -> Tensor:
        """Stylise ``image`` (N, 3, H, W) in [0, 1], or, in texture mode, sample (batch, 3, *size).

        ``strength`` (``--noise_factor``; a number, or one per image) scales the uniform noise: 0 gives a
        deterministic output. With the strength dial (``config.max_strength`` > 0) it is also the
        style strength the norms are conditioned on (:meth:`strengths`): 0 the photo's shapes in the style's colours, 1 the
        style weight's full style; without it, 1 is what training saw. ``noise`` draws the noise
        (default: independent per image from torch's global RNG, so ``torch.manual_seed`` fixes
        it; see ``texturenet.model.noise`` for the others). ``body``: what computes the picture from the
        per-scale inputs (default: this network, :meth:`body`; model/fused.py's fused body computes the same function).
        """
        noise = noise or IndependentNoise()
        body = body or self.body
        if self.config.mode == "style":
            if image is None:
                raise ValueError("a style-mode generator needs an input image")
            height, width = image.shape[-2:]
            strengths = self.strengths(strength, image.device)
            return self.plan.crop(body(self.inputs(self.plan.pad(image), noise, strength), strengths), height, width)
        if size is None:
            raise ValueError("a texture-mode generator needs a size (height, width)")
        height, width = int(size[0]), int(size[1])
        return self.plan.crop(body(self.noise_inputs(batch, *self.sample_size(height, width, batch), noise, strength), None), height, width)

    def body(self, inputs: List[Tensor], strength: Optional[Tensor] = None) -> Tensor:
        """Per-scale inputs -> RGB (:class:`PyramidBody`), the default :data:`Body` of :meth:`forward`."""
        return PyramidBody.forward(self, inputs, strength)

    def strengths(self, strength: Strength, device: torch.device) -> Optional[Tensor]:
        """Style strengths for the norms, (1,) for one strength or (N,) for one per image; None without the dial.

        The norms are conditioned on the strength that scales the noise: training gives each photo one (0 or max_strength)
        and weights that photo's style term by it (training/loop.py), so the one knob sets both. One
        strength stays (1,) and the norms broadcast it, so that no size depends on the batch (an
        exported graph keeps its batch dimension dynamic).
        """
        if not self.config.max_strength:
            return None
        return torch.as_tensor(strength, dtype=torch.float32, device=device).reshape(-1)

    def inputs(self, padded: Tensor, noise: NoiseSource, strength: Strength = 1.0, first: int = 0) -> List[Tensor]:
        """Scales ``first``..K-1's inputs from ``padded``, the padded photo at scale ``first``."""
        return [self.scale_input(pooled, first + i, noise, strength)
                for i, pooled in enumerate(self.plan.pool(padded, self.config.scales - first))]

    def scale_input(self, pooled: Tensor, scale: int, noise: NoiseSource, strength: Strength = 1.0,
                    top: int = 0, left: int = 0) -> Tensor:
        """Scale ``scale``'s input: the pooled photo (N, 3, h, w), whose top-left is (top, left) of that scale's map, and its noise."""
        if not self.config.noise_depth:
            return pooled
        n, _, height, width = pooled.shape
        return self.plan.with_noise(pooled, noise(scale, n, height, width, depth=self.config.noise_depth, strength=per_image(strength),
                                                  device=pooled.device, dtype=pooled.dtype, top=top, left=left))

    def noise_inputs(self, batch: int, height: int, width: int, noise: NoiseSource, strength: Strength = 1.0) -> List[Tensor]:
        """Texture mode's inputs: noise alone at each scale, ceil(size / 2^k) pixels."""
        device = self.to_rgb.weight.device
        return [noise(k, batch, math.ceil(height / 2**k), math.ceil(width / 2**k), depth=self.config.noise_depth,
                      strength=per_image(strength), device=device, dtype=torch.float32)
                for k in range(self.config.scales)]

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
