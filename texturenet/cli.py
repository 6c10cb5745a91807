"""Command line: argparse -> config -> the package. ``scripts/*.py`` and the console entry points call this.

Help texts and defaults come from the config dataclasses (one source of truth). User mistakes
(:class:`TexturenetError`, invalid values) print one line and exit with status 2, no traceback.
"""
from __future__ import annotations

import argparse
import contextlib
import dataclasses
import functools
import json
import math
import os
import sys
import textwrap
import time
import warnings
from pathlib import Path
from typing import Any, Callable, Iterator, Optional, Sequence

from .config import (ACTIVATIONS, AMP_DTYPES, BUNDLED_PHOTOS, CPU_DEMO, CPU_TEXTURE, INITS, LOSS_NETS, LOSS_SCALES, MAX_SAMPLE_PIXELS, MODES, NORMS,
                     OPTIMIZERS,
                     PADDINGS, VIDEO_NOISE, DiversitySettings, EvaluateSettings, GeneratorConfig, LossConfig, OptimizeSettings,
                     StylizeConfig, TrainConfig, field_doc)
from .config import GENERATORS, WEIGHTS_ENV, scales_for
from .devices import cuda_device
from .errors import TexturenetError


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


def finite_float(text: str) -> float:
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


class _LinesFormatter(argparse.HelpFormatter):
    """Wraps the description and epilog to the terminal width, but line by line: argparse's default joins a list
    (the optimize presets) into one paragraph, and RawDescriptionHelpFormatter leaves its long lines unwrapped.
    A line's leading spaces are its indentation; its continuation lines hang 4 spaces further in."""

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        lines: list[str] = []
        for line in text.splitlines():
            body = line.lstrip()
            inset = indent + line[: len(line) - len(body)]
            lines.append(textwrap.fill(body, width, initial_indent=inset, subsequent_indent=inset + "    ") if body else "")
        return "\n".join(lines)


_FROM_FIELD = object()


def add_flag(group: Any, cls: type, name: str, *, default: Any = _FROM_FIELD, shown: Any = None, **kwargs: Any) -> None:
    """A flag named after a config field: its default and help come from the field (one source of truth)."""
    if default is _FROM_FIELD:
        field = cls.__dataclass_fields__[name]
        default = field.default if field.default is not dataclasses.MISSING else field.default_factory()
    if shown is None:
        shown = ",".join(map(str, default)) if isinstance(default, tuple) else default
    text = kwargs.pop("help", None) or field_doc(cls, name)
    group.add_argument(f"--{name}", default=default, help=f"{text} (default: {shown})", **kwargs)


CPU_SIZINGS: dict[str, dict[str, Any]] = {"the CPU demo (no --data_dir, --texture or --cuda)": CPU_DEMO,
                                           "a CPU texture run (--mode texture, no --cuda)": CPU_TEXTURE}
"""The runs that a CPU sizing shortens, and their settings: applied by _train, shown in --help by _cpu_shown."""


def _cpu_shown(name: str, usual: Any = None) -> Optional[str]:
    """--help's default for a flag that a CPU sizing changes, e.g. "3000; 200 in the CPU demo ..."; ``usual`` otherwise.

    ``usual`` is the default as the flag shows it elsewhere (None: TrainConfig's field default).
    """
    changed = [f"{sizing[name]} in {run}" for run, sizing in CPU_SIZINGS.items() if name in sizing]
    if usual is None:
        usual = TrainConfig.__dataclass_fields__[name].default if changed else None
    return f"{usual}; " + ", ".join(changed) if changed else usual


