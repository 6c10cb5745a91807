"""An offline Visdom server for ``--viz`` (issue 3): ``texturenet visdom`` (also ``texturenet-visdom``, ``python -m texturenet visdom``).

The stock ``python -m visdom.server`` downloads its page's JavaScript, CSS and fonts from CDNs
at every start and exits when it cannot, which is what GPU boxes without internet see. This
command starts the same server without any download. ``--install_static`` fetches the page's
libraries once from the npm registry (``npm pack``, the ordinary npm client; works behind the
same mirrors and proxies as npm) at the versions visdom 0.2.4's ``download_scripts`` asks for,
and puts them where the server serves them: visdom's own ``static`` folder. After that the
stock command works offline too, because the files are there and marked as built.

Unlike the stock server it listens on loopback (127.0.0.1) unless ``--hostname`` names another
address: the server takes plots from anyone who reaches it and serves every saved environment.
And every request passes the GUI's checks first (:mod:`texturenet.apps.gui.guard`, issue 21): its
``Host`` must be a name of this server (DNS rebinding cannot read ``/env_state`` or
``/win_data``), its ``Origin``, if any, the server itself, and a state change must not come from
another site's page (a page cannot ``/delete_env``, forge plots, or open the page's websocket,
which visdom leaves open to every origin). The training monitor's Visdom client sends no
``Origin`` and is not affected.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path
from typing import Optional, Sequence

from tqdm import tqdm

from ..errors import TexturenetError
from .gui import RequestGuard, is_loopback

_GLYPHS = "glyphicons-halflings-regular"
_MATHJAX = ("MathJax.js", "config/Safe.js", "config/TeX-AMS-MML_HTMLorMML.js", "extensions/Safe.js",
            "jax/output/SVG/fonts/TeX/fontdata.js", "jax/output/SVG/jax.js",
            "jax/output/SVG/fonts/TeX/Size1/Regular/Main.js", "jax/output/SVG/config.js")

STATIC_FILES: tuple[tuple[str, str, str], ...] = (
    # (npm package@version, file in the package, path under visdom/static): visdom 0.2.4's
    # visdom/server/build.py, download_scripts(), one row per URL it fetches.
    ("jquery@3.1.1", "dist/jquery.min.js", "js/jquery.min.js"),
    ("bootstrap@3.3.7", "dist/js/bootstrap.min.js", "js/bootstrap.min.js"),
    ("bootstrap@3.3.7", "dist/css/bootstrap.min.css", "css/bootstrap.min.css"),
    *(("bootstrap@3.3.7", f"dist/fonts/{_GLYPHS}.{ext}", f"fonts/{_GLYPHS}.{ext}") for ext in ("eot", "woff2", "woff", "ttf", "svg")),
    # download_scripts saves the SVG font under its URL fragment too; with it there it downloads nothing
    ("bootstrap@3.3.7", f"dist/fonts/{_GLYPHS}.svg", f"fonts/{_GLYPHS}.svg#glyphicons_halflingsregular"),
    ("react@16.2.0", "umd/react.production.min.js", "js/react-react.min.js"),
    ("react-dom@16.2.0", "umd/react-dom.production.min.js", "js/react-dom.min.js"),
    ("react-modal@3.1.10", "dist/react-modal.min.js", "js/react-modal.min.js"),
    ("plotly.js-dist-min@2.11.1", "plotly.min.js", "js/plotly-plotly.min.js"),  # cdn.plot.ly/plotly-2.11.1.min.js
    ("sjcl@1.0.7", "sjcl.js", "js/sjcl.js"),
    ("layout-bin-packer@1.4.0", "dist/layout-bin-packer.js", "js/layout_bin_packer.js"),
    ("layout-bin-packer@1.4.0", "dist/layout-bin-packer.js.map", "js/layout-bin-packer.js.map"),
    ("d3@3.5.17", "d3.min.js", "js/d3.v3.min.js"),  # d3js.org/d3.v3.min.js is the last v3, 3.5.17
    ("d3-selection-multi@1.0.1", "build/d3-selection-multi.js", "js/d3-selection-multi.v1.js"),
    ("save-svg-as-png@1.4.17", "lib/saveSvgAsPng.js", "js/saveSvgAsPng.js"),
    ("react-resizable@1.4.6", "css/styles.css", "css/react-resizable-styles.css"),
    ("react-grid-layout@0.16.3", "css/styles.css", "css/react-grid-layout-styles.css"),
    ("classnames@2.2.5", "index.js", "fonts/classnames"),
    *(("mathjax@2.7.5", path, f"js/mathjax/2.7.5/{path}") for path in _MATHJAX),
)


def static_dir() -> Path:
    """The folder the visdom server serves its page from (inside the installed visdom package)."""
    from visdom.utils.shared_utils import get_visdom_path

    return Path(get_visdom_path("static"))


def missing_static(folder: Optional[Path] = None) -> list[str]:
    """Page libraries not yet installed (relative paths); empty when the page will work offline."""
    folder = folder or static_dir()
    return [dest for _, _, dest in STATIC_FILES if not (folder / dest).is_file()]


def install_static(npm: str = "npm", folder: Optional[Path] = None) -> Path:
    """Fetch the page's libraries with ``npm pack`` and copy the files visdom serves into ``folder``."""
    import visdom

    folder = folder or static_dir()
    if shutil.which(npm) is None:
        raise TexturenetError(f"{npm!r} not found: install Node.js and npm (Debian: apt-get install npm), then run this again")
    if not os.access(folder, os.W_OK):
        raise TexturenetError(f"cannot write to visdom's static folder {folder}: run this as the user who installed visdom")
    packages = list(dict.fromkeys(spec for spec, _, _ in STATIC_FILES))
    with tempfile.TemporaryDirectory(prefix="texturenet-visdom-") as tmp:
        print(f"fetching {len(packages)} packages from the npm registry ...", file=sys.stderr)
        result = subprocess.run([npm, "pack", "--json", "--pack-destination", tmp, *packages],
                                capture_output=True, text=True, cwd=tmp)
        if result.returncode != 0:
            last = (result.stderr.strip().splitlines() or ["no message"])[-1]
            raise TexturenetError(f"npm pack failed ({last}); check that the npm registry is reachable (npm ping)")
        tarballs = {spec: Path(tmp) / entry["filename"] for spec, entry in zip(packages, json.loads(result.stdout))}
        opened = {spec: tarfile.open(path) for spec, path in tarballs.items()}
        try:
            for spec, member, dest in tqdm(STATIC_FILES, desc="installing visdom page files", unit="file"):
                source = opened[spec].extractfile(f"package/{member}")
                if source is None:
                    raise TexturenetError(f"{spec} has no file {member}; the npm registry served an unexpected package")
                target = folder / dest
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(source.read())
        finally:
            for archive in opened.values():
                archive.close()
    (folder / "version.built").write_text(visdom.__version__)  # tells download_scripts these are in place
    return folder


