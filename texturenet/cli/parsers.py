"""Every command's flags: one parser per subcommand (``texturenet train|stylize|optimize|evaluate|export|diversity|info``).

Help texts and defaults come from the config dataclasses through :func:`~texturenet.cli.arguments.add_flag`; the servers
(``texturenet gui``, ``texturenet visdom``) build theirs beside their code in apps/ with the same helpers.
"""
from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any, Optional

from ..config import (ACTIVATIONS, AMP_DTYPES, CPU_DEMO, CPU_TEXTURE, GENERATORS, INITS, LOSS_NETS, LOSS_SCALES, MODES, NORMS,
                      OPTIMIZERS, PADDINGS, VIDEO_NOISE, WEIGHTS_ENV, DiversitySettings, EvaluateSettings, GeneratorConfig,
                      LossConfig, OptimizeSettings, StylizeConfig, TrainConfig, field_doc)
from .arguments import LinesFormatter, add_flag, count_list, finite_float, layer_names, number_list, width_height


CPU_SIZINGS: dict[str, dict[str, Any]] = {"the CPU demo (no --data_dir, --texture or --cuda)": CPU_DEMO,
                                           "a CPU texture run (--mode texture, no --cuda)": CPU_TEXTURE}
"""The runs that a CPU sizing shortens, and their settings: applied by handlers.train, shown in --help by _cpu_shown."""


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
    add_flag(run, TrainConfig, "dial_points", type=int, choices=(2, 3))
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
    add_flag(net, GeneratorConfig, "fade", shown="off", action=argparse.BooleanOptionalAction)
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
    add_flag(loss, LossConfig, "content_layers", type=layer_names)
    add_flag(loss, LossConfig, "content_layer_weights", shown="1 each", type=number_list)
    add_flag(loss, LossConfig, "style_layers", type=layer_names)
    add_flag(loss, LossConfig, "style_layer_weights", shown="1 each", type=number_list)
    for name in ("content_weight", "style_weight", "tv_weight"):
        add_flag(loss, LossConfig, name, type=finite_float)


def stylize_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="texturenet-stylize",
        description="Stylise photos with a trained texture network in one forward pass, or sample a texture of any size.",
    )
    parser.add_argument("--model", type=Path, required=True, help="Checkpoint written by texturenet-train (required).")
    parser.add_argument("--input", type=Path, help="Photo, folder of photos or video to stylise (style models; default: none).")
    parser.add_argument("--size", type=width_height, help="WIDTHxHEIGHT of a texture sample, e.g. 1024x768 (texture models; default: none).")
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
    from ..model.export import FORMATS

    parser = argparse.ArgumentParser(
        prog="texturenet-export",
        description="Export a trained style model to ONNX, torch.export or TorchScript: photo (N,3,H,W in [0,1], any H and W) and "
        "noise factor in, stylised picture out. See docs/STYLIZE.md, 'Export'.",
    )
    parser.add_argument("--model", type=Path, required=True, help="Style checkpoint written by texturenet-train (required).")
    parser.add_argument("--format", choices=FORMATS, required=True, help="onnx (onnxruntime and others; needs the export extra), pt2 (torch.export.load, "
                        "PyTorch's current format) or torchscript (torch.jit.load, which torch marks deprecated) (required).")
    parser.add_argument("--output", type=Path, required=True, help="File to write, e.g. mosaic.onnx, mosaic.pt2 or mosaic.pt (required).")
    parser.add_argument("--check_size", type=width_height, default=(93, 67),
                        help="WIDTHxHEIGHT of the random photos on which the exported file is compared with PyTorch (default: 93x67).")
    return parser


def optimize_parser(preset: Optional[str] = None) -> argparse.ArgumentParser:
    """Flags of per-image optimisation; a ``preset`` replaces the defaults it names (explicit flags still win)."""
    from ..tools.optimize import PRESETS

    parser = argparse.ArgumentParser(
        prog="texturenet-optimize",
        description="Per-image optimisation (Gatys et al. 2015/2016): style transfer of one photo, or texture synthesis "
        "from --style alone. Slow, but the quality reference a texture network approximates in one pass.",
        epilog="Presets (converted to our loss normalisation; explicit flags override them):\n"
        + "\n".join(f"  {name}: {preset.note}" for name, preset in PRESETS.items()),
        formatter_class=LinesFormatter,
    )
    run = parser.add_argument_group("images and run")
    run.add_argument("--content", type=Path, help="Photo to stylise; leave out for texture synthesis (default: none).")
    run.add_argument("--style", type=Path, required=True, help="Style painting, or the texture to synthesise (required).")
    run.add_argument("--output", type=Path, required=True, help="Output image; format from the extension (required).")
    run.add_argument("--size", type=width_height, help="WIDTHxHEIGHT of a synthesised texture, without --content (default: 256x256).")
    run.add_argument("--image_size", type=int, default=512, help="Shrink the content photo so its longer side is at most this (default: 512).")
    run.add_argument("--style_size", type=int, default=None, help="Resize the style image so its shorter side is this (default: --image_size).")
    run.add_argument("--preset", choices=list(PRESETS), default=None, help="Settings of a seed project, listed below (default: none).")
    add_flag(run, OptimizeSettings, "iterations", type=int)
    add_flag(run, OptimizeSettings, "optimizer", choices=OPTIMIZERS)
    add_flag(run, OptimizeSettings, "lr", type=finite_float)
    add_flag(run, OptimizeSettings, "betas", type=number_list)
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
    add_flag(parser, EvaluateSettings, "noise_factors", type=number_list)
    add_flag(parser, EvaluateSettings, "style_scales", type=number_list)
    add_flag(parser, EvaluateSettings, "iterations", type=count_list)
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
