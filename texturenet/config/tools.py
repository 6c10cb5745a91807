"""The tools' settings: per-image optimisation (:class:`OptimizeSettings`), the quality report (:class:`EvaluateSettings`), diversity (:class:`DiversitySettings`)."""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from .limits import check_choice, check_seed, check_strength
from .loss import LOSS_NETS

OPTIMIZERS = ("lbfgs", "adam")
INITS = ("content", "noise")


@dataclass
class OptimizeSettings:
    """How texturenet-optimize optimises the picture itself (tools/optimize.py; the losses are the LossConfig's)."""

    iterations: int = 500
    """Optimisation steps (L-BFGS: one iteration each)."""
    optimizer: str = "lbfgs"
    """lbfgs (Gatys et al.) or adam (the Keras/PyTorch tutorials)."""
    lr: float = 1.0
    """Step size: 1 for L-BFGS; 0.003-0.02 for Adam on pixels in [0, 1]."""
    betas: tuple[float, float] = (0.9, 0.999)
    """Adam's beta1,beta2 (the Keras tutorial uses 0.99,0.999)."""
    eps: float = 1e-8
    """Adam's epsilon (the Keras tutorial uses 0.1)."""
    init: str = "content"
    """Start from the content photo or from uniform noise."""
    seed: int = 0
    """Seed of the noise initialisation."""

    def __post_init__(self) -> None:
        if self.iterations < 1:
            raise ValueError(f"iterations must be at least 1, got {self.iterations}")
        check_choice("optimizer", self.optimizer, OPTIMIZERS)
        check_choice("init", self.init, INITS)
        if not self.lr > 0:
            raise ValueError(f"lr must be > 0, got {self.lr}")
        self.betas = tuple(self.betas)  # type: ignore[assignment]
        if len(self.betas) != 2 or not all(0 <= b < 1 for b in self.betas):
            raise ValueError("betas takes two numbers in [0, 1), e.g. 0.9,0.999")
        check_seed(self.seed)


@dataclass
class EvaluateSettings:
    """What texturenet-evaluate compares, and at what size (tools/evaluate.py)."""

    image_size: int = 256
    """Photos are shrunk so that the longer side is at most this."""
    noise_factors: tuple[float, ...] = (0.0, 0.25, 0.5, 0.75, 1.0)
    """Noise factors at which the feed-forward generator is scored: its style/content curve (for a model with the strength dial, the style strength)."""
    style_scales: tuple[float, ...] = (0.25, 1.0, 4.0)
    """Per-image optimisation runs once per photo for each of these multiples of the model's style weight: the front of the style/content trade-off it reaches."""
    iterations: tuple[int, ...] = (50, 200)
    """Iteration counts at which each optimisation run is scored (snapshots of the same run)."""
    optimizer: str = "lbfgs"
    """Optimiser of the per-image baseline (Gatys et al.: L-BFGS from the photo)."""
    lr: float = 1.0
    """Its step size."""
    peer: Optional[Path] = None
    """The 2019 peer's mosaic generator (texturenet/tools/peer.py) to score beside the model, at noise factor 1; unset: none."""
    max_photos: int = 0
    """Score only the first this many photos (0: all)."""
    seed: int = 0
    """Seed of the generator's noise."""

    def __post_init__(self) -> None:
        if self.image_size < 16 or self.max_photos < 0 or not self.lr > 0:
            raise ValueError("image_size must be at least 16, max_photos >= 0 and lr > 0")
        if not self.noise_factors or not self.iterations or any(not (math.isfinite(s) and s > 0) for s in self.style_scales):
            raise ValueError("give at least one noise factor and iteration count, and style scales > 0")
        check_choice("optimizer", self.optimizer, OPTIMIZERS)
        check_seed(self.seed)
        for strength in self.noise_factors:
            check_strength(strength)


@dataclass
class DiversitySettings:
    """What texturenet-diversity samples and where it measures distances (tools/diversity.py)."""

    samples: int = 8
    """Samples per model, each from a different noise seed (0, 1, ...)."""
    size: int = 128
    """Texture samples are size x size pixels; photos are shrunk so that the longer side is at most this."""
    noise_factor: float = 1.0
    """Noise factor of every sample: the style strength for models with the strength dial, else the scale of the noise input (1: as in training)."""
    loss_net: str = "vgg19"
    """Network whose features are compared (the same for every model, so that the numbers compare)."""
    vgg_weights: str = "imagenet"
    """Its weights: ``imagenet``, a torchvision-layout state dict, or ``random``."""
    layer: str = "relu4_2"
    """Layer in which distances are measured (the diversity term's default layer)."""

    def __post_init__(self) -> None:
        if self.size < 16:
            raise ValueError("size must be at least 16")
        check_choice("loss_net", self.loss_net, LOSS_NETS)
        check_strength(self.noise_factor)