def parser() -> argparse.ArgumentParser:
    from visdom.server.defaults import DEFAULT_ENV_PATH, DEFAULT_PORT

    p = argparse.ArgumentParser(
        prog="texturenet-visdom",
        description="Start a Visdom server for texturenet-train --viz without downloading anything "
        "(unlike python -m visdom.server). Run once with --install_static to install the web page's libraries.",
    )
    p.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"Port to serve on (default: {DEFAULT_PORT}).")
    p.add_argument("--hostname", default="127.0.0.1",
                   help="Address to listen on, also shown in the page address (default: 127.0.0.1, this machine only); "
                   "0.0.0.0 or :: listens on every interface, so anyone on the network can reach it (a warning says so).")
    p.add_argument("--bind_local", action="store_true",
                   help="Listen on 127.0.0.1 whatever --hostname says, as python -m visdom.server -bind_local does (default: off; "
                   "loopback is the default anyway).")
    p.add_argument("--allowed_hosts", default="",
                   help="Other names the page is opened by, comma-separated, e.g. mybox.lan; the Host of every request must be one "
                   "of them, a loopback name, --hostname, this machine's name or an IP address (default: none).")
    p.add_argument("--env_path", default=DEFAULT_ENV_PATH, help=f"Folder where environments are saved (default: {DEFAULT_ENV_PATH}).")
    p.add_argument("--install_static", action="store_true",
                   help="Install the page's JavaScript/CSS/fonts from the npm registry into visdom's static folder, then exit (default: off).")
    p.add_argument("--npm", default="npm", help="The npm command used by --install_static (default: npm).")
    return p


