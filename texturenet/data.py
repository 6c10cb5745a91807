"""Images in and out: robust decoding, the training-photo data set, deterministic sampling.

Any folder tree of images works (MSCOCO's train2014 is one flat folder of 82,783 JPEGs). A file
that cannot be decoded is skipped and reported, never fatal. Sampling is a pure function of
(seed, position in the run), so a resumed run sees exactly the batches and crops an
uninterrupted run would have, whatever the number of workers.
"""
from __future__ import annotations

import os
import random
import signal
from pathlib import Path
from typing import Iterator, Optional, Sequence

import numpy as np
import torch
from PIL import Image, ImageOps
from torch import Tensor
from torch.utils.data import DataLoader, Dataset, Sampler

from .distributed import Rank, RankShard
from .errors import TexturenetError

IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".ppm", ".pgm"})


def _to_rgb(image: Image.Image) -> Image.Image:
    """Greyscale, 16-bit, CMYK, palette and alpha images to 8-bit RGB (alpha composited on white)."""
    if image.mode in ("I;16", "I;16B", "I;16L", "I"):
        array = np.asarray(image, dtype=np.float64)
        scale = 255.0 / 65535.0 if array.max() > 255 else 1.0
        image = Image.fromarray(np.clip(array * scale, 0, 255).astype(np.uint8), mode="L")
    if image.mode == "P":
        image = image.convert("RGBA")
    if image.mode in ("RGBA", "LA"):
        background = Image.new("RGBA", image.size, (255, 255, 255, 255))
        image = Image.alpha_composite(background, image.convert("RGBA"))
    return image.convert("RGB")


def load_rgb(path: Path, min_side: Optional[int] = None) -> Image.Image:
    """Decode ``path`` upright (EXIF orientation applied) as RGB. Raises OSError/ValueError if unreadable.

    ``min_side`` lets JPEG decoding skip resolution it does not need (``Image.draft``), which
    is most of the decode time for large photos.
    """
    with Image.open(path) as image:
        if min_side and image.format == "JPEG":
            image.draft("RGB", (min_side, min_side))  # keeps both sides >= min_side
        image = ImageOps.exif_transpose(image)
        image.load()
        return _to_rgb(image)


def to_tensor(image: Image.Image) -> Tensor:
    """(3, H, W) float32 in [0, 1]."""
    return torch.from_numpy(np.asarray(image, dtype=np.uint8).copy()).permute(2, 0, 1).float().div_(255)


def to_image(tensor: Tensor) -> Image.Image:
    """A (3, H, W) tensor in [0, 1] (clamped) to an 8-bit RGB image."""
    array = tensor.detach().float().clamp(0, 1).mul(255).round().byte().permute(1, 2, 0).cpu().numpy()
    return Image.fromarray(array, mode="RGB")


def save_image(tensor: Tensor, path: Path) -> None:
    """Save (3, H, W) in [0, 1]; the format follows the extension (PNG, JPEG at quality 95, ...)."""
    save_pil(to_image(tensor), path)


