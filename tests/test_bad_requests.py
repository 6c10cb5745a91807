"""Bad requests to the servers (issues 13 and 21, "nothing let in"): one table row per way a client misbehaves.

Every GUI row starts a real ``texturenet-gui`` server in this process (:class:`GuiApp` and
:class:`GuiServer`, served on a thread, on a free port) with the settings the row needs, and
talks to it over real sockets in raw HTTP/1.1, so that it can send what no well-behaved client
library would (NUL bytes, a non-ASCII Content-Length, a body that never comes, no token). The
Visdom rows start ``texturenet-visdom`` as a subprocess: one reads the address its socket is
bound to from the kernel (/proc/net/tcp and tcp6), the others send it what another site's page
or a DNS-rebinding page would.
"""
from __future__ import annotations

import contextlib
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

import texturenet.io.images
from _visdom_server import ROOT, answers, free_port
from conftest import TINY
from test_gui import png_bytes, save_random_model
from texturenet.model.checkpoint import load_checkpoint, save_atomic
from texturenet.training.run import RunLock
from texturenet.apps.gui import GuiApp, GuiConfig, GuiServer

TIMEOUT = 0.3
"""request_timeout of the test servers: a silent connection is dropped after this many seconds."""


@dataclass
class Served:
    """A GUI server running in this process, and its folders."""

    port: int
    root: Path
    checkpoints: Path
    outside: Path
    token: str
    host: str = "127.0.0.1"

    def exchange(self, data: bytes, wait: float = 10.0) -> bytes:
        """Send ``data`` on a new connection and return everything the server sends until it closes."""
        with socket.create_connection(("127.0.0.1", self.port), timeout=wait) as connection:
            connection.sendall(data)
            chunks = []
            while chunk := connection.recv(65536):
                chunks.append(chunk)
        return b"".join(chunks)

    def request(self, method: str, path: str, body: bytes = b"", headers: Optional[dict[str, str]] = None,
                token: bool = True) -> tuple[int, Any]:
        """(status, JSON answer) of one request, with the server's token unless ``token`` is False; header values go out as Latin-1 bytes."""
        return parse(self.exchange(raw_request(method, path, self.port, body, headers, self.token if token else None)))

    def post(self, path: str, fields: dict[str, Any]) -> tuple[int, Any]:
        return self.request("POST", path, json.dumps(fields).encode(), {"Content-Type": "application/json"})

    def train(self, **change: Any) -> tuple[int, Any]:
        """POST a training form: a good one, with ``change`` applied."""
        return self.post("/api/train", {"data_dir": "photos", "style": "style.png", "iterations": 2, **change})


def raw_request(method: str, path: str, port: int, body: bytes = b"", headers: Optional[dict[str, str]] = None,
                token: Optional[str] = None) -> bytes:
    """One HTTP/1.1 request as bytes: Host 127.0.0.1:port, Connection: close, the token's header if given, then ``headers``."""
    lines = {"Host": f"127.0.0.1:{port}", "Connection": "close", **({"Authorization": f"token {token}"} if token else {}),
             **(headers or {})}
    if body or method == "POST":
        lines.setdefault("Content-Length", str(len(body)))
    head = f"{method} {path} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in lines.items())
    return head.encode("latin-1") + b"\r\n" + body


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
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield Served(server.server_port, root.resolve(), checkpoints, outside.resolve(), server.token, config.host)
    finally:
        server.shutdown()
        server.server_close()
        app.close(wait=30)
        thread.join(10)


# -- the rows: each fails on the GUI before issue 13's (or issue 21's) fixes --------------------------


Check = Callable[[Served, pytest.MonkeyPatch], None]


def refused(status: int, message: str, send: Callable[[Served], tuple[int, Any]]) -> Check:
    """A row whose request must be answered ``status`` with ``message`` in its error."""
    def check(served: Served, _monkeypatch: pytest.MonkeyPatch) -> None:
        got, answer = send(served)
        assert got == status and message in answer["error"], (got, answer)
    return check


