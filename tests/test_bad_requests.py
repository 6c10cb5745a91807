"""Bad requests to the servers (issue 13, "nothing let in"): one table row per way a client misbehaves.

Every GUI row starts a real ``texturenet-gui`` server in this process (:class:`GuiApp` and
:class:`GuiServer`, served on a thread, on a free port) with the settings the row needs, and
talks to it over real sockets in raw HTTP/1.1, so that it can send what no well-behaved client
library would (NUL bytes, a non-ASCII Content-Length, a body that never comes). The Visdom rows
start ``texturenet-visdom`` as a subprocess and read the address its socket is bound to from
the kernel (/proc/net/tcp and tcp6).
"""
from __future__ import annotations

import ipaddress
import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Optional

import pytest
from PIL import Image

import texturenet.data
from _visdom_server import ROOT, answers, free_port
from conftest import TINY
from test_gui import png_bytes, save_random_model
from texturenet.checkpoint import RunLock, load_checkpoint, save_atomic
from texturenet.gui import GuiApp, GuiConfig, GuiServer

TIMEOUT = 0.3
"""request_timeout of the test servers: a silent connection is dropped after this many seconds."""


@dataclass
class Served:
    """A GUI server running in this process, and its folders."""

    port: int
    root: Path
    checkpoints: Path
    outside: Path
    host: str = "127.0.0.1"

    def exchange(self, data: bytes, wait: float = 10.0) -> bytes:
        """Send ``data`` on a new connection and return everything the server sends until it closes."""
        with socket.create_connection(("127.0.0.1", self.port), timeout=wait) as connection:
            connection.sendall(data)
            chunks = []
            while chunk := connection.recv(65536):
                chunks.append(chunk)
        return b"".join(chunks)

    def request(self, method: str, path: str, body: bytes = b"", headers: Optional[dict[str, str]] = None) -> tuple[int, Any]:
        """(status, JSON answer) of one request; header values go out as Latin-1 bytes, whatever they are."""
        lines = {"Host": f"127.0.0.1:{self.port}", "Connection": "close", **(headers or {})}
        if body or method == "POST":
            lines.setdefault("Content-Length", str(len(body)))
        head = f"{method} {path} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in lines.items())
        return parse(self.exchange(head.encode("latin-1") + b"\r\n" + body))

    def post(self, path: str, fields: dict[str, Any]) -> tuple[int, Any]:
        return self.request("POST", path, json.dumps(fields).encode(), {"Content-Type": "application/json"})

    def train(self, **change: Any) -> tuple[int, Any]:
        """POST a training form: a good one, with ``change`` applied."""
        return self.post("/api/train", {"data_dir": "photos", "style": "style.png", "iterations": 2, **change})


def parse(response: bytes) -> tuple[int, Any]:
    """(status, JSON body) of a raw HTTP response (the body as bytes when it is not JSON)."""
    head, _, body = response.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1."), response[:200]
    status = int(head.split()[1])
    return status, json.loads(body) if b"application/json" in head else body


@contextmanager
def gui_server(base: Path, photos: Path, style_image: Path, **settings: Any) -> Iterator[Served]:
    """A GUI server over a fresh data root (photos/, style.png) and checkpoint folder (tinystyle.pth)."""
    root, checkpoints, outside = base / "root", base / "checkpoints", base / "outside"
    shutil.copytree(photos, root / "photos")
    shutil.copy(style_image, root / "style.png")
    outside.mkdir()
    shutil.copy(style_image, outside / "secret.png")
    save_random_model(checkpoints / "tinystyle.pth", "style")
    config = GuiConfig(**{"port": free_port(), "checkpoint_dir": checkpoints, "data_root": root,
                          "train_args": " ".join(TINY), "request_timeout": TIMEOUT, **settings})
    app = GuiApp(config)
    server = GuiServer(app)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield Served(server.server_port, root.resolve(), checkpoints, outside.resolve(), config.host)
    finally:
        server.shutdown()
        server.server_close()
        app.close(wait=30)
        thread.join(10)


# -- the rows: each fails on the GUI before issue 13's fixes ----------------------------------------


Check = Callable[[Served, pytest.MonkeyPatch], None]


