"""A real training subprocess killed (-9), terminated and interrupted at different moments.

After every kill each ``*.pth`` on disk loads (atomic writes: no half-written checkpoint ever
has a checkpoint's name), and ``--resume auto`` carries on, clearing what an interrupted save left;
the run that was stopped four times ends with exactly the weights of an uninterrupted run. Costly: 126 s measured on 2 heavily
loaded shared cores (six short training runs).
"""
from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable

import pytest
import torch

from texturenet import cli
from texturenet.training import loop as trainer
from texturenet.model.checkpoint import load_checkpoint
from texturenet.training.run import is_final
from conftest import ROOT

ITERATIONS = 24
TINY = ["--vgg_weights", "random", "--image_size", "32", "--style_size", "32", "--scales", "3", "--workers", "0",
        "--batch_size", "1", "--iterations", str(ITERATIONS), "--save_every", "1", "--log_every", "1",
        "--style_layers", "relu1_1,relu2_1", "--content_layers", "relu2_1"]


def _start(folder: Path, *extra: str, session: bool = False) -> subprocess.Popen:
    """The training script in the background, logging to ``folder``.log; ``session``: in a process group of its own."""
    log = open(folder.parent / f"{folder.name}.log", "a")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}  # tiny convolutions: threads only contend on shared cores
    return subprocess.Popen([sys.executable, str(ROOT / "scripts" / "train.py"), *TINY, "--checkpoint_dir", str(folder), *extra],
                            stdout=log, stderr=subprocess.STDOUT, text=True, env=env, start_new_session=session)


