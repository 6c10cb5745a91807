#!/usr/bin/env python3
"""The README's two figures from a style model, by the project's own commands (printed as they run).

1. ``--strengths_figure``: held-out photos (left) and the single pass at each of ``--strengths``
   (texturenet-stylize, one command per strength).
2. ``--price_figure``: on the same photos, photo / single pass at each of ``--price_strengths`` /
   per-image optimisation (L-BFGS from the photo, the model's own loss at ``--iterations``), from
   texturenet-evaluate's pictures, so a reader sees the price of speed (its table, printed, has the
   numbers and the seconds per image).

Both are laid out by ``texturenet.io.plots.write_grid`` (each column as wide as its widest picture).
"""
from __future__ import annotations

import argparse
import os
import shlex
import subprocess
import sys
from pathlib import Path

from torch import Tensor

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # run from a source checkout without installing

from texturenet.cli.arguments import count_list, finite_float  # noqa: E402
from texturenet.io.images import find_images, load_rgb, resize_long_side, to_tensor  # noqa: E402
from texturenet.io.plots import write_grid  # noqa: E402


def _strengths(text: str) -> tuple[float, ...]:
    return tuple(finite_float(part) for part in text.split(","))


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", type=Path, required=True, help="Style checkpoint written by texturenet-train (required).")
    p.add_argument("--photos", type=Path, required=True, help="Folder of held-out photos (required).")
    p.add_argument("--max_photos", type=int, default=4, help="Use the first this many photos, sorted by path (default: 4).")
    p.add_argument("--output_dir", type=Path, default=Path("docs"), help="Where the two figures go (default: docs).")
    p.add_argument("--work_dir", type=Path, default=Path("figures-work"),
                   help="Where the commands' pictures and the report go; kept, to look at (default: figures-work).")
    p.add_argument("--strengths_figure", default="stylized.png", help="File name of figure 1 (default: stylized.png).")
    p.add_argument("--price_figure", default="price_of_speed.png", help="File name of figure 2 (default: price_of_speed.png).")
    p.add_argument("--strengths", type=_strengths, default=(0.0, 0.5, 1.0, 2.0), help="Figure 1's strengths (default: 0,0.5,1,2).")
    p.add_argument("--size", type=int, default=320, help="Figure 1: longest side of each stylised photo in pixels (default: 320).")
    p.add_argument("--price_strengths", type=_strengths, default=(0.0, 1.0, 2.0),
                   help="Figure 2's single-pass strengths (default: 0,1,2).")
    p.add_argument("--price_size", type=int, default=256,
                   help="Figure 2: longest side in pixels, texturenet-evaluate's --image_size (default: 256).")
    p.add_argument("--iterations", type=count_list, default=(20, 100),
                   help="Figure 2: L-BFGS iteration counts shown, snapshots of one run (default: 20,100).")
    p.add_argument("--height", type=int, default=200, help="Height of each picture in the figures in pixels (default: 200).")
    p.add_argument("--vgg_weights", default=None,
                   help="Loss network weights for the optimisation (default: those stored in the checkpoint).")
    return p


def run(command: list[str]) -> None:
    """Print a command as a shell line, run it; one line and exit status 2 if it fails."""
    print(shlex.join(command), flush=True)
    result = subprocess.run(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            env=dict(os.environ, PYTHONPATH=str(ROOT)))
    if result.returncode:
        last = (result.stderr.strip().splitlines() or ["no message"])[-1]
        raise SystemExit(f"make_figures: error: that command failed (exit {result.returncode}): {last}")


def _tile(path: Path, size: int) -> Tensor:
    """A picture file as (3, H, W), its longer side shrunk to ``size``."""
    return to_tensor(resize_long_side(load_rgb(path), size))


def main(argv: list[str] | None = None) -> None:
    args = parser().parse_args(argv)
    photos = find_images(args.photos)[: args.max_photos] if args.photos.is_dir() else []
    if not photos:
        raise SystemExit(f"make_figures: error: --photos {args.photos}: no images there; give a folder of photos")
    chosen = args.work_dir / "photos"  # the chosen photos, linked, so that each command takes them as one folder
    chosen.mkdir(parents=True, exist_ok=True)
    for path in photos:
        link = chosen / path.name
        if not link.exists():
            link.symlink_to(path.resolve())
    script = [sys.executable]
    for strength in args.strengths:
        run([*script, str(ROOT / "scripts" / "stylize.py"), "--model", str(args.model), "--input", str(chosen),
             "--output", str(args.work_dir / f"nf{strength:g}"), "--max_size", str(args.size), "--noise_factor", f"{strength:g}"])
    report = args.work_dir / "report"
    evaluate = [*script, str(ROOT / "scripts" / "evaluate.py"), "--model", str(args.model), "--photos", str(chosen),
                "--output_dir", str(report), "--image_size", str(args.price_size),
                "--noise_factors", ",".join(f"{s:g}" for s in args.price_strengths), "--style_scales", "1",
                "--iterations", ",".join(map(str, args.iterations))]
    run(evaluate + (["--vgg_weights", args.vgg_weights] if args.vgg_weights else []))

    names = [path.name for path in photos]
    rows = [[_tile(path, args.size), *(_tile(args.work_dir / f"nf{s:g}" / name, args.size) for s in args.strengths)]
            for path, name in zip(photos, names)]
    first = args.output_dir / args.strengths_figure
    args.output_dir.mkdir(parents=True, exist_ok=True)
    write_grid(rows, ["photo", *(f"strength {s:g}" for s in args.strengths)], first, height=args.height)
    methods = ["photo", *(f"feed-forward nf {s:g}" for s in args.price_strengths),
               *(f"optimisation x1 {n} it" for n in args.iterations)]
    labels = ["photo", *(f"single pass, strength {s:g}" for s in args.price_strengths),
              *(f"optimisation, {n} it" for n in args.iterations)]
    rows = [[_tile(report / "images" / f"{Path(name).stem}__{method.replace(' ', '_')}.png", args.price_size) for method in methods]
            for name in names]
    second = args.output_dir / args.price_figure
    write_grid(rows, labels, second, height=args.height)
    print(f"wrote {first} and {second}; the scores and seconds per image are in {report / 'results.json'}")


if __name__ == "__main__":
    main()
