"""HTTP: the handler, the server (timeouts, a bounded pool, Host and Origin checks) and the command line."""
from __future__ import annotations

import argparse
import ipaddress
import json
import signal
import socket
import sys
import threading
import time
import traceback
import urllib.parse
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Callable, Optional, Sequence


from ..config import GuiConfig
from ..errors import TexturenetError
from .app import GuiApp
from .fields import RequestError

PAGE = Path(__file__).resolve().parent.parent / "assets" / "gui.html"


# -- HTTP --------------------------------------------------------------------------------------


class Handler(BaseHTTPRequestHandler):
    """Routes requests to the :class:`GuiApp` of the server; every error is JSON ``{"error": ...}``."""

    server: "GuiServer"
    protocol_version = "HTTP/1.1"
    server_version = "texturenet-gui"

    def setup(self) -> None:
        """Every read and write of the connection times out (``StreamRequestHandler.setup`` applies ``timeout``)."""
        self.timeout = self.server.app.config.request_timeout
        super().setup()

    def do_GET(self) -> None:
        self._answer({
            "/": lambda q: (PAGE.read_bytes(), "text/html; charset=utf-8"),
            "/api/info": lambda q: self.server.app.info(),
            "/api/models": lambda q: {"models": self.server.app.models.listing()},
            "/api/train": lambda q: self.server.app.training_status(),
            "/api/train/samples.png": lambda q: (self.server.app.training_picture("samples"), "image/png"),
            "/api/train/loss.png": lambda q: (self.server.app.training_picture("loss"), "image/png"),
        })

    def do_POST(self) -> None:
        self._answer({
            "/api/stylize": lambda q: (self.server.app.stylize(q, self._body(json_body=False)), "image/png"),
            "/api/train": lambda q: self.server.app.start_training(self._json()),
            "/api/train/stop": lambda q: self.server.app.stop_training(self._json()),
        })

    def _answer(self, routes: dict[str, Callable[[dict[str, str]], Any]]) -> None:
        url = urllib.parse.urlsplit(self.path)
        self._body_read = False
        try:
            self._check_origin()
            route = routes.get(url.path)
            if route is None:
                raise RequestError(f"no such page: {url.path}", HTTPStatus.NOT_FOUND)
            query = {k: v[-1] for k, v in urllib.parse.parse_qs(url.query, keep_blank_values=True).items()}
            result = route(query)
        except RequestError as error:
            self._send(error.status, json.dumps({"error": str(error)}).encode(), "application/json")
        except TexturenetError as error:  # the package's own messages for bad input (unreadable model, ...)
            self._send(HTTPStatus.BAD_REQUEST, json.dumps({"error": str(error)}).encode(), "application/json")
        except Exception as error:  # noqa: BLE001 - a bug here must still answer the page, and leave a traceback in the log
            self.log_error("%s", traceback.format_exc())
            message = f"internal error ({type(error).__name__}: {error}); see the server's terminal"
            self._send(HTTPStatus.INTERNAL_SERVER_ERROR, json.dumps({"error": message}).encode(), "application/json")
        else:
            if isinstance(result, dict):
                self._send(HTTPStatus.OK, json.dumps(result).encode(), "application/json")
            else:
                self._send(HTTPStatus.OK, *result)

    def _check_origin(self) -> None:
        """Refuse requests made for another site's page (Origin) or through another name (Host: DNS rebinding)."""
        host = self.headers.get("Host", "")
        if not self.server.is_own_host(host):
            raise RequestError(f"Host {host[:80]!r} is not a name of this server; open http://127.0.0.1:{self.server.server_port}/ "
                               "on this machine, or start the server with --allowed_hosts NAME", HTTPStatus.MISDIRECTED_REQUEST)
        origin = self.headers.get("Origin")
        if origin is not None and urllib.parse.urlsplit(origin).netloc != host:
            raise RequestError("requests from other sites' pages are refused", HTTPStatus.FORBIDDEN)

    def _body(self, json_body: bool) -> bytes:
        """The request body, refused by its declared length before any of it is read."""
        kind = self.headers.get_content_type()
        if json_body and kind != "application/json":
            raise RequestError("send the form as application/json", HTTPStatus.UNSUPPORTED_MEDIA_TYPE)
        if not json_body and "Content-Type" in self.headers and kind in ("application/x-www-form-urlencoded", "multipart/form-data", "text/plain"):
            raise RequestError("send the photo's bytes as the request body with the file's own content type",
                               HTTPStatus.UNSUPPORTED_MEDIA_TYPE)
        if self.headers.get("Transfer-Encoding"):
            raise RequestError("send the body with a Content-Length, not chunked", HTTPStatus.LENGTH_REQUIRED)
        length = self._declared_length()
        if length is None:  # the message's framing is unknown: RFC 9112 section 6.3 says 400
            raise RequestError(f"Content-Length {self.headers.get('Content-Length', '')[:20]!r} is not a number of bytes")
        limit = self.server.app.config.max_upload_bytes
        if length > limit:
            raise RequestError(f"the upload is {length / 2**20:.1f} MiB; the limit is {limit / 2**20:g} MiB",
                               HTTPStatus.REQUEST_ENTITY_TOO_LARGE)
        self._body_read = True
        try:
            return self.rfile.read(length)
        except TimeoutError:
            raise RequestError(f"the request body did not arrive within {self.timeout:g} s", HTTPStatus.REQUEST_TIMEOUT) from None

    def _declared_length(self) -> Optional[int]:
        """The Content-Length (0 without one: HTTP/1.1 without length or chunking is an empty body); None if not a byte count.

        Only ASCII digits count (``str.isdigit`` also takes '²' and other scripts' digits), and at
        most 18 of them: longer values are no size any upload has.
        """
        text = self.headers.get("Content-Length", "0").strip()
        return int(text) if text.isascii() and text.isdigit() and len(text) <= 18 else None

    def _json(self) -> dict[str, Any]:
        try:
            fields = json.loads(self._body(json_body=True) or b"{}")
        except RecursionError:
            raise RequestError("the form is nested too deeply; send a flat JSON object") from None
        except (ValueError, UnicodeDecodeError):
            raise RequestError("the form is not valid JSON") from None
        if not isinstance(fields, dict):
            raise RequestError("the form must be a JSON object")
        return fields

    def _send(self, status: HTTPStatus, body: bytes, kind: str) -> None:
        try:
            self.send_response(status)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            self.send_header("X-Content-Type-Options", "nosniff")
            if status >= 400 and self.command == "POST":
                self.send_header("Connection", "close")  # a refused body may be unread: do not parse it as the next request
                self.close_connection = True
            self.end_headers()
            self.wfile.write(body)
            if status >= 400 and self.command == "POST" and not self._body_read:
                self._discard_body()
        except OSError:  # the page was closed or reloaded meanwhile, or stopped reading (timeout): nobody to answer
            self.close_connection = True

    def _discard_body(self, most: int = 2**28, seconds: float = 10.0) -> None:
        """Swallow, without keeping, the body of a refused request (bounded), after the answer was sent.

        Clients such as curl and urllib send the whole body before they read; closing the
        connection on them would show a reset connection instead of the server's message.
        """
        remaining = min(self._declared_length() or 0, most)
        deadline = time.monotonic() + seconds
        self.connection.settimeout(seconds)
        try:
            while remaining > 0 and time.monotonic() < deadline:
                chunk = self.rfile.read1(min(remaining, 2**16))
                if not chunk:
                    break
                remaining -= len(chunk)
        except OSError:
            pass

    def log_error(self, format: str, *args: Any) -> None:  # noqa: A002 - the stdlib's parameter name
        """Connections closed after ``request_timeout`` of silence are routine (browsers keep spare ones open): not logged."""
        if not format.startswith("Request timed out"):
            super().log_error(format, *args)

    def log_request(self, code: Any = "-", size: Any = "-") -> None:
        """Only refused requests are logged; the page polls every second."""
        if isinstance(code, int) and code >= 400:
            super().log_request(code, size)


