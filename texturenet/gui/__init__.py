"""Browser GUI (issue 7): ``texturenet-gui`` serves a page to stylise photos and start training runs.

The seed project had a small web app; this is its replacement without a web framework: the
standard library's threaded HTTP server, one static page (``assets/gui.html``) and a JSON API.
Stylising reuses :class:`texturenet.stylize.Stylizer` (loaded models are cached); training runs
the real ``texturenet-train`` entry point as a child process, so a run started here is exactly
the run the command line would make (same flags, checkpoints, sample grid, SIGINT handling).

Everything a browser sends is checked before it is used, because a page is an input like any
other: paths must resolve (symlinks and ``..`` included) under ``--data_root``, model names
must be files of the checkpoint folder, numbers must be finite and in range, uploads must be
images under the size limit (refused by ``Content-Length`` before being read), and one
training run at a time. The server listens on loopback by default; requests whose ``Host`` or
``Origin`` is not this server are refused (a web page elsewhere cannot drive it, and DNS
rebinding cannot reach it), and POSTs need a non-form content type, which browsers only send
cross-site after a CORS preflight this server never grants.
"""
from __future__ import annotations

from ..config import GuiConfig
from .app import GuiApp
from .server import GuiServer, is_loopback, main

__all__ = ["GuiApp", "GuiConfig", "GuiServer", "is_loopback", "main"]
