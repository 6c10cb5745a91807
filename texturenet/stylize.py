"""Single-pass inference: stylise photos (files or folders) or sample textures of any size.

The point of texture networks (Ulyanov et al. 2016, Sec. 1 and 4): once trained, one forward
pass replaces the hundreds of optimisation steps of Gatys et al. The noise factor scales the
generator's noise input: 0 is deterministic, 1 is what training saw, more gives stronger,
more varied texture. The same seed gives the same picture.
"""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import torch
from PIL import Image
from torch import Tensor
from tqdm import tqdm

from .checkpoint import load_generator
from .data import find_images, load_rgb, resize_long_side, save_image, to_tensor
from .errors import TexturenetError


class Stylizer:
    """A trained generator ready for inference on one device."""

    def __init__(self, model: Path, device: torch.device) -> None:
        self.generator = load_generator(model).to(device)
        self.device = device
        self.mode = self.generator.config.mode

    def _noise(self, seed: int) -> torch.Generator:
        return torch.Generator(device=self.device).manual_seed(seed)

    @torch.inference_mode()
    def stylize(self, image: Tensor, noise_factor: float = 1.0, seed: int = 0) -> Tensor:
        """(3, H, W) in [0, 1] -> stylised (3, H, W) in [0, 1], same size."""
        output = self.generator(image.unsqueeze(0).to(self.device), noise_factor=noise_factor, generator=self._noise(seed))
        return output[0].clamp(0, 1)

    @torch.inference_mode()
    def sample(self, height: int, width: int, noise_factor: float = 1.0, seed: int = 0) -> Tensor:
        """A (3, height, width) texture sample; it tiles seamlessly (circular padding)."""
        output = self.generator(size=(height, width), noise_factor=noise_factor, generator=self._noise(seed))
        return output[0].clamp(0, 1)


def stylize_files(
    stylizer: Stylizer,
    source: Path,
    destination: Path,
    noise_factor: float = 1.0,
    seed: int = 0,
    max_size: Optional[int] = None,
) -> list[Path]:
    """Stylise a file into a file (or into a folder), or a folder tree into a folder tree.

    In a folder, names and sub-folders are kept and a file that cannot be read is skipped and
    counted. Returns the paths written.
    """
    if stylizer.mode != "style":
        raise TexturenetError("this is a texture model: give --size WxH instead of --input")
    if source.is_dir():
        inputs = find_images(source)
        if not inputs:
            raise TexturenetError(f"--input {source} holds no images")
        if destination.exists() and not destination.is_dir():
            raise TexturenetError(f"--input is a folder, so --output must be a folder; {destination} is a file")
        pairs = [(path, destination / path.relative_to(source)) for path in inputs]
    elif source.is_file():
        pairs = [(source, destination / source.name if destination.is_dir() else destination)]
    else:
        raise TexturenetError(f"--input {source}: no such file or folder")

    written, skipped = [], []
    for path, target in tqdm(pairs, desc="stylising", unit="img", disable=len(pairs) == 1):
        try:
            image = load_rgb(path)
        except (OSError, ValueError, Image.DecompressionBombError, SyntaxError) as error:
            if len(pairs) == 1:
                raise TexturenetError(f"--input {path} is not a readable image ({type(error).__name__})") from None
            skipped.append(path)
            tqdm.write(f"skipping unreadable image {path}")
            continue
        if max_size:
            image = resize_long_side(image, max_size)
        save_image(stylizer.stylize(to_tensor(image), noise_factor, seed), target)
        written.append(target)
    if skipped:
        tqdm.write(f"skipped {len(skipped)} unreadable file(s) of {len(pairs)}")
    return written


def sample_texture(stylizer: Stylizer, width: int, height: int, destination: Path, noise_factor: float = 1.0, seed: int = 0) -> Path:
    """Write a ``width`` x ``height`` texture sample to ``destination``."""
    if stylizer.mode != "texture":
        raise TexturenetError("this is a stylisation model: give --input PHOTO (--size is for texture models)")
    save_image(stylizer.sample(height, width, noise_factor, seed), destination)
    return destination