class GuiServer(ThreadingHTTPServer):
    """The threaded HTTP server with a bound on threads: at most ``max_connections`` connections are served at once.

    A slot is taken before a connection is accepted and given back when it is shut down, so
    connections beyond the bound wait in the kernel's listen queue, holding no thread and no
    file descriptor; each served one ends after ``request_timeout`` of silence at most, so the
    queue moves even when every slot is held by a client that sends nothing.
    """

    daemon_threads = True
    request_queue_size = 128  # the listen backlog: connections waiting for a slot

    def __init__(self, app: GuiApp) -> None:
        config = app.config
        family = socket.AF_INET6 if ":" in config.host else socket.AF_INET
        self.address_family = family
        self._slots = threading.BoundedSemaphore(config.max_connections)
        try:
            super().__init__((config.host, config.port), Handler)
        except OSError as error:
            raise TexturenetError(f"cannot listen on {config.host}:{config.port} ({error.strerror or error}); "
                                  "choose another --port (or --host)") from None
        self.app = app
        extra = [name.strip().lower() for name in config.allowed_hosts.split(",")]
        self.names = {"127.0.0.1", "localhost", "::1", config.host.lower(), socket.gethostname().lower(), *filter(None, extra)}

    def get_request(self) -> tuple[socket.socket, Any]:
        """Accept a connection once a slot is free (``serve_forever`` calls this when one is waiting).

        The wait is short and raises OSError, which ``serve_forever`` takes as "nothing this
        time", so that a ``shutdown`` is not held up by busy slots.
        """
        if not self._slots.acquire(timeout=0.2):
            raise OSError("every connection slot is busy")
        try:
            return super().get_request()
        except OSError:
            self._slots.release()
            raise

    def shutdown_request(self, request: Any) -> None:
        """Close a connection and free its slot (called once for every accepted connection, however it ended)."""
        try:
            super().shutdown_request(request)
        finally:
            self._slots.release()

    def is_own_host(self, host: str) -> bool:
        """Whether ``host`` (a Host header) names this server: one of its names, or any IP address, and its port.

        A DNS-rebinding page reaches the server through the attacker's domain name, which the
        browser sends as the Host; an IP address (or this machine's own name) cannot be that name.
        """
        parts = urllib.parse.urlsplit(f"//{host}")
        try:
            port = parts.port or 80
        except ValueError:  # a port that is not a number
            return False
        if parts.netloc != host or parts.username is not None or not parts.hostname or port != self.server_port:
            return False
        if parts.hostname in self.names:
            return True
        try:
            ipaddress.ip_address(parts.hostname)
        except ValueError:
            return False
        return True


