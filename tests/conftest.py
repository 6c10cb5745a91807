"""Shared fixtures: tiny real image files, and running the real scripts as subprocesses."""
from __future__ import annotations

import os
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
    """A randomly initialised generator saved as a real checkpoint (texturenet.checkpoint), for inference tests."""
    import torch

    from texturenet.checkpoint import make_checkpoint, save_atomic
    from texturenet.config import GeneratorConfig
    from texturenet.generator import PyramidGenerator

    torch.manual_seed(0)
    save_atomic(make_checkpoint(PyramidGenerator(GeneratorConfig(**{"scales": 3, "channels": 4, **config})), path.stem, 0), path)
    return path


@pytest.fixture(scope="session")
def random_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small random-weight style model (3 scales, 4 channels) as a checkpoint file."""
    return save_random_model(tmp_path_factory.mktemp("model") / "random.pth")