def train_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="texturenet-train",
        description="Train a texture network (Ulyanov et al. 2016): a feed-forward generator for one style or texture.",
    )
    run = parser.add_argument_group("data and run")
    add_flag(run, GeneratorConfig, "mode", choices=MODES, help="style: stylise photos; texture: synthesise the texture from noise alone.")
    add_flag(run, TrainConfig, "data_dir", default=None, shown="the bundled sample photos", type=Path)
    add_flag(run, TrainConfig, "texture", default=None, shown="the bundled style image", type=Path)
    add_flag(run, TrainConfig, "name", default=None, shown="the texture file's stem", type=str)
    add_flag(run, TrainConfig, "checkpoint_dir", type=Path)
    for name in ("image_size", "style_size", "batch_size", "iterations", "lr_step", "seed", "workers", "save_every", "log_every", "val_images"):
        add_flag(run, TrainConfig, name, shown=_cpu_shown(name), type=int)
    add_flag(run, TrainConfig, "lr", shown=_cpu_shown("lr"), type=finite_float)
    add_flag(run, TrainConfig, "lr_decay", type=finite_float)
    run.add_argument("--cuda", action="store_true", help=field_doc(TrainConfig, "cuda") + " (default: off)")
    run.add_argument("--resume", default=None, help="Checkpoint to continue from, or 'auto' for the newest of this run name (default: none).")
    run.add_argument("--overwrite", action="store_true", help=field_doc(TrainConfig, "overwrite") + " (default: off)")

    speed = parser.add_argument_group("speed (see BENCHMARKS.md)")
    for name in ("amp", "channels_last", "compile"):
        speed.add_argument(f"--{name}", action="store_true", help=field_doc(TrainConfig, name) + " (default: off)")
    add_flag(speed, TrainConfig, "amp_dtype", choices=AMP_DTYPES)

    viz = parser.add_argument_group("live monitor (Visdom, see docs/MONITORING.md)")
    viz.add_argument("--viz", action="store_true", help=field_doc(TrainConfig, "viz") + " (default: off)")
    add_flag(viz, TrainConfig, "viz_env", default=None, shown="the run name", type=str)
    add_flag(viz, TrainConfig, "viz_server", type=str)
    for name in ("viz_port", "viz_every"):
        add_flag(viz, TrainConfig, name, type=int)

    net = parser.add_argument_group("generator")
    add_flag(net, GeneratorConfig, "generator", choices=GENERATORS)
    add_flag(net, GeneratorConfig, "scales", default=None, type=int,
             shown="from --image_size: the most whose coarsest map is at least 16 px, at most 6 (4 at 128 px, 5 at 256, 6 from 512)")
    add_flag(net, GeneratorConfig, "channels", default=None, shown="8 for pyramid, 32 for johnson", type=int)
    add_flag(net, GeneratorConfig, "noise_depth", type=int)
    add_flag(net, GeneratorConfig, "norm", choices=NORMS)
    add_flag(net, GeneratorConfig, "activation", default=None, shown="leaky_relu for pyramid, relu for johnson", choices=ACTIVATIONS)
    add_flag(net, GeneratorConfig, "padding", default=None, shown="reflect for style, circular for texture", choices=PADDINGS)
    add_flag(net, GeneratorConfig, "residual", shown="off", action=argparse.BooleanOptionalAction)
    add_flag(net, GeneratorConfig, "max_strength", default=None, shown=_cpu_shown("max_strength", "2 for style with instance norm, else 0"),
             type=finite_float)

    _add_loss_flags(parser)
    diverse = parser.add_argument_group("diversity (Improved Texture Networks, Ulyanov et al. 2017)")
    add_flag(diverse, LossConfig, "diversity_weight", type=finite_float)
    add_flag(diverse, LossConfig, "diversity_layer", type=str)
    return parser


def _add_vgg_weights(group: Any, cls: type) -> None:
    """``--vgg_weights``, whose default the environment variable WEIGHTS_ENV sets (read here only)."""
    add_flag(group, cls, "vgg_weights", default=os.environ.get(WEIGHTS_ENV, "imagenet"),
         help=field_doc(cls, "vgg_weights") + f" The environment variable {WEIGHTS_ENV} sets the default.")


