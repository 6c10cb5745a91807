"""The checkpoint folder as the page sees it: the models listed, and loaded ones cached."""
from __future__ import annotations

import threading
from collections import OrderedDict
from pathlib import Path
from typing import Any


from ...errors import TexturenetError
from .fields import MODEL_NAME, RequestError



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
        from ...model.checkpoint import generator_config, load_checkpoint
        from ...training.run import is_final

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
                    config = generator_config(checkpoint)
                    info.update(mode=config.mode, generator=config.generator, max_strength=config.max_strength, residual=config.residual,
                                fade=config.fade,
                                iteration=int(checkpoint["iteration"]), final=is_final(path))
                except Exception as error:  # noqa: BLE001 - one bad file is listed as unusable, never hides the others
                    info.update(mode=None, error=str(error).replace(str(path), path.name))
                self._info[path] = cached = (key, info)
            models.append(cached[1])
        return sorted(models, key=lambda m: (not m.get("final", False), m["name"]))

    def stylizer(self, name: Any) -> Any:
        """The loaded :class:`Stylizer` of model ``name`` (loaded once, kept while the file is unchanged)."""
        from ...stylize.stylizer import Stylizer

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
