"""Single-pass inference: stylise photos (files or folders) or sample textures of any size.

The point of texture networks (Ulyanov et al. 2016, Sec. 1 and 4): once trained, one forward
pass replaces the hundreds of optimisation steps of Gatys et al. The strength (``--noise_factor``)
scales the generator's noise input (0 is deterministic) and, for models with the strength dial (every
style model trained since it exists), is the style strength: 0 the photo's shapes in the style's colours, 1 the style
weight's full style, up to the model's max_strength stronger still. For older models and
textures, 1 is what training saw and more gives stronger, more varied texture. The same seed
gives the same picture.
"""
from __future__ import annotations

import math
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Optional

import numpy as np

import torch
from PIL import Image
from torch import Tensor
from tqdm import tqdm

from . import color
from ..model.checkpoint import load_generator
from ..config import MAX_SAMPLE_PIXELS, StylizeConfig, strength_range
from ..io.images import UnreadableImage, find_images, load_rgb, resize_long_side, save_image, save_pil, to_pixels, to_tensor
from ..errors import TexturenetError, printable
from ..model.fused import fast_generator
from ..io.files import check_target, refuse_overwriting_inputs
from ..model.noise import IndependentNoise, SharedNoise
from ..model.tiled import AUTO_TILE, AUTO_TILE_PIXELS, max_windows, smallest_tile, stylize_with_context, tile_work


WRONG_MODEL = {"style": ": give --size WxH instead of --input", "texture": ": give --input PHOTO (--size is for texture models)"}
"""What to give instead when a model is used for what it was not trained for, by the mode the use needs
(GeneratorConfig.require_mode says what the model is)."""


@dataclass(frozen=True)
class Written:
    """One picture written: what ``texturenet stylize --json`` prints a line for."""

    input: Optional[Path]
    """The photo (None for a texture sample)."""
    output: Path
    strength: float
    """The style strength for models with the dial (``--noise_factor``), else the scale of the noise input."""
    width: int
    height: int
    seconds: float
    """The generator's time for this picture (its share of its batch's pass), without decoding and encoding."""

    def as_json(self) -> dict[str, Any]:
        return {"input": None if self.input is None else str(self.input), "output": str(self.output), "strength": self.strength,
                "size": [self.width, self.height], "seconds": round(self.seconds, 6)}