def _add_loss_flags(parser: argparse.ArgumentParser) -> None:
    """The loss-network and loss-weight flags, shared by training and per-image optimisation."""
    loss = parser.add_argument_group("loss network and losses")
    add_flag(loss, LossConfig, "loss_net", choices=LOSS_NETS)
    _add_vgg_weights(loss, LossConfig)
    add_flag(loss, LossConfig, "loss_scale", choices=LOSS_SCALES)
    add_flag(loss, LossConfig, "content_layers", type=_layers)
    add_flag(loss, LossConfig, "content_layer_weights", shown="1 each", type=_numbers)
    add_flag(loss, LossConfig, "style_layers", type=_layers)
    add_flag(loss, LossConfig, "style_layer_weights", shown="1 each", type=_numbers)
    for name in ("content_weight", "style_weight", "tv_weight"):
        add_flag(loss, LossConfig, name, type=finite_float)


def loss_config(args: argparse.Namespace) -> LossConfig:
    """The LossConfig of parsed loss flags (see :func:`_add_loss_flags`)."""
    return from_args(LossConfig, args)


def from_args(cls: type, args: argparse.Namespace, **overrides: Any) -> Any:
    """Build config dataclass ``cls`` from the flags named like its fields, plus ``overrides``."""
    values = {name: getattr(args, name) for name in cls.__dataclass_fields__ if hasattr(args, name)}
    return cls(**{**values, **overrides})


def train_config(args: argparse.Namespace) -> TrainConfig:
    """The one config object of a run, from parsed flags. Raises ValueError for invalid values."""
    if args.mode == "texture" and args.data_dir is not None:
        raise ValueError("--data_dir is for style mode; texture mode learns from --texture alone")
    return from_args(
        TrainConfig,
        args,
        resume=None if args.resume is None else Path(args.resume),
        generator=from_args(GeneratorConfig, args, scales=scales_for(args.image_size) if args.scales is None else args.scales),
        loss=loss_config(args),
    )


def stylize_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="texturenet-stylize",
        description="Stylise photos with a trained texture network in one forward pass, or sample a texture of any size.",
    )
    parser.add_argument("--model", type=Path, required=True, help="Checkpoint written by texturenet-train (required).")
    parser.add_argument("--input", type=Path, help="Photo, folder of photos or video to stylise (style models; default: none).")
    parser.add_argument("--size", type=_size, help="WIDTHxHEIGHT of a texture sample, e.g. 1024x768 (texture models; default: none).")
    parser.add_argument("--output", type=Path, required=True,
                        help="Output image (format from its extension: .png, .jpg), folder, or video (.mp4, .mkv, .mov, .webm) (required).")
    add_flag(parser, StylizeConfig, "noise_factor", type=finite_float)
    add_flag(parser, StylizeConfig, "seed", type=int)
    add_flag(parser, StylizeConfig, "max_size", shown="no limit", type=int)
    add_flag(parser, StylizeConfig, "tile", shown="automatic", type=int)
    add_flag(parser, StylizeConfig, "preserve_color", shown="off", action="store_true")
    add_flag(parser, StylizeConfig, "batch_size", type=int)
    parser.add_argument("--cuda", action="store_true", help="Run on the GPU; an error if CUDA is not available (default: off).")
    _add_json(parser, "one per picture written: input, output, strength, size [width, height], seconds (a video's also frames, "
              "fps, flicker)")
    video = parser.add_argument_group("video (--input CLIP.mp4 --output OUT.mp4; needs PyAV, see docs/VIDEO.md)")
    add_flag(video, StylizeConfig, "video_noise", choices=VIDEO_NOISE)
    return parser


