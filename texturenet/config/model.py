"""The generator's settings (:class:`GeneratorConfig`): which network, its shape and its strength dial, with their choices and bounds.

Everything needed to rebuild a trained generator (stored in every checkpoint); the networks are in ``texturenet/model/``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional

from ..errors import TexturenetError
from .limits import DEFAULT_MAX_STRENGTH, STRENGTH_LIMIT, check_choice

MODES = ("style", "texture")
GENERATORS = ("pyramid", "johnson")
NORMS = ("instance", "batch")
ACTIVATIONS = ("leaky_relu", "relu")
PADDINGS = ("reflect", "circular", "replicate", "zeros")

GENERATOR_BOUNDS: dict[str, tuple[int, int]] = {"scales": (1, 8), "channels": (1, 128), "noise_depth": (0, 64)}
"""Inclusive ranges of the generator's sizes, for training flags and checkpoints alike (a checkpoint is input
from strangers: its config is checked against these before anything is built). The paper uses K = 5-6 scales
of 8 channels and 3 noise channels (Ulyanov et al. 2016, Sec. 3.1); 8 scales already pad photos to multiples
of 128 pixels, and 8 scales of 128 channels make a 65M-parameter generator with 1024 full-resolution channels.
For ``johnson`` channels is the width of the residual blocks, a multiple of 4 from 4 (its stages have width/4,
width/2 and width channels) up to Johnson et al.'s own 128."""


COARSEST_MAP = 16
"""The training crop's coarsest pyramid map is at least this many pixels a side when --scales is not given. Measured
(docs/QUALITY.md, "Blotches"): at 128-px crops the paper's 6 scales leave 4x4 and 8x8 maps, whose instance-norm
statistics a few pixels can steer, and the trained model paints dark drops (spike ratio 2.35-3.32 on the held-out
photos); 4 scales (coarsest 16x16) paint none (1.41-1.53)."""


def scales_for(image_size: int) -> int:
    """K for a training crop of ``image_size`` pixels: the most scales whose coarsest map (image_size / 2^(K-1)) is at
    least :data:`COARSEST_MAP`, at most the paper's 6 (Ulyanov et al. 2016, Sec. 3.1): 4 at 128 px, 5 at 256, 6 from 512."""
    return max(1, min(6, 1 + int(math.floor(math.log2(max(image_size, 1) / COARSEST_MAP)))))


JOHNSON_CHANNELS = 32
"""The johnson network's default width (residual channels): the compact size of the end-user stylizers (issue 22); 14.5K
multiply-adds per output pixel, 27% of the pyramid's 54.4K and 9% of Johnson et al.'s width 128 (BENCHMARKS.md, "Generators").
Whether it is the width to train is for issue 22's quality front (docs/QUALITY.md) to say."""