def refused(status: int, message: str, send: Callable[[Served], tuple[int, Any]]) -> Check:
    """A row whose request must be answered ``status`` with ``message`` in its error."""
    def check(served: Served, _monkeypatch: pytest.MonkeyPatch) -> None:
        got, answer = send(served)
        assert got == status and message in answer["error"], (got, answer)
    return check


def idle_connections_hold_no_thread_each(served: Served, _monkeypatch: pytest.MonkeyPatch) -> None:
    """50 connections that send nothing: at most max_connections threads serve them, and a real request still gets in."""
    before = threading.active_count()
    idle = [socket.create_connection(("127.0.0.1", served.port), timeout=10) for _ in range(50)]
    try:
        most = before
        deadline = time.monotonic() + 2 * TIMEOUT
        while time.monotonic() < deadline:
            most = max(most, threading.active_count())
            time.sleep(0.01)
        assert most - before <= 8, f"{most - before} threads for 50 idle connections"
        started = time.monotonic()
        status, answer = served.request("GET", "/api/info")
        assert status == 200 and answer["data_root"] == str(served.root), answer
        assert time.monotonic() - started < 8
    finally:
        for connection in idle:
            connection.close()


def silent_connection_is_closed(served: Served, _monkeypatch: pytest.MonkeyPatch) -> None:
    started = time.monotonic()
    assert served.exchange(b"", wait=5) == b""  # closed, without an answer: nothing was asked
    assert time.monotonic() - started < TIMEOUT + 2


def missing_body_is_closed(served: Served, _monkeypatch: pytest.MonkeyPatch) -> None:
    """A Content-Length whose body never comes: 408 after the timeout, then the connection is closed."""
    started = time.monotonic()
    head = (f"POST /api/train HTTP/1.1\r\nHost: 127.0.0.1:{served.port}\r\nContent-Type: application/json\r\n"
            "Content-Length: 100\r\n\r\n").encode()
    status, answer = parse(served.exchange(head, wait=5))  # returns once the server closed the connection
    assert status == 408 and answer["error"] == f"the request body did not arrive within {TIMEOUT:g} s", answer
    assert time.monotonic() - started < TIMEOUT + 2


def uploads_beyond_the_decoding_budget_wait_then_get_busy(served: Served, monkeypatch: pytest.MonkeyPatch) -> None:
    """Two 0.6-megapixel uploads at once with room for 1 megapixel: one is decoded, the other is told the server is busy.

    Decoding is slowed down (1 s, longer than the wait for room) so that the two certainly overlap.
    """
    load_rgb = texturenet.data.load_rgb

    def slow_load_rgb(*args: Any, **kwargs: Any) -> Image.Image:
        time.sleep(1.0)
        return load_rgb(*args, **kwargs)

    monkeypatch.setattr(texturenet.data, "load_rgb", slow_load_rgb)
    photo = png_bytes(Image.new("RGB", (800, 750), (200, 120, 40)))
    answers: list[tuple[int, Any]] = []
    uploads = [threading.Thread(target=lambda: answers.append(
        served.request("POST", "/api/stylize?model=tinystyle", photo, {"Content-Type": "image/png"}))) for _ in range(2)]
    for upload in uploads:
        upload.start()
    for upload in uploads:
        upload.join(30)
    assert sorted(status for status, _ in answers) == [200, 503], answers
    busy = next(answer for status, answer in answers if status == 503)
    assert "busy decoding other uploads" in busy["error"], busy


def data_folder_with_a_file_link_leading_out(served: Served, _monkeypatch: pytest.MonkeyPatch) -> None:
    folder = served.root / "linked"
    shutil.copytree(served.root / "photos", folder)
    (folder / "nested" / "zz.png").symlink_to(served.outside / "secret.png")
    status, answer = served.train(data_dir="linked")
    assert status == 400 and answer["error"] == (
        f"data folder (--data_dir): linked/nested/zz.png is a link to {served.outside / 'secret.png'}, outside the allowed "
        f"folder {served.root}; remove the link or copy the file into the folder"), answer


