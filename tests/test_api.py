"""The Python API (texturenet/api.py): its documented example runs, it makes the command's pictures, bad input gets the command's message."""
from __future__ import annotations

import doctest
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import texturenet
import texturenet.api
from conftest import ROOT, run_script, save_random_model
from texturenet import TexturenetError


def test_importing_the_package_loads_no_torch_and_no_model() -> None:
    code = "import sys, texturenet; texturenet.load; print(sorted(m for m in ('torch', 'numpy', 'PIL') if m in sys.modules))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert result.returncode == 0 and result.stdout.strip() == "[]", result.stderr + result.stdout


def test_the_documented_example_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The module docstring's example, in a folder holding photo.jpg (64x48), as it says; it trains a tiny model itself."""
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (48, 64, 3), dtype=np.uint8)).save(tmp_path / "photo.jpg")
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("TEXTURENET_VGG_WEIGHTS", raising=False)
    result = doctest.testmod(texturenet.api, optionflags=doctest.ELLIPSIS, raise_on_error=False)
    assert result.attempted >= 8 and result.failed == 0, result
    assert (tmp_path / "checkpoints" / "mosaic.pth").is_file()


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("models")
    save_random_model(folder / "style.pth")
    save_random_model(folder / "texture.pth", mode="texture")
    return folder


def test_a_picture_is_the_commands_picture(models: Path, tmp_path: Path) -> None:
    """Path, PIL image and array in, the same picture out, and the one ``texturenet stylize`` writes with the same strength and seed."""
    photo = tmp_path / "photo.png"
    array = np.random.default_rng(1).integers(0, 255, (37, 53, 3), dtype=np.uint8)
    Image.fromarray(array).save(photo)
    result = run_script("stylize.py", "--model", models / "style.pth", "--input", photo, "--output", tmp_path / "cli.png",
                        "--noise_factor", 0.7, "--seed", 5)
    assert result.returncode == 0, result.stderr
    model = texturenet.load(models / "style.pth")
    assert model.mode == "style" and model.max_strength == 2.0
    expected = np.asarray(Image.open(tmp_path / "cli.png"))
    for given in (str(photo), photo, Image.open(photo), array):
        picture = model.stylize(given, strength=0.7, seed=5)
        assert isinstance(picture, Image.Image) and picture.mode == "RGB"
        assert np.array_equal(np.asarray(picture), expected)


def test_a_texture_sample(models: Path) -> None:
    model = texturenet.load(models / "texture.pth", device="cpu")
    first = model.sample(40, 24, seed=3)
    assert first.size == (40, 24) and np.array_equal(np.asarray(first), np.asarray(model.sample(40, 24, seed=3)))
    assert not np.array_equal(np.asarray(first), np.asarray(model.sample(40, 24, seed=4)))


def test_bad_input_raises_the_commands_message(models: Path, tmp_path: Path, style_image: Path) -> None:
    style = texturenet.load(models / "style.pth")
    texture = texturenet.load(models / "texture.pth")
    cases = [
        (lambda: texture.stylize(style_image), "this is a texture model: give --size WxH instead of --input"),
        (lambda: style.sample(32, 32), "this is a stylisation model: give --input PHOTO (--size is for texture models)"),
        (lambda: style.stylize(style_image, strength=3), "noise factor 3 is outside 0..2, the style strengths this model was trained for"),
        (lambda: style.stylize(style_image, seed=-1), "seed must be in 0..4294967295, got -1"),
        (lambda: style.stylize(tmp_path / "nope.jpg"), "no such file"),
        (lambda: style.stylize(np.zeros((8, 8), dtype=np.uint8)), "give an (H, W, 3) uint8 RGB array"),
        (lambda: style.stylize(np.zeros((8, 8, 3))), "dtype float64"),
        (lambda: style.stylize(42), "give a file path, a PIL image or an (H, W, 3) uint8 array"),
        (lambda: texturenet.load(tmp_path / "missing.pth"), "no such checkpoint"),
        (lambda: texturenet.load(models / "style.pth", device="gpu0"), "'gpu0' is not a device name; give device=\"cpu\""),
    ]
    import torch

    if not torch.cuda.is_available():
        cases.append((lambda: texturenet.load(models / "style.pth", device="cuda"), "device='cuda' was given but CUDA is not available"))
    for call, message in cases:
        with pytest.raises(TexturenetError) as raised:
            call()
        assert message in str(raised.value) and "\n" not in str(raised.value), (message, str(raised.value))
    # the command says the same for the wrong kind of model
    shutil.copy(style_image, tmp_path / "photo.png")
    result = run_script("stylize.py", "--model", models / "texture.pth", "--input", tmp_path / "photo.png", "--output", tmp_path / "o.png")
    assert result.returncode == 2 and "this is a texture model: give --size WxH instead of --input" in result.stderr
