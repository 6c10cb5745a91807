"""The real scripts, run as a user runs them: training, stylising, texture sampling, bad input."""
from __future__ import annotations

import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import ROOT, TINY, run_script


def assert_clean_error(result, phrase: str) -> None:
    """Non-zero exit, one line on stderr naming the problem, no traceback."""
    assert result.returncode != 0, result.stdout
    assert "Traceback" not in result.stderr, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip() and "warning" not in line]
    assert len(lines) == 1 and phrase in lines[0], result.stderr


@pytest.fixture(scope="module")
def style_model(photos: Path, style_image: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("ck")
    result = run_script("train.py", *TINY, "--data_dir", photos, "--texture", style_image,
                        "--checkpoint_dir", out, "--iterations", 4, "--save_every", 2)
    assert result.returncode == 0, result.stderr
    assert "saved" in result.stdout
    assert "results will not be stylised" in result.stderr  # random weights are announced
    assert sorted(p.name for p in out.glob("*.pth")) == ["glass.pth", "glass_iter2.pth"]
    return out / "glass.pth"


def test_stylize_a_file_keeps_its_size_and_format(style_model: Path, tmp_path: Path) -> None:
    photo = tmp_path / "odd.jpg"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (37, 53, 3), dtype=np.uint8)).save(photo)
    for name in ("out.png", "out.jpg"):
        result = run_script("stylize.py", "--model", style_model, "--input", photo, "--output", tmp_path / name, "--noise_factor", 0.5)
        assert result.returncode == 0, result.stderr
        with Image.open(tmp_path / name) as image:
            assert image.size == (53, 37) and image.format == ("PNG" if name.endswith("png") else "JPEG")


def test_stylize_is_reproducible_and_the_noise_factor_matters(style_model: Path, photos: Path, tmp_path: Path) -> None:
    photo = next(photos.glob("*.JPG"))
    outputs = {}
    for key, factor, seed in (("a", 1, 0), ("b", 1, 0), ("c", 1, 1), ("z", 0, 0), ("y", 0, 9)):
        run_script("stylize.py", "--model", style_model, "--input", photo, "--output", tmp_path / f"{key}.png",
                   "--noise_factor", factor, "--seed", seed)
        outputs[key] = np.asarray(Image.open(tmp_path / f"{key}.png"))
    assert np.array_equal(outputs["a"], outputs["b"])
    assert not np.array_equal(outputs["a"], outputs["c"])
    assert np.array_equal(outputs["z"], outputs["y"])  # no noise: the seed does not matter


def test_stylize_a_folder_keeps_names_and_tree(style_model: Path, photos: Path, tmp_path: Path) -> None:
    result = run_script("stylize.py", "--model", style_model, "--input", photos, "--output", tmp_path / "out", "--max_size", 40)
    assert result.returncode == 0, result.stderr
    sources = sorted(p.relative_to(photos) for p in photos.rglob("*") if p.is_file())
    assert sorted(p.relative_to(tmp_path / "out") for p in (tmp_path / "out").rglob("*") if p.is_file()) == sources
    assert max(Image.open(tmp_path / "out" / sources[0]).size) <= 40


@pytest.mark.slow
def test_texture_mode_trains_from_noise_and_samples_any_size(style_image: Path, tmp_path: Path) -> None:
    result = run_script("train.py", *TINY, "--mode", "texture", "--texture", style_image, "--checkpoint_dir", tmp_path,
                        "--iterations", 3, "--name", "tex")
    assert result.returncode == 0, result.stderr
    assert torch.load(tmp_path / "tex.pth", weights_only=True)["generator_config"]["padding"] == "circular"
    result = run_script("stylize.py", "--model", tmp_path / "tex.pth", "--size", "100x60", "--output", tmp_path / "t.png")
    assert result.returncode == 0, result.stderr
    assert Image.open(tmp_path / "t.png").size == (100, 60)
    assert_clean_error(run_script("stylize.py", "--model", tmp_path / "tex.pth", "--input", style_image, "--output", tmp_path / "x.png"),
                       "texture model")


