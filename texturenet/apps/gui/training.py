"""The one training run a page may start: a real ``texturenet-train`` child process, supervised."""
from __future__ import annotations

import argparse
import functools
import json
import os
import re
import shlex
import signal
import subprocess
import sys
import threading
import time
from collections import deque
from pathlib import Path
from typing import Any, Optional


from .fields import RequestError

PACKAGE_PARENT = Path(__file__).resolve().parent.parent.parent.parent
# tqdm's bar: "NAME:  40%|####      | 2/5 [00:01<00:02, ...]": progress comes as JSON lines, so the log leaves it out
PROGRESS_BAR = re.compile(r"\|\s*\d+/\d+\s*\[")
CHILD = """\
import signal, sys
try:
    signal.pthread_sigmask(signal.SIG_UNBLOCK, [signal.SIGINT])  # a Stop sent while Python started is delivered here
    from texturenet.cli import train_main
    train_main()
except KeyboardInterrupt:  # before texturenet-train's own handling took over (it exits 130 itself after that)
    print("texturenet-train: interrupted; nothing more was written", file=sys.stderr)
    sys.exit(130)
"""
"""The child's program. It starts with SIGINT blocked (see :meth:`TrainingRun.__init__`), so that a Stop
right after Start cannot kill the interpreter while it starts (issue 21: "failed", returncode -2,
"lost sys.stderr"); the signal waits, pending, until this code can take it as a stop."""


# -- training runs -----------------------------------------------------------------------------


@functools.lru_cache(maxsize=None)  # one per ``what``: building the parser takes a second or two (help read from source)
def raising_parser(what: str) -> argparse.ArgumentParser:
    """``texturenet-train``'s own parser, but a bad flag raises :class:`RequestError` (prefixed ``what``) instead of exiting.

    Shared between requests: ``parse_args`` keeps its state in the namespace it returns.
    """
    from ...cli.parsers import train_parser

    parser = train_parser()

    def error(message: str) -> None:
        raise RequestError(f"{what}: {message}")

    parser.error = error  # type: ignore[method-assign]
    return parser


def check_train_argv(argv: list[str], what: str = "training settings") -> None:
    """Refuse what ``texturenet-train`` itself would refuse (its parser and config checks), before starting it."""
    from ...cli.arguments import train_config

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
        from ...training.monitor import EVENTS_FD

        self.iteration = 0
        self.saved: Optional[Path] = None
        self.lines: deque[str] = deque(maxlen=30)
        self.stop_requested = False
        self.started = time.time()
        events, child_end = os.pipe()
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        env["PYTHONPATH"] = os.pathsep.join([str(PACKAGE_PARENT), *filter(None, [env.get("PYTHONPATH")])])  # the texturenet serving this page
        env[EVENTS_FD] = str(child_end)
        mask = signal.pthread_sigmask(signal.SIG_BLOCK, [signal.SIGINT])  # inherited by the child: see CHILD
        try:
            self.process = subprocess.Popen(
                [sys.executable, "-c", CHILD, *argv],
                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env, pass_fds=(child_end,),
                start_new_session=True,  # a Ctrl-C in the server's terminal reaches the run only through stop()
            )
        except BaseException:
            os.close(events)
            raise
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, mask)
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
        from ...training.run import run_output

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
