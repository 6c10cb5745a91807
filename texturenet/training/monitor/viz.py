"""Streaming a run to a Visdom server (``--viz``) without ever holding up training.

Named after the flag, not ``visdom``, so that the third-party package it imports is never mistaken for it.
"""
from __future__ import annotations

import html
import json
import logging
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any, Mapping, Optional, Sequence

import numpy as np
from torch import Tensor
from tqdm import tqdm

from ...errors import TexturenetError
from ...loss.terms import DIVERSITY, TERMS, layer_losses


class _Series:
    """One line-plot window: every point logged so far, and how many the server already holds."""

    def __init__(self, title: str, legend: list[str], log_scale: bool) -> None:
        self.title, self.legend, self.log_scale = title, legend, log_scale
        self.x: list[float] = []
        self.y: list[list[float]] = []
        self.sent = 0  # points the server holds; 0 after it went away (it may have lost them all)


class VisdomMonitor:
    """Streams a run to a Visdom server (issue 3): loss, learning-rate and throughput lines, sample grids, config.

    One environment per run. The training thread only appends to in-memory lists (microseconds);
    a daemon thread sends at most every ``interval`` seconds, batching every point logged since
    the last send into one ``update='append'`` request per window, so a slow or dead server never
    blocks a training step. Every point is kept, so when the server goes away (warned once) and
    comes back, even restarted empty, the windows are redrawn whole and nothing is lost.
    ``timeout`` is a total deadline, not only a per-read one (a server that trickles a byte a second
    never trips a per-read timeout): for the check at start, for each request and for the last
    points at close, so a misbehaving server never holds up training or the end of the run (its
    lock, a GUI waiting for it). A server that answers nothing times out each read after half of it
    and counts as away (retried); a request still unfinished after all of it drops the monitor, with
    one warning, since its thread is stuck in that request.
    visdom is imported here only, so runs without ``--viz`` never load it.
    """

    LOSSES, STYLE_LAYERS, LR, SPEED, SAMPLES, TEXT = "losses", "style_layers", "lr", "throughput", "samples", "config"
    DIVERSITY = "diversity"

    def __init__(self, server: str, port: int, env: Optional[str] = None, history: Sequence[dict[str, float]] = (),
                 interval: float = 0.5, retry: float = 5.0, timeout: float = 10.0) -> None:
        self.url = f"{server.rstrip('/')}:{port}"
        try:
            import visdom
        except ImportError:
            raise TexturenetError(
                "--viz needs the visdom package: PIP_CONSTRAINT=constraints.txt pip install visdom, or drop --viz"
            ) from None
        logging.getLogger("visdom").setLevel(logging.ERROR)  # its socket and session notices are noise here
        why = _unanswered(self.url, deadline=min(timeout, 5.0))
        if why:
            raise TexturenetError(
                f"--viz: no Visdom server answers at {self.url} ({why}); start one in another terminal with "
                f"`texturenet-visdom --port {port}` (or `python -m texturenet visdom --port {port}`), "
                "or drop --viz"
            )

        class Client(visdom.Visdom):  # type: ignore[misc, name-defined]
            def _handle_post(self, url: str, data: Any = None) -> str:
                """The stock client posts without a timeout; a hung server would hang the sender forever."""
                response = self.session.post(url, data=data, timeout=timeout / 2)  # per read; the whole request: _stalled
                response.raise_for_status()
                return response.text

        self._client_class = Client
        self._client: Any = None
        self.server, self.port, self.env = server, port, env
        self._history = history  # the trainer's; holds a resumed run's earlier points when start() is called
        self.interval, self.retry, self.timeout = interval, retry, timeout
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._series: dict[str, _Series] = {}
        self._grid: Optional[tuple[int, Tensor]] = None  # the newest grid only
        self._text = ""
        self._unsent: set[str] = set()  # of SAMPLES and TEXT
        self._config: dict[str, Any] = {}
        self._checkpoints: list[str] = []
        self._closing = False
        self._down = False
        self._busy_since: Optional[float] = None  # when the request under way began (time.monotonic), None between requests
        self._dropped = False
        self._thread: Optional[threading.Thread] = None

    # -- the Monitor protocol: called on the training thread, only touches memory ------------

    def start(self, run_name: str, config: dict[str, Any]) -> None:
        self.env = self.env or run_name
        self._config = config
        self._set_text()
        with self._lock:  # a resumed run: its plots show the whole run, not only the part after the resume
            for entry in self._history:
                self._add(int(entry["iteration"]), entry, entry["lr"], None)
        tqdm.write(f"visdom: streaming this run to {self.url}/env/{self.env}")
        self._thread = threading.Thread(target=self._send_loop, name="visdom-monitor", daemon=True)
        self._thread.start()

    def log(self, iteration: int, losses: dict[str, float], lr: float, images_per_second: float) -> None:
        if self._stalled():
            return
        with self._lock:
            self._add(iteration, losses, lr, images_per_second)
        self._wake.set()

    def samples(self, iteration: int, grid: Tensor) -> None:
        if self._stalled():
            return
        with self._lock:
            self._grid = (iteration, grid)
            self._unsent.add(self.SAMPLES)
        self._wake.set()

    def checkpoint(self, iteration: int, path: Path) -> None:
        if self._stalled():
            return
        with self._lock:
            self._checkpoints.append(f"iteration {iteration}: {path}")
            self._set_text()
        self._wake.set()

    def close(self) -> None:
        """Send what is left (one more try if the server is away) within ``timeout`` seconds, then stop the sender."""
        if self._thread is None or self._stalled():
            return
        self._closing = True
        self._wake.set()
        self._thread.join(self.timeout)
        if self._thread.is_alive():  # stuck in a request that neither finishes nor fails: left behind (a daemon thread)
            self._drop(f"{self.url} did not take the last points within {self.timeout:g} s")
            return
        unsent = self._unsent_points()
        if unsent:
            tqdm.write(f"visdom: warning: {unsent} logged points were not sent ({self.url} did not answer)", file=sys.stderr)

    def _stalled(self) -> bool:
        """Whether the monitor is dropped: now, if the request under way has run past ``timeout`` seconds in all."""
        since = self._busy_since
        if not self._dropped and since is not None and time.monotonic() - since > self.timeout:
            self._drop(f"a request to {self.url} has not finished in {self.timeout:g} s")
        return self._dropped

    def _drop(self, why: str) -> None:
        """Stop streaming, with the one warning (called on the training thread only, so said once)."""
        self._dropped = True
        tqdm.write(f"visdom: warning: {why}; stopped streaming to it ({self._unsent_points()} logged points not sent; "
                   "the checkpoints and the loss CSV have them all)", file=sys.stderr)

    def _unsent_points(self) -> int:
        with self._lock:
            return sum(len(s.x) - s.sent for s in self._series.values())

    # -- the sender thread -------------------------------------------------------------------

    def _add(self, iteration: int, losses: Mapping[str, float], lr: float, images_per_second: Optional[float]) -> None:
        """One logged iteration into the in-memory series (the caller holds the lock)."""
        terms = [k for k in TERMS if k in losses]
        layers = layer_losses(losses)
        self._append(self.LOSSES, "weighted losses", terms, iteration, [losses[k] for k in terms], True)
        if layers:
            self._append(self.STYLE_LAYERS, "style loss per layer", list(layers), iteration, list(layers.values()), True)
        if DIVERSITY in losses:  # an entropy estimate: may be negative, so not on the log-scale loss plot
            self._append(self.DIVERSITY, "diversity (entropy estimate; higher is more varied)", [DIVERSITY], iteration,
                         [losses[DIVERSITY]], False)
        self._append(self.LR, "learning rate", ["lr"], iteration, [lr], True)
        if images_per_second is not None:  # not kept in checkpoints: a resumed run's throughput starts anew
            self._append(self.SPEED, "throughput (images/s)", ["images/s"], iteration, [images_per_second], False)

    def _append(self, win: str, title: str, legend: list[str], x: int, ys: list[float], log_scale: bool) -> None:
        series = self._series.setdefault(win, _Series(title, legend, log_scale))
        series.x.append(float(x))
        series.y.append([float(y) for y in ys])

    def _samples_note(self) -> str:
        texture = self._config.get("generator", {}).get("mode") == "texture"
        return "fixed noise" if texture else "inputs on top, stylised below, fixed noise"

    def _set_text(self) -> None:
        checkpoints = "<br>".join(html.escape(c) for c in self._checkpoints) or "none yet"
        config = html.escape(json.dumps(self._config, indent=2, default=str))
        self._text = f"<b>checkpoints written</b><br>{checkpoints}<br><b>configuration</b><pre>{config}</pre>"
        self._unsent.add(self.TEXT)

    def _redraw_all(self) -> None:
        """The server may have lost everything (restarted): send every window whole next time."""
        with self._lock:
            for series in self._series.values():
                series.sent = 0
            self._unsent.update((self.TEXT, self.SAMPLES) if self._grid else (self.TEXT,))

    def _send_loop(self) -> None:
        while True:
            self._wake.wait(self.retry if self._down else None)
            self._wake.clear()
            closing = self._closing
            self._busy_since = time.monotonic()
            error: Optional[Exception] = None
            try:
                self._send_pending()
            except Exception as caught:  # noqa: BLE001 - whatever the network does, training goes on
                error = caught
            self._busy_since = None
            if self._dropped:
                return  # given up on by the training thread, which said so
            if error is not None:
                if not self._down:
                    self._down = True
                    tqdm.write(
                        f"visdom: warning: lost the server at {self.url} ({type(error).__name__}); training goes on "
                        "and plotting resumes when the server is back", file=sys.stderr,
                    )
                self._redraw_all()
            elif self._down:
                tqdm.write(f"visdom: the server at {self.url} is back; plots resumed", file=sys.stderr)
                self._down = False
            if closing:
                return
            if not self._down:
                time.sleep(self.interval)  # batch the points of the next `interval` seconds into one request

    def _send_pending(self) -> None:
        env = self.env
        if self._client is None:
            # send=False skips the constructor's POST /env/<env>, which visdom 0.2.4's server answers
            # with a 500 (KeyError 'username'); the first window creates the environment anyway.
            self._client = self._client_class(
                server=self.server, port=self.port, env=env, send=False, raise_exceptions=True, use_incoming_socket=False
            )
            self._client.send = True
        client = self._client
        if self._series and client._win_exists_wrap(self.LOSSES, env) == "false":
            self._redraw_all()  # a new or restarted server, perhaps unnoticed
        with self._lock:
            pending = [(win, s, len(s.x), s.x[s.sent:], s.y[s.sent:], s.sent > 0) for win, s in self._series.items()]
            grid = self._grid if self.SAMPLES in self._unsent else None
            text = self._text if self.TEXT in self._unsent else None
            self._unsent.clear()  # a failure below calls _redraw_all, which puts them back
        for win, series, count, xs, ys, append in pending:
            if not xs:
                continue
            opts = None if append else {
                "title": series.title, "legend": series.legend, "xlabel": "iteration",
                **({"ytype": "log"} if series.log_scale else {}),
            }
            client.line(np.array(ys), np.array(xs), win=win, env=env, opts=opts, update="append" if append else None)
            series.sent = count
        if grid is not None:
            iteration, image = grid
            zoom = max(1.0, 480 / image.shape[-1])  # tiny training crops are shown enlarged
            # No caption: visdom 0.2.4 draws an image's caption twice (above and below); the title says it all.
            client.image(image.numpy(), win=self.SAMPLES, env=env, opts={
                "title": f"samples at iteration {iteration} ({self._samples_note()})",
                "width": round(image.shape[-1] * zoom), "height": round(image.shape[-2] * zoom) + 40,
            })
        if text is not None:
            client.text(text, win=self.TEXT, env=env,
                        opts={"title": "run configuration and checkpoints", "width": 480, "height": 400})


def _unanswered(url: str, deadline: float) -> str:
    """Why nothing serves HTTP at ``url`` within ``deadline`` seconds in all ("" if something does; checked before any
    model is built). urllib's timeout bounds each read, not the answer, so the request runs in a daemon thread given
    ``deadline`` seconds; one that a trickling server keeps busy is left behind and ends with the process."""
    outcome: list[str] = []

    def probe() -> None:
        try:
            with urllib.request.urlopen(url, timeout=deadline):
                outcome.append("")
        except urllib.error.HTTPError:
            outcome.append("")  # it answered, even if not with 200
        except Exception as error:  # noqa: BLE001 - refused, reset, not HTTP, a bad URL: all mean "no server here"
            reason = getattr(error, "reason", error)  # URLError wraps the socket's error
            outcome.append(getattr(reason, "strerror", None) or str(reason) or type(error).__name__)

    thread = threading.Thread(target=probe, name="visdom-check", daemon=True)
    thread.start()
    thread.join(deadline)
    return outcome[0] if outcome else f"no complete answer within {deadline:g} s"