def _wait_for(condition: Callable[[], bool], process: subprocess.Popen, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert process.poll() is None, "training ended before the moment to interrupt it"
        assert time.monotonic() < deadline, "timed out waiting for training to get there"
        time.sleep(0.002)


def _checkpoints(folder: Path) -> list[Path]:
    return sorted(folder.glob("style_iter*.pth"))


def _all_intact(folder: Path) -> int:
    """Every checkpoint on disk loads; returns the newest iteration."""
    iterations = [int(load_checkpoint(path)["iteration"]) for path in _checkpoints(folder)]
    assert iterations, "no checkpoint was written"
    return max(iterations)


def _in_flight(folder: Path) -> bool:
    return any(".tmp" in name for name in os.listdir(folder)) if folder.exists() else False


@pytest.mark.slow
@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_killed_terminated_interrupted_then_resumed_matches_uninterrupted(tmp_path: Path) -> None:
    folder = tmp_path / "run"

    # 1. kill -9 once two checkpoints exist.
    process = _start(folder)
    _wait_for(lambda: len(_checkpoints(folder)) >= 2, process)
    process.kill()
    process.wait()
    reached = _all_intact(folder)

    # 2. kill -9 while a save is in flight (its temporary file exists), else right after a save.
    process = _start(folder, "--resume", "auto")
    _wait_for(lambda: _in_flight(folder) or _all_intact(folder) > reached + 1, process)
    process.kill()
    process.wait()
    reached = _all_intact(folder)

    # 3. SIGTERM, then 4. SIGINT (Ctrl-C): finish the step, save, say how to resume, exit 143 / 130.
    for sent, status in ((signal.SIGTERM, 143), (signal.SIGINT, 130)):
        process = _start(folder, "--resume", "auto")
        _wait_for(lambda: bool(_checkpoints(folder)) and max(int(p.stem.split("iter")[1]) for p in _checkpoints(folder)) > reached, process)
        process.send_signal(sent)
        assert process.wait(timeout=120) == status
        stopped = _all_intact(folder)
        assert stopped > reached
        log = (tmp_path / "run.log").read_text()
        assert f"stopped by {sent.name} after iteration {stopped}" in log and "--resume auto" in log
        assert "Traceback" not in log
        reached = stopped

    # 5. --resume auto to the end. What a kill -9 in mid-save leaves (planted, so that it is there for sure) is
    # cleared at the start; another run's temporary file in the same folder is not touched.
    (folder / ".style_iter3.k1ll3d.tmp.pth").write_bytes(b"half a checkpoint")
    (folder / ".style.pth.0ld3r.tmp").write_bytes(b"half a checkpoint, named as texturenet 0.1.0 named them")
    (folder / ".style_samples.k1ll3d.tmp.png").write_bytes(b"half a sample grid")
    (folder / ".style_losses.k1ll3d.tmp.csv").write_bytes(b"half a loss table")
    (folder / ".other.pth.s4v1ng.tmp").write_bytes(b"another run, saving now")
    (folder / ".other_samples.s4v1ng.tmp.png").write_bytes(b"another run, drawing now")
    process = _start(folder, "--resume", "auto")
    assert process.wait(timeout=300) == 0
    assert load_checkpoint(folder / "style.pth")["iteration"] == ITERATIONS
    assert sorted(name for name in os.listdir(folder) if ".tmp" in name) == [".other.pth.s4v1ng.tmp", ".other_samples.s4v1ng.tmp.png"]
    # the four planted, and whatever the kill -9 above caught in mid-write
    # (run.log holds every run of this test; the last line of its kind is this run's)
    removed = re.findall(r"removed (\d+) temporary file\(s\) that an interrupted save left", (tmp_path / "run.log").read_text())
    assert removed and int(removed[-1]) >= 4

    straight = tmp_path / "straight"
    assert _start(straight).wait(timeout=300) == 0
    resumed = torch.load(folder / "style.pth", weights_only=True)["state_dict"]
    uninterrupted = torch.load(straight / "style.pth", weights_only=True)["state_dict"]
    assert all(torch.equal(resumed[k], uninterrupted[k]) for k in resumed)
    assert "Traceback" not in (tmp_path / "run.log").read_text()
    shutil.rmtree(tmp_path)  # ~50 checkpoints: do not keep them in pytest's temp folders


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_sigterm_to_the_process_group_saves_with_loader_workers(tmp_path: Path) -> None:
    """What ``timeout``, systemd and SLURM do: SIGTERM to every process of the group, DataLoader workers included (issue 21, case 7)."""
    folder = tmp_path / "run"
    process = _start(folder, "--workers", "2", "--iterations", "100000", session=True)
    _wait_for(lambda: bool(_checkpoints(folder)), process)
    os.killpg(process.pid, signal.SIGTERM)
    assert process.wait(timeout=120) == 143
    log = (tmp_path / "run.log").read_text()
    stopped = re.search(r"stopped by SIGTERM after iteration (\d+); saved (\S+)\. Resume with the same command plus --resume \2", log)
    assert stopped and "Traceback" not in log, log[-3000:]
    assert load_checkpoint(Path(stopped[2]))["iteration"] == int(stopped[1])
    deadline = time.monotonic() + 60  # the workers were shut down with the run, not left behind
    while True:
        try:
            os.killpg(process.pid, 0)
        except ProcessLookupError:
            break
        assert time.monotonic() < deadline, "loader workers outlived the run"
        time.sleep(0.1)
    shutil.rmtree(tmp_path)


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_sigint_during_the_final_save_completes_the_run(tmp_path: Path, capsys: pytest.CaptureFixture,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """A real SIGINT, sent to this process just as the final checkpoint is about to be written (issue 21, case 9)."""
    folder = tmp_path / "run"
    write = trainer.save_atomic

    def interrupted(checkpoint: dict, path: Path) -> None:
        if path.parent == folder and is_final(path):
            os.kill(os.getpid(), signal.SIGINT)
        write(checkpoint, path)

    monkeypatch.setattr(trainer, "save_atomic", interrupted)
    cli.train_main([*TINY, "--iterations", "2", "--save_every", "0", "--val_images", "1", "--checkpoint_dir", str(folder)])  # exit 0
    out = capsys.readouterr().out
    assert "SIGINT arrived after the last iteration, during the final save, which was finished first: the run is complete" in out
    assert load_checkpoint(folder / "style.pth")["iteration"] == 2
    assert sorted(p.name for p in folder.iterdir()) == ["style.pth", "style_chelsea.jpg", "style_loss.png", "style_losses.csv",
                                                       "style_samples.png"]
