"""``--residual``: the photo plus a learnt change, so that the dial's strength-0 end can be the photo (issue 22, item 5).

A fresh residual model returns the photo exactly; the option round-trips through a checkpoint and models written
before it load as plain ones; every path that computes a picture (the fast path, tiling, export) adds the photo
as the reference forward pass does; a short training run works, and texture mode refuses it in one line.
"""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import TINY, run_script, save_random_model
from texturenet.model.checkpoint import generator_config, load_checkpoint, load_generator, make_checkpoint, save_atomic
from texturenet.config import GeneratorConfig
from texturenet.model.fused import fast_generator
from texturenet.model.networks import make_generator
from texturenet.model.noise import IndependentNoise
from texturenet.model.tiled import stylize_with_context

COMPAT = Path(__file__).resolve().parent / "fixtures" / "compat"


def _changed(config: GeneratorConfig) -> torch.nn.Module:
    """A residual generator whose change is not zero (random weights everywhere, both ends of the dial apart)."""
    torch.manual_seed(0)
    generator = make_generator(config)
    with torch.no_grad():
        for parameter in generator.parameters():
            parameter.add_(0.2 * torch.randn_like(parameter))
    return generator.eval()


@pytest.mark.parametrize("kind", ["pyramid", "johnson"])
def test_a_fresh_residual_model_returns_the_photo_exactly(kind: str) -> None:
    """Its last layer starts at zero, so training starts at the identity, at every strength and with noise."""
    generator = make_generator(GeneratorConfig(generator=kind, scales=3, channels=8, residual=True)).eval()
    photos = torch.rand(2, 3, 37, 50)
    with torch.no_grad():
        for factor in (0.0, 0.5, 2.0, torch.tensor([0.0, 2.0])):
            assert torch.equal(generator(photos, strength=factor), photos)
        plain = make_generator(GeneratorConfig(generator=kind, scales=3, channels=8)).eval()
        assert (plain(photos, strength=0.0) - photos).abs().mean() > 0.01  # what a plain one starts at


@pytest.mark.parametrize("kind", ["pyramid", "johnson"])
def test_the_option_round_trips_through_a_checkpoint(tmp_path: Path, kind: str) -> None:
    path = save_random_model(tmp_path / "residual.pth", generator=kind, channels=8, residual=True)
    checkpoint = load_checkpoint(path)
    assert checkpoint["generator_config"]["residual"] is True and generator_config(checkpoint).residual
    generator = load_generator(path)
    photos = torch.rand(1, 3, 24, 40)
    with torch.no_grad():
        assert torch.equal(generator(photos, strength=0.0), photos)
    plain = save_random_model(tmp_path / "plain.pth", generator=kind, channels=8)
    assert load_checkpoint(plain)["generator_config"]["residual"] is False


def test_models_written_before_the_option_load_as_plain_ones() -> None:
    """The compat fixtures have no residual key; tests/test_compatibility.py checks they give the pictures they gave."""
    for name in ("style_instance.pth", "style_batch.pth", "texture.pth"):
        checkpoint = load_checkpoint(COMPAT / name)
        assert "residual" not in checkpoint["generator_config"]
        assert generator_config(checkpoint).residual is False and load_generator(COMPAT / name).residual is False


@pytest.mark.parametrize("kind", ["pyramid", "johnson"])
def test_with_fade_the_photo_s_share_falls_from_1_at_strength_0_to_0_at_the_top(kind: str) -> None:
    """--fade: out = (1 - s / max_strength) photo + R; a fresh model's R is 0, so the picture is that share of the photo."""
    generator = make_generator(GeneratorConfig(generator=kind, scales=3, channels=8, residual=True, fade=True)).eval()
    photos = torch.rand(2, 3, 37, 50)
    with torch.no_grad():
        assert torch.equal(generator(photos, strength=0.0), photos)
        assert torch.allclose(generator(photos, strength=0.5), 0.75 * photos)  # the default top is 2
        assert torch.equal(generator(photos, strength=2.0), torch.zeros_like(photos))
        each = generator(photos, strength=torch.tensor([0.0, 2.0]))
        assert torch.equal(each[0], photos[0]) and torch.equal(each[1], torch.zeros_like(photos[1]))
        changed = _changed(GeneratorConfig(generator=kind, scales=3, channels=8, residual=True, fade=True))
        unfaded = make_generator(GeneratorConfig(generator=kind, scales=3, channels=8, residual=True)).eval()
        unfaded.load_state_dict(changed.state_dict())
        for factor in (0.0, 0.8):  # the same network as --residual, only the photo's share differs
            same = lambda: IndependentNoise(torch.Generator().manual_seed(3))  # noqa: E731
            difference = changed(photos, strength=factor, noise=same()) - unfaded(photos, strength=factor, noise=same())
            assert torch.allclose(difference, -factor / 2 * photos, atol=1e-6)


