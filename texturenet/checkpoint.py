"""Checkpoints: a generator's weights, the config that rebuilds it, and the state to resume from.

A checkpoint is a plain dict of tensors, numbers, strings and lists, so it loads with
``torch.load(path, weights_only=True)``: a file with code in it is refused, not run. Writes go
to a temporary file in the same folder, are flushed to disk, then renamed over the target, so
a crash or a full disk at any moment leaves the previous checkpoint intact.
"""
from __future__ import annotations

import fcntl
import glob
import io
import os
import pickle
import re
import shutil
import stat
import tempfile
from pathlib import Path
from typing import Any, Optional

import torch

from .config import GeneratorConfig, LossConfig, TrainConfig
from .errors import TexturenetError
from .files import temporary_pattern, write_atomic
from .networks import Generator, make_generator

FORMAT = "texturenet"
VERSION = 1
LEGACY_GENERATOR = {"max_strength": 0.0, "generator": "pyramid"}
"""Generator settings that checkpoints written before they existed lack, each with the value that gives those
checkpoints the pictures they gave (no strength dial: the noise factor only scales the noise; the pyramid, the only
generator there was)."""
LEGACY_LOSS = {"loss_scale": "absolute"}
"""The same for loss settings: models trained before ``loss_scale`` existed were trained on the plain mean squared errors."""


def make_checkpoint(
    generator: Generator, name: str, iteration: int, train_state: Optional[dict[str, Any]] = None
) -> dict[str, Any]:
    """The checkpoint dict: format tag, generator config and weights, and the optional training state."""
    return {
        "format": FORMAT,
        "version": VERSION,
        "name": name,
        "iteration": iteration,
        "generator_config": {k: getattr(generator.config, k) for k in GeneratorConfig.__dataclass_fields__},
        "state_dict": {k: v.detach().cpu() for k, v in generator.state_dict().items()},
        "train_state": train_state,
    }


def save_atomic(checkpoint: dict[str, Any], path: Path) -> None:
    """Write ``checkpoint`` to ``path`` so that ``path`` is always either the old or the new file (see files.py).

    Serialised in memory first (a checkpoint is a few MB), then written: torch.save's zip writer
    turns a full disk met while it writes into a RuntimeError about file positions, which would
    hide the OSError (ENOSPC) behind it; a plain write raises the OSError itself.
    """
    buffer = io.BytesIO()
    torch.save(checkpoint, buffer)
    try:
        write_atomic(path, lambda file: file.write(buffer.getbuffer()), "checkpoint")
    except TexturenetError as error:  # disk full, folder gone, ...: the checkpoints already there are untouched
        raise TexturenetError(f"{error}; the checkpoints already written are intact: continue with --resume auto") from None


_ALONG_THE_WAY = r"_iter\d+"
RUN_FILE = rf"({_ALONG_THE_WAY})?\.pth"
"""What follows a run's name in its checkpoint files: ``NAME.pth`` (final) or ``NAME_iterN.pth`` (along the way)."""


def run_file(folder: Path, name: str, iteration: Optional[int] = None) -> Path:
    """``folder/NAME.pth`` for the final model, ``folder/NAME_iterN.pth`` along the way (:data:`RUN_FILE`)."""
    return folder / f"{name}{'' if iteration is None else f'_iter{iteration}'}.pth"


def is_final(path: Path) -> bool:
    """Whether ``path`` is named as a run's final model (``NAME.pth``), not as one along the way."""
    return not re.search(_ALONG_THE_WAY + r"\.pth$", path.name)


def newest_run_file(folder: Path, name: str) -> Path:
    """``--resume auto``: the checkpoint of run ``name`` in ``folder`` with the most iterations done."""
    best: Optional[tuple[int, Path]] = None
    for path in run_files(folder, name):
        try:
            iteration = int(load_checkpoint(path)["iteration"])
        except TexturenetError:
            continue  # a damaged file is not a candidate; the intact ones still are
        if best is None or iteration > best[0]:
            best = (iteration, path)
    if best is None:
        raise TexturenetError(f"--resume auto: no readable checkpoint of run {name!r} in {folder}")
    return best[1]

