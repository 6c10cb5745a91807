"""``--generator johnson``: Johnson et al. 2016's residual network, on every path a style model takes.

The network itself (shape, any photo size, the strength dial), then the real scripts as subprocesses: training,
exact resume, stylising a file, a folder and a video, export to ONNX checked in onnxruntime, texturenet-evaluate;
and the refusals (texture mode, a width that is not a multiple of 4, tiling). Old checkpoints load as pyramids.
"""
from __future__ import annotations

import json
import re
import shutil
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import BUNDLED_PHOTOS, TINY, run_script, save_random_model
from texturenet.model.checkpoint import generator_config, load_checkpoint, load_generator
from texturenet.config import GeneratorConfig
from texturenet.errors import TexturenetError
from texturenet.model.pyramid import InstanceNorm, PyramidGenerator
from texturenet.model.johnson import JohnsonGenerator
from texturenet.model.networks import make_generator

COMPAT = Path(__file__).resolve().parent / "fixtures" / "compat"
JOHNSON = ("--generator", "johnson", "--channels", "8")
"""A johnson network of width 8 (stages of 2, 4 and 8 channels): tiny, the same graph as any width."""


def _conditioned(width: int = 8, noise_depth: int = 3) -> JohnsonGenerator:
    """A random johnson network whose two ends of the strength dial differ (both start equal in training)."""
    torch.manual_seed(0)
    generator = JohnsonGenerator(GeneratorConfig(generator="johnson", channels=width, noise_depth=noise_depth)).eval()
    with torch.no_grad():
        for name, value in generator.named_parameters():
            if name.endswith("weight_max") or name.endswith("bias_max"):
                value.add_(0.5 * torch.randn_like(value))
    return generator


def test_shape_is_johnsons() -> None:
    """Width 128 is Johnson et al.'s network (supplementary Table 1): 32, 64, 128 channels, 5 residual blocks, 1.68M weights."""
    generator = make_generator(GeneratorConfig(generator="johnson", channels=128))
    assert isinstance(generator, JohnsonGenerator)
    assert [layer.conv.out_channels for layer in generator.down] == [32, 64, 128]
    assert [layer.conv.kernel_size[0] for layer in generator.down] == [9, 3, 3]
    assert [layer.conv.stride[0] for layer in generator.down] == [1, 2, 2]
    assert len(generator.residuals) == 5 and generator.to_rgb.kernel_size == (9, 9)
    assert [layer.layer.conv.out_channels for layer in generator.up] == [64, 32]
    assert all(isinstance(m, InstanceNorm) and m.weight_max is not None for m in generator.modules() if isinstance(m, torch.nn.InstanceNorm2d))
    original = make_generator(GeneratorConfig(generator="johnson", channels=128, noise_depth=0, max_strength=0.0))
    params = sum(p.numel() for p in original.parameters())
    assert 1.6e6 < params < 1.8e6  # Johnson et al. 2016: ~1.68M parameters
    assert 12 < params / sum(p.numel() for p in PyramidGenerator(GeneratorConfig()).parameters()) < 16  # "~15x fewer parameters"
    assert generator.config.activation == "relu"  # the unset activation is Johnson's ReLU; the pyramid keeps leaky ReLU
    assert GeneratorConfig().activation == "leaky_relu" and GeneratorConfig().channels == 8
    assert GeneratorConfig(generator="johnson").channels == 32


@pytest.mark.parametrize("size", [(64, 96), (45, 71), (13, 20), (1, 1)])
def test_any_photo_size_comes_back_at_its_size(size: tuple[int, int]) -> None:
    generator = _conditioned()
    with torch.no_grad():
        out = generator(torch.rand(2, 3, *size), strength=1.0)
    assert out.shape == (2, 3, *size) and torch.isfinite(out).all()