class Stylizer:
    """A trained generator ready for inference on one device."""

    def __init__(self, model: Path, device: torch.device) -> None:
        self.generator = load_generator(model).to(device)
        self.device = device
        self.mode = self.generator.config.mode
        self.kind = self.generator.config.generator
        # Same weights and outputs, fewer passes over memory (see model/fused.py); textures and johnson keep the plain path.
        self.fast = fast_generator(self.generator) if (self.mode, self.kind) == ("style", "pyramid") else self.generator
        self.max_strength = self.generator.config.max_strength

    def check(self, strength: float) -> None:
        """Refuse a strength outside the model's range (config.strength_range) in one clear line."""
        low, high = strength_range(self.max_strength)
        if not low <= strength <= high:
            meaning = ("the style strengths this model was trained for; give one in that range (0: the photo's shapes in the style's "
                       "colours, 1: the full style)" if self.max_strength else "beyond which noise drowns the picture; give one in "
                       "that range (0: no noise, 1: as in training)")
            raise TexturenetError(f"noise factor {strength:g} is outside {low:g}..{high:g}, {meaning}")

    def require(self, mode: str) -> None:
        """Refuse in one line to use this model for ``mode``'s work (``style``: stylise photos; ``texture``: sample) when it is the other kind."""
        self.generator.config.require_mode(mode, WRONG_MODEL[mode])

    def _rng(self, seed: int) -> torch.Generator:
        return torch.Generator(device=self.device).manual_seed(seed)

    @torch.inference_mode()
    def stylize(self, image: Tensor, strength: float = 1.0, seed: int = 0) -> Tensor:
        """(3, H, W) in [0, 1] -> stylised (3, H, W) in [0, 1], same size."""
        self.check(strength)
        output = self.fast(image.unsqueeze(0).to(self.device), strength=strength, noise=IndependentNoise(self._rng(seed)))
        return output[0].clamp(0, 1)

    def tiles(self, height: int, width: int, tile: Optional[int]) -> bool:
        """Whether a photo of this size is stylised in tiles (``tile`` as in :meth:`stylize_array`).

        Tiling (model/tiled.py) is the pyramid's exact computation; a johnson model is never tiled: its instance norms
        would need the whole photo's statistics gathered layer by layer over tiles with a halo of its receptive
        field (109 pixels wide), which is not written. Instead it stylises in one pass, automatically up to
        MAX_SAMPLE_PIXELS (the untiled texture sample's bound; measured 350 bytes a pixel at width 32, 1 KB at
        128), and past that refuses, naming --max_size; --tile 0 runs any size untiled, as for the pyramid.
        """
        if self.kind != "pyramid":
            if tile:
                raise TexturenetError(f"--tile {tile}: tiling is exact for pyramid models only; this {self.kind} model stylises each "
                                      "photo in one pass: leave --tile unset (or 0) and shrink big photos with --max_size")
            if tile is None and height * width > MAX_SAMPLE_PIXELS:
                side = math.isqrt(MAX_SAMPLE_PIXELS)
                raise TexturenetError(f"a {width}x{height} photo is more than the {MAX_SAMPLE_PIXELS / 2**20:g} megapixels a {self.kind} "
                                      f"model stylises in one pass (it is not tiled): give --max_size {side}, or --tile 0 to run it untiled anyway")
            return False
        if tile is None:
            return height * width > AUTO_TILE_PIXELS
        return tile > 0 and max(height, width) > tile

    def check_tile(self, height: int, width: int, tile: Optional[int]) -> None:
        """Refuse, before any work, a ``--tile`` so small for this photo that the passes' fixed cost dwarfs the work (tiling.max_windows)."""
        if not tile or not self.tiles(height, width, tile):
            return
        windows, passes = tile_work(self.fast, height, width, tile)
        if windows > max_windows(height, width):
            raise TexturenetError(f"--tile {tile} would cut this {width}x{height} photo into {windows} windows, {passes} generator passes, "
                                  f"mostly fixed cost; use --tile {smallest_tile(self.fast, height, width, tile)} or more, or leave --tile out")

    @staticmethod
    def per_batch(height: int, width: int, batch_size: int) -> int:
        """Photos of this size per forward pass: at most ``batch_size``, and no more pixels than one auto-tiled photo."""
        return max(1, min(batch_size, AUTO_TILE_PIXELS // (height * width)))

    @torch.inference_mode()
    def stylize_batch(self, images: np.ndarray, strength: float = 1.0, rng: Optional[torch.Generator] = None,
                      shared_noise: bool = True) -> np.ndarray:
        """(N, H, W, 3) uint8 photos of one size -> stylised uint8, in one forward pass.

        ``shared_noise`` gives every photo the noise field a batch of one would get from
        ``rng``, so batching never changes a picture (and video frames keep a steady texture).
        """
        self.check(strength)
        tensor = to_tensor(images, self.device)
        output = self.fast(tensor, strength=strength, noise=(SharedNoise if shared_noise else IndependentNoise)(rng))
        return to_pixels(output)

    def stylize_array(self, image: np.ndarray, strength: float = 1.0, seed: int = 0, tile: Optional[int] = None) -> np.ndarray:
        """(H, W, 3) uint8 -> stylised uint8, in overlapping tiles when ``tile`` is given or the image is large.

        ``tile``: None tiles automatically above AUTO_TILE_PIXELS, 0 never tiles, N uses N-pixel tiles.
        """
        height, width = image.shape[:2]
        if self.tiles(height, width, tile):
            self.check_tile(height, width, tile)
            tile = tile or smallest_tile(self.fast, height, width, AUTO_TILE)
            self.check(strength)
            with torch.inference_mode():
                return stylize_with_context(self.fast, image, tile, None, strength, self._rng(seed))
        return self.stylize_batch(image[None], strength, self._rng(seed))[0]

    @torch.inference_mode()
    def sample(self, height: int, width: int, strength: float = 1.0, seed: int = 0) -> Tensor:
        """A (3, height, width) texture sample; it tiles seamlessly (circular padding)."""
        output = self.generator(size=(height, width), strength=strength, noise=IndependentNoise(self._rng(seed)))
        return output[0].clamp(0, 1)


def _sources_and_targets(source: Path, destination: Path) -> list[tuple[Path, Path]]:
    """Each photo to stylise and the file its picture goes to: a file to a file (or into a folder), a folder tree to a
    folder tree. Refused before any work: nothing to read, a file as a folder's destination, a target that is an input
    or that cannot be written."""
    if source.is_dir():
        inputs = find_images(source)
        if not inputs:
            raise TexturenetError(f"--input {printable(source)} holds no images")
        if destination.exists() and not destination.is_dir():
            raise TexturenetError(f"--input is a folder, so --output must be a folder; {printable(destination)} is a file")
        pairs = [(path, destination / path.relative_to(source)) for path in inputs]
    elif source.is_file():
        pairs = [(source, destination / source.name if destination.is_dir() else destination)]
    else:
        raise TexturenetError(f"--input {printable(source)}: no such file or folder")
    refuse_overwriting_inputs([path for path, _ in pairs], [target for _, target in pairs])
    for _, target in pairs[:1]:  # the same folder rules hold for all of them; a bad one is found before any work
        check_target(target)
    return pairs


def stylize_files(stylizer: Stylizer, source: Path, destination: Path, config: StylizeConfig = StylizeConfig(),
                  on_written: Optional[Callable[[Written], None]] = None) -> list[Path]:
    """Stylise a file into a file (or into a folder), or a folder tree into a folder tree.

    In a folder, names and sub-folders are kept and a file that cannot be read is skipped and
    counted. Consecutive photos of one size go through the generator ``config.batch_size`` at
    a time (see :meth:`Stylizer.per_batch`; a batch never changes a picture), while background
    threads decode the next photos and encode the finished ones, so a folder costs about the
    compute time alone. ``config.tile`` as in :meth:`Stylizer.stylize_array`;
    ``config.preserve_color`` keeps the photo's colours (see stylize/color.py). Returns the paths written;
    ``on_written`` hears of each picture once it is on disk.
    """
    stylizer.require("style")
    pairs = _sources_and_targets(source, destination)

    def load(path: Path) -> np.ndarray:
        image = load_rgb(path)
        return np.asarray(resize_long_side(image, config.max_size) if config.max_size else image)

    written, skipped, saves = [], [], []
    group: list[tuple[np.ndarray, tuple[Path, Path]]] = []  # loaded photos of one size (and their paths), waiting for the generator

    def save(image: Image.Image, record: Written) -> None:
        save_pil(image, record.output)
        if on_written is not None:
            on_written(record)

    def finish(images: np.ndarray, results: np.ndarray, paths: list[tuple[Path, Path]], start: float) -> None:
        seconds = (time.perf_counter() - start) / len(paths)
        if config.preserve_color:
            results = color.preserve_color(images, results)
        for result, (source, target) in zip(results, paths):
            record = Written(source, target, config.noise_factor, result.shape[1], result.shape[0], seconds)
            saves.append(saver.submit(save, Image.fromarray(result, mode="RGB"), record))
            written.append(target)

    def flush() -> None:
        if group:
            images = np.stack([image for image, _ in group])
            start = time.perf_counter()
            finish(images, stylizer.stylize_batch(images, config.noise_factor, stylizer._rng(config.seed)), [p for _, p in group], start)
            group.clear()

    with ThreadPoolExecutor(max_workers=1) as loader, ThreadPoolExecutor(max_workers=1) as saver:
        ahead = config.batch_size + 1  # decode this many photos ahead of the generator
        pending = deque(loader.submit(load, path) for path, _ in pairs[:ahead])
        for index, (path, target) in enumerate(tqdm(pairs, desc="stylising", unit="img", disable=len(pairs) == 1)):
            current = pending.popleft()
            if index + ahead < len(pairs):
                pending.append(loader.submit(load, pairs[index + ahead][0]))
            try:
                image = current.result()
            except UnreadableImage as error:
                if len(pairs) == 1:
                    raise TexturenetError(f"--input {printable(path)} is not a readable image ({error})") from None
                skipped.append(path)
                tqdm.write(f"skipping unreadable image {printable(path)} ({error})")
                continue
            height, width = image.shape[:2]
            if stylizer.tiles(height, width, config.tile):
                flush()
                start = time.perf_counter()
                finish(image[None], stylizer.stylize_array(image, config.noise_factor, config.seed, config.tile)[None], [(path, target)],
                       start)
                continue
            if group and (group[0][0].shape != image.shape or len(group) >= stylizer.per_batch(height, width, config.batch_size)):
                flush()
            group.append((image, (path, target)))
        flush()
        for save in saves:
            save.result()  # re-raises a write error in this thread
    if skipped:
        tqdm.write(f"skipped {len(skipped)} unreadable file(s) of {len(pairs)}")
    if not written:
        raise TexturenetError(f"--input {printable(source)}: none of its {len(pairs)} image file(s) could be read; nothing was written")
    return written


def sample_texture(stylizer: Stylizer, height: int, width: int, destination: Path, strength: float = 1.0, seed: int = 0) -> Written:
    """Write a ``width`` x ``height`` texture sample to ``destination`` (height first, as everywhere in the package)."""
    stylizer.require("texture")
    start = time.perf_counter()
    sample = stylizer.sample(height, width, strength, seed)
    seconds = time.perf_counter() - start
    save_image(sample, destination)
    return Written(None, destination, strength, width, height, seconds)
