"""The Visdom monitor never hangs a run (issue 21, case 14): its deadlines are total, not per read.

A real TCP server on loopback answers the first requests honestly and then trickles: an endless header, one byte
a second, so that no per-read timeout ever trips. Before, such a server hung training at the check at start (for
as long as it trickled), or, trickling after that check, hung the run in ``VisdomMonitor.close()`` after the final
save, leaving ``NAME.lock`` behind. Each wait here is bounded, so on the old code these tests fail instead of hanging.
"""
from __future__ import annotations

import socket
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from _visdom_server import HOST, ROOT, train_command

pytest.importorskip("visdom", reason="visdom is not installed: PIP_CONSTRAINT=constraints.txt pip install visdom")

HONEST_ANSWER = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok"


class TricklingServer:
    """Answers its first ``honest`` requests whole, then every later one with a header that never ends, a byte every
    ``period`` seconds (well within any per-read timeout of the client's)."""

    def __init__(self, honest: int, period: float = 1.0) -> None:
        self.honest, self.period = honest, period
        self.requests = 0
        self.stop = threading.Event()
        self.listener = socket.create_server((HOST, 0))
        self.port = self.listener.getsockname()[1]
        self.threads = [threading.Thread(target=self._accept, daemon=True)]

    def __enter__(self) -> "TricklingServer":
        self.threads[0].start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop.set()
        self.listener.close()
        for thread in self.threads:
            thread.join(5)

    def _accept(self) -> None:
        while not self.stop.is_set():
            try:
                connection, _ = self.listener.accept()
            except OSError:  # closed by __exit__
                return
            self.requests += 1
            thread = threading.Thread(target=self._serve, args=(connection, self.requests <= self.honest), daemon=True)
            self.threads.append(thread)
            thread.start()

    def _serve(self, connection: socket.socket, honest: bool) -> None:
        with connection:
            connection.settimeout(5)
            try:
                request = b""
                while b"\r\n\r\n" not in request:
                    chunk = connection.recv(65536)
                    if not chunk:
                        return
                    request += chunk
                if honest:
                    connection.sendall(HONEST_ANSWER)
                    return
                connection.sendall(b"HTTP/1.1 200 OK\r\nX-Slow: ")
                while not self.stop.wait(self.period):
                    connection.sendall(b"a")
            except OSError:  # the client gave up
                return


def _warnings(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("visdom: warning")]


def test_a_server_that_trickles_from_the_start_is_refused_in_one_line(tmp_path: Path) -> None:
    with TricklingServer(honest=0) as server:
        result = subprocess.run(train_command(server.port, tmp_path / "ck", "trickled", 2), cwd=ROOT, capture_output=True, text=True,
                                timeout=300)
    assert result.returncode == 2, result.stderr
    errors = [line for line in result.stderr.splitlines() if "error" in line]
    assert len(errors) == 1 and "Traceback" not in result.stderr, result.stderr
    assert f"no Visdom server answers at http://{HOST}:{server.port} (no complete answer within 5 s)" in errors[0]
    assert "training 'trickled'" not in result.stdout + result.stderr  # refused before any model was built
    assert not list((tmp_path / "ck").glob("trickled*"))


@pytest.mark.slow
def test_a_server_that_trickles_after_the_check_is_dropped_and_the_run_ends(tmp_path: Path) -> None:
    """The real script (about 40 s: a run, then the 10 s deadline for the last points); the in-process tests below are quick."""
    with TricklingServer(honest=1) as server:  # the check at start is answered; every request after it trickles
        result = subprocess.run(train_command(server.port, tmp_path / "ck", "late", 2), cwd=ROOT, capture_output=True, text=True,
                                timeout=300)
    assert result.returncode == 0, result.stderr
    warnings = _warnings(result.stderr)
    assert len(warnings) == 1 and "stopped streaming to it" in warnings[0], result.stderr
    assert (tmp_path / "ck" / "late.pth").is_file()
    assert not (tmp_path / "ck" / "late.lock").exists()  # the run ended and let go of its name


def test_a_request_past_the_deadline_drops_the_monitor_during_training(capsys: pytest.CaptureFixture) -> None:
    """In-process: the training thread notices a request that has run past ``timeout`` in all, warns once and stops
    sending; close() then returns at once. On the old code the monitor never gave up: close() is run in a thread
    here so that the test fails instead of hanging."""
    from texturenet.training.monitor import VisdomMonitor

    with TricklingServer(honest=1, period=0.25) as server:  # a byte every 0.25 s: far within the 1.5 s per-read timeout
        monitor = VisdomMonitor(f"http://{HOST}", server.port, env="deadline", timeout=3.0)
        monitor.start("deadline", {})
        seen = ""
        give_up = time.monotonic() + 60
        iteration = 0
        while "stopped streaming" not in seen and time.monotonic() < give_up:
            iteration += 1
            monitor.log(iteration, {"total": 1.0 / iteration}, 1e-3, 10.0)
            time.sleep(0.2)
            seen += capsys.readouterr().err
        assert "stopped streaming" in seen, seen
        closing = threading.Thread(target=monitor.close, daemon=True)
        closing.start()
        closing.join(60)
        assert not closing.is_alive(), "close() waited on the stuck request"
        seen += capsys.readouterr().err
    assert len(_warnings(seen)) == 1 and f"a request to http://{HOST}:{server.port} has not finished in 3 s" in seen, seen


def test_close_gives_up_on_a_stuck_request_within_its_deadline(capsys: pytest.CaptureFixture) -> None:
    """In-process: close() right after a point is logged; the sender is stuck in a trickled request, so close() waits
    ``timeout`` seconds, warns once and returns (the old close() joined without a timeout: here it would hang)."""
    from texturenet.training.monitor import VisdomMonitor

    with TricklingServer(honest=1, period=0.25) as server:  # a byte every 0.25 s: far within the 1.5 s per-read timeout
        monitor = VisdomMonitor(f"http://{HOST}", server.port, env="deadline", timeout=3.0)
        monitor.start("deadline", {})
        monitor.log(1, {"total": 1.0}, 1e-3, 10.0)
        closing = threading.Thread(target=monitor.close, daemon=True)
        closing.start()
        closing.join(60)
        assert not closing.is_alive(), "close() waited on the stuck request"
        seen = capsys.readouterr().err
    warnings = _warnings(seen)
    assert len(warnings) == 1 and f"http://{HOST}:{server.port} did not take the last points within 3 s" in warnings[0], seen
    assert "(3 logged points not sent" in warnings[0]  # the total loss, the learning rate and the throughput