def export_parser() -> argparse.ArgumentParser:
    from .model.export import FORMATS

    parser = argparse.ArgumentParser(
        prog="texturenet-export",
        description="Export a trained style model to ONNX, torch.export or TorchScript: photo (N,3,H,W in [0,1], any H and W) and "
        "noise factor in, stylised picture out. See docs/STYLIZE.md, 'Export'.",
    )
    parser.add_argument("--model", type=Path, required=True, help="Style checkpoint written by texturenet-train (required).")
    parser.add_argument("--format", choices=FORMATS, required=True, help="onnx (onnxruntime and others; needs the export extra), pt2 (torch.export.load, "
                        "PyTorch's current format) or torchscript (torch.jit.load, which torch marks deprecated) (required).")
    parser.add_argument("--output", type=Path, required=True, help="File to write, e.g. mosaic.onnx, mosaic.pt2 or mosaic.pt (required).")
    parser.add_argument("--check_size", type=_size, default=(93, 67),
                        help="WIDTHxHEIGHT of the random photos on which the exported file is compared with PyTorch (default: 93x67).")
    return parser


def optimize_parser(preset: Optional[str] = None) -> argparse.ArgumentParser:
    """Flags of per-image optimisation; a ``preset`` replaces the defaults it names (explicit flags still win)."""
    from .tools.optimize import PRESETS

    parser = argparse.ArgumentParser(
        prog="texturenet-optimize",
        description="Per-image optimisation (Gatys et al. 2015/2016): style transfer of one photo, or texture synthesis "
        "from --style alone. Slow, but the quality reference a texture network approximates in one pass.",
        epilog="Presets (converted to our loss normalisation; explicit flags override them):\n"
        + "\n".join(f"  {name}: {preset.note}" for name, preset in PRESETS.items()),
        formatter_class=_LinesFormatter,
    )
    run = parser.add_argument_group("images and run")
    run.add_argument("--content", type=Path, help="Photo to stylise; leave out for texture synthesis (default: none).")
    run.add_argument("--style", type=Path, required=True, help="Style painting, or the texture to synthesise (required).")
    run.add_argument("--output", type=Path, required=True, help="Output image; format from the extension (required).")
    run.add_argument("--size", type=_size, help="WIDTHxHEIGHT of a synthesised texture, without --content (default: 256x256).")
    run.add_argument("--image_size", type=int, default=512, help="Shrink the content photo so its longer side is at most this (default: 512).")
    run.add_argument("--style_size", type=int, default=None, help="Resize the style image so its shorter side is this (default: --image_size).")
    run.add_argument("--preset", choices=list(PRESETS), default=None, help="Settings of a seed project, listed below (default: none).")
    add_flag(run, OptimizeSettings, "iterations", type=int)
    add_flag(run, OptimizeSettings, "optimizer", choices=OPTIMIZERS)
    add_flag(run, OptimizeSettings, "lr", type=finite_float)
    add_flag(run, OptimizeSettings, "betas", type=_numbers)
    add_flag(run, OptimizeSettings, "eps", type=finite_float)
    add_flag(run, OptimizeSettings, "init", default=None, shown="content with --content, else noise", choices=INITS)
    add_flag(run, OptimizeSettings, "seed", type=int)
    run.add_argument("--save_every", type=int, default=0, help="Also write the image every this many iterations as OUTPUT_STEM_NNNN.EXT (default: 0, only the end).")
    run.add_argument("--cuda", action="store_true", help="Run on the GPU; an error if CUDA is not available (default: off).")
    _add_loss_flags(parser)
    if preset is not None:
        chosen = PRESETS[preset]
        parser.set_defaults(**chosen.loss, optimizer=chosen.optimizer, lr=chosen.lr, betas=chosen.betas, eps=chosen.eps,
                            iterations=chosen.iterations)
    return parser


