"""HTTP: the ``texturenet-gui`` server on tornado (deadlines, a bounded pool for blocking work, the shared request checks) and its command line.

Why tornado (issue 21). The GUI first ran on the standard library's ``http.server``, which
Python's documentation says is not for production: its timeouts were per read, not per request,
so 16 clients trickling a byte at a time held every one of its threads and locked the page out,
and its framing and Host checks were ours to keep right. Tornado 6 is a well-kept server that is
already installed with (and is the server of) visdom 0.2.4, which the project requires; so the
move adds no dependency, and both servers now share one module of request checks
(:mod:`.guard`). It gives by configuration what we had written by hand: a total deadline for each
request's headers (``idle_connection_timeout``, which also closes idle connections) and a cap on
header and body sizes; an event loop on which slow or silent clients hold no thread; and
streamed request bodies, so that an upload is refused by its declared ``Content-Length`` before
any of it is read. Blocking work (stylising, decoding, reading checkpoints, listing folders) runs
on a bounded thread pool (``--threads``), which a slow client never holds: its body has arrived
before its work starts. Starlette on uvicorn was the other candidate: two new dependencies (and
their own: anyio, h11, ...), and uvicorn has no deadline for receiving a request at all (its
keep-alive timeout is reset by every byte; uvicorn issue #157), the very hole of case 15.

The body's deadline is ours (``request_timeout`` from the end of the headers; tornado's own
``body_timeout`` closes silently, and the page should be told why: 408). A refused request is
answered at once, then its body is read and dropped (up to a bound, within the same deadline):
clients such as curl and urllib send the whole body before they read, and closing on them would
show a reset connection instead of the message.
"""
from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import secrets
import signal
import sys
import threading
import traceback
import urllib.parse
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from http import HTTPStatus
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

import tornado.httpserver
import tornado.iostream
import tornado.netutil
import tornado.web
from tornado.ioloop import IOLoop

from ...config import GuiConfig
from ...errors import TexturenetError
from .app import GuiApp
from .fields import RequestError
from .guard import RequestGuard, is_loopback

PAGE = Path(__file__).resolve().parent.parent.parent / "assets" / "gui.html"
DISCARD_LIMIT = 2**28
"""Bytes of a refused request's body read (and dropped) at most; a longer one is not waited for."""


@dataclass(frozen=True)
class Route:
    """What a path does: ``call(query, body)`` returns a JSON object, or (bytes, content type)."""

    call: Callable[[dict[str, str], bytes], Any]
    body: Optional[str] = None
    """None: no body is used; "json": a JSON object; "upload": a file's bytes in its own content type."""


# -- HTTP --------------------------------------------------------------------------------------