def is_loopback(host: str) -> bool:
    """Whether ``host`` names this machine only (127.0.0.0/8, ::1, localhost)."""
    try:
        return all(ipaddress.ip_address(info[4][0]).is_loopback for info in socket.getaddrinfo(host, None))
    except (OSError, ValueError):
        return False


def gui_parser() -> argparse.ArgumentParser:
    from ..cli import add_flag, finite_float

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
    add_flag(parser, GuiConfig, "request_timeout", type=finite_float)
    add_flag(parser, GuiConfig, "max_connections", type=int)
    add_flag(parser, GuiConfig, "decode_megapixels", type=finite_float)
    add_flag(parser, GuiConfig, "allowed_hosts", type=str, shown="none")
    return parser


def _serve(args: argparse.Namespace, parser: argparse.ArgumentParser) -> None:
    from ..cli import from_args

    try:
        config = from_args(GuiConfig, args)
    except ValueError as error:
        parser.error(str(error))
    if not is_loopback(config.host):
        print(f"texturenet-gui: warning: --host {config.host} is not loopback: anyone who can reach this machine can "
              "upload files, read the models and start training runs; prefer the default 127.0.0.1", file=sys.stderr, flush=True)
    app = GuiApp(config)
    server = GuiServer(app)
    host = f"[{config.host}]" if ":" in config.host else config.host
    print(f"texturenet-gui: open http://{host}:{server.server_port}/ (models from {config.checkpoint_dir}, "
          f"data under {app.root}); Ctrl-C stops", flush=True)

    def terminate(_signum: int, _frame: Any) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, terminate)
    try:
        server.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
        app.close()


def main(argv: Optional[Sequence[str]] = None) -> None:
    """Entry point of ``texturenet-gui`` and ``scripts/gui.py``."""
    from ..cli import run_command

    run_command(gui_parser(), _serve, argv)


if __name__ == "__main__":
    main()