@dataclass
class GeneratorConfig:
    """Shape of the generator: the multi-scale ("pyramid") generator of Ulyanov et al. 2016, Sec. 3.1 / Fig. 2, or Johnson et al.'s residual network.

    Everything needed to rebuild a trained generator, and what its strength (``--noise_factor``) means; stored in every checkpoint.
    """

    mode: str = "style"
    """``style``: input is a photo plus noise; ``texture``: input is noise alone."""
    generator: str = "pyramid"
    """``pyramid``: the multi-scale generator of Ulyanov et al. 2016 (Sec. 3.1); ``johnson``: the residual network of Johnson, Alahi & Fei-Fei 2016 with instance norm (texture_nets' -model johnson; style mode only), width --channels. Checkpoints from before this setting are pyramids."""
    scales: int = 6
    """K, the number of scales; scale k sees the input average-pooled by 2^k (paper: 6). The pyramid's only."""
    channels: Optional[int] = None
    """The generator's width. pyramid: channels of each scale's branch, the join at the finest scale has K times this (paper: 8); johnson: channels of its residual blocks at 1/4 resolution, a multiple of 4 (a quarter of them at full resolution, half at 1/2; Johnson et al.: 128). Unset: 8 for pyramid, 32 for johnson."""
    noise_depth: int = 3
    """Channels of uniform noise concatenated to the input at every scale (original code: 3)."""
    norm: str = "instance"
    """``instance`` (Ulyanov et al. 2016/2017, instance normalisation) or ``batch`` (the 2016 original)."""
    activation: Optional[str] = None
    """``leaky_relu`` (slope 0.01, the original pyramid) or ``relu`` (the instance-norm code, and Johnson et al.). Unset: leaky_relu for pyramid, relu for johnson."""
    padding: Optional[str] = None
    """Convolution padding; unset: ``reflect`` for style (photos), ``circular`` for texture mode (samples tile seamlessly)."""
    max_strength: Optional[float] = None
    """Range of the style-strength dial: training gives each photo strength 0 or max_strength (half each; the middle interpolates), scales its noise and its style term by s and conditions every instance norm on s; stylising, the noise factor is s (0 the photo's shapes in the style's colours, 1 the style weight's full style, more is stronger, up to max_strength). 0 turns the dial off: the noise factor only scales the noise (Ulyanov et al. 2016; models trained before the dial existed). Unset: 2 for style models with instance norm, 0 for texture models and batch norm."""

    residual: bool = False
    """The output is the photo plus a learnt change (out = photo + R(photo, noise, s)), R's last layer zero at the start: training starts at the identity, and the strength-0 end (no style term) only has to keep R at 0, so strength 0 is close to the photo. Style mode only (a texture has no photo). Checkpoints from before this setting are not residual."""
    fade: bool = False
    """With ``residual``: the photo's share of the picture falls with the strength, out = (1 - s / max_strength) photo + R(photo, noise, s), so strength 0 is the photo plus a change trained to stay 0 and the top is the network alone, as free as a plain generator (the residual's own top has to cancel the photo's colours, which its instance norms hide from it). Needs the dial. Checkpoints from before this setting do not fade."""

    @property
    def faded_at(self) -> float:
        """The strength at which ``fade`` has taken the photo's share to 0 (the dial's top); 0.0 for a model that does not fade."""
        return float(self.max_strength or 0.0) if self.fade else 0.0

    def __post_init__(self) -> None:
        """Types, choices and :data:`GENERATOR_BOUNDS`; a checkpoint's config arrives here unchecked."""
        johnson = self.generator == "johnson"
        if self.channels is None:
            self.channels = JOHNSON_CHANNELS if johnson else 8
        if self.activation is None:
            self.activation = "relu" if johnson else "leaky_relu"
        for name in ("mode", "generator", "norm", "activation"):
            if not isinstance(getattr(self, name), str):
                raise ValueError(f"{name} must be a string, got {getattr(self, name)!r}")
        check_choice("mode", self.mode, MODES)
        check_choice("generator", self.generator, GENERATORS)
        if johnson and self.mode != "style":
            raise ValueError("the johnson generator stylises photos (its input is a photo); texture mode needs --generator pyramid")
        if not isinstance(self.residual, bool):
            raise ValueError(f"residual must be true or false, got {self.residual!r}")
        if self.residual and self.mode != "style":
            raise ValueError("--residual adds the generator's output to the photo, and texture mode has no photo; give --no-residual")
        if not isinstance(self.fade, bool):
            raise ValueError(f"fade must be true or false, got {self.fade!r}")
        if self.fade and not self.residual:
            raise ValueError("--fade fades the photo that --residual adds; give --residual too")
        if self.padding is None:
            self.padding = "reflect" if self.mode == "style" else "circular"
        if not isinstance(self.padding, str):
            raise ValueError(f"padding must be a string, got {self.padding!r}")
        check_choice("norm", self.norm, NORMS)
        check_choice("activation", self.activation, ACTIVATIONS)
        check_choice("padding", self.padding, PADDINGS)
        if self.max_strength is None:
            self.max_strength = DEFAULT_MAX_STRENGTH if (self.mode, self.norm) == ("style", "instance") else 0.0
        if isinstance(self.max_strength, bool) or not isinstance(self.max_strength, (int, float)):
            raise ValueError(f"max_strength must be a number, got {self.max_strength!r}")
        self.max_strength = float(self.max_strength)
        if not 0 <= self.max_strength <= STRENGTH_LIMIT:
            raise ValueError(f"max_strength must be in 0..{STRENGTH_LIMIT:g}, got {self.max_strength}")
        if self.fade and not self.max_strength:
            raise ValueError("--fade fades the photo along the strength dial, and this model has none (max_strength 0); give --max_strength")
        if self.max_strength and (self.mode, self.norm) != ("style", "instance"):
            raise ValueError("max_strength (the style-strength dial) needs style mode and instance norm; give --max_strength 0")
        for name, (least, most) in GENERATOR_BOUNDS.items():
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int):
                raise ValueError(f"{name} must be a whole number, got {value!r}")
            if name == "noise_depth" and (value < least or (self.mode == "texture" and value < 1)):
                raise ValueError("noise_depth must be >= 0 (>= 1 in texture mode, where noise is the only input)")
            if value < least:
                raise ValueError(f"{name} must be at least {least}, got {value}")
            if value > most:
                raise ValueError(f"{name} must be at most {most}, got {value} (the paper's generator: 5-6 scales, 8 channels, 3 noise channels)")
        if johnson and self.channels % 4:
            raise ValueError(f"channels of the johnson generator must be a multiple of 4 (its stages have channels/4 and channels/2), got {self.channels}")

    @property
    def image_channels(self) -> int:
        """RGB channels the generator takes at each scale: 3 for stylisation, 0 for textures."""
        return 3 if self.mode == "style" else 0

    def require_mode(self, mode: str, then: str, subject: str = "this") -> None:
        """The one refusal of a model of the other mode: "``subject`` is a texture model" (or stylisation) and ``then``.

        ``then`` says, punctuation first, what the command takes and what to give instead (``--size WxH``, ``--input PHOTO``).
        """
        if self.mode != mode:
            raise TexturenetError(f"{subject} is a {'stylisation' if self.mode == 'style' else 'texture'} model{then}")
