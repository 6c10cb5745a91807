"""The perceptual loss's settings (:class:`LossConfig`): loss network, layers, weights and how terms are scaled."""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Optional

from .limits import check_choice

LOSS_NETS = ("vgg19", "vgg16")
WEIGHTS_ENV = "TEXTURENET_VGG_WEIGHTS"
"""The environment variable that sets ``--vgg_weights``' default (read by the command line only; ``texturenet info`` shows it)."""
LOSS_SCALES = ("relative", "absolute")


@dataclass
class LossConfig:
    """The perceptual losses of Gatys et al. 2015/2016 as used by Ulyanov et al. 2016, Sec. 2 and 3.2.

    With ``loss_scale`` relative (the default) each term is measured relative to its target, so the
    weights mean the same on any loss network, whatever the scale of its features; the default
    weights were measured with the HED VGG16 (docs/METHOD.md, "Loss weights").
    """

    loss_net: str = "vgg19"
    """Loss network: ``vgg19`` (the paper's) or ``vgg16``."""
    vgg_weights: str = "imagenet"
    """``imagenet`` (torchvision's IMAGENET1K_V1), a path to a torchvision-layout state dict, or ``random``."""
    content_layers: tuple[str, ...] = ("relu4_2",)
    """Layers compared for the content loss (Gatys et al. and texture_nets: relu4_2)."""
    content_layer_weights: Optional[tuple[float, ...]] = None
    """One weight per content layer, in order (comma-separated on the command line, e.g. 1,0.5); unset, each weighs 1."""
    style_layers: tuple[str, ...] = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")
    """Layers whose Gram matrices make the style loss (Gatys et al. and texture_nets v1)."""
    style_layer_weights: Optional[tuple[float, ...]] = None
    """One weight per style layer, in order (comma-separated on the command line, e.g. 1,1,0.5,0.2,0.2); unset, each weighs 1."""
    loss_scale: str = "relative"
    """relative: the style term is divided by the style image's (layer-weighted) mean squared Gram entries and the content term by the photo's mean squared features, so a weight means the same on any loss network (features c times larger scale a Gram term by c^4, a content term by c^2); absolute: the plain mean squared errors (Gatys et al.; models trained before this setting existed, and the optimize presets)."""
    content_weight: float = 1.0
    """Weight of the content loss."""
    style_weight: float = 3.0
    """Weight of the style loss. With --loss_scale relative it means the same on any loss network's scale (3 measured on the HED VGG16: docs/METHOD.md "Loss weights"); with absolute it depends on the loss network (--loss_net, --vgg_weights)."""
    tv_weight: float = 1e-4
    """Weight of the total-variation smoothness term (Mahendran & Vedaldi, beta = 2) on RGB in [0, 1]."""
    diversity_weight: float = 0.0
    """Weight of the diversity term of Improved Texture Networks (Ulyanov et al. 2017): rewards samples from different noise for being far apart in VGG features; 0 is the 2016 objective."""
    diversity_layer: str = "relu4_2"
    """Loss-network layer in which the diversity term measures distances between samples."""

    def __post_init__(self) -> None:
        """Types, choices and ranges: a checkpoint's loss settings arrive here unchecked (resumed runs, evaluation)."""
        for name in ("loss_net", "vgg_weights", "loss_scale", "diversity_layer"):
            if not isinstance(getattr(self, name), str):
                raise ValueError(f"{name} must be a string, got {getattr(self, name)!r}")
        for name in ("content_layers", "style_layers"):
            layers = getattr(self, name)
            if not isinstance(layers, (list, tuple)) or not all(isinstance(layer, str) for layer in layers):
                raise ValueError(f"{name} must be a list of layer names, got {layers!r}")
            setattr(self, name, tuple(layers))
        check_choice("loss_net", self.loss_net, LOSS_NETS)
        check_choice("loss_scale", self.loss_scale, LOSS_SCALES)
        for layers, weights, what in (
            (self.content_layers, self.content_layer_weights, "content"),
            (self.style_layers, self.style_layer_weights, "style"),
        ):
            if weights is None:
                continue
            if not isinstance(weights, (list, tuple)) or not all(_finite_at_least_0(w) for w in weights):
                raise ValueError(f"{what}_layer_weights must be a list of finite numbers >= 0, got {weights!r}")
            if len(weights) != len(layers):
                raise ValueError(
                    f"{len(weights)} {what} layer weights given for {len(layers)} {what} layers"
                )
            setattr(self, f"{what}_layer_weights", tuple(float(w) for w in weights))
        for name in ("content_weight", "style_weight", "tv_weight", "diversity_weight"):
            value = getattr(self, name)
            if not _finite_at_least_0(value):  # also refuses NaN, infinity, and strings from a crafted checkpoint
                raise ValueError(f"{name} must be a number >= 0, got {value!r}")


def _finite_at_least_0(value: Any) -> bool:
    """Whether ``value`` is a finite int or float (not a bool) >= 0: a loss weight."""
    return not isinstance(value, bool) and isinstance(value, (int, float)) and math.isfinite(value) and value >= 0
