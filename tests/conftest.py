"""Shared fixtures: tiny real image files, running the real scripts as subprocesses, and the browser tests' browser."""
from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared"
BUNDLED_PHOTOS = ROOT / "texturenet" / "assets" / "photos"


def needs_shared(*parts: str) -> Path:
    """Path under ../shared, or skip (with the reason shown in pytest's summary) in a user's clone."""
    path = SHARED.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"{path} not present (../shared exists beside CI's clone, not in a user's clone)")
    return path


REQUIRE_BROWSER = "TEXTURENET_REQUIRE_BROWSER"


def need_browser(what: str, *, chromedriver: bool = False, page_libraries: bool = False) -> tuple[str, str]:
    """(chromium, chromedriver) for the browser test of ``what``, or skip it saying what is missing and how to install it.

    With pip alone the README's test command must pass, and Debian's chromium is not pip's: the test is skipped,
    with the install commands in the reason that ``pytest -ra`` prints. CI installs the browser and exports
    TEXTURENET_REQUIRE_BROWSER=1 (.ci/run): there a skip would hide an untested page, so the same reason fails.
    ``chromedriver`` (with selenium) is for tests that drive the page; ``page_libraries`` for the Visdom page.
    The chromedriver path is "" when not asked for.
    """
    binary = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
    driver = shutil.which("chromedriver") if chromedriver else ""
    missing: list[str] = []
    absent = [name for name, path in (("chromium", binary), ("chromedriver", driver)) if path is None]
    if absent:
        missing.append(f"{' and '.join(absent)} not on PATH (apt-get install -y chromium chromium-driver)")
    if chromedriver and importlib.util.find_spec("selenium") is None:
        missing.append("selenium is not installed (pip install -e \".[test]\")")
    if page_libraries:
        from texturenet.apps.visdom_server import missing_static

        libraries = missing_static()
        if libraries:
            missing.append(f"{len(libraries)} Visdom page libraries are missing, e.g. {libraries[0]} "
                           "(texturenet-visdom --install_static, needs npm)")
    if missing:
        reason = f"browser test of {what} NOT RUN: " + "; ".join(missing)
        if os.environ.get(REQUIRE_BROWSER):
            pytest.fail(f"{reason}; {REQUIRE_BROWSER} is set, so this is a failure, not a skip")
        pytest.skip(f"{reason}; set {REQUIRE_BROWSER}=1 to make this a failure")
    assert binary is not None and driver is not None  # both found, else skipped or failed above
    return binary, driver


def run_script(name: str, *args: object, timeout: float = 300, cwd: Path | None = None) -> subprocess.CompletedProcess:
    """Run ``scripts/<name>`` with this Python, as a user would; returns the completed process."""
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    env.pop("TEXTURENET_VGG_WEIGHTS", None)
    return subprocess.run(
        [sys.executable, str(ROOT / "scripts" / name), *map(str, args)],
        capture_output=True, text=True, timeout=timeout, cwd=cwd or ROOT, env=env,
    )


# Small, fast settings for real training runs on CPU with a random loss network.
TINY = ("--vgg_weights", "random", "--image_size", "32", "--style_size", "32", "--batch_size", "2",
        "--workers", "0", "--scales", "3", "--style_layers", "relu1_1,relu2_1", "--content_layers", "relu2_1")


@pytest.fixture(scope="session")
def photos(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder of six small real photos (the bundled samples, shrunk), in nested folders."""
    folder = tmp_path_factory.mktemp("photos")
    for i, path in enumerate(sorted(BUNDLED_PHOTOS.glob("*.jpg"))):
        image = Image.open(path).convert("RGB")
        image.thumbnail((72, 72))
        target = folder / ("nested" if i % 2 else "") / f"{path.stem}.JPG"
        target.parent.mkdir(exist_ok=True)
        image.save(target, quality=92)
    for i in range(2):  # odd sizes, PNG
        Image.fromarray(np.random.default_rng(i).integers(0, 255, (41 + i, 57, 3), dtype=np.uint8)).save(folder / f"noise{i}.png")
    return folder


@pytest.fixture(scope="session")
def style_image(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The bundled style image, shrunk."""
    image = Image.open(ROOT / "texturenet" / "assets" / "style.png").convert("RGB").resize((48, 48))
    path = tmp_path_factory.mktemp("style") / "glass.png"
    image.save(path)
    return path


def save_random_model(path: Path, **config: object) -> Path:
    """A randomly initialised generator saved as a real checkpoint (texturenet.model.checkpoint), for inference tests."""
    import torch

    from texturenet.model.checkpoint import make_checkpoint, save_atomic
    from texturenet.config import GeneratorConfig
    from texturenet.model.networks import make_generator

    torch.manual_seed(0)
    save_atomic(make_checkpoint(make_generator(GeneratorConfig(**{"scales": 3, "channels": 4, **config})), path.stem, 0), path)
    return path


@pytest.fixture(scope="session")
def random_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small random-weight style model (3 scales, 4 channels) as a checkpoint file."""
    return save_random_model(tmp_path_factory.mktemp("model") / "random.pth")
