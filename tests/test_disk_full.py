"""A full disk, on a real small filesystem (tmpfs, mounted here; skipped where mounting is not allowed).

Too full to start: refused before training. Filling up mid-run: one clear error, every
checkpoint already written still loads, no temporary file left behind. Full at the final save: the
checkpoint is kept in $TMPDIR and the error gives the --resume that finishes the run (or, with
nowhere to write, says the state is lost, never pointing to a resume that cannot work). A picture
written onto a full disk leaves the file that was there. About 40 s.
"""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Iterator

import numpy as np
import pytest
from PIL import Image

from texturenet.model.checkpoint import load_checkpoint
from texturenet.training.run import remove_stale_temporaries
from texturenet.io.files import atomic_path
from conftest import ROOT

TINY = ["--vgg_weights", "random", "--image_size", "32", "--style_size", "32", "--scales", "3", "--workers", "0",
        "--batch_size", "1", "--log_every", "1", "--save_every", "1", "--iterations", "200",
        "--style_layers", "relu1_1,relu2_1", "--content_layers", "relu2_1"]


def _mount(folder: Path, size: str) -> Iterator[Path]:
    folder.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)], capture_output=True)
    if mounted.returncode != 0:
        pytest.skip("cannot mount a small tmpfs here (needs root): no real full disk to test on")
    try:
        yield folder
    finally:
        subprocess.run(["umount", str(folder)], check=True)


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    yield from _mount(tmp_path / "disk", "2m")


@pytest.fixture
def nearly_full_disk(tmp_path: Path) -> Iterator[Path]:
    yield from _mount(tmp_path / "nearly", "600k")


@pytest.fixture
def full_disk(tmp_path: Path) -> Iterator[Path]:
    yield from _mount(tmp_path / "full", "32k")


def _environment(temporary: Path) -> dict[str, str]:
    """The training script's environment, with ``temporary`` as $TMPDIR (where a checkpoint the disk cannot take is kept)."""
    temporary.mkdir(exist_ok=True)
    return {"OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin", "PYTHONUNBUFFERED": "1", "TMPDIR": str(temporary)}


def _train(folder: Path, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ROOT / "scripts" / "train.py"), *TINY, "--checkpoint_dir", str(folder), *extra],
                          capture_output=True, text=True, timeout=600, env=_environment(folder.parent / "tmp"))


def _fill(folder: Path) -> None:
    """Write ``folder/filler`` until its disk is full (unbuffered, so that nothing is left to fail at close)."""
    descriptor = os.open(folder / "filler", os.O_WRONLY | os.O_CREAT, 0o644)
    try:
        while os.write(descriptor, b"\0" * 4096):
            pass
    except OSError:
        pass
    finally:
        os.close(descriptor)


def test_disk_too_full_to_start_is_refused_before_training(full_disk: Path) -> None:
    result = _train(full_disk)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "is not writable (No space left on device)" in result.stderr
    assert "training" not in result.stdout


def test_disk_without_room_for_a_checkpoint_is_refused_before_training(nearly_full_disk: Path) -> None:
    result = _train(nearly_full_disk)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "MiB free but a checkpoint needs about" in result.stderr
    assert "training" not in result.stdout


def test_disk_filling_up_mid_run_keeps_every_checkpoint(small_disk: Path) -> None:
    result = _train(small_disk)
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr[-2000:]
    errors = [line for line in result.stderr.splitlines() if "error:" in line]
    assert len(errors) == 1 and "could not write checkpoint" in errors[0] and "No space left on device" in errors[0]
    written = sorted(small_disk.glob("style_iter*.pth"))
    assert len(written) >= 1  # it did train and save before the disk filled up
    assert all(load_checkpoint(path)["iteration"] >= 1 for path in written)
    assert not [p for p in small_disk.iterdir() if ".tmp" in p.name]