@pytest.mark.parametrize("fade", [False, True])
def test_the_fast_path_and_tiling_add_the_photo_as_the_reference_pass_does(fade: bool) -> None:
    """float64 fast path == reference pass; tiles (context from the whole photo, shared statistics) == the untiled picture."""
    plain = _changed(GeneratorConfig(scales=4, residual=True, fade=fade)).double()
    fast = fast_generator(plain)
    photos = torch.rand(2, 3, 70, 45, dtype=torch.float64)
    with torch.no_grad():
        for factor in (0.0, 1.3, torch.tensor([0.0, 2.0], dtype=torch.float64)):
            expected = plain(photos, strength=factor, noise=IndependentNoise(torch.Generator().manual_seed(3)))
            got = fast(photos, strength=factor, noise=IndependentNoise(torch.Generator().manual_seed(3)))
            assert torch.allclose(got, expected, atol=1e-9, rtol=0), (got - expected).abs().max()
    fast = fast_generator(_changed(GeneratorConfig(scales=4, residual=True, fade=fade, noise_depth=0)))
    photo = np.random.default_rng(1).integers(0, 256, (150, 230, 3), dtype=np.uint8)
    for factor in (0.0, 0.7):
        with torch.no_grad():
            untiled = fast(torch.from_numpy(photo).permute(2, 0, 1)[None].float() / 255, strength=factor)
            tiled = stylize_with_context(fast, photo, 64, 16, strength=factor, progress=False)
        untiled = untiled.clamp(0, 1)[0].permute(1, 2, 0).mul(255).round().numpy()
        assert np.abs(tiled - untiled).max() <= 1, np.abs(tiled - untiled).max()