def resume_file(config: TrainConfig) -> Optional[Path]:
    """The checkpoint ``--resume`` names: a path, or ``auto``'s :func:`newest_run_file` of the run; None without --resume."""
    if config.resume is None:
        return None
    if str(config.resume) == "auto":
        return newest_run_file(config.checkpoint_dir, config.run_name)
    return Path(config.resume)


RUN_OUTPUTS = {"samples": ("_samples", ".png"), "loss": ("_loss", ".png"), "losses": ("_losses", ".csv")}
"""The other files of run NAME (what follows NAME, extension), written beside its checkpoints by the file monitor."""


def run_output(folder: Path, name: str, kind: str) -> Path:
    """Where run ``name`` keeps its ``kind`` of :data:`RUN_OUTPUTS`: ``run_output(f, "style", "samples")`` is ``f/style_samples.png``."""
    after, suffix = RUN_OUTPUTS[kind]
    return folder / f"{name}{after}{suffix}"


def run_files(folder: Path, name: str) -> list[Path]:
    """The checkpoint files of run ``name`` in ``folder`` (final and intermediate), sorted."""
    pattern = re.compile(re.escape(name) + RUN_FILE)
    return sorted(path for path in folder.glob(f"{glob.escape(name)}*.pth") if pattern.fullmatch(path.name)) if folder.is_dir() else []


def remove_stale_temporaries(folder: Path, name: str) -> int:
    """Delete the temporary files that interrupted writes of run ``name`` left in ``folder``; returns how many.

    Every writer removes its temporary file on the errors it sees, but a ``kill -9`` or a power
    cut in the middle of a write leaves it behind: of a checkpoint, or of the sample grid, loss
    plot and loss table the monitor writes beside it (:data:`RUN_OUTPUTS`). Only this run's names
    are touched (another run may be saving into the same folder at this moment).
    """
    run = re.escape(name)
    patterns = [temporary_pattern(run + stem, suffix) for stem, suffix in ((RUN_FILE.removesuffix(r"\.pth"), ".pth"), *RUN_OUTPUTS.values())]
    patterns.append(rf"\.{run}{RUN_FILE}\..+\.tmp")  # checkpoints' temporary files as earlier versions named them
    pattern = re.compile("|".join(patterns))
    stale = [path for path in folder.iterdir() if pattern.fullmatch(path.name)] if folder.is_dir() else []
    for path in stale:
        path.unlink(missing_ok=True)
    return len(stale)


def check_writable(folder: Path) -> None:
    """Fail before training, not after hours of it, if checkpoints cannot be written to ``folder``."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder) as probe:
            probe.write(b"\0" * 65536)
            probe.flush()
            os.fsync(probe.fileno())
    except OSError as error:
        raise TexturenetError(
            f"--checkpoint_dir {folder} is not writable ({error.strerror or error}); choose another folder"
        ) from None


def check_space(folder: Path, needed: int) -> None:
    """Fail before training if ``folder``'s disk cannot hold ``needed`` more bytes (one checkpoint and its pictures)."""
    free = shutil.disk_usage(folder).free
    if free < needed:
        raise TexturenetError(
            f"--checkpoint_dir {folder} has {free / 2**20:.1f} MiB free but a checkpoint needs about "
            f"{needed / 2**20:.1f} MiB; free some space or choose another folder"
        )