def _train_then_fill(folder: Path, temporary: Path) -> subprocess.CompletedProcess:
    """Train with only a final save, filling the disk once training has started (after the checks before it)."""
    process = subprocess.Popen([sys.executable, str(ROOT / "scripts" / "train.py"), *TINY, "--save_every", "0", "--val_images", "0",
                                "--checkpoint_dir", str(folder)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               env=_environment(temporary))
    try:
        assert process.stdout is not None
        for line in process.stdout:
            if line.startswith("training 'style'"):
                break
        _fill(folder)
        out, err = process.communicate(timeout=600)
    finally:
        process.kill()  # a failed test leaves no run on the disk it unmounts
        process.wait()
    return subprocess.CompletedProcess(process.args, process.returncode, out, err)


def test_disk_full_at_the_final_save_keeps_the_run_elsewhere(small_disk: Path, tmp_path: Path) -> None:
    result = _train_then_fill(small_disk, tmp_path / "tmp")
    errors = [line for line in result.stderr.splitlines() if "error:" in line]
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr[-2000:]
    assert len(errors) == 1 and f"could not write checkpoint {small_disk / 'style.pth'} (No space left on device)" in errors[0]
    kept = re.search(r"the run's state at iteration 200 is kept in (\S+) instead: free some space, then continue with the same "
                     r"command plus --resume \1$", errors[0])
    assert kept and "--resume auto" not in errors[0], errors[0]
    rescued = Path(kept[1])
    assert rescued.parent.parent == tmp_path / "tmp" and load_checkpoint(rescued)["iteration"] == 200
    # The --resume it gives works: with space again, the model lands where it belongs.
    (small_disk / "filler").unlink()
    resumed = _train(small_disk, "--save_every", "0", "--val_images", "0", "--resume", str(rescued))
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert load_checkpoint(small_disk / "style.pth")["iteration"] == 200


def test_disk_full_everywhere_at_the_final_save_says_what_is_lost(small_disk: Path) -> None:
    result = _train_then_fill(small_disk, small_disk)  # $TMPDIR on the same full disk
    errors = [line for line in result.stderr.splitlines() if "error:" in line]
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr[-2000:]
    assert len(errors) == 1 and f"keeping it in {small_disk} failed too" in errors[0], errors
    assert errors[0].endswith("so the state at iteration 200 is lost: no checkpoint of this run exists to resume from")
    assert not list(small_disk.rglob("*.pth")) and not list(small_disk.glob("texturenet-rescue-*"))  # nothing half-kept


def test_stylize_onto_a_full_disk_keeps_the_picture_already_there(full_disk: Path, random_model: Path, tmp_path: Path) -> None:
    photo = tmp_path / "noise.png"  # random pixels: the stylised PNG is far bigger than the disk's 32 KiB
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (160, 160, 3), dtype=np.uint8)).save(photo)
    earlier = full_disk / "out.png"
    Image.new("RGB", (8, 8), (200, 10, 10)).save(earlier)
    before = earlier.read_bytes()
    result = subprocess.run([sys.executable, str(ROOT / "scripts" / "stylize.py"), "--model", str(random_model), "--input", str(photo),
                             "--output", str(earlier)], capture_output=True, text=True, timeout=300)
    errors = [line for line in result.stderr.splitlines() if "error:" in line]
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr[-2000:]
    assert len(errors) == 1 and "No space left on device" in errors[0] and "the file already there is unchanged" in errors[0]
    assert earlier.read_bytes() == before
    assert sorted(p.name for p in full_disk.iterdir()) == ["out.png"]  # no temporary file left behind


def test_what_a_kill_in_mid_write_leaves_is_cleared_for_that_run_only(tmp_path: Path) -> None:
    """The temporary names atomic_path really makes, for every file a run writes, are the ones a resumed run clears."""
    leftovers = []
    for run in ("style", "other"):
        for name in (f"{run}_iter3.pth", f"{run}.pth", f"{run}_samples.png", f"{run}_loss.png", f"{run}_losses.csv"):
            with pytest.raises(KeyboardInterrupt), atomic_path(tmp_path / name) as temporary:
                leftovers.append(temporary.name)
                raise KeyboardInterrupt  # atomic_path removes it; a kill -9 would not have
    for name in leftovers:
        (tmp_path / name).write_bytes(b"half a file")
    (tmp_path / "style_samples.png").write_bytes(b"a finished picture")

    assert remove_stale_temporaries(tmp_path, "style") == 5
    assert sorted(path.name for path in tmp_path.iterdir()) == sorted(leftovers[5:] + ["style_samples.png"])
