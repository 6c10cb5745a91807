"""Writing files so that nothing is lost: every picture, video, export and checkpoint goes through here.

A write goes to a temporary file in the target's folder, is flushed to disk (fsync), then
renamed over the target, so at every moment the target is either the old file or the complete
new one; a full disk or a crash leaves what was there before. The finished file gets the mode
an ordinary ``open()`` would give it (0666 less the process umask), not mkstemp's 0600.
"""
from __future__ import annotations

import os
import re
import stat
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO, Callable, Iterable, Iterator

from ..errors import TexturenetError


def _umask() -> int:
    """The process umask (reading it means setting it; set it straight back)."""
    mask = os.umask(0)
    os.umask(mask)
    return mask


def check_target(path: Path, what: str = "output") -> None:
    """One clear error, before any work, for a target that can never be written.

    Refused: a target that exists and is not a regular file (a folder, FIFO, device), a parent
    that is a file, and a folder that cannot be created or written to.
    """
    if path.exists() and not path.is_file():
        raise TexturenetError(f"cannot write {what} {path}: it exists and is not a regular file; choose another path")
    parent = path.parent
    for folder in (parent, *parent.parents):
        if folder.exists():
            if not folder.is_dir():
                raise TexturenetError(f"cannot write {what} {path}: {folder} is a file, not a folder; choose another path")
            if not os.access(folder, os.W_OK | os.X_OK):
                raise TexturenetError(f"cannot write {what} {path}: {folder} is not writable; choose another folder")
            return


def temporary_pattern(stem: str, suffix: str) -> str:
    """A regex for the temporary files :func:`atomic_path` makes for targets named ``stem + suffix``.

    ``stem`` is a regex (``r"style(_iter\\d+)?"``), ``suffix`` a plain extension (``".pth"``): the
    temporary file of ``style_iter5.pth`` is ``.style_iter5.XXXXXXXX.tmp.pth``.
    """
    return rf"\.{stem}\.[a-z0-9_]+\.tmp{re.escape(suffix)}"


def make_folders(folder: Path) -> None:
    """``mkdir -p`` without recursion: ``Path.mkdir(parents=True)`` and ``os.makedirs`` recurse once per
    missing level, so an output tree mirroring an input nested 1100 deep gave RecursionError (issue 21, case 12)."""
    missing = []
    while not folder.is_dir() and folder != folder.parent:
        missing.append(folder)
        folder = folder.parent
    for level in reversed(missing):
        level.mkdir(exist_ok=True)


@contextmanager
def atomic_path(path: Path, what: str = "output") -> Iterator[Path]:
    """A temporary path beside ``path`` for a writer that needs a file name; renamed over ``path`` on success.

    The temporary file keeps ``path``'s extension (PyAV and others pick the format from it). On
    any error it is removed and ``path`` is left as it was; an OSError becomes one line that says so.
    """
    check_target(path, what)
    try:
        make_folders(path.parent)
        handle, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=f".tmp{path.suffix}")
        os.close(handle)
    except OSError as error:
        raise TexturenetError(f"could not write {what} {path} ({error.strerror or error}); choose another folder") from None
    temporary = Path(name)
    try:
        yield temporary
        with open(temporary, "rb+") as file:
            os.fsync(file.fileno())
        os.chmod(temporary, 0o666 & ~_umask())
        os.replace(temporary, path)
    except BaseException as error:
        temporary.unlink(missing_ok=True)
        if isinstance(error, OSError):
            kept = "the file already there is unchanged" if path.exists() else "nothing was written"
            raise TexturenetError(f"could not write {what} {path} ({error.strerror or error}); {kept}: "
                                  "free some space or choose another path") from None
        raise


def write_atomic(path: Path, write: Callable[[BinaryIO], None], what: str = "output") -> None:
    """Call ``write(file)`` on a temporary file, then put it in place as ``path`` (see :func:`atomic_path`)."""
    with atomic_path(path, what) as temporary:
        with open(temporary, "wb") as file:
            write(file)
            file.flush()


def refuse_overwriting_inputs(inputs: Iterable[Path], outputs: Iterable[Path], flag: str = "--output") -> None:
    """Refuse, in one line, any output that is one of the inputs (after ``..``, symlinks, relative spelling, hard links)."""
    def identity(path: Path) -> tuple[object, ...]:
        try:
            info = path.stat()
            if stat.S_ISREG(info.st_mode):
                return (info.st_dev, info.st_ino)
        except OSError:
            pass
        return (os.path.realpath(path),)

    seen = {identity(path): path for path in inputs}
    for output in outputs:
        source = seen.get(identity(output))
        if source is not None:
            raise TexturenetError(f"{flag} {output} would overwrite the input {source}; write to another file or folder")
