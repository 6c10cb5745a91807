#!/usr/bin/env python3
"""Regenerate ``texturenet/assets/style.png``, the bundled style image (ours, public domain).

A stained-glass mosaic: Voronoi tiles in a warm/cool palette with dark leading between them
and a little shading inside each tile, so that it has colour, edges and texture at several
scales, as a style image needs. Deterministic (fixed seed).
"""
from pathlib import Path

import numpy as np
from PIL import Image, ImageFilter

SIZE, TILES, SEED = 384, 260, 7
PALETTE = np.array([
    (232, 176, 46), (214, 93, 38), (176, 38, 42), (38, 84, 158), (52, 142, 190),
    (240, 214, 140), (66, 128, 76), (120, 60, 120), (20, 40, 90), (230, 130, 60),
], dtype=np.float64)


def main() -> None:
    rng = np.random.default_rng(SEED)
    points = rng.uniform(0, SIZE, size=(TILES, 2))
    ys, xs = np.mgrid[0:SIZE, 0:SIZE]
    grid = np.stack([ys, xs], axis=-1).reshape(-1, 1, 2).astype(np.float64)
    distance = np.sqrt(((grid - points[None]) ** 2).sum(-1))  # (pixels, tiles)
    nearest = np.argsort(distance, axis=1)[:, :2]
    d = np.take_along_axis(distance, nearest, axis=1)
    tile = nearest[:, 0].reshape(SIZE, SIZE)
    colour = PALETTE[rng.integers(0, len(PALETTE), TILES)][tile]
    shade = 0.82 + 0.3 * (1 - d[:, 0] / (d[:, 0].max() + 1e-9)).reshape(SIZE, SIZE)  # lighter at tile centres
    grain = rng.normal(1.0, 0.06, size=(SIZE, SIZE))
    image = colour * (shade * grain)[..., None]
    leading = ((d[:, 1] - d[:, 0]) < 2.6).reshape(SIZE, SIZE)
    image[leading] = (28, 24, 22)
    picture = Image.fromarray(np.clip(image, 0, 255).astype(np.uint8)).filter(ImageFilter.SMOOTH)
    out = Path(__file__).resolve().parent.parent / "texturenet" / "assets" / "style.png"
    picture.save(out)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