def evaluate_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="texturenet-evaluate",
        description="Quality report: score a trained style model's single pass against per-image optimisation and the "
        "unstylised photo, under the loss settings the model was trained with, and by a second judge that is not the loss "
        "network (colour and texture distances to the style image, texturenet/tools/judge.py). Prints a table, writes "
        "results.json, curve.png, judge.png, grid.png and every scored image under --output_dir.",
    )
    parser.add_argument("--model", type=Path, required=True, help="Style checkpoint written by texturenet-train (required).")
    parser.add_argument("--photos", type=Path, required=True, help="Photo or folder of photos to score, ideally held out from training (required).")
    parser.add_argument("--output_dir", type=Path, required=True, help="Where results.json, the PNGs and images/ go (required).")
    parser.add_argument("--style", type=Path, default=None, help="Style image (default: the path stored in the checkpoint).")
    parser.add_argument("--vgg_weights", default=None,
                        help="Loss network weights (default: those stored in the checkpoint); the architecture and layers stay the checkpoint's.")
    for name in ("image_size", "max_photos", "seed"):
        add_flag(parser, EvaluateSettings, name, type=int)
    add_flag(parser, EvaluateSettings, "noise_factors", type=_numbers)
    add_flag(parser, EvaluateSettings, "style_scales", type=_numbers)
    add_flag(parser, EvaluateSettings, "iterations", type=_counts)
    add_flag(parser, EvaluateSettings, "optimizer", choices=OPTIMIZERS)
    add_flag(parser, EvaluateSettings, "lr", type=finite_float)
    add_flag(parser, EvaluateSettings, "peer", shown="none", type=Path)
    parser.add_argument("--cuda", action="store_true", help="Run on the GPU; an error if CUDA is not available (default: off).")
    _add_json(parser, "one object, the scores as results.json holds them")
    return parser


def info_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="texturenet info",
        description="Versions (texturenet, Python, torch, torchvision, visdom), devices (CUDA, MPS), and where the loss network's "
        f"weights are looked for: {WEIGHTS_ENV} and the ImageNet weights in torch's hub cache.",
    )
    _add_json(parser, "one object: versions, devices, weights")
    return parser


def _add_json(parser: argparse.ArgumentParser, what: str) -> None:
    parser.add_argument("--json", action="store_true",
                        help=f"Print results for scripts, a JSON object a line on stdout ({what}); other output goes to stderr (default: off).")


@contextlib.contextmanager
def _results(as_json: bool) -> Iterator[Optional[Callable[[dict[str, Any]], None]]]:
    """With ``--json``: a function that prints one JSON object a line on stdout, while everything else printed goes to stderr
    (messages, the human summary; progress bars are on stderr anyway). Without it: None, and output is as it always was."""
    if not as_json:
        yield None
        return
    stdout = sys.stdout

    def emit(result: dict[str, Any]) -> None:
        stdout.write(json.dumps(result, default=list) + "\n")
        stdout.flush()

    with contextlib.redirect_stdout(sys.stderr):
        yield emit