def test_a_corrupt_jpeg_among_good_ones_is_skipped_and_counted(photos: Path, style_image: Path, tmp_path: Path) -> None:
    data = tmp_path / "data"
    shutil.copytree(photos, data)
    good = next(data.glob("*.JPG")).read_bytes()
    (data / "truncated.jpg").write_bytes(good[: len(good) // 3])
    (data / "text.jpg").write_text("this is not an image")
    (data / "empty.png").write_bytes(b"")
    result = run_script("train.py", *TINY, "--data_dir", data, "--texture", style_image, "--checkpoint_dir", tmp_path / "ck",
                        "--iterations", 6, "--batch_size", 4, "--val_images", 0)
    assert result.returncode == 0, result.stderr
    skipped = {line.split()[3] for line in result.stdout.splitlines() if line.startswith("skipping unreadable image")}
    assert {Path(p).name for p in skipped} >= {"text.jpg", "empty.png"}
    assert f"skipped {len(skipped)} unreadable image file(s) in total" in result.stdout


@pytest.mark.parametrize("case", ["missing dir", "empty dir", "non-image texture", "missing texture", "cuda", "bad weights"])
def test_bad_training_input_fails_fast_with_one_line(case: str, style_image: Path, photos: Path, tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    (tmp_path / "notes.png").write_text("not an image")
    args = {
        "missing dir": ["--data_dir", tmp_path / "nope", "--texture", style_image],
        "empty dir": ["--data_dir", tmp_path / "empty", "--texture", style_image],
        "non-image texture": ["--data_dir", photos, "--texture", tmp_path / "notes.png"],
        "missing texture": ["--data_dir", photos, "--texture", tmp_path / "nope.png"],
        "cuda": ["--data_dir", photos, "--texture", style_image, "--cuda"],
        "bad weights": ["--data_dir", photos, "--texture", style_image, "--vgg_weights", tmp_path / "notes.png"],
    }[case]
    phrase = {"missing dir": "no such folder", "empty dir": "holds no images", "non-image texture": "not a readable image",
              "missing texture": "no such file", "cuda": "CUDA is not available", "bad weights": "not a readable"}[case]
    if case == "cuda" and torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    result = run_script("train.py", *TINY, *args, "--checkpoint_dir", tmp_path / "ck", "--iterations", 1)
    assert_clean_error(result, phrase)
    assert not list((tmp_path / "ck").glob("*.pth"))


def test_foreign_and_damaged_checkpoints_are_refused(tmp_path: Path, style_image: Path) -> None:
    torch.save({"weights": torch.zeros(3)}, tmp_path / "foreign.pth")
    (tmp_path / "text.pth").write_text("hello")
    for model, phrase in (("foreign.pth", "not a texturenet checkpoint"), ("text.pth", "not a readable checkpoint"),
                          ("missing.pth", "no such checkpoint")):
        assert_clean_error(run_script("stylize.py", "--model", tmp_path / model, "--input", style_image, "--output", tmp_path / "o.png"),
                           phrase)


def test_the_imagenet_default_says_how_to_give_weights_when_it_cannot_download(photos: Path, style_image: Path, tmp_path: Path) -> None:
    import os
    import subprocess
    import sys
    from conftest import ROOT
    # An unreachable proxy makes the download fail quickly and for certain, online or offline.
    env = dict(os.environ, TORCH_HOME=str(tmp_path / "hub"), HTTPS_PROXY="http://127.0.0.1:9", https_proxy="http://127.0.0.1:9")
    env.pop("TEXTURENET_VGG_WEIGHTS", None)
    result = subprocess.run([sys.executable, str(ROOT / "scripts" / "train.py"), "--data_dir", str(photos), "--texture", str(style_image),
                             "--checkpoint_dir", str(tmp_path / "ck"), "--iterations", "1", "--workers", "0"],
                            capture_output=True, text=True, timeout=300, env=env)
    assert_clean_error(result, "--vgg_weights")
    assert str(tmp_path / "hub") in result.stderr and "TEXTURENET_VGG_WEIGHTS" in result.stderr
    assert "--loss_net vgg16 --vgg_weights PATH" in result.stderr  # the fix a user with only a VGG16 file needs


def entry_points() -> dict[str, str]:
    """The console scripts of setup.cfg (name -> module:function), read from the source tree so that a new one is covered."""
    import configparser

    from conftest import ROOT

    cfg = configparser.ConfigParser()
    cfg.read(ROOT / "setup.cfg")
    lines = [line.split("=") for line in cfg["options.entry_points"]["console_scripts"].strip().splitlines()]
    return {name.strip(): target.strip() for name, target in lines}


def test_every_help_is_typeable_and_fits(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """--help of every command: no Python ``None`` (nothing a user can type), lines within 100 columns on a 100-column
    terminal (the optimize presets' epilog included), and --style_weight says when it depends on the loss network."""
    import importlib

    monkeypatch.setenv("COLUMNS", "100")  # argparse wraps to the terminal width, which COLUMNS sets
    helps = {}
    for name, target in entry_points().items():
        module, function = target.split(":")
        with pytest.raises(SystemExit) as exited:
            getattr(importlib.import_module(module), function)(["--help"])
        assert exited.value.code == 0, name
        helps[name] = capsys.readouterr().out
    for name, text in helps.items():
        assert "None" not in text, (name, [line for line in text.splitlines() if "None" in line])
        assert max(map(len, text.splitlines())) <= 100, (name, [line for line in text.splitlines() if len(line) > 100])
    assert "Presets" in helps["texturenet-optimize"]
    for name in ("texturenet-train", "texturenet-optimize"):
        style_weight = " ".join(helps[name].split("\n  --style_weight STYLE_WEIGHT")[1].split("\n  --tv_weight")[0].split())
        assert "--loss_scale relative" in style_weight and "depends on the loss network" in style_weight, style_weight
        assert "--loss_net" in style_weight and "--vgg_weights" in style_weight, style_weight


def test_code_map_matches_the_tree() -> None:
    """Every module of the package has its line in the code map (docs/CODEMAP.md), and the map names no module that is gone."""
    readme = (ROOT / "docs" / "CODEMAP.md").read_text()
    listed = set(re.findall(r"`(texturenet/[\w/]+\.py)`", readme))
    modules = {path.relative_to(ROOT).as_posix() for path in (ROOT / "texturenet").rglob("*.py") if path.name != "__init__.py"}
    assert listed == modules, f"not in the map: {sorted(modules - listed)}; in the map but gone: {sorted(listed - modules)}"
