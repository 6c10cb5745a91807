"""Every setting of texturenet, with its default and where that default comes from.

One source of defaults: the command line (``cli.py``) builds its flags and help texts from
these dataclasses. Training has one config (:class:`TrainConfig`, holding the generator's and
the losses'), which the trainer reads and checkpoints store, so that a generator can be rebuilt
without the command line that made it; stylising has :class:`StylizeConfig`; the tools
(per-image optimisation, evaluation, diversity) and the GUI have a settings class each.
"""
from __future__ import annotations

import dataclasses
import functools
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from .errors import TexturenetError
from .vgg_layers import smallest_input

MODES = ("style", "texture")
GENERATORS = ("pyramid", "johnson")
NORMS = ("instance", "batch")
ACTIVATIONS = ("leaky_relu", "relu")
PADDINGS = ("reflect", "circular", "replicate", "zeros")
LOSS_NETS = ("vgg19", "vgg16")
WEIGHTS_ENV = "TEXTURENET_VGG_WEIGHTS"
"""The environment variable that sets ``--vgg_weights``' default (read by the command line only; ``texturenet info`` shows it)."""
VIDEO_NOISE = ("fixed", "fresh")
AMP_DTYPES = ("auto", "bfloat16", "float16")
LOSS_SCALES = ("relative", "absolute")

ALONG_THE_WAY = r"_iter\d+"
"""What follows a run's name in the names of its checkpoints along the way (``NAME_iterN.pth``)."""
RUN_NAME = re.compile(rf"(?!.*\.\.)(?!.*{ALONG_THE_WAY}$)[A-Za-z0-9_][A-Za-z0-9_.-]{{0,63}}")
"""A run name (``--name``, the GUI's name field): a plain file name, so every file of the run stays in its folder
(no separator, ``..``, NUL or leading dot), and not ending in ``_iterN``, which would read as another run's
checkpoint along the way (run ``mosaic_iter3000``'s final model is named like run ``mosaic``'s 3000th iteration)."""

GENERATOR_BOUNDS: dict[str, tuple[int, int]] = {"scales": (1, 8), "channels": (1, 128), "noise_depth": (0, 64)}
"""Inclusive ranges of the generator's sizes, for training flags and checkpoints alike (a checkpoint is input
from strangers: its config is checked against these before anything is built). The paper uses K = 5-6 scales
of 8 channels and 3 noise channels (Ulyanov et al. 2016, Sec. 3.1); 8 scales already pad photos to multiples
of 128 pixels, and 8 scales of 128 channels make a 65M-parameter generator with 1024 full-resolution channels.
For ``johnson`` channels is the width of the residual blocks, a multiple of 4 from 4 (its stages have width/4,
width/2 and width channels) up to Johnson et al.'s own 128."""
MAX_SEED = 2**32 - 1
"""Seeds are 0..2^32-1, what every use takes: torch.manual_seed overflows past 2^64, the data order seeds a torch
Generator with seed * 1_000_003 + epoch (training/data.py), tiled noise keys NumPy's PCG64 with it (no negatives)."""
MAX_NOISE_FACTOR = 100.0
"""|noise_factor| above this drowns the picture (the noise input is uniform in [0, factor]; 1 is what training saw)."""
DEFAULT_MAX_STRENGTH = 2.0
"""The strength dial's default range, 0..2: 1 is the style weight's style, 2 twice that weight (the GUI's slider spans it)."""
MAX_STYLE_SIZE = 4096
"""The style image's shorter side at most 4096 pixels: its Gram targets are computed in one VGG pass."""
MAX_SAMPLE_PIXELS = 16 * 2**20
"""A texture sample is generated in one untiled pass: measured 1.2 KB of memory a pixel at the paper's 6 scales of
8 channels (and a minute for 2048x2048 on 2 CPU cores), so 16 megapixels (4096x4096, about 20 GB) at most."""


