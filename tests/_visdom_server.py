"""Real Visdom servers and real training runs for the --viz tests (shared by test_visdom and test_browser)."""
from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

ROOT = Path(__file__).resolve().parent.parent
HOST = "127.0.0.1"

# A tiny but real run: 32 px crops, 4 scales (32 / 2^3 still has room for the 3x3 convolutions), random VGG.
TINY = ["--vgg_weights", "random", "--image_size", "32", "--style_size", "32", "--scales", "4", "--batch_size", "2",
        "--workers", "0", "--log_every", "1"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def answers(port: int) -> bool:
    try:
        urllib.request.urlopen(f"http://{HOST}:{port}/", timeout=1).close()
        return True
    except OSError:
        return False


@contextmanager
def visdom_server(port: int, env_path: Path) -> Iterator[subprocess.Popen]:
    """``python -m texturenet.apps.visdom_server`` on a loopback port; stopped (and reaped) on exit."""
    process = subprocess.Popen(
        [sys.executable, "-m", "texturenet.apps.visdom_server", "--port", str(port), "--hostname", HOST,
         "--bind_local", "--env_path", str(env_path)],
        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        while not answers(port):
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the visdom server on port {port} did not start (exit status {process.poll()})")
            time.sleep(0.2)
        yield process
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def train_command(port: int, checkpoint_dir: Path, name: str, iterations: int, *extra: str) -> list[str]:
    return [sys.executable, str(ROOT / "scripts" / "train.py"), *TINY, "--iterations", str(iterations),
            "--name", name, "--checkpoint_dir", str(checkpoint_dir), "--viz", "--viz_server", f"http://{HOST}",
            "--viz_port", str(port), *extra]


def window(port: int, env: str, win: str) -> dict:
    """A window's data read back through the visdom client (``get_window_data``)."""
    import visdom

    client = visdom.Visdom(server=f"http://{HOST}", port=port, env=env, send=False, raise_exceptions=True,
                           use_incoming_socket=False)
    client.send = True
    text = client.get_window_data(win, env=env)
    return json.loads(text) if text else {}