def idle_connections_hold_no_thread_each(served: Served, _monkeypatch: pytest.MonkeyPatch) -> None:
    """50 connections that send nothing: they hold no more threads than the pool has, and a real request still gets in."""
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
    head = raw_request("POST", "/api/train", served.port, b"", {"Content-Type": "application/json", "Content-Length": "100"}, served.token)
    status, answer = parse(served.exchange(head, wait=5))  # returns once the server closed the connection
    assert status == 408 and answer["error"] == f"the request body did not arrive within {TIMEOUT:g} s", answer
    assert time.monotonic() - started < TIMEOUT + 2


def uploads_beyond_the_decoding_budget_wait_then_get_busy(served: Served, monkeypatch: pytest.MonkeyPatch) -> None:
    """Two 0.6-megapixel uploads at once with room for 1 megapixel: one is decoded, the other is told the server is busy.

    Decoding is slowed down (1 s, longer than the wait for room) so that the two certainly overlap.
    """
    load_rgb = texturenet.io.images.load_rgb

    def slow_load_rgb(*args: Any, **kwargs: Any) -> Image.Image:
        time.sleep(1.0)
        return load_rgb(*args, **kwargs)

    monkeypatch.setattr(texturenet.io.images, "load_rgb", slow_load_rgb)
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


NO_TOKEN = "this server needs its token: open the address texturenet-gui printed when it started"


def without_the_token(method: str, path: str, body: bytes = b"", headers: Optional[dict[str, str]] = None) -> Check:
    """A row (issue 21, case 1): the request is refused without the token, or with a wrong one, and nothing is done for it."""
    def check(served: Served, _monkeypatch: pytest.MonkeyPatch) -> None:
        wrong = "w" * 43  # as long as the server's own
        for given in ({}, {"Authorization": f"token {wrong}"}, {"Cookie": f"texturenet-gui-{served.port}={wrong}"}):
            status, answer = served.request(method, path, body, {**(headers or {}), **given}, token=False)
            assert status == 403 and answer["error"].startswith(NO_TOKEN), (given, status, answer)
        assert served.request("GET", "/api/train")[1] == {"state": "idle"}  # no run was started
    return check


def the_token_lets_in(served: Served, _monkeypatch: pytest.MonkeyPatch) -> None:
    """The printed address keeps the token in an HttpOnly, SameSite=Strict cookie and sends the browser to the clean address."""
    response = served.exchange(raw_request("GET", f"/?token={served.token}", served.port))
    head = response.partition(b"\r\n\r\n")[0].decode("latin-1").split("\r\n")
    fields = [line.split(": ", 1) for line in head[1:]]
    assert head[0].split()[1] == "302" and ["Location", "/"] in fields, head
    cookie = next(value for name, value in fields if name == "Set-Cookie")
    name_value, *attributes = cookie.split("; ")
    assert name_value == f"texturenet-gui-{served.port}={served.token}" and {"HttpOnly", "SameSite=Strict", "Path=/"} <= set(attributes), cookie
    status, page = served.request("GET", "/", headers={"Cookie": name_value}, token=False)  # what the browser does next
    assert status == 200 and b'id="noise"' in page
    assert served.request("GET", "/api/info", headers={"Cookie": name_value}, token=False)[0] == 200
    assert served.request("GET", "/api/info")[0] == 200  # scripts: Authorization: token ...
    status, answer = served.request("GET", f"/?token={'w' * 43}", token=False)  # a wrong one sets no cookie
    assert status == 403 and answer["error"].startswith(NO_TOKEN), answer


OWN_TOKEN = "a-token-of-ones-own.0123"


def a_token_of_ones_own(served: Served, _monkeypatch: pytest.MonkeyPatch) -> None:
    """--token: the server takes the one given instead of making one."""
    assert served.token == OWN_TOKEN
    assert served.request("GET", "/api/info", headers={"Authorization": f"token {OWN_TOKEN}"}, token=False)[0] == 200