BUNDLED = Path(__file__).resolve().parent / "assets"
BUNDLED_PHOTOS = BUNDLED / "photos"
"""Public-domain photos shipped with the package: the default training data and the demo's photo."""
BUNDLED_STYLE = BUNDLED / "style.png"
"""Our generated style image, shipped with the package: the default --texture."""

VISDOM_PORT = 8097
"""Visdom's own default port: the trainer streams there, the GUI offers it (and serves on another)."""

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

    Everything needed to rebuild a trained generator, and what its noise factor means; stored in every checkpoint.
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
        _check_choice("mode", self.mode, MODES)
        _check_choice("generator", self.generator, GENERATORS)
        if johnson and self.mode != "style":
            raise ValueError("the johnson generator stylises photos (its input is a photo); texture mode needs --generator pyramid")
        if not isinstance(self.residual, bool):
            raise ValueError(f"residual must be true or false, got {self.residual!r}")
        if self.residual and self.mode != "style":
            raise ValueError("--residual adds the generator's output to the photo, and texture mode has no photo; give --no-residual")
        if self.padding is None:
            self.padding = "reflect" if self.mode == "style" else "circular"
        if not isinstance(self.padding, str):
            raise ValueError(f"padding must be a string, got {self.padding!r}")
        _check_choice("norm", self.norm, NORMS)
        _check_choice("activation", self.activation, ACTIVATIONS)
        _check_choice("padding", self.padding, PADDINGS)
        if self.max_strength is None:
            self.max_strength = DEFAULT_MAX_STRENGTH if (self.mode, self.norm) == ("style", "instance") else 0.0
        if isinstance(self.max_strength, bool) or not isinstance(self.max_strength, (int, float)):
            raise ValueError(f"max_strength must be a number, got {self.max_strength!r}")
        self.max_strength = float(self.max_strength)
        if not 0 <= self.max_strength <= MAX_NOISE_FACTOR:
            raise ValueError(f"max_strength must be in 0..{MAX_NOISE_FACTOR:g}, got {self.max_strength}")
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
        _check_choice("loss_net", self.loss_net, LOSS_NETS)
        _check_choice("loss_scale", self.loss_scale, LOSS_SCALES)
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


@dataclass
class TrainConfig:
    """One training run: data, schedule, output. Defaults follow texture_nets v1 (Sec. 4 of the paper)."""

    data_dir: Optional[Path] = None
    """Folder of training photos, searched recursively (style mode); unset, the bundled photos."""
    texture: Optional[Path] = None
    """The style image (in texture mode, the texture) whose Gram statistics are learnt; unset, the bundled style image."""
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
    """Visdom environment of the run (its page is /env/ENV on the server); unset, it is the run name."""
    viz_server: str = "http://localhost"
    """Address of the Visdom server."""
    viz_port: int = VISDOM_PORT
    """Port of the Visdom server (Visdom's own default)."""
    viz_every: int = 100
    """With --viz, show a sample grid (fixed validation photos, or fixed-noise textures) every this many iterations."""
    generator: GeneratorConfig = field(default_factory=GeneratorConfig)
    loss: LossConfig = field(default_factory=LossConfig)

    def __post_init__(self) -> None:
        if self.texture is None:
            self.texture = BUNDLED_STYLE
        if self.name is not None and not RUN_NAME.fullmatch(self.name):
            raise ValueError(f"name {self.name!r} is not a usable run name: use letters, digits, '_', '-' and '.' (at most 64, "
                             "not starting with '.' or '-', no '..'), not ending in _iterN (the names of checkpoints along the way)")
        if re.search(ALONG_THE_WAY + "$", self.run_name):
            raise ValueError(f"the run name {self.run_name!r} (from --texture) ends like a checkpoint along the way (_iterN); "
                             "pass --name to choose another")
        if self.mode == "style" and self.data_dir is None:
            self.data_dir = BUNDLED_PHOTOS
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
        check_seed(self.seed)
        if self.style_size > MAX_STYLE_SIZE:
            raise ValueError(f"style_size must be at most {MAX_STYLE_SIZE}, got {self.style_size}")
        self._check_sizes_reach_layers()
        if self.loss.diversity_weight:
            if self.generator.noise_depth == 0:
                raise ValueError("diversity_weight needs noise (noise_depth >= 1): without it every sample is the same")
            if self.mode == "texture" and self.batch_size < 2:
                raise ValueError("diversity_weight compares the samples of a batch: use batch_size >= 2")

    def _check_sizes_reach_layers(self) -> None:
        """Refuse, before training starts, crops and style images too small for the loss layers (2x2 after VGG's pools).

        The generator's output (image_size) is seen by the style layers, in style mode by the content layers too, and
        by the diversity layer when that term is on; the style image (style_size) by the style layers.
        """
        loss = self.loss
        seen = [*loss.style_layers, *(loss.content_layers if self.mode == "style" else ()),
                *((loss.diversity_layer,) if loss.diversity_weight else ())]
        for name, size, layers in (("image_size", self.image_size, seen), ("style_size", self.style_size, loss.style_layers)):
            least, layer = smallest_input(layers)
            if size < least:
                raise ValueError(f"{name} {size} is too small for loss layer {layer}, which needs at least {least} pixels "
                                 f"(2x2 after VGG's pools); give --{name} {least} or shallower layers")

    @property
    def mode(self) -> str:
        return self.generator.mode

    @property
    def run_name(self) -> str:
        """The run's name in its file names: ``name``, else the texture file's stem."""
        return self.name or Path(self.texture).stem  # type: ignore[arg-type]

    def to_dict(self) -> dict[str, Any]:
        """Plain types only (str, int, float, tuple, None), so it loads with ``weights_only=True``."""
        return _plain(dataclasses.asdict(self))