def _counts(text: str) -> tuple[int, ...]:
    try:
        values = tuple(int(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated whole numbers, got {text!r}") from None
    if not all(v >= 1 for v in values):
        raise argparse.ArgumentTypeError(f"iteration counts must be at least 1, got {text!r}")
    return values


def _one_line_warnings(message: Any, category: type, filename: str, lineno: int, line: Optional[str] = None) -> str:
    return f"texturenet: warning: {message}\n"


def run_command(
    parser: argparse.ArgumentParser,
    body: Callable[[argparse.Namespace, argparse.ArgumentParser], None],
    argv: Optional[Sequence[str]],
    prog: Optional[str] = None,
) -> None:
    """Parse ``argv`` and run ``body``: the one place where a :class:`TexturenetError` becomes one line and exit status 2.

    ``prog`` names the command in usage and error lines (``texturenet train``); unset, the parser's own (``texturenet-train``).
    """
    if prog is not None:
        parser.prog = prog
    warnings.formatwarning = _one_line_warnings  # type: ignore[assignment]
    for stream in (sys.stdout, sys.stderr):  # file names that are not UTF-8 must print, not crash the run
        if hasattr(stream, "reconfigure"):
            stream.reconfigure(errors="backslashreplace")
    try:
        args = parser.parse_args(argv)
        body(args, parser)
    except TexturenetError as error:
        print(f"{parser.prog}: error: {error}", file=sys.stderr)
        raise SystemExit(2) from None
    except KeyboardInterrupt:  # Ctrl-C before a run's own handler is installed (or in a command without one)
        print(f"{parser.prog}: interrupted; nothing more was written", file=sys.stderr)
        raise SystemExit(130) from None


def _explicit(parser: argparse.ArgumentParser, args: argparse.Namespace, argv: Optional[Sequence[str]]) -> set[str]:
    """The destinations of the flags given on the command line (not left at their defaults).

    argparse fills in a default only where the namespace it parses into lacks the attribute, so
    ``argv`` parsed again into a namespace holding a marker for each of ``args``' destinations
    leaves the marker exactly where no flag was given.
    """
    unset = object()
    probe = argparse.Namespace(**dict.fromkeys(vars(args), unset))
    parser.parse_args(argv, namespace=probe)
    return {dest for dest, value in vars(probe).items() if value is not unset}


def _train(args: argparse.Namespace, parser: argparse.ArgumentParser, argv: Optional[Sequence[str]]) -> None:
    from .training.loop import Trainer

    demo = args.data_dir is None and args.texture is None and not args.cuda and args.mode == "style"
    texture_on_cpu = args.mode == "texture" and not args.cuda
    given = _explicit(parser, args, argv)
    if demo or texture_on_cpu:  # on a CPU: minutes, not the paper's hours (config/training.py's CPU_DEMO, CPU_TEXTURE)
        run, sizing = list(CPU_SIZINGS.items())[0 if demo else 1]
        chosen = {name: value for name, value in sizing.items()
                  if name not in given and not (name == "lr" and args.generator == "johnson")}  # see CPU_DEMO
        for name, value in chosen.items():
            setattr(args, name, value)
        if chosen:
            print(f"sized for the CPU, {run}: "
                  + ", ".join(f"--{name} {value}" for name, value in chosen.items()) + "; give them to choose otherwise")
    try:
        config = train_config(args)
        if config.resume is not None:
            config = _resumed(config, given)
    except ValueError as error:  # an invalid value or combination, caught by the config dataclasses
        parser.error(str(error))
    from .training.monitor import JsonLinesMonitor

    events = JsonLinesMonitor.from_environment()  # a supervising GUI's progress channel
    trainer = Trainer(config, [events] if events else [])
    final = trainer.run()
    if demo and trainer.rank.is_main:  # rank 0 alone writes the model (other ranks may finish first)
        from .stylize.stylizer import Stylizer, stylize_files

        photo = BUNDLED_PHOTOS / "chelsea.jpg"
        output = final.with_name(f"{final.stem}_{photo.stem}.jpg")
        stylize_files(Stylizer(final, cuda_device(False)), photo, output)
        print(f"model: {final}\nstylised bundled photo {photo.name}: {output}")


def _resumed(config: TrainConfig, given: set[str]) -> TrainConfig:
    """``--resume``: the generator and loss settings not given on the command line are the checkpoint's (training/resume.py)."""
    from .training.resume import Resume

    resume = Resume.of(config)
    assert resume is not None
    return resume.settings(config, given)


def _stylize(args: argparse.Namespace, parser: argparse.ArgumentParser) -> None:
    from .stylize.stylizer import Stylizer, Written, sample_texture, stylize_files
    from .stylize.video import is_video

    if (args.input is None) == (args.size is None):
        parser.error("give either --input (style models) or --size WxH (texture models)")
    if args.size is not None and args.preserve_color:
        parser.error("--preserve_color needs a photo (--input); a texture sample has no colours to keep")
    if args.size is not None and args.size[0] * args.size[1] > MAX_SAMPLE_PIXELS:
        parser.error(f"--size {args.size[0]}x{args.size[1]} is {args.size[0] * args.size[1] / 2**20:.0f} megapixels; a texture "
                     f"sample is made in one pass, at most {MAX_SAMPLE_PIXELS // 2**20} megapixels (e.g. 4096x4096)")
    try:
        config = from_args(StylizeConfig, args)
    except ValueError as error:
        parser.error(str(error))
    with _results(args.json) as emit:
        stylizer = Stylizer(args.model, cuda_device(args.cuda))
        stylizer.check(config.noise_factor)
        if args.size is not None:
            width, height = args.size  # --size is WxH, as users write it
            sample = sample_texture(stylizer, height, width, args.output, config.noise_factor, config.seed)
            if emit is not None:
                emit(sample.as_json())
            written = [sample.output]
        elif args.input.is_file() and is_video(args.input):
            from .stylize.video import stylize_video

            start = time.perf_counter()
            result = stylize_video(stylizer, args.input, args.output, config)
            print(f"wrote {result.path}: {result.frames} frames, {result.width}x{result.height} at {float(result.rate):g} fps; "
                  f"flicker {result.flicker:.3f} (mean |out_t - out_t-1| / mean |in_t - in_t-1|)")
            if emit is not None:
                emit({**Written(args.input, result.path, config.noise_factor, result.width, result.height,
                                time.perf_counter() - start).as_json(), "frames": result.frames, "fps": float(result.rate),
                      "flicker": result.flicker if math.isfinite(result.flicker) else None})
            return
        else:
            written = stylize_files(stylizer, args.input, args.output, config,
                                    None if emit is None else lambda picture: emit(picture.as_json()))
        print(f"wrote {written[0]}" if len(written) == 1 else f"wrote {len(written)} images under {args.output}")


def _export(args: argparse.Namespace, parser: argparse.ArgumentParser) -> None:
    from .model.export import export_model, max_difference

    written = export_model(args.model, args.format, args.output)
    width, height = args.check_size
    difference = max_difference(args.model, written, args.format, height, width)
    if difference is None:
        print(f"wrote {written} (install onnxruntime to check it against PyTorch)")
    else:
        print(f"wrote {written}; on 2x3x{height}x{width} random photos at noise factor 0 it differs from PyTorch by at most {difference:.2g}")


def _optimize(args: argparse.Namespace, parser: argparse.ArgumentParser) -> None:
    from .tools.optimize import optimize_files

    if args.content is not None and args.size is not None:
        parser.error("--size is for texture synthesis; with --content the output has the photo's size")
    if args.save_every < 0 or args.image_size < 1 or (args.style_size is not None and args.style_size < 1):
        parser.error("--save_every must be >= 0 and --image_size, --style_size at least 1")
    try:  # invalid values or combinations, caught by the settings and config dataclasses
        settings = OptimizeSettings(
            iterations=args.iterations, optimizer=args.optimizer, lr=args.lr, betas=args.betas, eps=args.eps,
            init=args.init or ("content" if args.content is not None else "noise"), seed=args.seed,
        )
        loss = loss_config(args)
    except ValueError as error:
        parser.error(str(error))
    written = optimize_files(
        loss, settings, args.style, args.output, args.content, args.size or (256, 256),
        args.image_size, args.style_size or args.image_size, args.save_every, cuda_device(args.cuda),
    )
    print(f"wrote {written}")


def _evaluate(args: argparse.Namespace, parser: argparse.ArgumentParser) -> None:
    from .tools.evaluate import evaluate, format_table

    try:  # sizes, seed and noise factors, bounded by the settings dataclass
        settings = from_args(EvaluateSettings, args)
    except ValueError as error:
        parser.error(str(error))
    with _results(args.json) as emit:
        result = evaluate(args.model, args.photos, args.output_dir, settings, args.style, args.vgg_weights, cuda_device(args.cuda))
        print(format_table(result))
        print(f"wrote {args.output_dir / 'results.json'}, {args.output_dir / 'curve.png'}, {args.output_dir / 'judge.png'} "
              f"and {args.output_dir / 'grid.png'}")
        if emit is not None:
            emit(result)


def _info(args: argparse.Namespace, parser: argparse.ArgumentParser) -> None:
    from .tools.info import format_report, report

    facts = report()
    print(json.dumps(facts) if args.json else format_report(facts))


def info_main(argv: Optional[Sequence[str]] = None, prog: Optional[str] = None) -> None:
    """Entry point of ``texturenet info``."""
    run_command(info_parser(), _info, argv, prog)


def diversity_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="texturenet-diversity",
        description="How varied are a model's samples? Draws --samples samples from different noise (texture models) or "
        "stylises --photo with different noise (style models) and prints the mean pairwise distance between them, in a "
        "loss-network layer and in pixels (Improved Texture Networks' diversity; compare models trained with and without "
        "--diversity_weight).",
    )
    parser.add_argument("--model", type=Path, action="append", required=True,
                        help="A checkpoint written by texturenet-train; repeat the flag to compare models (required).")
    parser.add_argument("--photo", type=Path, default=None, help="The photo style models stylise (default: none; needed for style models).")
    parser.add_argument("--grid", type=Path, default=None, help="Write the samples here as one picture, a row per model (default: no picture).")
    for name in ("samples", "size"):
        add_flag(parser, DiversitySettings, name, type=int)
    add_flag(parser, DiversitySettings, "noise_factor", type=finite_float)
    add_flag(parser, DiversitySettings, "loss_net", choices=LOSS_NETS)
    _add_vgg_weights(parser, DiversitySettings)
    add_flag(parser, DiversitySettings, "layer", type=str)
    parser.add_argument("--cuda", action="store_true", help="Run on the GPU; an error if CUDA is not available (default: off).")
    return parser


def _diversity(args: argparse.Namespace, parser: argparse.ArgumentParser) -> None:
    from .tools.diversity import measure_diversity

    try:  # the size and noise factor, bounded by the settings dataclass
        settings = from_args(DiversitySettings, args)
    except ValueError as error:
        parser.error(str(error))
    rows = measure_diversity(args.model, settings, args.photo, args.grid, cuda_device(args.cuda))
    columns = list(rows[0])
    print(" | ".join(columns))
    for row in rows:
        print(" | ".join(f"{v:.4g}" if isinstance(v, float) else str(v) for v in row.values()))
    if args.grid is not None:
        print(f"wrote {args.grid}")


def diversity_main(argv: Optional[Sequence[str]] = None, prog: Optional[str] = None) -> None:
    """Entry point of ``texturenet diversity``, ``texturenet-diversity`` and ``scripts/diversity.py``."""
    run_command(diversity_parser(), _diversity, argv, prog)


def train_main(argv: Optional[Sequence[str]] = None, prog: Optional[str] = None) -> None:
    """Entry point of ``texturenet train``, ``texturenet-train`` and ``scripts/train.py``."""
    run_command(train_parser(), functools.partial(_train, argv=argv), argv, prog)


def stylize_main(argv: Optional[Sequence[str]] = None, prog: Optional[str] = None) -> None:
    """Entry point of ``texturenet stylize``, ``texturenet-stylize`` and ``scripts/stylize.py``."""
    run_command(stylize_parser(), _stylize, argv, prog)


def export_main(argv: Optional[Sequence[str]] = None, prog: Optional[str] = None) -> None:
    """Entry point of ``texturenet export``, ``texturenet-export`` and ``scripts/export.py``."""
    run_command(export_parser(), _export, argv, prog)


def optimize_main(argv: Optional[Sequence[str]] = None, prog: Optional[str] = None) -> None:
    """Entry point of ``texturenet optimize``, ``texturenet-optimize`` and ``scripts/optimize.py``."""
    from .tools.optimize import PRESETS

    first = argparse.ArgumentParser(add_help=False)  # the preset decides the other flags' defaults
    first.add_argument("--preset")
    preset = first.parse_known_args(argv)[0].preset
    run_command(optimize_parser(preset if preset in PRESETS else None), _optimize, argv, prog)


def evaluate_main(argv: Optional[Sequence[str]] = None, prog: Optional[str] = None) -> None:
    """Entry point of ``texturenet evaluate``, ``texturenet-evaluate`` and ``scripts/evaluate.py``."""
    run_command(evaluate_parser(), _evaluate, argv, prog)
