"""Browser GUI (issue 7): ``texturenet-gui`` serves a page to stylise photos and start training runs.

The seed project had a small web app; this is its replacement without a web framework: the
standard library's threaded HTTP server, one static page (``assets/gui.html``) and a JSON API.
Stylising reuses :class:`texturenet.stylize.Stylizer` (loaded models are cached); training runs
the real ``texturenet-train`` entry point as a child process, so a run started here is exactly
the run the command line would make (same flags, checkpoints, sample grid, SIGINT handling).

Everything a browser sends is checked before it is used, because a page is an input like any
other: paths must resolve (symlinks and ``..`` included) under ``--data_root``, model names
must be files of the checkpoint folder, numbers must be finite and in range, uploads must be
images under the size limit (refused by ``Content-Length`` before being read), and one
training run at a time. The server listens on loopback by default; requests whose ``Host`` or
``Origin`` is not this server are refused (a web page elsewhere cannot drive it, and DNS
rebinding cannot reach it), and POSTs need a non-form content type, which browsers only send
cross-site after a CORS preflight this server never grants.
"""
from __future__ import annotations

import argparse
import functools
import io
import ipaddress
import json
import math
import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import threading
import time
import traceback
import urllib.parse
from collections import OrderedDict, deque
from contextlib import contextmanager
from dataclasses import dataclass
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Callable, Iterator, Optional, Sequence

from PIL import Image

from .config import VISDOM_PORT
from .errors import TexturenetError

PAGE = Path(__file__).resolve().parent / "assets" / "gui.html"
PACKAGE_PARENT = Path(__file__).resolve().parent.parent
MODEL_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")
RUN_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}")
# tqdm's bar: "NAME:  40%|####      | 2/5 [00:01<00:02, ...]": progress comes as JSON lines, so the log leaves it out
PROGRESS_BAR = re.compile(r"\|\s*\d+/\d+\s*\[")