@tornado.web.stream_request_body
class Handler(tornado.web.RequestHandler):
    """Every request of the GUI: checked (guard, route, framing) once its headers are in, then served from the pool.

    Every error is JSON ``{"error": ...}`` with its status.
    """

    SUPPORTED_METHODS = ("GET", "POST")

    def initialize(self, server: "GuiServer") -> None:
        self.server = server
        self.route: Optional[Route] = None
        self.chunks: list[bytes] = []
        self.refused = False
        self.answered: Optional[Any] = None  # the refusal's write, when the body is still to be read and dropped
        self.deadline: Optional[object] = None

    def set_default_headers(self) -> None:
        self.set_header("Server", "texturenet-gui")
        self.set_header("Cache-Control", "no-store")
        self.set_header("X-Content-Type-Options", "nosniff")

    def compute_etag(self) -> None:
        """No ETag: every answer is fresh (the page polls), and If-None-Match must not turn one into a 304."""
        return None

    def prepare(self) -> None:
        try:
            self.server.guard.check(self.request)
            self.route = self.server.routes[self.request.method].get(self.request.path)
            if self.route is None:
                raise RequestError(f"no such page: {self.request.path}", HTTPStatus.NOT_FOUND)
            length = self._framing(self.route)
        except RequestError as error:
            self._refuse(error, swallow=True)
            return
        if length:
            self._start_deadline()

    def _framing(self, route: Route) -> int:
        """The body's declared length, refused (before any of it is read) when it is not what ``route`` takes."""
        headers = self.request.headers
        kind = headers.get("Content-Type", "").split(";")[0].strip().lower()
        if route.body == "json" and kind != "application/json":
            raise RequestError("send the form as application/json", HTTPStatus.UNSUPPORTED_MEDIA_TYPE)
        if route.body == "upload" and kind in (
                "application/x-www-form-urlencoded", "multipart/form-data", "text/plain"):
            raise RequestError("send the photo's bytes as the request body with the file's own content type",
                               HTTPStatus.UNSUPPORTED_MEDIA_TYPE)
        if "Transfer-Encoding" in headers:
            raise RequestError("send the body with a Content-Length, not chunked", HTTPStatus.LENGTH_REQUIRED)
        length = self._declared_length()
        if length is None:  # the message's framing is unknown: RFC 9112 section 6.3 says 400
            raise RequestError(f"Content-Length {headers.get('Content-Length', '')[:20]!r} is not a number of bytes")
        limit = self.server.app.config.max_upload_bytes
        if length > limit:
            raise RequestError(f"the upload is {length / 2**20:.1f} MiB; the limit is {limit / 2**20:g} MiB",
                               HTTPStatus.REQUEST_ENTITY_TOO_LARGE)
        return length

    def _declared_length(self) -> Optional[int]:
        """The Content-Length (0 without one: HTTP/1.1 without length or chunking is an empty body); None if not a byte count.

        Only ASCII digits count (``str.isdigit`` also takes '²' and other scripts' digits), and at
        most 18 of them: longer values are no size any upload has.
        """
        text = self.request.headers.get("Content-Length", "0").strip()
        return int(text) if text.isascii() and text.isdigit() and len(text) <= 18 else None

    def _start_deadline(self) -> None:
        if self.deadline is None:
            self.deadline = IOLoop.current().call_later(self.server.app.config.request_timeout, self._body_late)

    def _body_late(self) -> None:
        """The body did not arrive in time: 408 (or, when the answer already went out, just the end of the connection)."""
        if self.refused:
            self.request.connection.close()
        else:
            timeout = self.server.app.config.request_timeout
            self._refuse(RequestError(f"the request body did not arrive within {timeout:g} s", HTTPStatus.REQUEST_TIMEOUT), swallow=False)

    def _refuse(self, error: RequestError, swallow: bool) -> None:
        """Answer ``error`` now and close the connection, after reading and dropping the body if ``swallow`` and it is coming."""
        self.refused = True
        body = json.dumps({"error": str(error)}).encode()
        self.set_status(error.status)
        self.set_header("Content-Type", "application/json")
        self.set_header("Content-Length", str(len(body)))
        self.set_header("Connection", "close")
        self.write(body)
        length = self._declared_length()
        headers = self.request.headers
        if swallow and length and length <= DISCARD_LIMIT and "Transfer-Encoding" not in headers and "Expect" not in headers:
            self.answered = self.flush()  # finished once the body has been read (see _serve) or at the deadline
            self._start_deadline()
            return
        if swallow:  # still in prepare: tornado has not read the framing yet; tell it there is nothing to read
            headers.pop("Transfer-Encoding", None)
            headers["Content-Length"] = "0"
        self.finish()  # with the body unread, tornado closes the connection once the answer is written

    def on_connection_close(self) -> None:
        """The client left: its deadline is moot."""
        if self.deadline is not None:
            IOLoop.current().remove_timeout(self.deadline)
        super().on_connection_close()

    def data_received(self, chunk: bytes) -> None:
        if not self.refused:
            self.chunks.append(chunk)

    async def get(self) -> None:
        await self._serve()

    async def post(self) -> None:
        await self._serve()

    async def _serve(self) -> None:
        """The whole body is in: run the route on the pool and answer."""
        if self.deadline is not None:
            IOLoop.current().remove_timeout(self.deadline)
        if self.refused:  # the refusal was answered and its body dropped: end the connection, as the answer said
            with contextlib.suppress(tornado.iostream.StreamClosedError):  # the client left meanwhile
                await self.answered
            self.finish()
            self.request.connection.close()
            return
        assert self.route is not None
        query = {k: v[-1] for k, v in urllib.parse.parse_qs(self.request.query, keep_blank_values=True).items()}
        if self.request.path == "/" and "token" in query:
            self._enter(query["token"])
            return
        try:
            result = await IOLoop.current().run_in_executor(self.server.pool, self.route.call, query, b"".join(self.chunks))
        except RequestError as error:
            self._answer(error.status, json.dumps({"error": str(error)}).encode(), "application/json")
        except TexturenetError as error:  # the package's own messages for bad input (unreadable model, ...)
            self._answer(HTTPStatus.BAD_REQUEST, json.dumps({"error": str(error)}).encode(), "application/json")
        except Exception as error:  # noqa: BLE001 - a bug here must still answer the page, and leave a traceback in the log
            print(f"texturenet-gui: {self.request.method} {self.request.path}: {traceback.format_exc()}", file=sys.stderr, flush=True)
            message = f"internal error ({type(error).__name__}: {error}); see the server's terminal"
            self._answer(HTTPStatus.INTERNAL_SERVER_ERROR, json.dumps({"error": message}).encode(), "application/json")
        else:
            if isinstance(result, dict):
                self._answer(HTTPStatus.OK, json.dumps(result).encode(), "application/json")
            else:
                self._answer(HTTPStatus.OK, *result)

    def _enter(self, token: str) -> None:
        """The printed address: keep the token in a cookie (unreadable by scripts, never sent by other sites) and show the clean address."""
        if self.server.guard.matches(token):
            self.set_cookie(self.server.guard.cookie, token, path="/", httponly=True, samesite="Strict")
        self.redirect("/")

    def _answer(self, status: int, body: bytes, kind: str) -> None:
        self.set_status(status)
        self.set_header("Content-Type", kind)
        self.finish(body)

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        """Tornado's own refusals (an unsupported method: 405) are JSON too."""
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps({"error": self._reason}))