def load_checkpoint(path: Path) -> dict[str, Any]:
    """Read and validate a texturenet checkpoint; one clear error for anything else.

    A checkpoint is input from strangers. Its generator config is checked against
    ``config.GENERATOR_BOUNDS`` and its weights against the shapes that config implies
    (:func:`checkpoint_problem`) before anything is built, so a crafted file is refused at once
    instead of hanging or allocating gigabytes, and a damaged one says what is wrong with it.
    """
    _check_regular_file(path)
    try:
        with open(path, "rb") as file:
            checkpoint = torch.load(file, map_location="cpu", weights_only=True)
    except OSError as error:  # permission denied, I/O error: the file may be fine, but cannot be read
        raise TexturenetError(f"{path} cannot be read ({error.strerror or error})") from None
    except Exception as error:  # the unpickler raises many types for garbage; all mean "not loadable"
        if isinstance(error, pickle.UnpicklingError) and "Weights only load failed" in str(error):
            raise TexturenetError(
                f"{path} was refused: it is not a plain-data checkpoint (it may contain code); "
                "only files written by texturenet are loaded"
            ) from None
        raise TexturenetError(f"{path} is not a readable checkpoint (truncated or corrupt: {type(error).__name__})") from None
    if not isinstance(checkpoint, dict) or checkpoint.get("format") != FORMAT:
        raise TexturenetError(f"{path} is not a texturenet checkpoint (train one with texturenet-train)")
    if checkpoint.get("version") != VERSION:
        raise TexturenetError(f"{path} has checkpoint version {checkpoint.get('version')}; this texturenet reads {VERSION}")
    problem = checkpoint_problem(checkpoint)
    if problem:
        raise TexturenetError(f"{path} is damaged: {problem}")
    return checkpoint


def _check_regular_file(path: Path) -> None:
    """Refuse what is not a regular file before opening it (opening a FIFO would wait for a writer forever)."""
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        raise TexturenetError(f"{path}: no such checkpoint file") from None
    except OSError as error:  # a symlink loop, a folder on the way that cannot be searched
        raise TexturenetError(f"{path} cannot be read ({error.strerror or error})") from None
    if stat.S_ISDIR(mode):
        raise TexturenetError(f"{path} is a folder, not a checkpoint file")
    if not stat.S_ISREG(mode):
        raise TexturenetError(f"{path} is not a regular file (a pipe, socket or device), so not a checkpoint")


def checkpoint_problem(checkpoint: dict[str, Any]) -> str:
    """Why the generator a checkpoint describes cannot be built from it, in one line ("" if it can).

    The config's keys and values first (GeneratorConfig's own validation, with its bounds), then
    every weight's name and shape against a generator built on the meta device (shapes only,
    nothing allocated), then NaN or infinite weights, which would make every picture blank.
    """
    raw = checkpoint.get("generator_config")
    if not isinstance(raw, dict):
        return "it has no generator_config"
    raw = {**LEGACY_GENERATOR, **raw}
    fields = GeneratorConfig.__dataclass_fields__
    unknown = sorted(repr(key) for key in raw if key not in fields)
    missing = [name for name in fields if name not in raw]
    if unknown or missing:
        return "generator_config has " + " and ".join(
            f"{what} key(s) {', '.join(names)}" for what, names in (("unknown", unknown), ("missing", missing)) if names)
    try:
        config = GeneratorConfig(**raw)
    except ValueError as error:
        return f"generator_config: {error}"
    state = checkpoint.get("state_dict")
    if not isinstance(state, dict):
        return "it has no state_dict"
    with torch.device("meta"):
        expected = make_generator(config).state_dict()
    mismatch = state_dict_mismatch(state, expected)
    if mismatch:
        return f"its weights do not fit its generator_config: {mismatch}"
    blank = [name for name, value in state.items() if value.is_floating_point() and not torch.isfinite(value).all()]
    if blank:
        return f"{len(blank)} weight tensor(s) hold NaN or infinite values: {first_few(blank)}"
    return ""


def state_dict_mismatch(found: dict[Any, Any], expected: dict[str, torch.Tensor]) -> str:
    """What keeps state dict ``found`` from loading into a module whose state dict is ``expected`` ("" if nothing).

    ``load_state_dict``'s own error lists the problems on lines of their own, under a first line that ends at a
    colon; this is one line: counts of missing keys, unexpected keys and wrong shapes, and the first few of each.
    """
    def shape(value: Any) -> str:
        if not isinstance(value, torch.Tensor):
            return f"a {type(value).__name__}"
        return "x".join(map(str, value.shape)) or "scalar"

    missing = [name for name in expected if name not in found]
    unexpected = [str(name) for name in found if name not in expected]
    wrong = [f"{name} {shape(found[name])} (expected {shape(value)})" for name, value in expected.items()
             if name in found and shape(found[name]) != shape(value)]
    return "; ".join(f"{len(names)} {what}: {first_few(names)}" for what, names in
                     (("missing", missing), ("unexpected", unexpected), ("of the wrong shape", wrong)) if names)