def style_image_link_leading_out(served: Served, _monkeypatch: pytest.MonkeyPatch) -> None:
    (served.root / "link.png").symlink_to(served.outside / "secret.png")
    (served.root / "inside.png").symlink_to(served.root / "style.png")  # a link that stays inside is fine
    status, info = served.request("GET", "/api/info")
    assert status == 200 and "inside.png" in info["images"] and "link.png" not in info["images"], info
    status, answer = served.train(style="link.png")
    assert status == 400 and "style image (--texture): link.png is outside the allowed folder" in answer["error"], answer


def foreign_host_on_a_non_loopback_server(served: Served, _monkeypatch: pytest.MonkeyPatch) -> None:
    status, answer = served.request("GET", "/api/models", headers={"Host": f"attacker.example:{served.port}"})
    assert status == 421 and answer["error"].startswith(f"Host 'attacker.example:{served.port}' is not a name of this server"), answer
    for host in (f"mybox.lan:{served.port}", f"192.0.2.7:{served.port}", f"127.0.0.1:{served.port}"):
        assert served.request("GET", "/api/models", headers={"Host": host})[0] == 200, host  # --allowed_hosts, addresses


def earlier_run_files_are_not_replaced(served: Served, _monkeypatch: pytest.MonkeyPatch) -> None:
    """A stopped run's NAME_iter3.pth, or a running run's NAME.lock: a new run of that name is refused, nothing is touched."""
    stopped = served.checkpoints / "again_iter3.pth"
    save_random_model(stopped, "style")
    save_atomic({**load_checkpoint(stopped), "name": "again"}, stopped)  # as run 'again' stores it (a file is its stored name's run)
    before = stopped.read_bytes()
    status, answer = served.train(name="again")
    assert status == 409 and answer["error"] == (
        f"name: a run named 'again' already exists in {served.checkpoints} (again_iter3.pth); choose another name, "
        "or continue it with texturenet-train --resume auto --name again"), answer
    running = RunLock(served.checkpoints, "busy")  # a real lock, as a training run holds it
    try:
        status, answer = served.train(name="busy")
    finally:
        running.release()
    assert status == 409 and "a run named 'busy' is training in" in answer["error"] and f"pid {os.getpid()}" in answer["error"], answer
    time.sleep(0.5)  # a child started by mistake would have rewritten the file by now
    assert stopped.read_bytes() == before and not list(served.checkpoints.glob("again.*"))


def nested(depth: int) -> bytes:
    return b'{"name": ' + b"[" * depth + b"]" * depth + b"}"


@dataclass
class Case:
    name: str
    check: Check
    settings: dict[str, Any] = field(default_factory=dict)


CASES = [
    Case("idle connections", idle_connections_hold_no_thread_each, {"max_connections": 8}),
    Case("silent connection", silent_connection_is_closed),
    Case("body never sent", missing_body_is_closed),
    Case("decoding budget", uploads_beyond_the_decoding_budget_wait_then_get_busy,
         {"max_megapixels": 1.0, "decode_megapixels": 1.0, "max_side": 32}),
    Case("data file link", data_folder_with_a_file_link_leading_out),
    Case("style image link", style_image_link_leading_out),
    Case("foreign Host", foreign_host_on_a_non_loopback_server, {"host": "0.0.0.0", "allowed_hosts": "mybox.lan"}),
    Case("earlier run", earlier_run_files_are_not_replaced),
    Case("NUL in a path", refused(400, "data folder (--data_dir): 'pho\\x00tos' contains a NUL byte",
                                  lambda s: s.train(data_dir="pho\0tos"))),
    Case("5000-character path", refused(400, "data folder (--data_dir): the path is 5000 characters long; the limit is 4096",
                                        lambda s: s.train(data_dir="a/" * 2500))),
    Case("300-character name", refused(400, "style image (--texture): 'aaaaaaaaaa", lambda s: s.train(style="a" * 300 + ".png"))),
    Case("3000-digit whole number", refused(400, "iterations: 99999999999999999999… (3000 characters) is out of range; give a value from 1 to",
                                            lambda s: s.train(iterations=int("9" * 3000)))),
    Case("3000-digit number", refused(400, "style_weight: 99999999999999999999… (3000 characters) is out of range",
                                      lambda s: s.train(style_weight=int("9" * 3000)))),
    Case("3000-digit query number", refused(400, "seed: 99999999999999999999… (3000 characters) is out of range",
                                            lambda s: s.request("POST", f"/api/stylize?model=tinystyle&seed={'9' * 3000}",
                                                                b"x", {"Content-Type": "image/png"}))),
    Case("deeply nested JSON", refused(400, "the form is nested too deeply",
                                       lambda s: s.request("POST", "/api/train", nested(100_000), {"Content-Type": "application/json"}))),
    Case("non-ASCII Content-Length", refused(400, "Content-Length '\u00b2' is not a number",
                                             lambda s: s.request("POST", "/api/stylize?model=tinystyle", b"", {
                                                 "Content-Type": "image/png", "Content-Length": "\u00b2"}))),
]


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_gui_refuses_bad_requests(case: Case, tmp_path: Path, photos: Path, style_image: Path,
                                  monkeypatch: pytest.MonkeyPatch) -> None:
    with gui_server(tmp_path, photos, style_image, **case.settings) as served:
        case.check(served, monkeypatch)
        status, _ = served.request("GET", "/api/info")
        assert status == 200  # the server lives on


