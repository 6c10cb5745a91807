"""Command line: argparse -> config -> the package. ``scripts/*.py`` and the console entry points call this.

Help texts and defaults come from the config dataclasses (one source of truth). User mistakes
(:class:`TexturenetError`, invalid values) print one line and exit with status 2, no traceback.
"""
from __future__ import annotations

import argparse
import dataclasses
import math
import os
import sys
import warnings
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

from .config import ACTIVATIONS, LOSS_NETS, MODES, NORMS, PADDINGS, GeneratorConfig, LossConfig, TrainConfig, field_doc
from .errors import TexturenetError

WEIGHTS_ENV = "TEXTURENET_VGG_WEIGHTS"


def _layers(text: str) -> tuple[str, ...]:
    names = tuple(part.strip() for part in text.split(",") if part.strip())
    if not names:
        raise argparse.ArgumentTypeError("give at least one layer name, e.g. relu4_2")
    return names


def _numbers(text: str) -> tuple[float, ...]:
    try:
        values = tuple(float(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers, got {text!r}") from None
    if not all(math.isfinite(v) and v >= 0 for v in values):
        raise argparse.ArgumentTypeError(f"weights must be finite and >= 0, got {text!r}")
    return values


def _finite(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"expected a finite number, got {text!r}")
    return value


def _size(text: str) -> tuple[int, int]:
    """``WxH`` -> (width, height), both positive."""
    try:
        width, height = (int(part) for part in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected WIDTHxHEIGHT such as 1024x768, got {text!r}") from None
    if width < 1 or height < 1:
        raise argparse.ArgumentTypeError(f"width and height must be positive, got {text!r}")
    return width, height


_FROM_FIELD = object()


def _add(group: Any, cls: type, name: str, *, default: Any = _FROM_FIELD, shown: Any = None, **kwargs: Any) -> None:
    """A flag named after a config field: its default and help come from the field (one source of truth)."""
    if default is _FROM_FIELD:
        field = cls.__dataclass_fields__[name]
        default = field.default if field.default is not dataclasses.MISSING else field.default_factory()
    if shown is None:
        shown = ",".join(map(str, default)) if isinstance(default, tuple) else default
    text = kwargs.pop("help", None) or field_doc(cls, name)
    group.add_argument(f"--{name}", default=default, help=f"{text} (default: {shown})", **kwargs)


def train_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="texturenet-train",
        description="Train a texture network (Ulyanov et al. 2016): a feed-forward generator for one style or texture.",
    )
    run = parser.add_argument_group("data and run")
    _add(run, GeneratorConfig, "mode", choices=MODES, help="style: stylise photos; texture: synthesise the texture from noise alone.")
    _add(run, TrainConfig, "data_dir", default=None, shown="the bundled sample photos", type=Path)
    _add(run, TrainConfig, "texture", default=None, shown="the bundled style image", type=Path)
    _add(run, TrainConfig, "name", default=None, shown="the texture file's stem", type=str)
    _add(run, TrainConfig, "checkpoint_dir", type=Path)
    for name in ("image_size", "style_size", "batch_size", "iterations", "lr_step", "seed", "workers", "save_every", "log_every", "val_images"):
        _add(run, TrainConfig, name, type=int)
    _add(run, TrainConfig, "lr", type=_finite)
    _add(run, TrainConfig, "lr_decay", type=_finite)
    run.add_argument("--cuda", action="store_true", help=field_doc(TrainConfig, "cuda") + " (default: off)")
    run.add_argument("--resume", default=None, help="Checkpoint to continue from, or 'auto' for the newest of this run name (default: none).")

    net = parser.add_argument_group("generator")
    for name in ("scales", "channels", "noise_depth"):
        _add(net, GeneratorConfig, name, type=int)
    _add(net, GeneratorConfig, "norm", choices=NORMS)
    _add(net, GeneratorConfig, "activation", choices=ACTIVATIONS)
    _add(net, GeneratorConfig, "padding", default=None, shown="reflect for style, circular for texture", choices=PADDINGS)

    loss = parser.add_argument_group("loss network and losses")
    _add(loss, LossConfig, "loss_net", choices=LOSS_NETS)
    _add(loss, LossConfig, "vgg_weights", default=os.environ.get(WEIGHTS_ENV, "imagenet"),
         help=field_doc(LossConfig, "vgg_weights") + f" The environment variable {WEIGHTS_ENV} sets the default.")
    _add(loss, LossConfig, "content_layers", type=_layers)
    _add(loss, LossConfig, "content_layer_weights", shown="1 each", type=_numbers)
    _add(loss, LossConfig, "style_layers", type=_layers)
    _add(loss, LossConfig, "style_layer_weights", shown="1 each", type=_numbers)
    for name in ("content_weight", "style_weight", "tv_weight"):
        _add(loss, LossConfig, name, type=_finite)
    return parser


def train_config(args: argparse.Namespace) -> TrainConfig:
    """The one config object of a run, from parsed flags. Raises ValueError for invalid values."""
    generator = GeneratorConfig(
        mode=args.mode,
        scales=args.scales,
        channels=args.channels,
        noise_depth=args.noise_depth,
        norm=args.norm,
        activation=args.activation,
        padding=args.padding or ("reflect" if args.mode == "style" else "circular"),
    )
    loss = LossConfig(
        loss_net=args.loss_net,
        vgg_weights=args.vgg_weights,
        content_layers=args.content_layers,
        content_layer_weights=args.content_layer_weights,
        style_layers=args.style_layers,
        style_layer_weights=args.style_layer_weights,
        content_weight=args.content_weight,
        style_weight=args.style_weight,
        tv_weight=args.tv_weight,
    )
    if args.mode == "texture" and args.data_dir is not None:
        raise ValueError("--data_dir is for style mode; texture mode learns from --texture alone")
    return TrainConfig(
        data_dir=args.data_dir,
        texture=args.texture,
        name=args.name,
        checkpoint_dir=args.checkpoint_dir,
        image_size=args.image_size,
        style_size=args.style_size,
        batch_size=args.batch_size,
        iterations=args.iterations,
        lr=args.lr,
        lr_step=args.lr_step,
        lr_decay=args.lr_decay,
        seed=args.seed,
        workers=args.workers,
        save_every=args.save_every,
        log_every=args.log_every,
        val_images=args.val_images,
        cuda=args.cuda,
        resume=None if args.resume is None else Path(args.resume),
        generator=generator,
        loss=loss,
    )


def stylize_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="texturenet-stylize",
        description="Stylise photos with a trained texture network in one forward pass, or sample a texture of any size.",
    )
    parser.add_argument("--model", type=Path, required=True, help="Checkpoint written by texturenet-train (required).")
    parser.add_argument("--input", type=Path, help="Photo or folder of photos to stylise (style models; default: none).")
    parser.add_argument("--size", type=_size, help="WIDTHxHEIGHT of a texture sample, e.g. 1024x768 (texture models; default: none).")
    parser.add_argument("--output", type=Path, required=True, help="Output image (format from its extension: .png, .jpg) or folder (required).")
    parser.add_argument("--noise_factor", type=_finite, default=1.0,
                        help="Scales the noise input: 0 deterministic, 1 as in training, more for stronger texture (default: 1.0).")
    parser.add_argument("--seed", type=int, default=0, help="Seed of the noise; the same seed gives the same picture (default: 0).")
    parser.add_argument("--max_size", type=int, default=None, help="Shrink inputs so the longer side is at most this (default: no limit).")
    parser.add_argument("--cuda", action="store_true", help="Run on the GPU; an error if CUDA is not available (default: off).")
    parser.add_argument("--tile", type=int, default=None,
                        help="Stylise in overlapping NxN tiles (bounded memory for huge photos); 0 never tiles "
                             "(default: automatic, 512-pixel tiles above 2048x2048 pixels).")
    return parser


def _one_line_warnings(message: Any, category: type, filename: str, lineno: int, line: Optional[str] = None) -> str:
    return f"texturenet: warning: {message}\n"


def _main(parser: argparse.ArgumentParser, body: Callable[[argparse.Namespace], None], argv: Optional[Sequence[str]]) -> None:
    warnings.formatwarning = _one_line_warnings  # type: ignore[assignment]
    args = parser.parse_args(argv)
    try:
        body(args)
    except ValueError as error:  # invalid combination of values caught by the config
        parser.error(str(error))
    except TexturenetError as error:
        print(f"{parser.prog}: error: {error}", file=sys.stderr)
        raise SystemExit(2) from None


def _train(args: argparse.Namespace) -> None:
    from .trainer import Trainer

    Trainer(train_config(args)).run()


def _stylize(args: argparse.Namespace) -> None:
    import torch

    from .stylize import Stylizer, sample_texture, stylize_files

    if (args.input is None) == (args.size is None):
        raise ValueError("give either --input (style models) or --size WxH (texture models)")
    if args.max_size is not None and args.max_size < 1:
        raise ValueError("--max_size must be at least 1")
    if args.tile is not None and args.tile != 0 and args.tile < 64:
        raise ValueError("--tile must be 0 (never tile) or at least 64 pixels")
    if args.cuda and not torch.cuda.is_available():
        raise TexturenetError("--cuda was given but CUDA is not available; drop --cuda to run on the CPU")
    stylizer = Stylizer(args.model, torch.device("cuda" if args.cuda else "cpu"))
    if args.size is not None:
        written = [sample_texture(stylizer, *args.size, args.output, args.noise_factor, args.seed)]
    else:
        written = stylize_files(stylizer, args.input, args.output, args.noise_factor, args.seed, args.max_size, args.tile)
    print(f"wrote {written[0]}" if len(written) == 1 else f"wrote {len(written)} images under {args.output}")


def train_main(argv: Optional[Sequence[str]] = None) -> None:
    """Entry point of ``texturenet-train`` and ``scripts/train.py``."""
    _main(train_parser(), _train, argv)


def stylize_main(argv: Optional[Sequence[str]] = None) -> None:
    """Entry point of ``texturenet-stylize`` and ``scripts/stylize.py``."""
    _main(stylize_parser(), _stylize, argv)
