"""The offline Visdom page in a real headless Chromium: it must draw the run's plots, not just load.

Needs the Debian package ``chromium`` and the page libraries (``texturenet-visdom --install_static``).
Without them it is skipped with the commands to run (``pytest -ra`` shows them); with
TEXTURENET_REQUIRE_BROWSER=1 (CI) it fails instead (conftest.need_browser).
"""
from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
from PIL import Image

from _visdom_server import ROOT, free_port, train_command, visdom_server
from conftest import need_browser

pytest.importorskip("visdom", reason="visdom is not installed: PIP_CONSTRAINT=constraints.txt pip install visdom")

CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--no-first-run", "--hide-scrollbars", "--window-size=1400,1000",
                  "--virtual-time-budget=15000"]


def run_chromium(binary: str, profile: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([binary, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *args],
                          capture_output=True, text=True, timeout=120)


def test_offline_page_draws_the_run(tmp_path: Path) -> None:
    binary, _ = need_browser("the Visdom page", page_libraries=True)
    port = free_port()
    with visdom_server(port, tmp_path / "envs"):
        result = subprocess.run(train_command(port, tmp_path / "ck", "browser", 4, "--viz_every", "2"),
                                cwd=ROOT, capture_output=True, text=True, timeout=300)
        assert result.returncode == 0, result.stderr
        page = f"http://127.0.0.1:{port}/env/browser"
        dom = run_chromium(binary, tmp_path / "profile-dom", "--dump-dom", page).stdout
        shot = tmp_path / "visdom.png"
        run_chromium(binary, tmp_path / "profile-shot", f"--screenshot={shot}", page)
    # plotly drew each of the four line plots as SVG, with our titles; the sample grid is an inline PNG
    assert dom.count('class="main-svg"') >= 4, dom[:2000]
    for title in ("weighted losses", "style loss per layer", "learning rate", "throughput (images/s)"):
        assert f">{title}<" in dom, title
    assert "data:image/png;base64," in dom and "checkpoints written" in dom
    image = Image.open(shot).convert("RGB")
    assert image.size == (1400, 1000)
    assert len(image.getcolors(1 << 20) or []) > 50  # a drawn page, not a blank or error screen
    if os.environ.get("TEXTURENET_SAVE_SCREENSHOT"):
        shutil.copy(shot, os.environ["TEXTURENET_SAVE_SCREENSHOT"])
