"""One handler per subcommand: parsed flags -> the config -> the package, and what the command prints.

Each takes the parsed flags and its parser (for ``parser.error``: a bad combination of flags is one usage line and
exit 2); the heavy modules are imported inside the handler, so ``--help`` answers at once.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import math
import sys
import time
from typing import Any, Callable, Iterator, Optional, Sequence

from ..config import BUNDLED_PHOTOS, MAX_SAMPLE_PIXELS, DiversitySettings, EvaluateSettings, OptimizeSettings, StylizeConfig, TrainConfig
from ..devices import cuda_device
from .arguments import from_args, loss_config, train_config
from .parsers import CPU_SIZINGS


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


def train(args: argparse.Namespace, parser: argparse.ArgumentParser, argv: Optional[Sequence[str]]) -> None:
    from ..training.loop import Trainer

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
    from ..training.monitor import JsonLinesMonitor

    events = JsonLinesMonitor.from_environment()  # a supervising GUI's progress channel
    trainer = Trainer(config, [events] if events else [])
    final = trainer.run()
    if demo and trainer.rank.is_main:  # rank 0 alone writes the model (other ranks may finish first)
        from ..stylize.stylizer import Stylizer, stylize_files

        photo = BUNDLED_PHOTOS / "chelsea.jpg"
        output = final.with_name(f"{final.stem}_{photo.stem}.jpg")
        stylize_files(Stylizer(final, cuda_device(False)), photo, output)
        print(f"model: {final}\nstylised bundled photo {photo.name}: {output}")


def _resumed(config: TrainConfig, given: set[str]) -> TrainConfig:
    """``--resume``: the generator and loss settings not given on the command line are the checkpoint's (training/resume.py)."""
    from ..training.resume import Resume

    resume = Resume.of(config)
    assert resume is not None
    return resume.settings(config, given)


def stylize(args: argparse.Namespace, parser: argparse.ArgumentParser) -> None:
    from ..stylize.stylizer import Stylizer, Written, sample_texture, stylize_files
    from ..stylize.video import is_video

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
            from ..stylize.video import stylize_video

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


def export(args: argparse.Namespace, parser: argparse.ArgumentParser) -> None:
    from ..model.export import export_model, max_difference

    written = export_model(args.model, args.format, args.output)
    width, height = args.check_size
    difference = max_difference(args.model, written, args.format, height, width)
    if difference is None:
        print(f"wrote {written} (install onnxruntime to check it against PyTorch)")
    else:
        print(f"wrote {written}; on 2x3x{height}x{width} random photos at noise factor 0 it differs from PyTorch by at most {difference:.2g}")


def optimize(args: argparse.Namespace, parser: argparse.ArgumentParser) -> None:
    from ..tools.optimize import optimize_files

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


def evaluate(args: argparse.Namespace, parser: argparse.ArgumentParser) -> None:
    from ..tools.evaluate import evaluate, format_table

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


def info(args: argparse.Namespace, parser: argparse.ArgumentParser) -> None:
    from ..tools.info import format_report, report

    facts = report()
    print(json.dumps(facts) if args.json else format_report(facts))



def diversity(args: argparse.Namespace, parser: argparse.ArgumentParser) -> None:
    from ..tools.diversity import measure_diversity

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