CPU_DEMO: dict[str, Any] = {"iterations": 300, "image_size": 128, "batch_size": 4, "save_every": 100, "max_strength": 1.0,
                            "lr": 1e-2}
"""``texturenet-train`` with neither --data_dir nor --texture nor --cuda: the bundled demo, sized to finish
in a few minutes on a 2-core CPU instead of the paper's 3000 iterations at 256 px (about 12 hours there).
Flags given explicitly still win. The run ends by stylising a bundled photo at strength 1, so there is a picture
to open. Looked at (HED VGG16, docs/QUALITY.md "The CPU demo's first picture"): with the dial's top at 2 the
picture at strength 1 showed no cat, only grain, so the top is 1, a trained end; at lr 1e-3 (200 iterations of
batch 2) strength 1 was a maroon and navy grain with no cat, at lr 1e-2 (the front's pyramid rate) the cat is plain
in the style's orange, yellow, red and blue with dark outlines, and 300 iterations of batch 4 bring the yellows
and the outlines. The lr is the pyramid's: with ``--generator johnson`` the demo keeps TrainConfig's 1e-3 (johnson
collapsed at 1e-2 on the front).
"""

CPU_TEXTURE: dict[str, Any] = {"iterations": 500, "image_size": 128, "batch_size": 2, "save_every": 100}
"""``texturenet-train --mode texture`` without --cuda: sized for minutes on a 2-core CPU, as CPU_DEMO, instead of
the paper's 3000 iterations at 256 px (about 20 hours there). A texture run has no photos to read and no content
pass, so it affords more iterations than the demo in the same time. Flags given explicitly still win.
"""


