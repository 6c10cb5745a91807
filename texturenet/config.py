"""Every setting of texturenet, with its default and where that default comes from.

One source of defaults: the command line (``cli.py``) builds its flags and help texts from
these dataclasses. Training has one config (:class:`TrainConfig`, holding the generator's and
the losses'), which the trainer reads and checkpoints store, so that a generator can be rebuilt
without the command line that made it; stylising has :class:`StylizeConfig`.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

MODES = ("style", "texture")
NORMS = ("instance", "batch")
ACTIVATIONS = ("leaky_relu", "relu")
PADDINGS = ("reflect", "circular", "replicate", "zeros")
LOSS_NETS = ("vgg19", "vgg16")
VIDEO_NOISE = ("fixed", "fresh")
AMP_DTYPES = ("auto", "bfloat16", "float16")


@dataclass
class GeneratorConfig:
    """Shape of the multi-scale ("pyramid") generator of Ulyanov et al. 2016, Sec. 3.1 / Fig. 2.

    Everything needed to rebuild a trained generator; stored in every checkpoint.
    """

    mode: str = "style"
    """``style``: input is a photo plus noise; ``texture``: input is noise alone."""
    scales: int = 6
    """K, the number of scales; scale k sees the input average-pooled by 2^k (paper: 6)."""
    channels: int = 8
    """Channels of each scale's branch; the join at the finest scale has K times this (paper: 8)."""
    noise_depth: int = 3
    """Channels of uniform noise concatenated to the input at every scale (original code: 3)."""
    norm: str = "instance"
    """``instance`` (Ulyanov et al. 2016/2017, instance normalisation) or ``batch`` (the 2016 original)."""
    activation: str = "leaky_relu"
    """``leaky_relu`` (slope 0.01, the original pyramid) or ``relu`` (the instance-norm code)."""
    padding: str = "reflect"
    """Convolution padding: ``reflect`` for photos, ``circular`` for textures (they tile seamlessly)."""

    def __post_init__(self) -> None:
        _check_choice("mode", self.mode, MODES)
        _check_choice("norm", self.norm, NORMS)
        _check_choice("activation", self.activation, ACTIVATIONS)
        _check_choice("padding", self.padding, PADDINGS)
        for name in ("scales", "channels"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.noise_depth < 0 or (self.mode == "texture" and self.noise_depth < 1):
            raise ValueError("noise_depth must be >= 0 (>= 1 in texture mode, where noise is the only input)")

    @property
    def image_channels(self) -> int:
        """RGB channels the generator takes at each scale: 3 for stylisation, 0 for textures."""
        return 3 if self.mode == "style" else 0


@dataclass
class LossConfig:
    """The perceptual losses of Gatys et al. 2015/2016 as used by Ulyanov et al. 2016, Sec. 2 and 3.2.

    Weights are for our own input convention (RGB in [0, 1], ImageNet mean/std normalisation
    inside the loss network) and were measured, not copied from Caffe-based code whose VGG sees
    inputs 255x larger: see README, "Defaults and where they come from".
    """

    loss_net: str = "vgg19"
    """Loss network: ``vgg19`` (the paper's) or ``vgg16``."""
    vgg_weights: str = "imagenet"
    """``imagenet`` (torchvision's IMAGENET1K_V1), a path to a torchvision-layout state dict, or ``random``."""
    content_layers: tuple[str, ...] = ("relu4_2",)
    """Layers compared for the content loss (Gatys et al. and texture_nets: relu4_2)."""
    content_layer_weights: Optional[tuple[float, ...]] = None
    """One weight per content layer; None means 1 for each."""
    style_layers: tuple[str, ...] = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")
    """Layers whose Gram matrices make the style loss (Gatys et al. and texture_nets v1)."""
    style_layer_weights: Optional[tuple[float, ...]] = None
    """One weight per style layer; None means 1 for each."""
    content_weight: float = 1.0
    """Weight of the content loss."""
    style_weight: float = 2e3
    """Weight of the style loss for torchvision's ImageNet VGG (derived, see README "Loss weights")."""
    tv_weight: float = 1e-4
    """Weight of the total-variation smoothness term (Mahendran & Vedaldi, beta = 2)."""
    diversity_weight: float = 0.0
    """Weight of the diversity term of Improved Texture Networks (Ulyanov et al. 2017): rewards samples from different noise for being far apart in VGG features; 0 is the 2016 objective."""
    diversity_layer: str = "relu4_2"
    """Loss-network layer in which the diversity term measures distances between samples."""

    def __post_init__(self) -> None:
        self.content_layers = tuple(self.content_layers)
        self.style_layers = tuple(self.style_layers)
        _check_choice("loss_net", self.loss_net, LOSS_NETS)
        for layers, weights, what in (
            (self.content_layers, self.content_layer_weights, "content"),
            (self.style_layers, self.style_layer_weights, "style"),
        ):
            if weights is not None and len(weights) != len(layers):
                raise ValueError(
                    f"{len(weights)} {what} layer weights given for {len(layers)} {what} layers"
                )
        if self.content_layer_weights is not None:
            self.content_layer_weights = tuple(float(w) for w in self.content_layer_weights)
        if self.style_layer_weights is not None:
            self.style_layer_weights = tuple(float(w) for w in self.style_layer_weights)
        for name in ("content_weight", "style_weight", "tv_weight", "diversity_weight"):
            value = getattr(self, name)
            if not value >= 0:  # also refuses NaN
                raise ValueError(f"{name} must be a number >= 0, got {value}")


@dataclass
class TrainConfig:
    """One training run: data, schedule, output. Defaults follow texture_nets v1 (Sec. 4 of the paper)."""

    data_dir: Optional[Path] = None
    """Folder of training photos, searched recursively (style mode)."""
    texture: Optional[Path] = None
    """The style image (in texture mode, the texture) whose Gram statistics are learnt."""
    name: Optional[str] = None
    """Run name, used for checkpoint file names."""
    checkpoint_dir: Path = Path("checkpoints")
    """Where checkpoints, sample grids and loss plots are written."""
    image_size: int = 256
    """Training crop size in pixels (paper and original code: 256)."""
    style_size: int = 256
    """The style image is resized so that its shorter side has this many pixels."""
    batch_size: int = 4
    """Images per iteration (texture_nets v1: 4)."""
    iterations: int = 3000
    """Optimiser steps (texture_nets v1: 3000)."""
    lr: float = 1e-3
    """Adam learning rate (measured: 1e-3 is stable with instance norm; the original 0.1 relies on batch norm)."""
    lr_step: int = 1000
    """Multiply the learning rate by lr_decay every this many iterations."""
    lr_decay: float = 0.8
    """Learning-rate decay factor (texture_nets: 0.8)."""
    seed: int = 0
    """Seed of every random choice (data order, crops, noise, initial weights)."""
    workers: int = 2
    """Data-loading worker processes (0 loads in the main process)."""
    save_every: int = 500
    """Write a checkpoint, sample grid and loss plot every this many iterations (0: only at the end)."""
    log_every: int = 10
    """Read losses back from the device every this many iterations (progress bar, loss history)."""
    val_images: int = 4
    """Fixed photos shown in the sample grid; held out from training when the data set has at least 10x as many."""
    cuda: bool = False
    """Train on the GPU; an error if CUDA is not available."""
    amp: bool = False
    """Mixed precision: bfloat16 autocast where the device supports it, else float16 with loss scaling; Grams and losses stay float32."""
    amp_dtype: str = "auto"
    """--amp's autocast type: auto (bfloat16 where supported, else float16), bfloat16, or float16 (with a GradScaler's loss scaling)."""
    channels_last: bool = False
    """channels_last memory order for images, activations and weights (what cuDNN tensor cores and oneDNN prefer)."""
    compile: bool = False
    """torch.compile the generator and the loss network: slow first iterations, faster ones after (CPU needs a C++ compiler)."""
    resume: Optional[Path] = None
    """Checkpoint to continue from (optimiser, schedule, iteration and random state included)."""
    overwrite: bool = False
    """Replace the checkpoints of an earlier run with the same name (without it such a run is refused: nothing is lost)."""
    viz: bool = False
    """Stream losses, samples and the configuration to a Visdom server (docs/MONITORING.md)."""
    viz_env: Optional[str] = None
    """Visdom environment of the run; None means the run name."""
    viz_server: str = "http://localhost"
    """Address of the Visdom server."""
    viz_port: int = 8097
    """Port of the Visdom server (Visdom's own default)."""
    viz_every: int = 100
    """With --viz, show a sample grid (fixed validation photos, or fixed-noise textures) every this many iterations."""
    generator: GeneratorConfig = field(default_factory=GeneratorConfig)
    loss: LossConfig = field(default_factory=LossConfig)

    def __post_init__(self) -> None:
        for name in ("image_size", "style_size", "batch_size", "iterations", "lr_step"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.viz_every < 1 or not 0 < self.viz_port < 65536:
            raise ValueError(f"viz_every must be at least 1 and viz_port in 1..65535, got {self.viz_every}, {self.viz_port}")
        for name in ("workers", "save_every", "val_images"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        if self.amp_dtype not in AMP_DTYPES:
            raise ValueError(f"amp_dtype must be one of {', '.join(AMP_DTYPES)}, got {self.amp_dtype!r}")
        if self.log_every < 1:
            raise ValueError(f"log_every must be at least 1, got {self.log_every}")
        if not (self.lr > 0 and 0 < self.lr_decay <= 1):
            raise ValueError("lr must be > 0 and lr_decay in (0, 1]")
        if self.loss.diversity_weight:
            if self.generator.noise_depth == 0:
                raise ValueError("diversity_weight needs noise (noise_depth >= 1): without it every sample is the same")
            if self.mode == "texture" and self.batch_size < 2:
                raise ValueError("diversity_weight compares the samples of a batch: use batch_size >= 2")

    @property
    def mode(self) -> str:
        return self.generator.mode

    def to_dict(self) -> dict[str, Any]:
        """Plain types only (str, int, float, tuple, None), so it loads with ``weights_only=True``."""
        return _plain(dataclasses.asdict(self))


CPU_DEMO: dict[str, Any] = {"iterations": 200, "image_size": 128, "batch_size": 2, "save_every": 100}
"""``texturenet-train`` with neither --data_dir nor --texture nor --cuda: the bundled demo, sized to finish
in a few minutes on a 2-core CPU instead of the paper's 3000 iterations at 256 px (about 12 hours there).
Flags given explicitly still win. The run ends by stylising a bundled photo, so there is a picture to open.
"""


@dataclass(frozen=True)
class StylizeConfig:
    """How texturenet-stylize runs a trained generator on a photo, a folder or a video (stylize.py, video.py)."""

    noise_factor: float = 1.0
    """Scales the noise input: 0 deterministic, 1 as in training, more for stronger texture (Ulyanov et al. 2016, Sec. 4)."""
    seed: int = 0
    """Seed of the noise; the same seed gives the same picture."""
    max_size: Optional[int] = None
    """Shrink inputs so the longer side is at most this."""
    tile: Optional[int] = None
    """Stylise in overlapping NxN tiles (bounded memory for huge photos); 0 never tiles; unset, photos above 2048x2048 pixels are tiled in 512-pixel tiles."""
    preserve_color: bool = False
    """Keep the photo's colours, take only the stylised luminance (Gatys et al. 2016, YIQ)."""
    batch_size: int = 8
    """Photos of one size (a folder's, or a video's frames) per forward pass; fewer for big ones: a batch holds at most 2048x2048 pixels in all."""
    video_noise: str = "fixed"
    """``fixed``: the same noise field on every frame (steady texture); ``fresh``: new noise for each frame (it flickers)."""

    def __post_init__(self) -> None:
        if not math.isfinite(self.noise_factor):
            raise ValueError(f"noise_factor must be a finite number, got {self.noise_factor}")
        if self.max_size is not None and self.max_size < 1:
            raise ValueError(f"max_size must be at least 1, got {self.max_size}")
        if self.tile is not None and (self.tile < 0 or 0 < self.tile < 64):
            raise ValueError(f"tile must be 0 (never tile) or at least 64 pixels, got {self.tile}")
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {self.batch_size}")
        _check_choice("video_noise", self.video_noise, VIDEO_NOISE)


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    return value


def _check_choice(name: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(choices)}; got {value!r}")


def field_doc(cls: type, name: str) -> str:
    """The docstring written under a dataclass field, for argparse help texts (one source of truth)."""
    import ast
    import inspect
    import textwrap

    tree = ast.parse(textwrap.dedent(inspect.getsource(cls)))
    body = tree.body[0].body  # type: ignore[attr-defined]
    for node, following in zip(body, body[1:]):
        if (
            isinstance(node, ast.AnnAssign)
            and isinstance(node.target, ast.Name)
            and node.target.id == name
            and isinstance(following, ast.Expr)
            and isinstance(following.value, ast.Constant)
        ):
            return str(following.value.value)
    return ""
