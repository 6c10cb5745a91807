"""A run's files on disk: how its checkpoints and pictures are named and found, its lock, and the checks before it writes.

Run NAME keeps ``NAME.pth`` (final), ``NAME_iterN.pth`` (along the way) and the file monitor's pictures and
loss table in its checkpoint folder, and holds ``NAME.lock`` there while it trains. What a checkpoint holds
is model/checkpoint.py's; this module only says which files are whose, and whether the folder can take them,
so a run never writes over another run's files and fails before training, not hours into it.
"""
from __future__ import annotations

import fcntl
import glob
import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import Optional

from ..config import ALONG_THE_WAY, TrainConfig
from ..errors import TexturenetError
from ..io.files import temporary_pattern
from ..model.checkpoint import load_checkpoint, stored_name


RUN_FILE = rf"({ALONG_THE_WAY})?\.pth"
"""What follows a run's name in its checkpoint files: ``NAME.pth`` (final) or ``NAME_iterN.pth`` (along the way)."""


def run_file(folder: Path, name: str, iteration: Optional[int] = None) -> Path:
    """``folder/NAME.pth`` for the final model, ``folder/NAME_iterN.pth`` along the way (:data:`RUN_FILE`)."""
    return folder / f"{name}{'' if iteration is None else f'_iter{iteration}'}.pth"


def is_final(path: Path) -> bool:
    """Whether ``path`` is named as a run's final model (``NAME.pth``), not as one along the way."""
    return not re.search(ALONG_THE_WAY + r"\.pth$", path.name)


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


def _named_like_run(folder: Path, name: str) -> list[Path]:
    """The files in ``folder`` named as run ``name``'s checkpoints (:data:`RUN_FILE`), whoever wrote them, sorted."""
    pattern = re.compile(re.escape(name) + RUN_FILE)
    return sorted(path for path in folder.glob(f"{glob.escape(name)}*.pth") if pattern.fullmatch(path.name)) if folder.is_dir() else []


def run_files(folder: Path, name: str) -> list[Path]:
    """The checkpoint files of run ``name`` in ``folder`` (final and along the way), sorted.

    A file is the run's by its stored name, not by its file name alone: run ``mosaic_iter3000``'s final model is
    named like run ``mosaic``'s checkpoint of iteration 3000 (config/training.py's RUN_NAME refuses such names now, but runs
    named so exist). A file whose stored name cannot be read goes by its file name.
    """
    return [path for path in _named_like_run(folder, name) if stored_name(path) in (name, None)]


def other_runs_in_the_way(folder: Path, name: str, iterations: int) -> list[tuple[Path, str]]:
    """(file, its run) for the files of other runs that run ``name`` could write over in ``folder`` within ``iterations``.

    Its final ``NAME.pth``, or a ``NAME_iterN.pth`` with N up to ``iterations`` (a stop by a signal saves at
    any iteration), holding another run's name (see :func:`run_files`).
    """
    in_the_way = []
    for path in _named_like_run(folder, name):
        owner = stored_name(path)
        iteration = re.fullmatch(re.escape(name) + r"_iter(\d+)\.pth", path.name)
        if owner not in (name, None) and (iteration is None or int(iteration[1]) <= iterations):
            in_the_way.append((path, owner))
    return in_the_way


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