def log_refused(handler: tornado.web.RequestHandler) -> None:
    """Only refused requests are logged (the page polls every second): method and path, escaped, without the query (it may hold a token)."""
    status = handler.get_status()
    if status >= 400:
        request = handler.request
        shown = ascii(f"{request.method} {request.path}")
        print(f"texturenet-gui: {status} {shown[:200]} from {request.remote_ip}", file=sys.stderr, flush=True)


class GuiServer:
    """The page's server: a tornado HTTP server on its own event loop, a pool for blocking work, and the request checks.

    ``serve_forever`` runs the loop in the calling thread until ``shutdown`` (from another
    thread) or, with ``stop_signals``, until one of those signals.
    """

    def __init__(self, app: GuiApp) -> None:
        config = app.config
        try:
            self.sockets = tornado.netutil.bind_sockets(config.port, config.host, backlog=128)
        except OSError as error:
            raise TexturenetError(f"cannot listen on {config.host}:{config.port} ({error.strerror or error}); "
                                  "choose another --port (or --host)") from None
        self.app = app
        self.server_port: int = self.sockets[0].getsockname()[1]
        self.token = config.token or secrets.token_urlsafe(32)
        self.guard = RequestGuard(self.server_port, [config.host, *config.allowed_hosts.split(",")], self.token)
        self.pool = ThreadPoolExecutor(config.threads, thread_name_prefix="texturenet-gui")
        self.routes: dict[str, dict[str, Route]] = {
            "GET": {
                "/": Route(lambda q, b: (PAGE.read_bytes(), "text/html; charset=utf-8")),
                "/api/info": Route(lambda q, b: app.info()),
                "/api/models": Route(lambda q, b: {"models": app.models.listing()}),
                "/api/train": Route(lambda q, b: app.training_status()),
                "/api/train/samples.png": Route(lambda q, b: (app.training_picture("samples"), "image/png")),
                "/api/train/loss.png": Route(lambda q, b: (app.training_picture("loss"), "image/png")),
            },
            "POST": {
                "/api/stylize": Route(lambda q, b: (app.stylize(q, b), "image/png"), "upload"),
                "/api/train": Route(lambda q, b: app.start_training(json_object(b)), "json"),
                "/api/train/stop": Route(lambda q, b: app.stop_training(json_object(b)), "json"),
            },
        }
        self._loop: Optional[asyncio.AbstractEventLoop] = None
        self._stop: Optional[asyncio.Event] = None
        self._running = threading.Event()
        self._done = threading.Event()

    @property
    def url(self) -> str:
        """The address to open, with the token: the only way in for a browser."""
        host = self.app.config.host
        return f"http://{f'[{host}]' if ':' in host else host}:{self.server_port}/?token={self.token}"

    def serve_forever(self, stop_signals: Sequence[signal.Signals] = ()) -> None:
        try:
            asyncio.run(self._serve(stop_signals))
        finally:
            self._done.set()
            self._running.set()  # (if it never ran) so that shutdown does not wait for it

    async def _serve(self, stop_signals: Sequence[signal.Signals]) -> None:
        timeout = self.app.config.request_timeout
        application = tornado.web.Application([(r".*", Handler, {"server": self})], log_function=log_refused)
        http = tornado.httpserver.HTTPServer(
            application,
            idle_connection_timeout=timeout,  # the deadline for a request's headers, and for an idle connection
            body_timeout=2 * timeout,  # tornado's silent backstop; the handler answers 408 at ``timeout``
            max_body_size=max(self.app.config.max_upload_bytes, DISCARD_LIMIT),  # the handler refuses more, by declared length
            max_buffer_size=2**22,
        )
        self._loop, self._stop = asyncio.get_running_loop(), asyncio.Event()
        for number in stop_signals:
            self._loop.add_signal_handler(number, self._stop.set)
        http.add_sockets(self.sockets)
        self._running.set()
        try:
            await self._stop.wait()
        finally:
            http.stop()
            await http.close_all_connections()

    def shutdown(self) -> None:
        """Stop ``serve_forever`` (running in another thread) and wait until it has returned."""
        self._running.wait(30)
        if not self._done.is_set() and self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._done.wait(30)

    def server_close(self) -> None:
        for sock in self.sockets:
            sock.close()
        self.pool.shutdown(wait=False, cancel_futures=True)