def slow_clients_do_not_lock_out(served: Served, _monkeypatch: pytest.MonkeyPatch) -> None:
    """Issue 21, case 15: 16 POSTs that declare 100000 bytes and trickle them, and 4 that trickle their headers (a byte
    every 0.1 s, faster than any per-read timeout): /api/info answers meanwhile; at the request's deadline each body
    trickler gets 408, and each header trickler is closed."""
    head = raw_request("POST", "/api/train", served.port, b"", {"Content-Type": "application/json", "Content-Length": "100000"}, served.token)
    slow_bodies = [socket.create_connection(("127.0.0.1", served.port), timeout=30) for _ in range(16)]
    slow_heads = [socket.create_connection(("127.0.0.1", served.port), timeout=30) for _ in range(4)]
    stop = threading.Event()

    def trickle() -> None:
        while not stop.wait(0.1):
            for connection, byte in [*((c, b" ") for c in slow_bodies), *((c, b"a") for c in slow_heads)]:
                with contextlib.suppress(OSError):  # answered and closed already
                    connection.sendall(byte)

    for connection in slow_bodies:
        connection.sendall(head + b"{")
    for connection in slow_heads:
        connection.sendall(head.split(b"\r\n")[0] + b"\r\nX-Slow: ")
    trickler = threading.Thread(target=trickle, daemon=True)
    trickler.start()
    try:
        status, info = served.request("GET", "/api/info")  # the connection's 10 s timeout is the hang guard
        assert status == 200 and info["data_root"] == str(served.root), info
        answers = []
        for connection in slow_bodies + slow_heads:  # each recv's 30 s timeout is the hang guard
            chunks = []
            with contextlib.suppress(ConnectionResetError):  # the server closes with trickled bytes unread
                while chunk := connection.recv(65536):
                    chunks.append(chunk)
            answers.append(b"".join(chunks))
        for answer in answers[:16]:
            status, error = parse(answer)
            assert status == 408 and error["error"] == "the request body did not arrive within 2 s", error
        assert answers[16:] == [b""] * 4  # closed without an answer: no request ever came
    finally:
        stop.set()
        trickler.join(5)
        for connection in slow_bodies + slow_heads:
            connection.close()


def nested(depth: int) -> bytes:
    return b'{"name": ' + b"[" * depth + b"]" * depth + b"}"


@dataclass
class Case:
    name: str
    check: Check
    settings: dict[str, Any] = field(default_factory=dict)


