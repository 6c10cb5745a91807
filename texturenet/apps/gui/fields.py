"""What the page sends, checked field by field: one clear message per bad field, before anything is used."""
from __future__ import annotations

import io
import math
import os
import re
import threading
import urllib.parse
from contextlib import contextmanager
from http import HTTPStatus
from pathlib import Path
from typing import Any, Iterator

from PIL import Image

from ...config import RUN_NAME, GuiConfig, VISDOM_PORT  # RUN_NAME: the trainer's own rule, re-exported for apps/gui/app.py
from ...errors import TexturenetError

MODEL_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")


class RequestError(TexturenetError):
    """A request the page must correct: answered with ``status`` and ``{"error": message}``."""

    def __init__(self, message: str, status: HTTPStatus = HTTPStatus.BAD_REQUEST) -> None:
        super().__init__(message)
        self.status = status


# -- field checks: one clear message per bad field ---------------------------------------------


REQUIRED = object()


def number(fields: dict[str, Any], name: str, kind: type, low: float, high: float, default: Any = REQUIRED) -> Any:
    """``fields[name]`` as an int or a finite float in [low, high]; ``default`` when absent or empty."""
    raw = fields.get(name)
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        if default is REQUIRED:
            raise RequestError(f"{name}: a value is required")
        return default
    try:
        value = kind(raw) if kind is float else int(str(raw).strip())
    except OverflowError:  # a whole number with hundreds of digits is too large for a float: out of range
        value = math.inf
    except (TypeError, ValueError):
        what = "a whole number" if kind is int else "a number"
        raise RequestError(f"{name}: expected {what}, got {str(raw)[:40]!r}") from None
    if not low <= value <= high or (kind is float and not math.isfinite(value)):  # (isfinite overflows on huge ints)
        low_text, high_text = (f"{v:g}" if kind is float else str(v) for v in (low, high))
        text = str(raw).strip() if value == math.inf else str(value)
        shown = text if len(text) <= 24 else f"{text[:20]}… ({len(text)} characters)"
        raise RequestError(f"{name}: {shown} is out of range; give a value from {low_text} to {high_text}")
    return value


MAX_PATH = 4096
"""Characters in a path from the page, at most (Linux's PATH_MAX): longer ones cannot name a file."""


def inside(root: Path, path: Path) -> bool:
    """Whether resolved ``path`` is ``root`` or lies under it."""
    return path == root or root in path.parents


def path_under(root: Path, text: Any, name: str, want_dir: bool) -> Path:
    """The existing folder (``want_dir``) or file that ``text`` names, resolved, which must lie under ``root``.

    Relative paths are relative to ``root``; symlinks and ``..`` are resolved before the check,
    so neither can lead outside (a path that a symlink leads out is refused saying so, or its
    refusal would read as a mistyped path). Text that cannot be a path (a NUL byte, longer than a path can
    be, a name the file system refuses, an unknown ``~user``) is refused with the reason.
    """
    if not isinstance(text, str) or not text.strip():
        raise RequestError(f"{name}: give a path under {root}")
    text = text.strip()
    if "\0" in text:
        raise RequestError(f"{name}: {text[:60]!r} contains a NUL byte")
    if len(text) > MAX_PATH:
        raise RequestError(f"{name}: the path is {len(text)} characters long; the limit is {MAX_PATH}")
    try:
        given = Path(text).expanduser()
        path = (given if given.is_absolute() else root / given).resolve()
        exists = path.exists()
    except (OSError, RuntimeError) as error:  # ENAMETOOLONG, ...; RuntimeError: no such ~user, or a symlink loop
        raise RequestError(f"{name}: {text[:60]!r} cannot be used ({getattr(error, 'strerror', None) or error})") from None
    if not inside(root, path):
        lexical = Path(os.path.normpath(given if given.is_absolute() else root / given))
        through = f": it resolves through a symlink to {path}" if inside(root, lexical) else ""
        raise RequestError(f"{name}: {text} is outside the allowed folder {root} (the server's --data_root){through}")
    if not exists:
        raise RequestError(f"{name}: {text} does not exist under {root}")
    if want_dir and not path.is_dir():
        raise RequestError(f"{name}: {text} is a file; give a folder of training photos")
    if not want_dir and not path.is_file():
        raise RequestError(f"{name}: {text} is a folder; give an image file")
    return path


class DecodeBudget:
    """The megapixels being decoded at this moment, over all requests, kept under a limit.

    Uploads are decoded outside the stylise lock (so that decoding overlaps a generator pass),
    and decoding memory grows with the pixels: eight 49-megapixel PNGs at once took 5.2 GB. Each
    decode holds its image's megapixels while it runs; one that finds no room in time is refused
    as busy rather than queued without end (the page shows the message; trying again works).
    """

    def __init__(self, megapixels: float) -> None:
        self.limit = megapixels
        self.used = 0.0
        self._room = threading.Condition()

    @contextmanager
    def hold(self, megapixels: float, wait: float) -> Iterator[None]:
        """Hold ``megapixels`` (at most the limit) of the budget, waiting up to ``wait`` seconds for them."""
        with self._room:
            if not self._room.wait_for(lambda: self.used + megapixels <= self.limit, timeout=wait):
                raise RequestError("photo: the server is busy decoding other uploads; try again in a moment",
                                   HTTPStatus.SERVICE_UNAVAILABLE)
            self.used += megapixels
        try:
            yield
        finally:
            with self._room:
                self.used -= megapixels
                self._room.notify_all()


def decode_upload(data: bytes, config: GuiConfig, budget: DecodeBudget) -> Image.Image:
    """The uploaded bytes as an upright RGB photo, shrunk to ``config.max_side``; refused if not an image or too large.

    The size comes from the header; the pixels are decoded only within ``budget``.
    """
    from ...io.images import UnreadableImage, image_size, load_rgb, resize_long_side

    if not data:
        raise RequestError("photo: the upload is empty; choose an image file")
    try:
        width, height = image_size(io.BytesIO(data))  # type: ignore[arg-type]  # PIL reads file objects as well as paths
        megapixels = width * height / 1e6
        if megapixels > config.max_megapixels:
            raise RequestError(f"photo: {width}x{height} is {megapixels:.0f} megapixels; the limit is {config.max_megapixels:g}")
        with budget.hold(megapixels, config.request_timeout):
            image = load_rgb(io.BytesIO(data))  # type: ignore[arg-type]  # PIL reads file objects as well as paths
            return resize_long_side(image, config.max_side)
    except UnreadableImage as error:
        raise RequestError(f"photo: the upload is not an image this server can read ({error}); use a PNG or JPEG") from None



def parse_viz_url(text: Any) -> tuple[str, int]:
    """``http://host:port`` -> (``http://host``, port) for ``--viz_server``/``--viz_port`` (Visdom's port if absent)."""
    try:
        parts = urllib.parse.urlsplit(str(text).strip())
        port = parts.port or VISDOM_PORT
    except ValueError:
        parts, port = None, 0
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname or parts.path not in ("", "/"):
        raise RequestError(f"Visdom server: {str(text)[:80]!r} is not an address like http://localhost:{VISDOM_PORT}")
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    return f"{parts.scheme}://{host}", port
