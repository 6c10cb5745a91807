"""Images in and out, the one codec: robust decoding, 8-bit pixels <-> float tensors, atomic saving, finding image files.

Every path that reads a picture reads it here, so "unreadable" means one thing everywhere (a
file that is skipped and counted, or refused in one line), and every conversion between 8-bit
pixels and the float tensors the networks take rounds the same way.
"""
from __future__ import annotations

import os
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO, Iterator, Optional

import numpy as np
import torch
from PIL import Image, ImageOps
from torch import Tensor
from tqdm import tqdm

from ..errors import TexturenetError, printable
from .files import write_atomic

IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".ppm", ".pgm"})


MAX_PIXELS = Image.MAX_IMAGE_PIXELS or 89_478_485
"""Images with more pixels than this are refused before decoding (Pillow's own bomb threshold, as an error)."""
MAX_ASPECT = 20
"""Images longer than this many times their width (or wider than their height) are refused before decoding.

Photos are resized by their short side, so a 1x20000 PNG of a few hundred bytes would become a
256x5,120,000 picture: the aspect ratio bounds memory where the pixel count cannot.
"""


class UnreadableImage(ValueError):
    """The one meaning of "unreadable image" in texturenet: a file that is skipped and counted, or refused in one line.

    Raised by :func:`load_rgb` for every reason an image cannot be used: not an image, truncated,
    a decompression bomb, too many pixels, an extreme aspect ratio, a sample format that cannot be
    mapped to 8 bits. The message is the reason.
    """


def _to_8bit(array: np.ndarray) -> np.ndarray:
    """One channel of integers or floats to uint8, by the range its values are in.

    Floats in [0, 1] are the usual float convention; larger values are read as 8-, 16- or 32-bit
    integers (Pillow's 32-bit mode is signed), by the smallest range that holds them. Negative or non-finite samples are refused:
    guessing their meaning would give an all-black or all-white picture.
    """
    values = array.astype(np.float64)
    if not np.isfinite(values).all() or values.min(initial=0) < 0:
        raise UnreadableImage("its samples are negative or not finite, so they have no meaning as brightness")
    top = values.max(initial=0)
    is_float = array.dtype.kind == "f"
    scale = next((full for full in ((1.0,) if is_float else ()) + (255.0, 65535.0, 2.0**31 - 1) if top <= full), None)
    if scale is None:
        raise UnreadableImage(f"its samples reach {top:.3g}, beyond the signed 32-bit range")
    return np.round(values * (255.0 / scale)).astype(np.uint8)


def _to_rgb(image: Image.Image) -> Image.Image:
    """Greyscale, 16/32-bit integer, float, CMYK, palette and alpha images to 8-bit RGB (alpha composited on white)."""
    if image.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        image = Image.fromarray(_to_8bit(np.asarray(image)), mode="L")
    if image.mode == "P":
        image = image.convert("RGBA")
    if image.mode in ("RGBA", "LA"):
        background = Image.new("RGBA", image.size, (255, 255, 255, 255))
        image = Image.alpha_composite(background, image.convert("RGBA"))
    return image.convert("RGB")


def check_dimensions(width: int, height: int) -> None:
    """Refuse (UnreadableImage) a picture whose size alone would exhaust memory once decoded or resized."""
    if width * height > MAX_PIXELS:
        raise UnreadableImage(f"{width}x{height} is {width * height / 1e6:.0f} megapixels, more than {MAX_PIXELS / 1e6:.0f}")
    if max(width, height) > MAX_ASPECT * min(width, height):
        raise UnreadableImage(f"{width}x{height} is more than {MAX_ASPECT} times longer than wide")


@contextmanager
def _open_image(source: Path | BinaryIO) -> Iterator[Image.Image]:
    """``Image.open(source)`` (the header only); any exception, then or while in use, an UnreadableImage.

    Only BaseExceptions that are not errors (KeyboardInterrupt, SystemExit) pass through. A
    MemoryError is the file's too: sizes are checked first, so it comes from an allocation that
    one crafted file asked for.
    """
    try:
        with Image.open(source) as image:
            yield image
    except UnreadableImage:
        raise
    except Image.DecompressionBombError as error:
        raise UnreadableImage(f"DecompressionBombError: {error}") from None
    except Exception as error:  # noqa: BLE001  (any failure of a decoder on one file's bytes; Ctrl-C and exit pass through)
        # Pillow's decoders and EXIF parsing raise TypeError, IndexError, ZeroDivisionError... on crafted
        # files, not only OSError (issue 21, case 11): one bad file must never end a run.
        raise UnreadableImage(type(error).__name__) from None


def image_size(source: Path | BinaryIO) -> tuple[int, int]:
    """(width, height) from the header alone, no pixel decoded (not yet checked: callers may have stricter limits)."""
    with _open_image(source) as image:
        return image.size


def as_rgb(image: Image.Image) -> Image.Image:
    """An image already in memory (the Python API's input) as :func:`load_rgb` makes a file: size checked, upright, 8-bit RGB."""
    check_dimensions(*image.size)
    return _to_rgb(ImageOps.exif_transpose(image))


