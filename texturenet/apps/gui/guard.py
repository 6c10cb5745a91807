"""The request checks both servers share (``texturenet-gui`` and ``texturenet-visdom``; issues 13 and 21).

A server on loopback is still reachable by every web page the user opens and by every other user
of the machine. Three checks keep them out, in this order, before a request is routed:

- ``Host`` must be a name of this server, with its port: a loopback name, the listen address,
  this machine's name, an IP address, or a name the user allowed. A DNS-rebinding page reaches
  the server through the attacker's own domain name, which the browser sends as the Host (421).
- ``Origin``, when a browser sends one, must be the server itself, and a state change (any
  method but GET/HEAD/OPTIONS) must not come from another site's page (``Sec-Fetch-Site``
  cross-site or same-site, as tornado's own ``cross_origin_protection``): other pages cannot
  drive the server, whatever content type they send (403). Clients that are no browser (the
  Visdom client of a training run, curl) send no Origin and are not affected.
- The GUI only: a secret made at each start, as Jupyter's (``token``). The address the server
  prints carries it (``/?token=...``); opening it sets an HttpOnly, SameSite=Strict cookie, and
  scripts send ``Authorization: token ...``. Other users of the machine cannot read the printed
  address, so they cannot get in (403 says how to get in).
"""
from __future__ import annotations

import hmac
import json
import ipaddress
import socket
import urllib.parse
from http import HTTPStatus
from typing import Any, Iterable, Optional

import tornado.web

from .fields import RequestError

SAFE_METHODS = ("GET", "HEAD", "OPTIONS")


def is_loopback(host: str) -> bool:
    """Whether ``host`` names this machine only (127.0.0.0/8, ::1, localhost)."""
    try:
        return all(ipaddress.ip_address(info[4][0]).is_loopback for info in socket.getaddrinfo(host, None))
    except (OSError, ValueError):
        return False


class RequestGuard:
    """Host, Origin and (optionally) token checks of one server, listening on ``port``."""

    def __init__(self, port: int, names: Iterable[str], token: Optional[str] = None) -> None:
        self.port = port
        self.names = {"127.0.0.1", "localhost", "::1", socket.gethostname().lower(), *(n.strip().lower() for n in names if n.strip())}
        self.token = token

    @property
    def cookie(self) -> str:
        """The token's cookie; named after the port, since cookies are shared by every port of a host."""
        return f"texturenet-gui-{self.port}"

    def own_host(self, host: str) -> bool:
        """Whether ``host`` (a Host header) names this server: one of its names, or any IP address, and its port.

        An IP address (or this machine's own name) cannot be a DNS-rebinding attacker's name.
        """
        parts = urllib.parse.urlsplit(f"//{host}")
        try:
            port = parts.port or 80
        except ValueError:  # a port that is not a number
            return False
        if parts.netloc != host or parts.username is not None or not parts.hostname or port != self.port:
            return False
        if parts.hostname in self.names:
            return True
        try:
            ipaddress.ip_address(parts.hostname)
        except ValueError:
            return False
        return True

    def check(self, request: Any) -> None:
        """Raise :class:`RequestError` for a request (a tornado ``HTTPServerRequest``) that must not be served."""
        headers = request.headers
        host = headers.get("Host", "")
        if not self.own_host(host):
            raise RequestError(f"Host {host[:80]!r} is not a name of this server; open http://127.0.0.1:{self.port}/ on this machine, "
                               "or start the server with --allowed_hosts NAME", HTTPStatus.MISDIRECTED_REQUEST)
        origin = headers.get("Origin")
        cross_site = headers.get("Sec-Fetch-Site", "same-origin") not in ("same-origin", "none")
        if (origin is not None and urllib.parse.urlsplit(origin).netloc != host) or (cross_site and request.method not in SAFE_METHODS):
            raise RequestError("requests from other sites' pages are refused", HTTPStatus.FORBIDDEN)
        if self.token is not None and not self.has_token(request):
            raise RequestError(f"this server needs its token: open the address texturenet-gui printed when it started "
                               f"(http://127.0.0.1:{self.port}/?token=...); scripts send the header 'Authorization: token TOKEN'",
                               HTTPStatus.FORBIDDEN)

    def has_token(self, request: Any) -> bool:
        """Whether the request carries the token: header, cookie, or (the page's address only) ``?token=``."""
        given = []
        scheme, _, value = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() in ("token", "bearer"):
            given.append(value.strip())
        morsel = request.cookies.get(self.cookie)
        if morsel is not None:
            given.append(morsel.value)
        if request.method == "GET" and request.path == "/":
            given += request.query_arguments.get("token", [])
        return any(self.matches(value) for value in given)

    def matches(self, given: str | bytes) -> bool:
        """``given`` is the token (compared in constant time: the time taken tells nothing of it)."""
        assert self.token is not None
        raw = given if isinstance(given, bytes) else given.encode("utf-8", "surrogateescape")
        return hmac.compare_digest(raw, self.token.encode())


@tornado.web.stream_request_body  # answered as soon as the headers are in: a refused body is never read
class Refused(tornado.web.RequestHandler):
    """The answer to a request :class:`RequestGuard` refused: ``{"error": ...}`` with its status, whatever the method."""

    SUPPORTED_METHODS = ("GET", "HEAD", "POST", "DELETE", "PATCH", "PUT", "OPTIONS")

    def initialize(self, error: RequestError) -> None:
        self.error = error

    def prepare(self) -> None:
        self.set_status(self.error.status)
        self.set_header("Content-Type", "application/json")
        self.set_header("Cache-Control", "no-store")
        self.set_header("X-Content-Type-Options", "nosniff")
        self.finish(json.dumps({"error": str(self.error)}))


class Guarded(tornado.web.Application):
    """A tornado application whose every request (pages, API, websockets, static files) passes ``guard`` before it is routed."""

    guard: RequestGuard

    def find_handler(self, request: Any, **kwargs: Any) -> Any:
        try:
            self.guard.check(request)
        except RequestError as error:
            return self.get_handler_delegate(request, Refused, {"error": error})
        return super().find_handler(request, **kwargs)