@pytest.mark.slow
@pytest.mark.parametrize("kind, fade", [("pyramid", False), ("johnson", False), ("pyramid", True)])
def test_export_adds_the_photo_as_pytorch_does(tmp_path: Path, kind: str, fade: bool) -> None:
    """TorchScript and pt2 (and ONNX where onnxruntime is installed): the export script's own check against PyTorch
    at strength 0, then the graph at strengths 0.7 and 2 against the eager generator."""
    model = tmp_path / "residual.pth"
    save_atomic(make_checkpoint(_changed(GeneratorConfig(generator=kind, scales=3, channels=8, noise_depth=0, residual=True, fade=fade)),
                                "residual", 1), model)
    formats = [("torchscript", "pt"), ("pt2", "pt2")]
    try:
        import onnxruntime  # noqa: F401
        import onnxscript  # noqa: F401

        formats.append(("onnx", "onnx"))
    except ImportError:
        pass
    photos = torch.rand(2, 3, 45, 71, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        eager = {f: load_generator(model)(photos, strength=f).clamp(0, 1) for f in (0.7, 2.0)}
    for fmt, suffix in formats:
        output = tmp_path / f"residual.{suffix}"
        result = run_script("export.py", "--model", model, "--format", fmt, "--output", output)
        assert result.returncode == 0, result.stderr
        assert float(re.search(r"differs from PyTorch by at most (\S+)", result.stdout).group(1)) < 1 / 255, result.stdout
        if fmt == "onnx":
            import onnxruntime

            session = onnxruntime.InferenceSession(str(output), providers=["CPUExecutionProvider"])
            run = lambda f: torch.from_numpy(session.run(None, {"image": photos.numpy(), "noise_factor": np.array(f, np.float32)})[0])  # noqa: E731
        else:
            program = torch.export.load(str(output)).module() if fmt == "pt2" else torch.jit.load(str(output))
            run = lambda f: program(photos, torch.tensor(f))  # noqa: E731
        with torch.no_grad():
            for factor, expected in eager.items():
                assert (run(factor) - expected).abs().max() < 1 / 255, (fmt, factor)


def test_a_short_training_run_with_it_works_and_texture_mode_refuses_it(tmp_path: Path, photos: Path, style_image: Path) -> None:
    result = run_script("train.py", *TINY, "--data_dir", photos, "--texture", style_image, "--checkpoint_dir", tmp_path,
                        "--name", "r", "--val_images", "1", "--iterations", "2", "--save_every", "2", "--residual")
    assert result.returncode == 0, result.stderr[-3000:]
    checkpoint = load_checkpoint(tmp_path / "r.pth")
    assert checkpoint["generator_config"]["residual"] is True
    assert checkpoint["state_dict"]["to_rgb.weight"].abs().sum() > 0  # the change has started to learn
    photo = torch.rand(1, 3, 40, 40)
    with torch.no_grad():
        assert not torch.equal(load_generator(tmp_path / "r.pth")(photo, strength=1.0), photo)
    result = run_script("stylize.py", "--model", tmp_path / "r.pth", "--input", photos / "noise0.png", "--output", tmp_path / "r.png")
    assert result.returncode == 0, result.stderr
    # Resumed without the flag, the run stays residual (the checkpoint's setting); asked otherwise, it is refused.
    result = run_script("train.py", *TINY, "--data_dir", photos, "--texture", style_image, "--checkpoint_dir", tmp_path,
                        "--name", "r", "--val_images", "1", "--iterations", "3", "--save_every", "3", "--resume", "auto")
    assert result.returncode == 0, result.stderr[-3000:]
    assert load_checkpoint(tmp_path / "r.pth")["generator_config"]["residual"] is True
    result = run_script("train.py", *TINY, "--data_dir", photos, "--texture", style_image, "--checkpoint_dir", tmp_path,
                        "--name", "r", "--iterations", "4", "--resume", "auto", "--no-residual")
    assert result.returncode != 0 and "residual True (checkpoint) vs False (now)" in result.stderr
    result = run_script("train.py", *TINY, "--mode", "texture", "--texture", style_image, "--checkpoint_dir", tmp_path / "t",
                        "--iterations", "1", "--residual")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1].endswith("texture mode has no photo; give --no-residual")
    for flags, message in ((["--fade"], "--fade fades the photo that --residual adds; give --residual too"),
                           (["--residual", "--fade", "--max_strength", "0"], "this model has none (max_strength 0); give --max_strength")):
        result = run_script("train.py", *TINY, "--data_dir", photos, "--texture", style_image, "--checkpoint_dir", tmp_path / "f",
                            "--iterations", "1", *flags)
        assert result.returncode == 2 and "Traceback" not in result.stderr
        assert result.stderr.strip().splitlines()[-1].endswith(message), result.stderr


def test_a_faded_model_round_trips_and_resumes_faded(tmp_path: Path, photos: Path, style_image: Path) -> None:
    result = run_script("train.py", *TINY, "--data_dir", photos, "--texture", style_image, "--checkpoint_dir", tmp_path,
                        "--name", "f", "--val_images", "1", "--iterations", "2", "--save_every", "2", "--residual", "--fade")
    assert result.returncode == 0, result.stderr[-3000:]
    assert generator_config(load_checkpoint(tmp_path / "f.pth")).fade
    result = run_script("train.py", *TINY, "--data_dir", photos, "--texture", style_image, "--checkpoint_dir", tmp_path,
                        "--name", "f", "--val_images", "1", "--iterations", "3", "--save_every", "3", "--resume", "auto")
    assert result.returncode == 0, result.stderr[-3000:]
    assert generator_config(load_checkpoint(tmp_path / "f.pth")).fade
    assert load_checkpoint(COMPAT / "style_instance.pth")["generator_config"].get("fade") is None
    assert generator_config(load_checkpoint(COMPAT / "style_instance.pth")).fade is False