def json_object(body: bytes) -> dict[str, Any]:
    """A request body that must be a JSON object (empty: ``{}``)."""
    try:
        fields = json.loads(body or b"{}")
    except RecursionError:
        raise RequestError("the form is nested too deeply; send a flat JSON object") from None
    except (ValueError, UnicodeDecodeError):
        raise RequestError("the form is not valid JSON") from None
    if not isinstance(fields, dict):
        raise RequestError("the form must be a JSON object")
    return fields


def gui_parser() -> argparse.ArgumentParser:
    from ...cli.arguments import add_flag, finite_float

    parser = argparse.ArgumentParser(
        prog="texturenet-gui",
        description="A page in your browser to stylise photos with trained models and to start and watch training runs.",
    )
    add_flag(parser, GuiConfig, "host", type=str)
    add_flag(parser, GuiConfig, "port", type=int)
    add_flag(parser, GuiConfig, "checkpoint_dir", type=Path)
    add_flag(parser, GuiConfig, "data_root", type=Path, shown="the current folder")
    add_flag(parser, GuiConfig, "max_upload_mb", type=finite_float)
    add_flag(parser, GuiConfig, "max_megapixels", type=finite_float)
    add_flag(parser, GuiConfig, "max_side", type=int)
    add_flag(parser, GuiConfig, "train_args", type=str, shown="none")
    add_flag(parser, GuiConfig, "cuda", action="store_true", shown="off")
    add_flag(parser, GuiConfig, "token", type=str, shown="a new random token each start")
    add_flag(parser, GuiConfig, "request_timeout", type=finite_float)
    add_flag(parser, GuiConfig, "threads", type=int)
    add_flag(parser, GuiConfig, "decode_megapixels", type=finite_float)
    add_flag(parser, GuiConfig, "allowed_hosts", type=str, shown="none")
    return parser


def _serve(args: argparse.Namespace, _parser: argparse.ArgumentParser) -> None:
    from ...cli.arguments import from_args

    try:
        config = from_args(GuiConfig, args)
    except ValueError as error:
        raise TexturenetError(str(error)) from None
    if not is_loopback(config.host):
        print(f"texturenet-gui: warning: --host {config.host} is not loopback: anyone who can reach this machine and has the "
              "token can upload files, read the models and start training runs, and the token crosses the network unencrypted; "
              "prefer the default 127.0.0.1", file=sys.stderr, flush=True)
    app = GuiApp(config)
    server = GuiServer(app)
    print(f"texturenet-gui: open {server.url} (models from {config.checkpoint_dir}, data under {app.root}); Ctrl-C stops", flush=True)
    try:
        server.serve_forever(stop_signals=(signal.SIGINT, signal.SIGTERM))
    finally:
        server.server_close()
        app.close()


def main(argv: Optional[Sequence[str]] = None, prog: Optional[str] = None) -> None:
    """Entry point of ``texturenet gui``, ``texturenet-gui`` and ``scripts/gui.py``."""
    from ...cli.runner import run_command

    run_command(gui_parser(), _serve, argv, prog)


if __name__ == "__main__":
    main()