def _run(args: argparse.Namespace, _parser: argparse.ArgumentParser) -> None:
    if args.install_static:
        folder = install_static(args.npm)
        print(f"installed {len(STATIC_FILES)} files into {folder}; start the server with: texturenet-visdom --port {args.port}")
        return
    if not 0 < args.port < 65536:
        raise TexturenetError(f"--port must be in 1..65535, got {args.port}")
    missing = missing_static()
    if missing:
        print(f"texturenet-visdom: warning: {len(missing)} page libraries are missing (e.g. {missing[0]}), so the web page "
              "will stay blank (training can still send plots); install them once with: texturenet-visdom --install_static",
              file=sys.stderr)
    address = "127.0.0.1" if args.bind_local else args.hostname
    if not is_loopback(address):
        print(f"texturenet-visdom: warning: listening on {address}, not only on this machine: anyone on the network who can "
              f"reach port {args.port} can read every saved environment and send plots; the default 127.0.0.1 keeps it to this machine",
              file=sys.stderr, flush=True)
    serve(args.port, address, args.env_path, [args.hostname, *args.allowed_hosts.split(",")])


def serve(port: int, address: str, env_path: str, names: list[str]) -> None:
    """visdom's ``start_server`` minus the download, with the page template fixed for tornado >= 6.5; listens on ``address``.

    Every request passes :class:`RequestGuard` (``names``: the server's other names) before visdom sees it.
    """
    import tornado.web
    from tornado import ioloop
    from visdom.server.app import Application

    from .gui.guard import Guarded

    class GuardedApplication(Guarded, Application):
        guard = RequestGuard(port, [address, *names])

    class StaticFiles(tornado.web.StaticFileHandler):
        @classmethod
        def make_static_url(cls, settings: dict, path: str, include_version: bool = True) -> str:
            """visdom's page links ``static_url("../user/style.css")``; tornado >= 6.5 answers 403 for the
            whole page when asked to hash a file outside the static folder, so link that one unversioned."""
            return super().make_static_url(settings, path, include_version and not path.startswith("../"))

    # base_url "" (not visdom's DEFAULT_BASE_URL "/"): the handlers' routes are base_url + "/events" etc.
    app = GuardedApplication(port=port, base_url="", env_path=env_path)
    app.settings["static_handler_class"] = StaticFiles
    try:
        app.listen(port, max_buffer_size=1024**3, address=address)
    except OSError as error:  # in use, or an address of no interface here
        raise TexturenetError(f"cannot listen on {address}:{port} ({error.strerror or error}); choose another --port or --hostname") from None
    shown = socket.gethostname() if address in ("0.0.0.0", "::") else f"[{address}]" if ":" in address else address
    print(f"visdom server (no downloads) at http://{shown}:{port}; saving environments in {env_path}", flush=True)
    ioloop.IOLoop.current().start()


def main(argv: Optional[Sequence[str]] = None, prog: Optional[str] = None) -> None:
    """Entry point of ``texturenet visdom`` and ``texturenet-visdom``.

    The server never handles tensors, and visdom imports torch only if it can (to accept
    tensors in its client), which takes seconds: this process tells it that it cannot.
    """
    from ..cli.runner import run_command

    sys.modules.setdefault("torch", None)  # type: ignore[arg-type]  # None in sys.modules: "import torch" raises ImportError
    run_command(parser(), _run, argv, prog)


if __name__ == "__main__":
    main()