CASES = [
    Case("idle connections", idle_connections_hold_no_thread_each, {"threads": 8}),
    Case("silent connection", silent_connection_is_closed),
    Case("body never sent", missing_body_is_closed),
    Case("decoding budget", uploads_beyond_the_decoding_budget_wait_then_get_busy,
         {"max_megapixels": 1.0, "decode_megapixels": 1.0, "max_side": 32}),
    Case("data file link", data_folder_with_a_file_link_leading_out),
    Case("style image link", style_image_link_leading_out),
    Case("foreign Host", foreign_host_on_a_non_loopback_server, {"host": "0.0.0.0", "allowed_hosts": "mybox.lan"}),
    Case("earlier run", earlier_run_files_are_not_replaced),
    Case("no token: the page", without_the_token("GET", "/")),
    Case("no token: /api/info", without_the_token("GET", "/api/info")),
    Case("no token: /api/models", without_the_token("GET", "/api/models")),
    Case("no token: /api/train", without_the_token("GET", "/api/train")),
    Case("no token: /api/train/samples.png", without_the_token("GET", "/api/train/samples.png")),
    Case("no token: POST /api/train", without_the_token("POST", "/api/train", json.dumps(
        {"data_dir": "photos", "style": "style.png", "iterations": 2}).encode(), {"Content-Type": "application/json"})),
    Case("no token: POST /api/stylize", without_the_token("POST", "/api/stylize?model=tinystyle", png_bytes(
        Image.new("RGB", (24, 24), (200, 120, 40))), {"Content-Type": "image/png"})),
    Case("the token lets in", the_token_lets_in),
    Case("--token", a_token_of_ones_own, {"token": OWN_TOKEN}),
    Case("slow clients", slow_clients_do_not_lock_out, {"request_timeout": 2.0}),
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
    processes = [subprocess.Popen([sys.executable, "-m", "texturenet.apps.visdom_server", "--port", str(port), "--env_path",
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


# -- texturenet-visdom: no other site's page, no DNS rebinding (issue 21, case 2) -----------------------------

EVIL = "http://evil.example"
VISDOM_REFUSED = [  # what another site's page, or a page reached by DNS rebinding, sends: (name, method, path, headers, body, status)
    ("delete, from another site's page", "POST", "/delete_env", {"Origin": EVIL, "Content-Type": "text/plain"},
     b'{"eid": "victim"}', 403),
    ("delete, cross-site without an Origin", "POST", "/delete_env", {"Sec-Fetch-Site": "cross-site", "Content-Type": "text/plain"},
     b'{"eid": "victim"}', 403),
    ("forged plot, from another site's page", "POST", "/events", {"Origin": EVIL, "Content-Type": "text/plain"},
     b'{"data": [{"content": "forged", "type": "text"}], "win": "forged", "eid": "victim", "opts": {}}', 403),
    ("websocket, from another site's page", "GET", "/socket", {"Origin": EVIL, "Connection": "Upgrade", "Upgrade": "websocket",
                                                               "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
                                                               "Sec-WebSocket-Version": "13"}, b"", 403),
    ("/env_state, by DNS rebinding", "POST", "/env_state", {"Host": "evil.example:{port}"}, b"{}", 421),
    ("/win_data, by DNS rebinding", "POST", "/win_data", {"Host": "evil.example:{port}"}, b'{"eid": "victim", "win": "note"}', 421),
    ("the page, by DNS rebinding", "GET", "/env/victim", {"Host": "evil.example:{port}"}, b"", 421),
]


def test_visdom_refuses_other_sites_and_dns_rebinding(tmp_path: Path) -> None:
    """A saved environment survives every row; the Visdom client (no Origin) and the server's own page still work."""
    pytest.importorskip("visdom", reason="visdom is not installed: PIP_CONSTRAINT=constraints.txt pip install visdom")
    from _visdom_server import visdom_server

    port, envs = free_port(), tmp_path / "envs"

    def send(method: str, path: str, headers: dict[str, str], body: bytes = b"") -> tuple[int, Any]:
        with socket.create_connection(("127.0.0.1", port), timeout=10) as connection:  # 10 s: the hang guard
            connection.sendall(raw_request(method, path, port, body, {k: v.format(port=port) for k, v in headers.items()}))
            chunks = []
            while chunk := connection.recv(65536):
                chunks.append(chunk)
        return parse(b"".join(chunks))

    with visdom_server(port, envs):
        plot = b'{"data": [{"content": "private", "type": "text"}], "win": "note", "eid": "victim", "opts": {}}'
        assert send("POST", "/events", {}, plot)[0] == 200  # as the training monitor's client sends it: no Origin
        assert send("POST", "/save", {}, b'{"data": ["victim"]}')[0] == 200
        assert (envs / "victim.json").is_file()
        for name, method, path, headers, body, status in VISDOM_REFUSED:
            got, answer = send(method, path, headers, body)
            assert got == status and isinstance(answer, dict) and answer["error"], (name, got, answer)
        assert (envs / "victim.json").is_file()
        status, windows = send("POST", "/env_state", {}, b"{}")
        assert status == 200 and "victim" in json.loads(windows), windows
        assert send("POST", "/win_exists", {}, b'{"eid": "victim", "win": "forged"}')[1] == b"false"
        # the server's own page (its Origin, jQuery's form content type) may still delete
        assert send("POST", "/delete_env", {"Origin": f"http://127.0.0.1:{port}", "Content-Type": "application/x-www-form-urlencoded"},
                    b'{"eid": "victim"}')[0] == 200
        assert not (envs / "victim.json").exists()
