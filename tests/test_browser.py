"""The offline Visdom page in a real headless Chromium: it must draw the run's plots, not just load.

Needs the Debian packages ``chromium`` and the page libraries (``texturenet-visdom --install_static``).
Without them this test FAILS with the command to run, never skips silently; set
TEXTURENET_NO_BROWSER=1 to skip it on purpose (the reason is then shown by ``pytest -rs``).
"""
from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
from PIL import Image

from _visdom_server import ROOT, free_port, train_command, visdom_server

pytest.importorskip("visdom", reason="visdom is not installed: PIP_CONSTRAINT=constraints.txt pip install visdom")

CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--no-first-run", "--hide-scrollbars", "--window-size=1400,1000",
                  "--virtual-time-budget=15000"]


def chromium() -> str:
    if os.environ.get("TEXTURENET_NO_BROWSER"):
        pytest.skip("TEXTURENET_NO_BROWSER is set: the browser test of the Visdom page did NOT run")
    found = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
    if found is None:
        pytest.fail("BROWSER TEST NOT RUN: no chromium on PATH; install it with `apt-get install -y chromium chromium-driver` "
                    "(or set TEXTURENET_NO_BROWSER=1 to skip on purpose)")
    from texturenet.visdom_server import missing_static

    missing = missing_static()
    if missing:
        pytest.fail(f"BROWSER TEST NOT RUN: {len(missing)} Visdom page libraries are missing (e.g. {missing[0]}); "
                    "install them with `texturenet-visdom --install_static` (needs npm)")
    return found


def run_chromium(binary: str, profile: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([binary, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *args],
                          capture_output=True, text=True, timeout=120)


def test_offline_page_draws_the_run(tmp_path: Path) -> None:
    binary = chromium()
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
