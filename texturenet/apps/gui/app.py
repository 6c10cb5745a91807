"""The application: request bodies in, JSON or PNG out; holds the models and the one training run."""
from __future__ import annotations

import io
import os
import shlex
import subprocess
import sys
import threading
import urllib.parse
from http import HTTPStatus
from pathlib import Path
from typing import Any, Optional

from PIL import Image

from ...config import MAX_SEED, GuiConfig, VISDOM_PORT, strength_range
from ...devices import cuda_device
from ...errors import TexturenetError, first_few
from .fields import DecodeBudget, RUN_NAME, RequestError, decode_upload, inside, number, parse_viz_url, path_under
from .models import ModelShelf
from .training import TrainingRun, check_train_argv



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
        # torch only now (cuda_device imports it): the checks above answer in a fraction of a second
        self.models = ModelShelf(config.checkpoint_dir, cuda_device(config.cuda, "stylise"))
        self.run: Optional[TrainingRun] = None
        self._run_lock = threading.Lock()
        self._stylize_lock = threading.Lock()  # one generator pass at a time: they would only share the same cores
        self._decoding = DecodeBudget(config.decode_megapixels)

    def info(self) -> dict[str, Any]:
        """Limits and folders for the page, path suggestions for the training form, and the links it does not suggest, with why."""
        folders, images, links = self._suggestions()
        return {
            "data_root": str(self.root), "checkpoint_dir": str(self.config.checkpoint_dir.resolve()),
            "max_upload_bytes": self.config.max_upload_bytes, "max_side": self.config.max_side,
            "train_args": self.config.train_args, "folders": folders, "images": images, "not_offered": links,
        }

    def _suggestions(self, depth: int = 2, limit: int = 200) -> tuple[list[str], list[str], list[dict[str, str]]]:
        """Folders and images under the data root, a few levels deep and capped (a huge data set stays cheap).

        Symlinks that are not offered are listed with the reason (``not_offered``), rather than missing without a
        word: a link to a folder is not followed (it may loop, or lead out; give the folder it points to), a link to
        an image outside the data root cannot be used.
        """
        from ...io.images import IMAGE_EXTENSIONS

        folders: list[str] = []
        images: list[str] = []
        links: list[dict[str, str]] = []
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
                    elif entry.is_symlink() and (Path(entry.name).suffix.lower() in IMAGE_EXTENSIONS or _is_dir(entry)):
                        reason = self._link_reason(Path(entry.path))
                        if reason is None and len(images) < limit:
                            images.append(relative)  # an image link that stays inside
                        elif reason is not None and len(links) < limit:
                            links.append({"path": relative, "reason": reason})
                    elif Path(entry.name).suffix.lower() in IMAGE_EXTENSIONS and len(images) < limit:
                        images.append(relative)
            level = below
        return folders, images, links

    def _link_reason(self, link: Path) -> Optional[str]:
        """Why a symlink is not offered (where it resolves, and whether that is outside the data root); None for an image link
        that stays inside, which is offered."""
        try:
            target = link.resolve()
            is_dir = target.is_dir()
        except (OSError, RuntimeError) as error:  # a loop of links (RuntimeError in Python < 3.13)
            return f"a symlink that does not resolve ({getattr(error, 'strerror', None) or error})"
        if not inside(self.root, target):
            return f"a symlink to {target}, outside the allowed folder {self.root}"
        if is_dir:
            return f"a symlink to the folder {target.relative_to(self.root).as_posix() or '.'}, which is not followed; choose that folder"
        return None

    def _leads_out(self, path: Path) -> bool:
        """Whether ``path`` is a symlink to a file outside the data root (never offered, never used)."""
        return path.is_symlink() and not inside(self.root, path.resolve())

    def _refuse_links_out(self, data: Path) -> None:
        """Refuse a data folder with a photo that is a link to a file outside the data root.

        The trainer reads the folder itself (it gets ``--data_dir``), so the server cannot leave
        such a file out: the whole folder is refused, naming the link. Only the files can be
        links here: the trainer's search does not follow links to folders.
        """
        from ...training.data import photo_paths

        for photo in photo_paths(data):  # refuses a folder without images, with the trainer's own message
            if self._leads_out(photo):
                raise RequestError(f"data folder (--data_dir): {photo.relative_to(self.root)} is a link to {photo.resolve()}, "
                                   f"outside the allowed folder {self.root}; remove the link or copy the file into the folder")

    def _refuse_taken_name(self, name: str) -> None:
        """Refuse a run name that has checkpoints (``NAME.pth``, ``NAME_iterN.pth``) or a lock in the checkpoint folder.

        The trainer refuses those too, but only once the page has been told the run started; a
        stopped run's ``NAME_iterN.pth`` is work that a new run of the same name would replace.
        """
        from ...training.run import RunLock, run_files

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
        strength = number(query, "noise_factor", float, *strength_range(stylizer.max_strength), default=1.0)  # the API keeps the flag's name
        seed = number(query, "seed", int, 0, MAX_SEED, default=0)
        if stylizer.mode == "texture":
            width = number(query, "width", int, 16, 2048, default=256)
            height = number(query, "height", int, 16, 2048, default=256)
            with self._stylize_lock:
                from ...io.images import to_image

                image = to_image(stylizer.sample(height, width, strength, seed))
        else:
            import numpy as np

            photo = decode_upload(body, self.config, self._decoding)
            with self._stylize_lock:
                image = Image.fromarray(stylizer.stylize_array(np.asarray(photo), strength, seed), mode="RGB")
        out = io.BytesIO()
        image.save(out, format="PNG")
        return out.getvalue()

    def start_training(self, fields: dict[str, Any]) -> dict[str, Any]:
        """Check the form, then start ``texturenet-train`` with it (after the server's ``--train_args``)."""
        from ...io.images import load_style

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


def _is_dir(entry: os.DirEntry) -> bool:
    """Whether a folder entry is (or links to) a folder; False when it cannot be told (a loop of links)."""
    try:
        return entry.is_dir()
    except OSError:
        return False