@dataclass(frozen=True)
class StylizeConfig:
    """How texturenet-stylize runs a trained generator on a photo, a folder or a video (stylize/stylizer.py, stylize/video.py)."""

    noise_factor: float = 1.0
    """The style strength, for models with the strength dial (every style model trained with max_strength > 0): 0 the photo's shapes in the style's colours, 1 the full style, up to the model's max_strength stronger still. For models without the dial (textures, older models) it scales the noise input: 0 deterministic, 1 as in training, more for stronger texture (Ulyanov et al. 2016, Sec. 4)."""
    seed: int = 0
    """Seed of the noise; the same seed gives the same picture."""
    max_size: Optional[int] = None
    """Shrink inputs so the longer side is at most this."""
    tile: Optional[int] = None
    """Stylise in overlapping NxN tiles (bounded memory for huge photos); 0 never tiles; unset, photos above 2048x2048 pixels are tiled in 512-pixel tiles. A tile that cuts a photo into more than 64 windows and more than one per 256x256 pixels is refused (tiling.max_windows)."""
    preserve_color: bool = False
    """Keep the photo's colours, take only the stylised luminance (Gatys et al. 2016, YIQ)."""
    batch_size: int = 8
    """Photos of one size (a folder's, or a video's frames) per forward pass; fewer for big ones: a batch holds at most 2048x2048 pixels in all."""
    video_noise: str = "fixed"
    """``fixed``: the same noise field on every frame (steady texture); ``fresh``: new noise for each frame (it flickers)."""

    def __post_init__(self) -> None:
        check_noise_factor(self.noise_factor)
        check_seed(self.seed)
        if self.max_size is not None and self.max_size < 1:
            raise ValueError(f"max_size must be at least 1, got {self.max_size}")
        if self.tile is not None and (self.tile < 0 or 0 < self.tile < 64):
            raise ValueError(f"tile must be 0 (never tile) or at least 64 pixels, got {self.tile}")
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {self.batch_size}")
        _check_choice("video_noise", self.video_noise, VIDEO_NOISE)


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
        _check_choice("optimizer", self.optimizer, OPTIMIZERS)
        _check_choice("init", self.init, INITS)
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
        _check_choice("optimizer", self.optimizer, OPTIMIZERS)
        check_seed(self.seed)
        for factor in self.noise_factors:
            check_noise_factor(factor)


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
        _check_choice("loss_net", self.loss_net, LOSS_NETS)
        check_noise_factor(self.noise_factor)


def check_seed(seed: int) -> None:
    """A ValueError unless ``seed`` is in 0..:data:`MAX_SEED` (past it, a traceback once training or sampling starts)."""
    if not 0 <= seed <= MAX_SEED:
        raise ValueError(f"seed must be in 0..{MAX_SEED}, got {seed}")


def noise_factor_range(max_strength: float = 0.0) -> tuple[float, float]:
    """The noise factors a model with this ``max_strength`` takes, (lowest, highest): the one rule, for commands and GUI.

    With the strength dial (``max_strength`` > 0) the noise factor is the style strength: 0..max_strength, the
    strengths the model was trained for (the README's ``--noise_factor``: outside that range is refused). Without
    it (models from before the dial, textures, batch norm), and before a model is known: any factor of size at
    most :data:`MAX_NOISE_FACTOR`.
    """
    return (0.0, max_strength) if max_strength else (-MAX_NOISE_FACTOR, MAX_NOISE_FACTOR)


def check_noise_factor(factor: float) -> None:
    """A ValueError unless ``factor`` is finite and in :func:`noise_factor_range` before a model is known.

    The noise enters every scale (Ulyanov et al. 2016, Sec. 3.1) and is instance-normalised only after the first
    convolution: 1e300 overflows it to inf and the picture comes out black.
    """
    low, high = noise_factor_range()
    if not (math.isfinite(factor) and low <= factor <= high):
        raise ValueError(f"noise_factor must be a number in {low:g}..{high:g}, got {factor}")


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
    """The docstring written under a dataclass field, for argparse help texts (one source of truth).

    Its reST literals (````relu````) lose their double backticks: --help is plain text, where they would show as written.
    """
    return _field_docs(cls).get(name, "").replace("``", "")


@functools.lru_cache(maxsize=None)
def _field_docs(cls: type) -> dict[str, str]:
    """Every field docstring of ``cls``, parsed from its source once (a parser asks for dozens)."""
    import ast
    import inspect
    import textwrap

    body = ast.parse(textwrap.dedent(inspect.getsource(cls))).body[0].body  # type: ignore[attr-defined]
    return {node.target.id: str(following.value.value) for node, following in zip(body, body[1:])
            if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name)
            and isinstance(following, ast.Expr) and isinstance(following.value, ast.Constant)}