@dataclass
class GuiConfig:
    """Settings of one ``texturenet-gui`` server (the command line builds its flags from these fields)."""

    host: str = "127.0.0.1"
    """Address to listen on; loopback, so only this machine can reach the page."""
    port: int = 8098
    """Port of the page (Visdom's default is 8097, so both run side by side)."""
    checkpoint_dir: Path = Path("checkpoints")
    """Folder whose checkpoints are listed, and where training runs started from the page write theirs."""
    data_root: Path = Path(".")
    """Training data folders and style images can only be chosen under this folder."""
    max_upload_mb: float = 20.0
    """Uploads larger than this many MiB are refused before they are read."""
    max_megapixels: float = 50.0
    """Uploaded images with more pixels than this are refused before they are decoded."""
    max_side: int = 1024
    """Uploaded photos are shrunk so that their longer side is at most this many pixels (bounds the time a request takes)."""
    train_args: str = ""
    """Extra texturenet-train flags for every run started from the page, e.g. --train_args='--loss_net vgg16 --vgg_weights W.pth --cuda'; the form's fields come after them and win."""
    cuda: bool = False
    """Stylise on the GPU (training runs use the GPU when --train_args has --cuda)."""
    request_timeout: float = 20.0
    """Seconds a connection may stay silent (a request, header or body that does not come, an idle keep-alive) before it is closed, so that stuck clients hold no thread; also the longest an upload waits for room to be decoded."""
    max_connections: int = 16
    """Connections served at once, one thread each; more wait in the kernel's queue (unanswered, holding no thread) until one ends."""
    decode_megapixels: float = 100.0
    """Megapixels of uploads decoded at once, over all requests (decoding memory grows with the pixels); an upload that finds no room within request_timeout is answered 503, busy."""
    allowed_hosts: str = ""
    """Other names the page is opened by, comma-separated, e.g. mybox.lan; the Host of every request must be one of them, a loopback name, --host, this machine's name or an IP address (DNS rebinding cannot use those)."""

    def __post_init__(self) -> None:
        if not 0 < self.port < 65536:
            raise ValueError(f"port must be in 1..65535, got {self.port}")
        if not (self.max_upload_mb > 0 and self.max_megapixels > 0 and self.max_side >= 16):
            raise ValueError("max_upload_mb and max_megapixels must be > 0 and max_side at least 16")
        if not (0 < self.request_timeout < math.inf and self.max_connections >= 1):
            raise ValueError("request_timeout must be > 0 and max_connections at least 1")
        if self.decode_megapixels < self.max_megapixels:
            raise ValueError(f"decode_megapixels ({self.decode_megapixels:g}) must be at least max_megapixels "
                             f"({self.max_megapixels:g}), or an image at the limit could never be decoded")

    @property
    def max_upload_bytes(self) -> int:
        return int(self.max_upload_mb * 2**20)


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
    so neither can lead outside. Text that cannot be a path (a NUL byte, longer than a path can
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
        raise RequestError(f"{name}: {text} is outside the allowed folder {root} (the server's --data_root)")
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
    from .data import UnreadableImage, image_size, load_rgb, resize_long_side

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


# -- models ------------------------------------------------------------------------------------


class ModelShelf:
    """The checkpoints of one folder: listed (with their mode) and loaded for inference, both cached.

    A cache entry is keyed by the file's modification time and size, so a checkpoint rewritten
    by a training run is read again; at most ``keep`` generators stay loaded.
    """

    def __init__(self, folder: Path, device: Any, keep: int = 4) -> None:
        self.folder = folder
        self.device = device
        self.keep = keep
        self._info: dict[Path, tuple[tuple[int, int], dict[str, Any]]] = {}
        self._loaded: OrderedDict[tuple[Path, int, int], Any] = OrderedDict()
        self._lock = threading.Lock()

    def path(self, name: Any) -> Path:
        """The checkpoint called ``name``: a file of this folder, never a path elsewhere."""
        if not isinstance(name, str) or not MODEL_NAME.fullmatch(name) or ".." in name:
            raise RequestError(f"model: {str(name)[:60]!r} is not a model name; choose one from the list")
        path = self.folder / f"{name}.pth"
        if not path.is_file():
            raise RequestError(f"model: no model named {name!r} in {self.folder}; reload the list")
        return path

    def listing(self) -> list[dict[str, Any]]:
        """Every ``*.pth`` of the folder, final models first, with mode and iteration (or why it cannot be used)."""
        from .checkpoint import generator_config, is_final, load_checkpoint

        models = []
        paths = sorted(self.folder.glob("*.pth")) if self.folder.is_dir() else []
        self._info = {path: self._info[path] for path in paths if path in self._info}  # forget deleted files
        for path in paths:
            if not MODEL_NAME.fullmatch(path.stem) or ".." in path.stem:
                continue  # hidden or oddly named files are not offered (and could not be asked for)
            stat = path.stat()
            key = (stat.st_mtime_ns, stat.st_size)
            cached = self._info.get(path)
            if cached is None or cached[0] != key:
                info: dict[str, Any] = {"name": path.stem}
                try:
                    checkpoint = load_checkpoint(path)
                    info.update(mode=generator_config(checkpoint).mode, iteration=int(checkpoint["iteration"]), final=is_final(path))
                except (TexturenetError, KeyError, TypeError, ValueError) as error:
                    info.update(mode=None, error=str(error).replace(str(path), path.name))
                self._info[path] = cached = (key, info)
            models.append(cached[1])
        return sorted(models, key=lambda m: (not m.get("final", False), m["name"]))

    def stylizer(self, name: Any) -> Any:
        """The loaded :class:`Stylizer` of model ``name`` (loaded once, kept while the file is unchanged)."""
        from .stylize import Stylizer

        path = self.path(name)
        stat = path.stat()
        key = (path, stat.st_mtime_ns, stat.st_size)
        with self._lock:
            if key in self._loaded:
                self._loaded.move_to_end(key)
                return self._loaded[key]
        try:
            stylizer = Stylizer(path, self.device)
        except TexturenetError as error:
            raise RequestError(f"model {name}: {str(error).replace(str(path), path.name)}") from None
        with self._lock:
            self._loaded[key] = stylizer
            while len(self._loaded) > self.keep:
                self._loaded.popitem(last=False)
        return stylizer


# -- training runs -----------------------------------------------------------------------------


@functools.lru_cache(maxsize=None)  # one per ``what``: building the parser takes a second or two (help read from source)
def raising_parser(what: str) -> argparse.ArgumentParser:
    """``texturenet-train``'s own parser, but a bad flag raises :class:`RequestError` (prefixed ``what``) instead of exiting.

    Shared between requests: ``parse_args`` keeps its state in the namespace it returns.
    """
    from .cli import train_parser

    parser = train_parser()

    def error(message: str) -> None:
        raise RequestError(f"{what}: {message}")

    parser.error = error  # type: ignore[method-assign]
    return parser


def check_train_argv(argv: list[str], what: str = "training settings") -> None:
    """Refuse what ``texturenet-train`` itself would refuse (its parser and config checks), before starting it."""
    from .cli import train_config

    try:
        train_config(raising_parser(what).parse_args(argv))
    except ValueError as error:
        raise RequestError(f"{what}: {error}") from None


class TrainingRun:
    """One ``texturenet-train`` child process and what the page shows of it.

    The trainer reports its progress as JSON lines on a pipe of its own (the Monitor protocol,
    ``monitor.JsonLinesMonitor``): iterations and the checkpoints it saved. Its output (summary
    lines, tqdm's bar, errors; carriage-return separated) is kept for the log. Both are read on
    threads. SIGINT makes the trainer finish its step, save ``NAME_iterN.pth`` and exit 130.
    """

    def __init__(self, argv: list[str], name: str, folder: Path, total: int, viz_url: Optional[str]) -> None:
        self.argv, self.name, self.folder, self.total, self.viz_url = argv, name, folder, total, viz_url
        from .monitor import EVENTS_FD

        self.iteration = 0
        self.saved: Optional[Path] = None
        self.lines: deque[str] = deque(maxlen=30)
        self.stop_requested = False
        self.started = time.time()
        events, child_end = os.pipe()
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        env["PYTHONPATH"] = os.pathsep.join([str(PACKAGE_PARENT), *filter(None, [env.get("PYTHONPATH")])])  # the texturenet serving this page
        env[EVENTS_FD] = str(child_end)
        try:
            self.process = subprocess.Popen(
                [sys.executable, "-c", "from texturenet.cli import train_main; train_main()", *argv],
                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env, pass_fds=(child_end,),
                start_new_session=True,  # a Ctrl-C in the server's terminal reaches the run only through stop()
            )
        except BaseException:
            os.close(events)
            raise
        finally:
            os.close(child_end)  # the child holds its own copy: the pipe ends when the child does
        self._readers = [threading.Thread(target=self._read, name="train-output", daemon=True),
                         threading.Thread(target=self._read_events, args=(events,), name="train-events", daemon=True)]
        for reader in self._readers:
            reader.start()

    @property
    def command(self) -> str:
        return shlex.join(["texturenet-train", *self.argv])

    def _read(self) -> None:
        assert self.process.stdout is not None
        pending = b""
        for chunk in iter(lambda: self.process.stdout.read1(65536), b""):  # type: ignore[union-attr]
            *complete, pending = re.split(rb"[\r\n]", pending + chunk)
            for line in complete:
                self._take(line.decode(errors="replace").strip())
        self._take(pending.decode(errors="replace").strip())

    def _take(self, line: str) -> None:
        if line and not PROGRESS_BAR.search(line):  # the bar's redraws would push everything else out of the log
            self.lines.append(line)

    def _read_events(self, descriptor: int) -> None:
        """The trainer's JSON lines: where it is, and which checkpoints it wrote."""
        with open(descriptor, encoding="utf-8", errors="replace") as stream:
            for line in stream:
                try:
                    event = json.loads(line)
                except ValueError:
                    continue
                kind = event.get("event") if isinstance(event, dict) else None
                if kind == "start" and isinstance(event.get("iterations"), int):
                    self.total = event["iterations"]
                elif kind in ("log", "checkpoint") and isinstance(event.get("iteration"), int):
                    self.iteration = event["iteration"]
                    if kind == "checkpoint" and isinstance(event.get("path"), str):
                        self.saved = Path(event["path"])

    def running(self) -> bool:
        return self.process.poll() is None

    def stop(self) -> None:
        """Ask the trainer to save and exit (its SIGINT handler), as Ctrl-C in a terminal would."""
        if self.running():
            self.stop_requested = True
            self.process.send_signal(signal.SIGINT)

    def picture(self, kind: str) -> Optional[Path]:
        """``NAME_samples.png`` or ``NAME_loss.png`` if this run wrote it (not one left by an earlier run)."""
        from .checkpoint import run_output

        path = run_output(self.folder, self.name, kind)
        try:
            return path if path.stat().st_mtime >= self.started - 1 else None
        except OSError:
            return None

    def status(self) -> dict[str, Any]:
        code = self.process.poll()
        for reader in self._readers:
            reader.join(0 if code is None else 5)  # the last lines arrive after the exit
        lines = list(self.lines)
        state = "running" if code is None else "finished" if code == 0 else "stopped" if code == 130 else "failed"
        errors = [line for line in lines if "error:" in line]
        pictures = {}
        for kind in ("samples", "loss"):
            path = self.picture(kind)
            if path is not None:
                pictures[kind] = f"/api/train/{kind}.png?v={path.stat().st_mtime_ns}"
        return {
            "state": state, "name": self.name, "iteration": self.iteration, "total": self.total,
            "returncode": code, "stopping": self.stop_requested and code is None, "command": self.command,
            "log": lines, "error": (errors[-1] if errors else lines[-1] if lines else f"exit status {code}") if state == "failed" else None,
            "model": self.saved.stem if self.saved is not None and state in ("finished", "stopped") else None,
            "viz_url": self.viz_url, "pictures": pictures, "elapsed": round(time.time() - self.started, 1),
        }


# -- the application: request bodies in, JSON or PNG out -----------------------------------------


class GuiApp:
    """What the HTTP handler calls; holds the models and the one training run."""

    def __init__(self, config: GuiConfig) -> None:
        self.config = config
        self.root = config.data_root.expanduser().resolve()
        if not self.root.is_dir():
            raise TexturenetError(f"--data_root {config.data_root}: no such folder; give the folder that holds your photos and style images")
        self.train_args = shlex.split(config.train_args)
        check_train_argv(self.train_args, "--train_args")  # a bad --train_args is the server's problem: refused at start
        import torch  # only now: the checks above answer in a fraction of a second

        if config.cuda and not torch.cuda.is_available():
            raise TexturenetError("--cuda was given but CUDA is not available; drop --cuda to stylise on the CPU")
        self.models = ModelShelf(config.checkpoint_dir, torch.device("cuda" if config.cuda else "cpu"))
        self.run: Optional[TrainingRun] = None
        self._run_lock = threading.Lock()
        self._stylize_lock = threading.Lock()  # one generator pass at a time: they would only share the same cores
        self._decoding = DecodeBudget(config.decode_megapixels)

    def info(self) -> dict[str, Any]:
        """Limits and folders for the page, and path suggestions for the training form."""
        folders, images = self._suggestions()
        return {
            "data_root": str(self.root), "checkpoint_dir": str(self.config.checkpoint_dir.resolve()),
            "max_upload_bytes": self.config.max_upload_bytes, "max_side": self.config.max_side,
            "train_args": self.config.train_args, "folders": folders, "images": images,
        }

    def _suggestions(self, depth: int = 2, limit: int = 200) -> tuple[list[str], list[str]]:
        """Folders and images under the data root, a few levels deep and capped (a huge data set stays cheap)."""
        from .data import IMAGE_EXTENSIONS

        folders: list[str] = []
        images: list[str] = []
        level = [self.root]
        for _ in range(depth + 1):
            below = []
            for folder in level:
                try:
                    entries = sorted(os.scandir(folder), key=lambda e: e.name)
                except OSError:
                    continue
                for entry in entries:
                    if entry.name.startswith("."):
                        continue
                    relative = Path(entry.path).relative_to(self.root).as_posix()
                    if entry.is_dir(follow_symlinks=False) and len(folders) < limit:
                        folders.append(relative)
                        below.append(Path(entry.path))
                    elif (Path(entry.name).suffix.lower() in IMAGE_EXTENSIONS and len(images) < limit
                          and not self._leads_out(Path(entry.path))):
                        images.append(relative)
            level = below
        return folders, images

    def _leads_out(self, path: Path) -> bool:
        """Whether ``path`` is a symlink to a file outside the data root (never offered, never used)."""
        return path.is_symlink() and not inside(self.root, path.resolve())

    def _refuse_links_out(self, data: Path) -> None:
        """Refuse a data folder with a photo that is a link to a file outside the data root.

        The trainer reads the folder itself (it gets ``--data_dir``), so the server cannot leave
        such a file out: the whole folder is refused, naming the link. Only the files can be
        links here: the trainer's search does not follow links to folders.
        """
        from .data import photo_paths

        for photo in photo_paths(data):  # refuses a folder without images, with the trainer's own message
            if self._leads_out(photo):
                raise RequestError(f"data folder (--data_dir): {photo.relative_to(self.root)} is a link to {photo.resolve()}, "
                                   f"outside the allowed folder {self.root}; remove the link or copy the file into the folder")

    def _refuse_taken_name(self, name: str) -> None:
        """Refuse a run name that has checkpoints (``NAME.pth``, ``NAME_iterN.pth``) or a lock in the checkpoint folder.

        The trainer refuses those too, but only once the page has been told the run started; a
        stopped run's ``NAME_iterN.pth`` is work that a new run of the same name would replace.
        """
        from .checkpoint import RunLock, first_few, run_files

        folder = self.config.checkpoint_dir
        owner = RunLock.holder(folder, name)
        if owner is not None:
            raise RequestError(f"name: a run named {name!r} is training in {folder} (pid {owner}, {name}.lock); choose another name",
                               HTTPStatus.CONFLICT)
        existing = [path.name for path in run_files(folder, name)]
        if existing:
            raise RequestError(f"name: a run named {name!r} already exists in {folder} ({first_few(existing)}); choose another name, "
                               f"or continue it with texturenet-train --resume auto --name {name}", HTTPStatus.CONFLICT)

    def stylize(self, query: dict[str, Any], body: bytes) -> bytes:
        """A PNG: the uploaded photo stylised, or (texture models) a texture sample of the asked size."""
        stylizer = self.models.stylizer(query.get("model"))
        noise_factor = number(query, "noise_factor", float, 0.0, 2.0, default=1.0)
        seed = number(query, "seed", int, 0, 2**31 - 1, default=0)
        if stylizer.mode == "texture":
            width = number(query, "width", int, 16, 2048, default=256)
            height = number(query, "height", int, 16, 2048, default=256)
            with self._stylize_lock:
                from .data import to_image

                image = to_image(stylizer.sample(height, width, noise_factor, seed))
        else:
            import numpy as np

            photo = decode_upload(body, self.config, self._decoding)
            with self._stylize_lock:
                image = Image.fromarray(stylizer.stylize_array(np.asarray(photo), noise_factor, seed), mode="RGB")
        out = io.BytesIO()
        image.save(out, format="PNG")
        return out.getvalue()

    def start_training(self, fields: dict[str, Any]) -> dict[str, Any]:
        """Check the form, then start ``texturenet-train`` with it (after the server's ``--train_args``)."""
        from .data import load_style

        mode = fields.get("mode") or "style"
        if mode not in ("style", "texture"):
            raise RequestError(f"mode: {str(mode)[:20]!r} is not style or texture")
        style = path_under(self.root, fields.get("style"), "style image (--texture)", want_dir=False)
        try:
            load_style(style, 16)
        except TexturenetError:
            raise RequestError(f"style image (--texture): {fields.get('style')} is not an image this server can read; choose a PNG or JPEG") from None
        argv = [*self.train_args, "--mode", mode, "--texture", str(style), "--checkpoint_dir", str(self.config.checkpoint_dir.resolve())]
        if mode == "style":
            data = path_under(self.root, fields.get("data_dir"), "data folder (--data_dir)", want_dir=True)
            self._refuse_links_out(data)
            argv += ["--data_dir", str(data)]
        name = str(fields.get("name") or "").strip() or style.stem
        if not RUN_NAME.fullmatch(name) or ".." in name:
            raise RequestError(f"name: {name[:60]!r} is not a usable run name; use letters, digits, '_', '-' and '.' (at most 64)")
        self._refuse_taken_name(name)
        argv += ["--name", name]
        iterations = number(fields, "iterations", int, 1, 10**7)
        argv += ["--iterations", str(iterations)]
        for field, kind, low, high in (("image_size", int, 16, 4096), ("batch_size", int, 1, 1024),
                                       ("save_every", int, 0, 10**7), ("style_weight", float, 0.0, 1e12)):
            value = number(fields, field, kind, low, high, default=None)  # empty: the trainer's default
            if value is not None:
                argv += [f"--{field}", str(value)]
        viz_url = None
        if fields.get("viz"):
            viz_server, viz_port = parse_viz_url(fields.get("viz_url") or f"http://localhost:{VISDOM_PORT}")
            argv += ["--viz", "--viz_server", viz_server, "--viz_port", str(viz_port)]
            viz_url = f"{viz_server}:{viz_port}/env/{urllib.parse.quote(name)}"
        check_train_argv(argv)
        with self._run_lock:
            if self.run is not None and self.run.running():
                raise RequestError(f"a training run ({self.run.name!r}) is already going; stop it first (one run at a time)",
                                   HTTPStatus.CONFLICT)
            self.run = TrainingRun(argv, name, self.config.checkpoint_dir, iterations, viz_url)
            return self.run.status()

    def training_status(self) -> dict[str, Any]:
        return {"state": "idle"} if self.run is None else self.run.status()

    def stop_training(self, _fields: dict[str, Any]) -> dict[str, Any]:
        """Stop the run (the JSON body is required only so that other sites' pages cannot post it; it is empty)."""
        if self.run is None or not self.run.running():
            raise RequestError("no training run is going", HTTPStatus.CONFLICT)
        self.run.stop()
        return self.run.status()

    def training_picture(self, kind: str) -> bytes:
        path = self.run.picture(kind) if self.run is not None else None
        if path is None:
            raise RequestError(f"the current run has no {kind} picture yet", HTTPStatus.NOT_FOUND)
        return path.read_bytes()

    def close(self, wait: float = 60.0) -> None:
        """Stop a running training (it saves a checkpoint) before the server exits."""
        run = self.run
        if run is not None and run.running():
            print(f"texturenet-gui: stopping training run {run.name!r} (it saves a checkpoint)", file=sys.stderr)
            run.stop()
            try:
                run.process.wait(wait)
            except subprocess.TimeoutExpired:
                print(f"texturenet-gui: training run {run.name!r} is still saving (pid {run.process.pid})", file=sys.stderr)


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


# -- HTTP --------------------------------------------------------------------------------------


class Handler(BaseHTTPRequestHandler):
    """Routes requests to the :class:`GuiApp` of the server; every error is JSON ``{"error": ...}``."""

    server: "GuiServer"
    protocol_version = "HTTP/1.1"
    server_version = "texturenet-gui"

    def setup(self) -> None:
        """Every read and write of the connection times out (``StreamRequestHandler.setup`` applies ``timeout``)."""
        self.timeout = self.server.app.config.request_timeout
        super().setup()

    def do_GET(self) -> None:
        self._answer({
            "/": lambda q: (PAGE.read_bytes(), "text/html; charset=utf-8"),
            "/api/info": lambda q: self.server.app.info(),
            "/api/models": lambda q: {"models": self.server.app.models.listing()},
            "/api/train": lambda q: self.server.app.training_status(),
            "/api/train/samples.png": lambda q: (self.server.app.training_picture("samples"), "image/png"),
            "/api/train/loss.png": lambda q: (self.server.app.training_picture("loss"), "image/png"),
        })

    def do_POST(self) -> None:
        self._answer({
            "/api/stylize": lambda q: (self.server.app.stylize(q, self._body(json_body=False)), "image/png"),
            "/api/train": lambda q: self.server.app.start_training(self._json()),
            "/api/train/stop": lambda q: self.server.app.stop_training(self._json()),
        })

    def _answer(self, routes: dict[str, Callable[[dict[str, str]], Any]]) -> None:
        url = urllib.parse.urlsplit(self.path)
        self._body_read = False
        try:
            self._check_origin()
            route = routes.get(url.path)
            if route is None:
                raise RequestError(f"no such page: {url.path}", HTTPStatus.NOT_FOUND)
            query = {k: v[-1] for k, v in urllib.parse.parse_qs(url.query, keep_blank_values=True).items()}
            result = route(query)
        except RequestError as error:
            self._send(error.status, json.dumps({"error": str(error)}).encode(), "application/json")
        except TexturenetError as error:  # the package's own messages for bad input (unreadable model, ...)
            self._send(HTTPStatus.BAD_REQUEST, json.dumps({"error": str(error)}).encode(), "application/json")
        except Exception as error:  # noqa: BLE001 - a bug here must still answer the page, and leave a traceback in the log
            self.log_error("%s", traceback.format_exc())
            message = f"internal error ({type(error).__name__}: {error}); see the server's terminal"
            self._send(HTTPStatus.INTERNAL_SERVER_ERROR, json.dumps({"error": message}).encode(), "application/json")
        else:
            if isinstance(result, dict):
                self._send(HTTPStatus.OK, json.dumps(result).encode(), "application/json")
            else:
                self._send(HTTPStatus.OK, *result)

    def _check_origin(self) -> None:
        """Refuse requests made for another site's page (Origin) or through another name (Host: DNS rebinding)."""
        host = self.headers.get("Host", "")
        if not self.server.is_own_host(host):
            raise RequestError(f"Host {host[:80]!r} is not a name of this server; open http://127.0.0.1:{self.server.server_port}/ "
                               "on this machine, or start the server with --allowed_hosts NAME", HTTPStatus.MISDIRECTED_REQUEST)
        origin = self.headers.get("Origin")
        if origin is not None and urllib.parse.urlsplit(origin).netloc != host:
            raise RequestError("requests from other sites' pages are refused", HTTPStatus.FORBIDDEN)

    def _body(self, json_body: bool) -> bytes:
        """The request body, refused by its declared length before any of it is read."""
        kind = self.headers.get_content_type()
        if json_body and kind != "application/json":
            raise RequestError("send the form as application/json", HTTPStatus.UNSUPPORTED_MEDIA_TYPE)
        if not json_body and "Content-Type" in self.headers and kind in ("application/x-www-form-urlencoded", "multipart/form-data", "text/plain"):
            raise RequestError("send the photo's bytes as the request body with the file's own content type",
                               HTTPStatus.UNSUPPORTED_MEDIA_TYPE)
        if self.headers.get("Transfer-Encoding"):
            raise RequestError("send the body with a Content-Length, not chunked", HTTPStatus.LENGTH_REQUIRED)
        length = self._declared_length()
        if length is None:  # the message's framing is unknown: RFC 9112 section 6.3 says 400
            raise RequestError(f"Content-Length {self.headers.get('Content-Length', '')[:20]!r} is not a number of bytes")
        limit = self.server.app.config.max_upload_bytes
        if length > limit:
            raise RequestError(f"the upload is {length / 2**20:.1f} MiB; the limit is {limit / 2**20:g} MiB",
                               HTTPStatus.REQUEST_ENTITY_TOO_LARGE)
        self._body_read = True
        try:
            return self.rfile.read(length)
        except TimeoutError:
            raise RequestError(f"the request body did not arrive within {self.timeout:g} s", HTTPStatus.REQUEST_TIMEOUT) from None

    def _declared_length(self) -> Optional[int]:
        """The Content-Length (0 without one: HTTP/1.1 without length or chunking is an empty body); None if not a byte count.

        Only ASCII digits count (``str.isdigit`` also takes '²' and other scripts' digits), and at
        most 18 of them: longer values are no size any upload has.
        """
        text = self.headers.get("Content-Length", "0").strip()
        return int(text) if text.isascii() and text.isdigit() and len(text) <= 18 else None

    def _json(self) -> dict[str, Any]:
        try:
            fields = json.loads(self._body(json_body=True) or b"{}")
        except RecursionError:
            raise RequestError("the form is nested too deeply; send a flat JSON object") from None
        except (ValueError, UnicodeDecodeError):
            raise RequestError("the form is not valid JSON") from None
        if not isinstance(fields, dict):
            raise RequestError("the form must be a JSON object")
        return fields

    def _send(self, status: HTTPStatus, body: bytes, kind: str) -> None:
        try:
            self.send_response(status)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            self.send_header("X-Content-Type-Options", "nosniff")
            if status >= 400 and self.command == "POST":
                self.send_header("Connection", "close")  # a refused body may be unread: do not parse it as the next request
                self.close_connection = True
            self.end_headers()
            self.wfile.write(body)
            if status >= 400 and self.command == "POST" and not self._body_read:
                self._discard_body()
        except OSError:  # the page was closed or reloaded meanwhile, or stopped reading (timeout): nobody to answer
            self.close_connection = True

    def _discard_body(self, most: int = 2**28, seconds: float = 10.0) -> None:
        """Swallow, without keeping, the body of a refused request (bounded), after the answer was sent.

        Clients such as curl and urllib send the whole body before they read; closing the
        connection on them would show a reset connection instead of the server's message.
        """
        remaining = min(self._declared_length() or 0, most)
        deadline = time.monotonic() + seconds
        self.connection.settimeout(seconds)
        try:
            while remaining > 0 and time.monotonic() < deadline:
                chunk = self.rfile.read1(min(remaining, 2**16))
                if not chunk:
                    break
                remaining -= len(chunk)
        except OSError:
            pass

    def log_error(self, format: str, *args: Any) -> None:  # noqa: A002 - the stdlib's parameter name
        """Connections closed after ``request_timeout`` of silence are routine (browsers keep spare ones open): not logged."""
        if not format.startswith("Request timed out"):
            super().log_error(format, *args)

    def log_request(self, code: Any = "-", size: Any = "-") -> None:
        """Only refused requests are logged; the page polls every second."""
        if isinstance(code, int) and code >= 400:
            super().log_request(code, size)


class GuiServer(ThreadingHTTPServer):
    """The threaded HTTP server with a bound on threads: at most ``max_connections`` connections are served at once.

    A slot is taken before a connection is accepted and given back when it is shut down, so
    connections beyond the bound wait in the kernel's listen queue, holding no thread and no
    file descriptor; each served one ends after ``request_timeout`` of silence at most, so the
    queue moves even when every slot is held by a client that sends nothing.
    """

    daemon_threads = True
    request_queue_size = 128  # the listen backlog: connections waiting for a slot

    def __init__(self, app: GuiApp) -> None:
        config = app.config
        family = socket.AF_INET6 if ":" in config.host else socket.AF_INET
        self.address_family = family
        self._slots = threading.BoundedSemaphore(config.max_connections)
        try:
            super().__init__((config.host, config.port), Handler)
        except OSError as error:
            raise TexturenetError(f"cannot listen on {config.host}:{config.port} ({error.strerror or error}); "
                                  "choose another --port (or --host)") from None
        self.app = app
        extra = [name.strip().lower() for name in config.allowed_hosts.split(",")]
        self.names = {"127.0.0.1", "localhost", "::1", config.host.lower(), socket.gethostname().lower(), *filter(None, extra)}

    def get_request(self) -> tuple[socket.socket, Any]:
        """Accept a connection once a slot is free (``serve_forever`` calls this when one is waiting).

        The wait is short and raises OSError, which ``serve_forever`` takes as "nothing this
        time", so that a ``shutdown`` is not held up by busy slots.
        """
        if not self._slots.acquire(timeout=0.2):
            raise OSError("every connection slot is busy")
        try:
            return super().get_request()
        except OSError:
            self._slots.release()
            raise

    def shutdown_request(self, request: Any) -> None:
        """Close a connection and free its slot (called once for every accepted connection, however it ended)."""
        try:
            super().shutdown_request(request)
        finally:
            self._slots.release()

    def is_own_host(self, host: str) -> bool:
        """Whether ``host`` (a Host header) names this server: one of its names, or any IP address, and its port.

        A DNS-rebinding page reaches the server through the attacker's domain name, which the
        browser sends as the Host; an IP address (or this machine's own name) cannot be that name.
        """
        parts = urllib.parse.urlsplit(f"//{host}")
        try:
            port = parts.port or 80
        except ValueError:  # a port that is not a number
            return False
        if parts.netloc != host or parts.username is not None or not parts.hostname or port != self.server_port:
            return False
        if parts.hostname in self.names:
            return True
        try:
            ipaddress.ip_address(parts.hostname)
        except ValueError:
            return False
        return True


def is_loopback(host: str) -> bool:
    """Whether ``host`` names this machine only (127.0.0.0/8, ::1, localhost)."""
    try:
        return all(ipaddress.ip_address(info[4][0]).is_loopback for info in socket.getaddrinfo(host, None))
    except (OSError, ValueError):
        return False


def gui_parser() -> argparse.ArgumentParser:
    from .cli import _add, _finite

    parser = argparse.ArgumentParser(
        prog="texturenet-gui",
        description="A page in your browser to stylise photos with trained models and to start and watch training runs.",
    )
    _add(parser, GuiConfig, "host", type=str)
    _add(parser, GuiConfig, "port", type=int)
    _add(parser, GuiConfig, "checkpoint_dir", type=Path)
    _add(parser, GuiConfig, "data_root", type=Path, shown="the current folder")
    _add(parser, GuiConfig, "max_upload_mb", type=_finite)
    _add(parser, GuiConfig, "max_megapixels", type=_finite)
    _add(parser, GuiConfig, "max_side", type=int)
    _add(parser, GuiConfig, "train_args", type=str, shown="none")
    _add(parser, GuiConfig, "cuda", action="store_true", shown="off")
    _add(parser, GuiConfig, "request_timeout", type=_finite)
    _add(parser, GuiConfig, "max_connections", type=int)
    _add(parser, GuiConfig, "decode_megapixels", type=_finite)
    _add(parser, GuiConfig, "allowed_hosts", type=str, shown="none")
    return parser


def _serve(args: argparse.Namespace, parser: argparse.ArgumentParser) -> None:
    from .cli import from_args

    try:
        config = from_args(GuiConfig, args)
    except ValueError as error:
        parser.error(str(error))
    if not is_loopback(config.host):
        print(f"texturenet-gui: warning: --host {config.host} is not loopback: anyone who can reach this machine can "
              "upload files, read the models and start training runs; prefer the default 127.0.0.1", file=sys.stderr, flush=True)
    app = GuiApp(config)
    server = GuiServer(app)
    host = f"[{config.host}]" if ":" in config.host else config.host
    print(f"texturenet-gui: open http://{host}:{server.server_port}/ (models from {config.checkpoint_dir}, "
          f"data under {app.root}); Ctrl-C stops", flush=True)

    def terminate(_signum: int, _frame: Any) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, terminate)
    try:
        server.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
        app.close()


def main(argv: Optional[Sequence[str]] = None) -> None:
    """Entry point of ``texturenet-gui`` and ``scripts/gui.py``."""
    from .cli import _main

    _main(gui_parser(), _serve, argv)


if __name__ == "__main__":
    main()
