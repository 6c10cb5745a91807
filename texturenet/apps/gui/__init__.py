"""Browser GUI (issue 7): ``texturenet-gui`` serves a page to stylise photos and start training runs.

One static page (``assets/gui.html``) and a JSON API, served by tornado (``apps/gui/server.py`` says why:
issue 21). Stylising reuses :class:`texturenet.stylize.stylizer.Stylizer` (loaded models are cached);
training runs the real ``texturenet-train`` entry point as a child process, so a run started here
is exactly the run the command line would make (same flags, checkpoints, sample grid, SIGINT
handling).

Everything a browser sends is checked before it is used, because a page is an input like any
other: paths must resolve (symlinks and ``..`` included) under ``--data_root``, model names
must be files of the checkpoint folder, numbers must be finite and in range, uploads must be
images under the size limit (refused by ``Content-Length`` before being read), and one
training run at a time. Who may ask is checked first (``apps/gui/guard.py``, shared with
``texturenet-visdom``): the server listens on loopback by default, a request whose ``Host`` or
``Origin`` is not this server is refused (a web page elsewhere cannot drive it, and DNS
rebinding cannot reach it), and every request must carry the token made at start (other users
of the machine cannot get in). POSTs need a non-form content type, which browsers only send
cross-site after a CORS preflight this server never grants.
"""
from __future__ import annotations

from ...config import GuiConfig
from .app import GuiApp
from .guard import RequestGuard, is_loopback
from .server import GuiServer, main

__all__ = ["GuiApp", "GuiConfig", "GuiServer", "RequestGuard", "is_loopback", "main"]