GUI_TOKEN = re.compile(r"[A-Za-z0-9._~-]{16,4096}")
"""A usable GUI token: too long to guess, and safe as it is in an address, a cookie and a header."""


@dataclass
class GuiConfig:
    """Settings of one ``texturenet-gui`` server (the command line builds its flags from these fields)."""

    host: str = "127.0.0.1"
    """Address to listen on; loopback, so only this machine can reach the page."""
    port: int = 8098
    """Port of the page (Visdom's default is 8097, so both run side by side)."""
    checkpoint_dir: Path = Path("checkpoints")
    """Folder whose checkpoints are listed, and where training runs started from the page write theirs."""
    data_root: Path = Path(".")
    """Training data folders and style images can only be chosen under this folder."""
    max_upload_mb: float = 20.0
    """Uploads larger than this many MiB are refused before they are read."""
    max_megapixels: float = 50.0
    """Uploaded images with more pixels than this are refused before they are decoded."""
    max_side: int = 1024
    """Uploaded photos are shrunk so that their longer side is at most this many pixels (bounds the time a request takes)."""
    train_args: str = ""
    """Extra texturenet-train flags for every run started from the page, e.g. --train_args='--loss_net vgg16 --vgg_weights W.pth --cuda'; the form's fields come after them and win."""
    cuda: bool = False
    """Stylise on the GPU (training runs use the GPU when --train_args has --cuda)."""
    token: Optional[str] = None
    """The secret every request must carry, as Jupyter's: the printed address holds it (opening it keeps it in a cookie), scripts send the header 'Authorization: token TOKEN'; at least 16 of the characters A-Z a-z 0-9 - _ . ~"""
    request_timeout: float = 20.0
    """Seconds in total, however slowly it trickles, that a request's headers may take to arrive (or an idle connection may stay open), and then its body: then the connection is closed (a late body: 408); also the longest an upload waits for room to be decoded."""
    threads: int = 8
    """Threads for the work that blocks (stylising, decoding uploads, reading checkpoints, listing folders); more requests wait their turn. Connections hold no thread, so slow or silent clients cannot use them up."""
    decode_megapixels: float = 100.0
    """Megapixels of uploads decoded at once, over all requests (decoding memory grows with the pixels); an upload that finds no room within request_timeout is answered 503, busy."""
    allowed_hosts: str = ""
    """Other names the page is opened by, comma-separated, e.g. mybox.lan; the Host of every request must be one of them, a loopback name, --host, this machine's name or an IP address (DNS rebinding cannot use those)."""

    def __post_init__(self) -> None:
        if not 0 < self.port < 65536:
            raise ValueError(f"port must be in 1..65535, got {self.port}")
        if not (self.max_upload_mb > 0 and self.max_megapixels > 0 and self.max_side >= 16):
            raise ValueError("max_upload_mb and max_megapixels must be > 0 and max_side at least 16")
        if not (0 < self.request_timeout < math.inf and self.threads >= 1):
            raise ValueError("request_timeout must be > 0 and threads at least 1")
        if self.token is not None and not GUI_TOKEN.fullmatch(self.token):
            others = ", not all of them those" if re.search(r"[^A-Za-z0-9._~-]", self.token) else ""
            raise ValueError(f"--token must be 16 to 4096 characters, each one of A-Z a-z 0-9 - _ . ~ (the one given has "
                             f"{len(self.token)} characters{others}); leave it out for a new random token each start")
        if self.decode_megapixels < self.max_megapixels:
            raise ValueError(f"decode_megapixels ({self.decode_megapixels:g}) must be at least max_megapixels "
                             f"({self.max_megapixels:g}), or an image at the limit could never be decoded")

    @property
    def max_upload_bytes(self) -> int:
        return int(self.max_upload_mb * 2**20)