def first_few(names: list[str], shown: int = 3) -> str:
    """The first ``shown`` of ``names``, and how many more there are."""
    return ", ".join(names[:shown]) + (f", ... ({len(names) - shown} more)" if len(names) > shown else "")


def generator_config(checkpoint: dict[str, Any]) -> GeneratorConfig:
    """The generator a checkpoint from :func:`load_checkpoint` describes (validated there; older ones: :data:`LEGACY_GENERATOR`)."""
    return GeneratorConfig(**{**LEGACY_GENERATOR, **checkpoint["generator_config"]})


def training_losses(checkpoint: dict[str, Any], path: Path) -> tuple[LossConfig, Optional[Path], int]:
    """The loss settings, style image and style size the checkpoint at ``path`` was trained with."""
    config = (checkpoint.get("train_state") or {}).get("config")
    if not config:
        raise TexturenetError(f"{path} holds no training config, so the loss it was trained with is unknown")
    loss = {**LEGACY_LOSS, **config["loss"]}
    for key in ("content_layers", "style_layers", "content_layer_weights", "style_layer_weights"):
        if loss.get(key) is not None:
            loss[key] = tuple(loss[key])
    texture = config.get("texture")
    return LossConfig(**loss), None if texture is None else Path(texture), int(config["style_size"])


def build_generator(checkpoint: dict[str, Any]) -> Generator:
    """Rebuild the generator a checkpoint from :func:`load_checkpoint` describes (validated there) and load its weights."""
    generator = make_generator(generator_config(checkpoint))
    generator.load_state_dict(checkpoint["state_dict"])
    return generator


def load_generator(path: Path) -> Generator:
    """The trained generator stored at ``path``, in eval mode."""
    return build_generator(load_checkpoint(path)).eval()


class RunLock:
    """``NAME.lock`` in the checkpoint folder, held while run ``name`` trains there: two runs never share names.

    An advisory ``flock`` on the file, so a crashed or killed run never leaves a stale lock: the
    kernel releases it with the process. The file holds the owner's pid for the error message,
    and is removed when the run ends.
    """

    def __init__(self, folder: Path, name: str) -> None:
        self.path = folder / f"{name}.lock"
        while True:
            descriptor = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o666)
            try:
                fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                owner = os.read(descriptor, 64).decode(errors="replace").strip() or "unknown"
                os.close(descriptor)
                raise TexturenetError(
                    f"run {name!r} is already training in {folder} (pid {owner}, lock {self.path}); "
                    "wait for it to finish, or pass --name OTHER to start another run"
                ) from None
            try:  # the file may have been removed by the previous owner between open and flock: lock the current one
                same = os.stat(self.path).st_ino == os.fstat(descriptor).st_ino
            except FileNotFoundError:
                same = False
            if same:
                break
            os.close(descriptor)
        os.ftruncate(descriptor, 0)
        os.write(descriptor, f"{os.getpid()}\n".encode())
        self.descriptor: Optional[int] = descriptor

    def release(self) -> None:
        """Remove the lock file and let go of the lock (idempotent)."""
        if self.descriptor is not None:
            self.path.unlink(missing_ok=True)
            os.close(self.descriptor)
            self.descriptor = None

    @staticmethod
    def holder(folder: Path, name: str) -> Optional[str]:
        """The pid of the live run that holds run ``name``'s lock in ``folder``, or None if none does.

        A lock file that a killed run left behind holds no lock, so it counts as free (the next
        run takes it over), exactly as :class:`RunLock` itself sees it.
        """
        try:
            descriptor = os.open(folder / f"{name}.lock", os.O_RDONLY)
        except FileNotFoundError:
            return None
        try:
            fcntl.flock(descriptor, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return os.read(descriptor, 64).decode(errors="replace").strip() or "unknown"
        finally:
            os.close(descriptor)  # closing also lets go of the shared lock taken to look
        return None
