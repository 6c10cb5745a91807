"""Colour preservation (Gatys et al. 2016, luminance-only transfer): the maths, and the real script at odd sizes and in tiles."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import BUNDLED_PHOTOS, run_script
from texturenet.stylize.color import preserve_color, rgb_to_yiq, yiq_to_rgb


def test_yiq_round_trip_and_luminance_weights() -> None:
    rgb = np.random.default_rng(0).uniform(0, 255, (5, 7, 3))
    assert np.allclose(yiq_to_rgb(rgb_to_yiq(rgb)), rgb, atol=1e-3)
    grey = np.full((1, 1, 3), 100.0)  # grey has luminance = its value and no colour
    assert np.allclose(rgb_to_yiq(grey), [[[100.0, 0.0, 0.0]]], atol=1e-3)


def test_preserve_color_takes_luminance_from_one_and_colour_from_the_other() -> None:
    rng = np.random.default_rng(1)
    # A batch of frames; the swap moves each pixel by the luminance difference (< 60), so nothing clips.
    photo = rng.integers(100, 150, (2, 9, 11, 3), dtype=np.uint8)
    stylised = rng.integers(90, 160, (2, 9, 11, 3), dtype=np.uint8)
    result = rgb_to_yiq(preserve_color(photo, stylised))
    assert np.abs(result[..., 0] - rgb_to_yiq(stylised)[..., 0]).max() < 1.0  # uint8 rounding only
    assert np.abs(result[..., 1:] - rgb_to_yiq(photo)[..., 1:]).max() < 1.0
    with pytest.raises(ValueError, match="same shape"):
        preserve_color(photo, stylised[:, :-1])


def _odd_photo(folder: Path, width: int, height: int) -> Path:
    image = Image.open(sorted(BUNDLED_PHOTOS.glob("*.jpg"))[1]).convert("RGB").resize((width, height))
    path = folder / f"photo_{width}x{height}.png"
    image.save(path)
    return path


@pytest.mark.parametrize("size, tile", [((77, 45), None), ((203, 131), 64)], ids=["odd-size", "odd-size-tiled"])
def test_script_preserves_colour_at_any_size(tmp_path: Path, random_model: Path, size: tuple[int, int], tile: int | None) -> None:
    """Sizes not a multiple of 2^(K-1), whole and in tiles: same size out, stylised luminance, the photo's colour."""
    photo_path = _odd_photo(tmp_path, *size)
    tiling = ("--tile", tile) if tile else ()
    plain = run_script("stylize.py", "--model", random_model, "--input", photo_path, "--output", tmp_path / "plain.png", *tiling)
    kept = run_script("stylize.py", "--model", random_model, "--input", photo_path, "--output", tmp_path / "kept.png",
                      "--preserve_color", *tiling)
    assert plain.returncode == 0 and kept.returncode == 0, plain.stderr + kept.stderr
    photo, stylised, result = (np.asarray(Image.open(p)) for p in (photo_path, tmp_path / "plain.png", tmp_path / "kept.png"))
    assert result.shape == photo.shape == stylised.shape
    assert np.abs(result.astype(int) - stylised).mean() > 5  # the colours did change
    unclipped = ((result > 0) & (result < 255)).all(axis=-1)
    assert unclipped.mean() > 0.5
    yiq, photo_yiq, stylised_yiq = rgb_to_yiq(result)[unclipped], rgb_to_yiq(photo)[unclipped], rgb_to_yiq(stylised)[unclipped]
    assert np.abs(yiq[:, 0] - stylised_yiq[:, 0]).max() < 1.0
    assert np.abs(yiq[:, 1:] - photo_yiq[:, 1:]).max() < 1.0


def test_preserve_color_refuses_texture_samples(tmp_path: Path, random_model: Path) -> None:
    result = run_script("stylize.py", "--model", random_model, "--size", "32x32", "--output", tmp_path / "t.png", "--preserve_color")
    assert result.returncode == 2 and "--preserve_color needs a photo" in result.stderr and "Traceback" not in result.stderr


@pytest.mark.slow
def test_script_preserves_colour_when_tiling_automatically(tmp_path: Path, random_model: Path) -> None:
    """Above 2048x2048 pixels the photo is tiled automatically (odd sizes): same size out, the photo's colour."""
    photo_path = _odd_photo(tmp_path, 2051, 2049)
    result = run_script("stylize.py", "--model", random_model, "--input", photo_path, "--output", tmp_path / "kept.png", "--preserve_color")
    assert result.returncode == 0, result.stderr
    assert "tiles: 100%" in result.stderr  # it did tile
    photo, kept = np.asarray(Image.open(photo_path)), np.asarray(Image.open(tmp_path / "kept.png"))
    assert kept.shape == photo.shape
    unclipped = ((kept > 0) & (kept < 255)).all(axis=-1)
    yiq, photo_yiq = rgb_to_yiq(kept)[unclipped], rgb_to_yiq(photo)[unclipped]
    assert np.abs(yiq[:, 1:] - photo_yiq[:, 1:]).max() < 1.0
    assert np.abs(yiq[:, 0] - photo_yiq[:, 0]).mean() > 5  # the luminance is the stylised one