# -- texturenet-visdom: this machine only, unless told ----------------------------------------------


def listening_addresses(port: int) -> set[str]:
    """The addresses that sockets listen on at ``port``, from the kernel's tables (Linux)."""
    found = set()
    for table in (Path("/proc/net/tcp"), Path("/proc/net/tcp6")):
        if not table.exists():
            continue
        for line in table.read_text().splitlines()[1:]:
            columns = line.split()
            address, port_hex = columns[1].split(":")
            if columns[3] == "0A" and int(port_hex, 16) == port:  # 0A: LISTEN
                raw = bytes.fromhex(address)  # 32-bit words in host (little-endian) order
                found.add(str(ipaddress.ip_address(b"".join(raw[i:i + 4][::-1] for i in range(0, len(raw), 4)))))
    return found


VISDOM_CASES = [  # flags, the addresses bound, the warning's start (None: no warning)
    ([], {"127.0.0.1"}, None),
    (["--hostname", "0.0.0.0"], {"0.0.0.0"},
     "texturenet-visdom: warning: listening on 0.0.0.0, not only on this machine: anyone on the network who can reach port"),
    (["--hostname", "0.0.0.0", "--bind_local"], {"127.0.0.1"}, None),  # visdom's own flag still wins
]


def test_visdom_listens_on_loopback_unless_told(tmp_path: Path) -> None:
    """The rows' servers are started at once, then each is checked."""
    pytest.importorskip("visdom", reason="visdom is not installed: PIP_CONSTRAINT=constraints.txt pip install visdom")
    if not Path("/proc/net/tcp").exists():
        pytest.skip("reads the bound address from Linux's /proc/net/tcp")
    ports = [free_port() for _ in VISDOM_CASES]
    processes = [subprocess.Popen([sys.executable, "-m", "texturenet.visdom_server", "--port", str(port), "--env_path",
                                   str(tmp_path / f"envs{port}"), *flags], cwd=ROOT, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True) for port, (flags, _, _) in zip(ports, VISDOM_CASES)]
    try:
        deadline = time.monotonic() + 60
        for port, process, (flags, bound, _) in zip(ports, processes, VISDOM_CASES):
            while not answers(port):
                assert process.poll() is None and time.monotonic() < deadline, f"the visdom server with {flags} did not start"
                time.sleep(0.1)
            assert listening_addresses(port) == bound, flags
    finally:
        outputs = []
        for process in processes:
            process.terminate()
            outputs.append(process.communicate(timeout=30))
    for port, (out, err), (flags, bound, warning) in zip(ports, outputs, VISDOM_CASES):
        warnings = [line for line in err.splitlines() if "anyone on the network" in line]
        assert warnings == [] if warning is None else len(warnings) == 1 and warnings[0].startswith(warning), (flags, err)
        shown = socket.gethostname() if bound == {"0.0.0.0"} else "127.0.0.1"  # everywhere: the name others can use
        assert f"visdom server (no downloads) at http://{shown}:{port}" in out, (flags, out)
