"""One training run's settings (:class:`TrainConfig`, holding the generator's and the losses'), run names, and the CPU sizings.

The trainer reads them and checkpoints store them (:meth:`TrainConfig.to_dict`), so that a generator can be rebuilt
without the command line that made it.
"""
from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from ..vgg_layers import smallest_input
from .assets import BUNDLED_PHOTOS, BUNDLED_STYLE
from .limits import MAX_STYLE_SIZE, check_seed
from .loss import LossConfig
from .model import GeneratorConfig

AMP_DTYPES = ("auto", "bfloat16", "float16")

ALONG_THE_WAY = r"_iter\d+"
"""What follows a run's name in the names of its checkpoints along the way (``NAME_iterN.pth``)."""
RUN_NAME = re.compile(rf"(?!.*\.\.)(?!.*{ALONG_THE_WAY}$)[A-Za-z0-9_][A-Za-z0-9_.-]{{0,63}}")
"""A run name (``--name``, the GUI's name field): a plain file name, so every file of the run stays in its folder
(no separator, ``..``, NUL or leading dot), and not ending in ``_iterN``, which would read as another run's
checkpoint along the way (run ``mosaic_iter3000``'s final model is named like run ``mosaic``'s 3000th iteration)."""

VISDOM_PORT = 8097
"""Visdom's own default port: the trainer streams there, the GUI offers it (and serves on another)."""


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
    dial_points: int = 2
    """How many strengths of the dial training draws, evenly spaced from 0 to max_strength, each for an equal share of every batch: 2, the two ends (the middle interpolates); 3 adds the middle, which --fade needs (its middle is otherwise a blend of the photo and an untrained change)."""
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
        if self.dial_points not in (2, 3):
            raise ValueError(f"dial_points must be 2 or 3, got {self.dial_points}")
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


def _plain(value: Any) -> Any:
    """``value`` in the types a checkpoint may hold: dicts, lists for tuples, str for paths."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    return value


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