def test_strength_conditions_the_norms_and_scales_the_noise() -> None:
    """As the pyramid: the noise factor is the strength, each image its own; 0 is deterministic; the dial changes the picture."""
    generator = _conditioned()
    photos = torch.rand(2, 3, 32, 40, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        zero = [generator(photos, strength=0.0) for _ in range(2)]
        assert torch.equal(zero[0], zero[1])
        # Per-image strengths (training's): each photo's result is its result alone at its strength, noise aside.
        flat = _conditioned(noise_depth=0)
        mixed = flat(photos, strength=torch.tensor([0.0, 2.0]))
        assert torch.allclose(mixed[0], flat(photos[:1], strength=0.0)[0], atol=1e-5)
        assert torch.allclose(mixed[1], flat(photos[1:], strength=2.0)[0], atol=1e-5)
        assert (flat(photos, strength=2.0) - flat(photos, strength=0.0)).abs().mean() > 1e-3  # the norms alone
        # Strength 1 is halfway between the two affine sets, exactly as generator.InstanceNorm interpolates.
        norm = flat.down[0].norm
        x = torch.randn(1, 2, 8, 8)
        halfway = torch.nn.functional.instance_norm(x) * ((norm.weight + norm.weight_max) / 2).view(1, -1, 1, 1) \
            + ((norm.bias + norm.bias_max) / 2).view(1, -1, 1, 1)
        assert torch.allclose(norm(x, torch.tensor([1.0])), halfway, atol=1e-5)


@pytest.mark.parametrize("kwargs,phrase", [
    ({"generator": "johnson", "mode": "texture", "padding": "circular"}, "texture mode needs --generator pyramid"),
    ({"generator": "johnson", "channels": 6}, "must be a multiple of 4"),
    ({"generator": "unet"}, "generator must be one of pyramid, johnson"),
])
def test_config_refuses(kwargs: dict, phrase: str) -> None:
    with pytest.raises(ValueError, match=phrase):
        GeneratorConfig(**kwargs)


def test_old_checkpoints_load_as_pyramids() -> None:
    """Every compatibility fixture (written before --generator existed, no such key) is a pyramid."""
    files = sorted(COMPAT.glob("*.pth"))
    assert files
    for path in files:
        checkpoint = load_checkpoint(path)
        assert "generator" not in checkpoint["generator_config"]
        assert generator_config(checkpoint).generator == "pyramid"
        assert type(load_generator(path)) is PyramidGenerator


def test_tiling_is_refused_and_big_photos_are_capped(tmp_path: Path) -> None:
    from texturenet.stylize.stylizer import Stylizer

    stylizer = Stylizer(save_random_model(tmp_path / "j.pth", generator="johnson", channels=8), torch.device("cpu"))
    assert stylizer.fast is stylizer.generator  # the plain forward: the fast path is the pyramid's
    assert not stylizer.tiles(3000, 3000, None) and not stylizer.tiles(5000, 5000, 0)
    with pytest.raises(TexturenetError, match="tiling is exact for pyramid models only"):
        stylizer.tiles(100, 100, 64)
    with pytest.raises(TexturenetError, match="more than the 16 megapixels a johnson model stylises in one pass .* --max_size 4096"):
        stylizer.tiles(5000, 4000, None)


def test_stylize_script_refuses_tiles_in_one_line(tmp_path: Path) -> None:
    model = save_random_model(tmp_path / "j.pth", generator="johnson", channels=8)
    result = run_script("stylize.py", "--model", model, "--input", BUNDLED_PHOTOS / "chelsea.jpg", "--output", tmp_path / "o.png",
                        "--tile", "64")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "tiling is exact for pyramid models only" in lines[0], result.stderr
    assert not (tmp_path / "o.png").exists()


def _train(folder: Path, photos: Path, style_image: Path, *args: object) -> str:
    result = run_script("train.py", *TINY, *JOHNSON, "--data_dir", photos, "--texture", style_image, "--checkpoint_dir", folder,
                        "--name", "j", "--val_images", "1", *args)
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout + result.stderr


@pytest.mark.slow
def test_train_resume_stylize_and_export(tmp_path: Path, photos: Path, style_image: Path) -> None:
    """The real scripts, end to end (about 2 minutes on 2 loaded cores): train 2 iterations, resume exactly from the
    first, stylise a file and a folder, export to ONNX and run it in onnxruntime."""
    whole, resumed = tmp_path / "whole", tmp_path / "resumed"
    log = _train(whole, photos, style_image, "--iterations", "2", "--save_every", "1")
    assert "style mode" in log
    checkpoint = torch.load(whole / "j.pth", weights_only=True)
    assert checkpoint["generator_config"]["generator"] == "johnson" and checkpoint["generator_config"]["channels"] == 8
    assert any(key.startswith("residuals.4.") for key in checkpoint["state_dict"])

    # Resume from iteration 1 without naming the generator: the checkpoint's is used, and the weights are the uninterrupted run's.
    resumed.mkdir()
    shutil.copy(whole / "j_iter1.pth", resumed / "j_iter1.pth")
    result = run_script("train.py", *TINY, "--data_dir", photos, "--texture", style_image, "--checkpoint_dir", resumed, "--name", "j",
                        "--val_images", "1", "--iterations", "2", "--save_every", "1", "--resume", "auto")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "resuming at iteration 1" in result.stdout + result.stderr
    again = torch.load(resumed / "j.pth", weights_only=True)
    assert again["generator_config"] == checkpoint["generator_config"]
    assert all(torch.equal(checkpoint["state_dict"][k], again["state_dict"][k]) for k in checkpoint["state_dict"])

    # Stylise a file and a folder: written at their sizes, not copies of the photos.
    model = whole / "j.pth"
    result = run_script("stylize.py", "--model", model, "--input", photos / "noise0.png", "--output", tmp_path / "one.png")
    assert result.returncode == 0, result.stderr
    assert Image.open(tmp_path / "one.png").size == Image.open(photos / "noise0.png").size
    result = run_script("stylize.py", "--model", model, "--input", photos, "--output", tmp_path / "all", "--noise_factor", "2")
    assert result.returncode == 0, result.stderr
    sources = sorted(p.relative_to(photos) for p in photos.rglob("*") if p.is_file())
    assert sorted(p.relative_to(tmp_path / "all") for p in (tmp_path / "all").rglob("*") if p.is_file()) == sources
    for name in sources:
        photo, picture = (np.asarray(Image.open(root / name).convert("RGB"), dtype=float) for root in (photos, tmp_path / "all"))
        assert picture.shape == photo.shape and np.abs(picture - photo).mean() > 1

    # Export to ONNX with the strength input; onnxruntime matches PyTorch (the script checks it too) at any size.
    onnxruntime = pytest.importorskip("onnxruntime", reason="the ONNX check needs onnxruntime")
    pytest.importorskip("onnxscript", reason="torch.onnx.export(dynamo=True) needs onnxscript")
    result = run_script("export.py", "--model", model, "--format", "onnx", "--output", tmp_path / "j.onnx")
    assert result.returncode == 0, result.stderr
    assert "differs from PyTorch by at most" in result.stdout
    session = onnxruntime.InferenceSession(str(tmp_path / "j.onnx"), providers=["CPUExecutionProvider"])
    generator = load_generator(model)
    for height, width in ((64, 96), (45, 71), (13, 20)):
        photo = torch.rand(2, 3, height, width, generator=torch.Generator().manual_seed(height))
        out = session.run(None, {"image": photo.numpy(), "noise_factor": np.array(0.0, np.float32)})[0]
        with torch.no_grad():
            expected = generator(photo, strength=0.0).clamp(0, 1).numpy()
        assert out.shape == expected.shape and np.abs(out - expected).max() < 1 / 255
    noisy = [session.run(None, {"image": photo.numpy(), "noise_factor": np.array(f, np.float32)})[0] for f in (0.0, 2.0)]
    assert np.abs(noisy[1] - noisy[0]).mean() > 1e-4  # the strength input reaches the noise and the norms
    for fmt, suffix in (("torchscript", "pt"), ("pt2", "pt2")):  # the script runs each and compares it with PyTorch
        result = run_script("export.py", "--model", model, "--format", fmt, "--output", tmp_path / f"j.{suffix}")
        assert result.returncode == 0, result.stderr
        assert float(re.search(r"differs from PyTorch by at most (\S+)", result.stdout).group(1)) < 1 / 255, result.stdout


@pytest.mark.slow
def test_amp_bfloat16_on_cpu_and_video(tmp_path: Path, photos: Path, style_image: Path) -> None:
    """--amp (bfloat16 autocast on the CPU) trains a johnson model; the model stylises a video frame by frame."""
    log = _train(tmp_path, photos, style_image, "--iterations", "1", "--amp", "--amp_dtype", "bfloat16")
    assert "saved" in log
    model = tmp_path / "j.pth"
    assert all(torch.isfinite(v).all() for v in torch.load(model, weights_only=True)["state_dict"].values())

    from texturenet.stylize.video import VideoWriter

    photo = np.asarray(Image.open(BUNDLED_PHOTOS / "chelsea.jpg").convert("RGB").resize((40, 30)))
    with VideoWriter(tmp_path / "clip.mp4", Fraction(10), 40, 30) as writer:
        for _ in range(3):
            writer.write(photo)
    result = run_script("stylize.py", "--model", model, "--input", tmp_path / "clip.mp4", "--output", tmp_path / "out.mkv")
    assert result.returncode == 0, result.stderr
    assert "3 frames, 40x30" in result.stdout


@pytest.mark.slow
def test_evaluate_scores_a_johnson_model(tmp_path: Path, photos: Path, style_image: Path) -> None:
    _train(tmp_path, photos, style_image, "--iterations", "1")
    result = run_script("evaluate.py", "--model", tmp_path / "j.pth", "--photos", photos, "--output_dir", tmp_path / "report",
                        "--image_size", "32", "--max_photos", "1", "--iterations", "1", "--noise_factors", "0,2",
                        "--style_scales", "1")
    assert result.returncode == 0, result.stderr
    means = json.loads((tmp_path / "report" / "results.json").read_text())["means"]
    assert {"feed-forward nf 0", "feed-forward nf 2"} <= set(means)


@pytest.mark.slow
def test_two_gloo_processes_match_one_process(tmp_path: Path) -> None:
    """DDP (torchrun, 2 CPU processes) trains the johnson network as 1 process with twice the batch (test_distributed's check)."""
    from test_distributed import _outputs, _train as _train_ranks

    one, two = tmp_path / "one", tmp_path / "two"
    _train_ranks([*JOHNSON, "--batch_size", "2", "--checkpoint_dir", str(one)])
    log = _train_ranks([*JOHNSON, "--batch_size", "1", "--checkpoint_dir", str(two)], processes=2)
    assert "x 1 x 2 processes = 2" in log.stdout + log.stderr
    assert torch.load(two / "style.pth", weights_only=True)["generator_config"]["generator"] == "johnson"
    difference = (_outputs(two / "style.pth") - _outputs(one / "style.pth")).abs()
    assert difference.mean() < 0.02 and difference.max() < 0.1, (difference.mean(), difference.max())