def save_pil(image: Image.Image, path: Path) -> None:
    """Save an RGB image; the format follows the extension (PNG, JPEG at quality 95, ...)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        image.save(path, quality=95) if path.suffix.lower() in (".jpg", ".jpeg") else image.save(path)
    except (ValueError, KeyError):
        raise TexturenetError(f"cannot write {path}: unknown image format {path.suffix!r}; use .png or .jpg") from None


def resize_short_side(image: Image.Image, size: int) -> Image.Image:
    """Resize so that the shorter side is ``size`` pixels (antialiased)."""
    w, h = image.size
    scale = size / min(w, h)
    return image.resize((max(size, round(w * scale)), max(size, round(h * scale))), Image.Resampling.LANCZOS)


def resize_long_side(image: Image.Image, size: int) -> Image.Image:
    """Shrink so that the longer side is at most ``size`` pixels (never enlarges)."""
    w, h = image.size
    if max(w, h) <= size:
        return image
    scale = size / max(w, h)
    return image.resize((max(1, round(w * scale)), max(1, round(h * scale))), Image.Resampling.LANCZOS)


def load_style(path: Path, style_size: int) -> Tensor:
    """The style/texture image as (1, 3, H, W), shorter side ``style_size``; one clear error if unreadable."""
    if not path.is_file():
        raise TexturenetError(f"--texture {path}: no such file; give the style or texture image to learn")
    try:
        image = load_rgb(path)
    except (OSError, ValueError, Image.DecompressionBombError) as error:
        raise TexturenetError(f"--texture {path} is not a readable image ({type(error).__name__}); give a PNG or JPEG") from None
    return to_tensor(resize_short_side(image, style_size)).unsqueeze(0)


def find_images(root: Path) -> list[Path]:
    """Every image file under ``root``, recursively, extensions case-insensitive, sorted.

    Symbolic links to folders are not followed (no loops); a folder named like an image is
    not an image.
    """
    found = []
    for folder, _dirs, files in os.walk(root):
        for name in files:
            path = Path(folder) / name
            if path.suffix.lower() in IMAGE_EXTENSIONS and path.is_file():
                found.append(path)
    return sorted(found)


def photo_paths(data_dir: Path) -> list[Path]:
    """The training photos; one clear error for a missing folder or one without images."""
    if not data_dir.is_dir():
        raise TexturenetError(f"--data_dir {data_dir}: no such folder; give a folder of training photos (e.g. MSCOCO train2014)")
    paths = find_images(data_dir)
    if not paths:
        raise TexturenetError(
            f"--data_dir {data_dir} holds no images ({', '.join(sorted(IMAGE_EXTENSIONS))}, searched recursively)"
        )
    return paths


class PhotoDataset(Dataset):
    """Training photos: short side resized to ``image_size``, then a random ``image_size`` crop.

    Indexed by ``(index, crop_seed)`` pairs from :class:`RunSampler`. An unreadable file is
    replaced by the next readable one; its index is returned so the trainer can count and
    report it once.
    """

    def __init__(self, paths: Sequence[Path], image_size: int) -> None:
        self.paths = list(paths)
        self.image_size = image_size

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, key: tuple[int, int]) -> tuple[Tensor, list[int]]:
        index, crop_seed = key
        bad: list[int] = []
        for attempt in range(len(self.paths)):
            i = (index + attempt) % len(self.paths)
            try:
                image = load_rgb(self.paths[i], min_side=self.image_size)
            except (OSError, ValueError, Image.DecompressionBombError, SyntaxError):
                bad.append(i)
                continue
            return self.crop(image, random.Random(crop_seed)), bad
        raise TexturenetError("no image in the data set could be decoded")

    def crop(self, image: Image.Image, rng: random.Random) -> Tensor:
        image = resize_short_side(image, self.image_size)
        w, h = image.size
        left, top = rng.randint(0, w - self.image_size), rng.randint(0, h - self.image_size)
        return to_tensor(image.crop((left, top, left + self.image_size, top + self.image_size)))


def collate(samples: list[tuple[Tensor, list[int]]]) -> tuple[Tensor, list[int]]:
    """Stack images; gather the indices of files that failed to decode."""
    return torch.stack([s[0] for s in samples]), [i for s in samples for i in s[1]]


class RunSampler(Sampler):
    """Endless ``(index, crop_seed)`` keys: a fresh permutation each epoch, seeded by (seed, epoch).

    ``start`` is the position in the run (iteration x batch size) to begin at, which is how a
    resumed run continues the exact sequence of an uninterrupted one.
    """

    def __init__(self, size: int, seed: int, start: int = 0) -> None:
        self.size, self.seed, self.start = size, seed, start

    def __iter__(self) -> Iterator[tuple[int, int]]:
        position = self.start
        while True:
            epoch, offset = divmod(position, self.size)
            order = torch.randperm(self.size, generator=torch.Generator().manual_seed(self.seed * 1_000_003 + epoch))
            for index in order[offset:].tolist():
                yield index, self.seed * 1_000_003 ** 2 + position
                position += 1


def _ignore_sigint(_worker_id: int) -> None:
    """Ctrl-C is the main process's to handle (finish the step, save); workers keep serving it."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def photo_loader(
    dataset: PhotoDataset, batch_size: int, seed: int, start: int, workers: int, pin_memory: bool, rank: Rank = Rank()
) -> DataLoader:
    """An endless loader of (batch, bad indices), beginning at run position ``start``.

    Under torchrun, ``start`` counts global-batch positions and this rank gets its block of
    each global batch (:class:`~texturenet.distributed.RankShard`).
    """
    stream = RunSampler(len(dataset), seed, start)
    return DataLoader(
        dataset,
        batch_size=batch_size,
        sampler=RankShard(stream, batch_size, rank) if rank.distributed else stream,
        num_workers=workers,
        collate_fn=collate,
        pin_memory=pin_memory,
        persistent_workers=workers > 0,
        prefetch_factor=4 if workers > 0 else None,
        worker_init_fn=_ignore_sigint if workers > 0 else None,
        # Its own RNG for worker seeds: otherwise starting the loader draws from torch's global
        # RNG, which drives the generator's noise, and a resumed run would drift from the original.
        generator=torch.Generator().manual_seed(seed),
    )
