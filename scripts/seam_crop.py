#!/usr/bin/env python3
"""Picture for docs/SPEED.md (exact tiling): a crop across a tile seam of a tiled stylisation, next to the untiled one.

Stylises --photo (enlarged so that its longer side is --long_side) with --tile N tiles and
without tiling, at --noise_factor (default 0, so that the two differ only by tiling), and writes
three panels of the crop centred on a corner where four tiles meet: tiled, untiled, and their
absolute difference x4. Prints the mean and largest difference in the crop and in the whole photo.

Example: python scripts/seam_crop.py --model checkpoints/mosaic.pth --photo ../shared/data/photos/rocket.jpg --output docs/tiling_seam_crop.png
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a source checkout without installing

import numpy as np  # noqa: E402
import torch  # noqa: E402
from PIL import Image  # noqa: E402

from texturenet.io.images import load_rgb  # noqa: E402
from texturenet.stylize.stylizer import Stylizer  # noqa: E402
from texturenet.model.tiled import tile_layout  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, required=True, help="Style checkpoint (required).")
    parser.add_argument("--photo", type=Path, required=True, help="Photo to stylise (required).")
    parser.add_argument("--output", type=Path, required=True, help="PNG to write (required).")
    parser.add_argument("--long_side", type=int, default=1600, help="Enlarge the photo to this longer side (default: 1600).")
    parser.add_argument("--tile", type=int, default=512, help="Tile size, as texturenet-stylize --tile (default: 512).")
    parser.add_argument("--crop", type=int, default=192, help="Crop size in pixels; panels are shown at x2 (default: 192).")
    parser.add_argument("--noise_factor", type=float, default=0.0,
                        help="Noise factor of both passes; above 0 their noise differs, so expect texture to differ too (default: 0).")
    args = parser.parse_args()

    photo = load_rgb(args.photo)
    scale = args.long_side / max(photo.size)
    photo = photo.resize((round(photo.width * scale), round(photo.height * scale)), Image.BICUBIC)
    image = np.asarray(photo)
    stylizer = Stylizer(args.model, torch.device("cpu"))
    tiled = stylizer.stylize_array(image, strength=args.noise_factor, tile=args.tile)
    whole = stylizer.stylize_array(image, strength=args.noise_factor, tile=0)
    everywhere = np.abs(tiled.astype(int) - whole.astype(int))

    layout = tile_layout(stylizer.fast, *image.shape[:2], args.tile, args.tile // 8)  # the windows stylize_array used
    if len(layout.ys) < 2 or len(layout.xs) < 2:
        raise SystemExit(f"the photo is one tile across at --tile {args.tile}: use a smaller --tile or a larger --long_side")
    half = args.crop // 2
    y, x = ((starts[0] + size + starts[1]) // 2 for starts, size in ((layout.ys, layout.window[0]), (layout.xs, layout.window[1])))
    window = (slice(y - half, y + half), slice(x - half, x + half))
    a, b = tiled[window].astype(int), whole[window].astype(int)
    difference = np.abs(a - b)
    print(f"crop at x={x}, y={y} of {image.shape[1]}x{image.shape[0]}: |tiled - untiled| mean {difference.mean():.2f}, "
          f"max {difference.max()}; whole photo mean {everywhere.mean():.2f}, max {everywhere.max()} (of 255)")
    panels = [a, b, np.clip(difference * 4, 0, 255)]
    strip = np.concatenate([np.kron(p, np.ones((2, 2, 1))) for p in panels], axis=1).astype(np.uint8)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(strip).save(args.output)
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