def load_rgb(source: Path | BinaryIO, min_side: Optional[int] = None) -> Image.Image:
    """Decode ``source`` upright (EXIF orientation applied) as RGB; :class:`UnreadableImage` for anything else.

    The size is checked from the header before any pixel is decoded (:func:`check_dimensions`).
    ``min_side`` lets JPEG decoding skip resolution it does not need (``Image.draft``), which
    is most of the decode time for large photos.
    """
    with _open_image(source) as image:
        check_dimensions(*image.size)
        if min_side and image.format == "JPEG":
            image.draft("RGB", (min_side, min_side))  # keeps both sides >= min_side
        image = ImageOps.exif_transpose(image)
        image.load()
        return _to_rgb(image)


def to_tensor(pixels: np.ndarray | Image.Image, device: torch.device = torch.device("cpu")) -> Tensor:
    """8-bit pixels, (..., H, W, 3) (an RGB image, a photo, a batch of them), as (..., 3, H, W) float32 in [0, 1] on ``device``.

    The one uint8 -> float conversion. The pixels are copied first (a PIL-backed array is
    read-only, which torch warns about) and go to ``device`` as uint8, a quarter of float's bytes.
    """
    return torch.from_numpy(np.array(pixels, dtype=np.uint8)).to(device).movedim(-1, -3).float().div_(255)


def to_pixels(tensor: Tensor) -> np.ndarray:
    """(..., 3, H, W) in [0, 1] (clamped, rounded to the nearest level) as (..., H, W, 3) uint8 on the CPU.

    The one float -> uint8 conversion; ``tensor`` is left as it is. The bytes, not the floats, leave the device.
    """
    return tensor.detach().float().clamp(0, 1).mul_(255).round_().byte().movedim(-3, -1).cpu().numpy()


def to_image(tensor: Tensor) -> Image.Image:
    """A (3, H, W) tensor in [0, 1] (clamped) to an 8-bit RGB image (:func:`to_pixels`)."""
    return Image.fromarray(to_pixels(tensor), mode="RGB")


def save_image(tensor: Tensor, path: Path) -> None:
    """Save (3, H, W) in [0, 1]; the format follows the extension (PNG, JPEG at quality 95, ...)."""
    save_pil(to_image(tensor), path)


def save_pil(image: Image.Image, path: Path) -> None:
    """Save an RGB image atomically (io/files.py); the format follows the extension (PNG, JPEG at quality 95, ...)."""
    image_format = Image.registered_extensions().get(path.suffix.lower())
    if image_format is None or image_format not in Image.SAVE:
        raise TexturenetError(f"cannot write {printable(path)}: unknown image format {path.suffix!r}; use .png or .jpg")
    options = {"quality": 95} if image_format == "JPEG" else {}
    write_atomic(path, lambda file: image.save(file, format=image_format, **options), "image")


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


def read_image(path: Path, flag: str) -> Image.Image:
    """The one image a flag names (``--texture``, ``--photo``, ...), decoded; one clear line if it is missing or unreadable."""
    if not path.is_file():
        raise TexturenetError(f"{flag} {printable(path)}: no such file; give a PNG or JPEG")
    try:
        return load_rgb(path)
    except UnreadableImage as error:
        raise TexturenetError(f"{flag} {printable(path)} is not a readable image ({error}); give a PNG or JPEG") from None


def load_style(path: Path, style_size: int, flag: str = "--texture") -> Tensor:
    """The style/texture image as (1, 3, H, W), shorter side ``style_size``; one clear error if unreadable."""
    return to_tensor(resize_short_side(read_image(path, flag), style_size)).unsqueeze(0)


def find_images(root: Path) -> list[Path]:
    """Every image file under ``root``, recursively, extensions case-insensitive, sorted.

    The walk is iterative (an explicit stack; ``os.walk`` recurses in Python < 3.12), so a tree
    of any depth works: a folder nested 1100 deep gave RecursionError (issue 21, case 12).
    Symbolic links to folders are not followed (no loops); links to files are. A folder named
    like an image is not an image. A sub-folder that cannot be listed is skipped, named and counted.
    """
    unreadable: list[OSError] = []
    found = []
    folders = [root]
    while folders:
        folder = folders.pop()
        try:
            with os.scandir(folder) as entries:
                for entry in entries:
                    path = Path(entry.path)
                    if _is_folder(entry):
                        folders.append(path)
                    elif path.suffix.lower() in IMAGE_EXTENSIONS and path.is_file():
                        found.append(path)
        except OSError as error:
            unreadable.append(error)
    for error in unreadable:
        tqdm.write(f"skipping unreadable folder {printable(error.filename)} ({error.strerror or error})")
    if unreadable:
        tqdm.write(f"skipped {len(unreadable)} unreadable folder(s) under {printable(root)}")
    return sorted(found)


def _is_folder(entry: os.DirEntry) -> bool:
    """A real folder, not a link to one (a link could lead back up the tree); an entry that cannot be examined is not one."""
    try:
        return entry.is_dir(follow_symlinks=False)
    except OSError:
        return False
