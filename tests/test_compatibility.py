"""Models written before the forward pass was written once (issue 14) load and give the same pictures.

The fixtures in ``tests/fixtures/compat`` (see its README) are checkpoints written by main as of
b38daff and the pictures ``texturenet-stylize`` made from them then. Each case runs the same
command with today's code: untiled and tiled, instance and batch norm, a folder in one batch,
texture samples (one cropped from a larger sample). Every picture must match within one grey level.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import ROOT, run_script

FIXTURES = ROOT / "tests" / "fixtures" / "compat"
PHOTO = FIXTURES / "photo.png"

CASES = {
    f"{model}_{name}.png": (f"{model}.pth", ["--input", PHOTO, *flags])
    for model in ("style_instance", "style_batch")
    for name, flags in (("seed3", ["--seed", "3"]), ("nf0", ["--noise_factor", "0"]), ("tiled_seed3", ["--seed", "3", "--tile", "64"]))
}
CASES["texture_40x24_seed3.png"] = ("texture.pth", ["--size", "40x24", "--seed", "3"])
CASES["texture_12x12_seed3.png"] = ("texture.pth", ["--size", "12x12", "--seed", "3"])


def _pixels(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB"), dtype=np.int16)


def _assert_same(written: Path, expected: Path) -> None:
    new, old = _pixels(written), _pixels(expected)
    assert new.shape == old.shape
    difference = np.abs(new - old)
    assert difference.max() <= 1, f"{expected.name}: {int((difference > 1).sum())} values differ by more than one grey level"


@pytest.mark.parametrize("picture", sorted(CASES))
def test_an_old_model_gives_the_picture_it_gave(picture: str, tmp_path: Path) -> None:
    model, flags = CASES[picture]
    output = tmp_path / picture
    result = run_script("stylize.py", "--model", FIXTURES / model, "--output", output, *flags)
    assert result.returncode == 0, result.stderr
    _assert_same(output, FIXTURES / picture)


def test_an_old_model_gives_a_folder_the_pictures_it_gave(tmp_path: Path) -> None:
    result = run_script("stylize.py", "--model", FIXTURES / "style_instance.pth", "--input", FIXTURES / "folder",
                        "--output", tmp_path / "out", "--seed", "3")
    assert result.returncode == 0, result.stderr
    expected = sorted((FIXTURES / "folder_seed3").iterdir())
    assert [path.name for path in sorted((tmp_path / "out").iterdir())] == [path.name for path in expected]
    for path in expected:
        _assert_same(tmp_path / "out" / path.name, path)


def test_the_check_can_fail(tmp_path: Path) -> None:
    """Another seed changes the picture by more than a grey level, so the comparison above can tell."""
    output = tmp_path / "other.png"
    assert run_script("stylize.py", "--model", FIXTURES / "style_instance.pth", "--input", PHOTO, "--output", output,
                      "--seed", "4").returncode == 0
    with pytest.raises(AssertionError):
        _assert_same(output, FIXTURES / "style_instance_seed3.png")
