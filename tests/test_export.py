"""Export through the real script: ONNX in onnxruntime, torch.export (.pt2) and TorchScript in torch match the PyTorch generator at noise factor 0.

Tolerance, on outputs in [0, 1], against the PyTorch generator run on the same batch: largest
difference under one 8-bit level (1/255) and mean difference under 2e-4. Measured on these
random 6-scale generators: ONNX Runtime max 2.7e-3, mean 6e-5 (float32 rounding, amplified
by instance norm on the 2-pixel coarsest scale; PyTorch's own float32 result differs from its
float64 one by up to 1.3e-3 here); TorchScript and pt2 0. Sizes: a multiple of 32, one that is not,
and one so small that the generator replicates its edge instead of reflecting. Instance norm
must use each photo's own statistics in the graph: a photo's result in a batch with a very
different photo equals its result alone.
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np
import pytest
import torch

from conftest import run_script, save_random_model
from texturenet.model.checkpoint import load_generator


MAX_DIFFERENCE, MEAN_DIFFERENCE = 1 / 255, 2e-4
SIZES = [(64, 96), (45, 71), (13, 20)]  # (height, width)


def _photos(height: int, width: int) -> torch.Tensor:
    photos = torch.rand(2, 3, height, width, generator=torch.Generator().manual_seed(height))
    photos[1] = photos[1] * 0.3 + 0.6  # a bright, low-contrast second photo: different statistics
    return photos


def _assert_close(result: torch.Tensor, model: Path, photos: torch.Tensor) -> None:
    with torch.no_grad():
        expected = load_generator(model)(photos, strength=0.0).clamp(0, 1)
    assert result.shape == expected.shape
    difference = (result - expected).abs()
    assert difference.max() < MAX_DIFFERENCE and difference.mean() < MEAN_DIFFERENCE, (difference.max(), difference.mean())


def _assert_noise_works(run: Callable[[torch.Tensor, float], np.ndarray], model: Path) -> None:
    """The noise-factor input works: noise changes the picture about as much as PyTorch's own noise does."""
    photos = _photos(*SIZES[0])
    exported = [np.asarray(run(photos, f)) for f in (0.0, 1.0)]
    with torch.no_grad():
        generator = load_generator(model)
        pytorch = [generator(photos, strength=f).clamp(0, 1).numpy() for f in (0.0, 1.0)]
    ratio = np.abs(exported[1] - exported[0]).mean() / np.abs(pytorch[1] - pytorch[0]).mean()
    assert 0.5 < ratio < 2, ratio


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Random models of 3-4 scales: exporting and loading take time that grows with the depth (torch 2.15 on 2 CPU
    cores: 63 s for a 6-scale pt2 export and check, 36 s for 3 scales), and the graph is the same at every depth."""
    folder = tmp_path_factory.mktemp("export")
    batch = save_random_model(folder / "batch.pth", scales=4, norm="batch")
    checkpoint = torch.load(batch, weights_only=True)  # give batch norm non-trivial running statistics
    for key, value in checkpoint["state_dict"].items():
        if key.endswith("running_mean") or key.endswith("running_var"):
            value.copy_(torch.rand_like(value) + (0.5 if key.endswith("var") else -0.5))
    torch.save(checkpoint, batch)
    # The strength dial without noise input: its conditioning alone changes the picture, and noise draws cannot differ.
    strength = save_random_model(folder / "strength.pth", scales=3, noise_depth=0)
    checkpoint = torch.load(strength, weights_only=True)
    for key, value in checkpoint["state_dict"].items():
        if key.endswith("weight_max") or key.endswith("bias_max"):  # the strongest end of each norm, apart from the other
            value.add_(0.5 * torch.randn_like(value))
    torch.save(checkpoint, strength)
    return {"instance": save_random_model(folder / "instance.pth", scales=4), "batch": batch, "strength": strength}


@pytest.mark.slow
@pytest.mark.parametrize("norm", ["instance", "batch"])
def test_onnx_matches_pytorch_at_any_size(tmp_path: Path, models: dict[str, Path], norm: str) -> None:
    onnx = pytest.importorskip("onnx", reason="ONNX export needs pip install 'texturenet[export]'")
    onnxruntime = pytest.importorskip("onnxruntime", reason="the ONNX check needs onnxruntime")
    pytest.importorskip("onnxscript", reason="torch.onnx.export(dynamo=True) needs onnxscript")
    output = tmp_path / f"{norm}.onnx"
    result = run_script("export.py", "--model", models[norm], "--format", "onnx", "--output", output)
    assert result.returncode == 0, result.stderr
    assert "differs from PyTorch by at most" in result.stdout
    ops = {node.op_type for node in onnx.load(str(output)).graph.node}
    assert ("InstanceNormalization" in ops) == (norm == "instance")
    session = onnxruntime.InferenceSession(str(output), providers=["CPUExecutionProvider"])
    zero = np.array(0.0, np.float32)
    for height, width in SIZES:
        photos = _photos(height, width)
        out = session.run(None, {"image": photos.numpy(), "noise_factor": zero})[0]
        _assert_close(torch.from_numpy(out), models[norm], photos)
        alone = session.run(None, {"image": photos[1:].numpy(), "noise_factor": zero})[0]
        assert np.abs(out[1:] - alone).max() < 1e-5  # per-photo statistics, not the batch's
    _assert_noise_works(lambda photos, f: session.run(None, {"image": photos.numpy(), "noise_factor": np.array(f, np.float32)})[0],
                        models[norm])


def test_torchscript_matches_pytorch_at_any_size(tmp_path: Path, models: dict[str, Path]) -> None:
    output = tmp_path / "instance.pt"
    result = run_script("export.py", "--model", models["instance"], "--format", "torchscript", "--output", output)
    assert result.returncode == 0, result.stderr
    graph = torch.jit.load(str(output))
    for height, width in SIZES:
        photos = _photos(height, width)
        with torch.no_grad():
            _assert_close(graph(photos, torch.tensor(0.0)), models["instance"], photos)


@pytest.mark.slow
@pytest.mark.parametrize("norm", ["instance", "batch"])
def test_pt2_matches_pytorch_at_any_size_and_batch(tmp_path: Path, models: dict[str, Path], norm: str) -> None:
    output = tmp_path / f"{norm}.pt2"
    result = run_script("export.py", "--model", models[norm], "--format", "pt2", "--output", output)
    assert result.returncode == 0, result.stderr
    assert "differs from PyTorch by at most" in result.stdout
    program = torch.export.load(str(output)).module()
    for height, width in SIZES:
        photos = _photos(height, width)
        with torch.no_grad():
            out = program(photos, torch.tensor(0.0))
            _assert_close(out, models[norm], photos)
            _assert_close(program(photos[1:], torch.tensor(0.0)), models[norm], photos[1:])  # not the example's batch of 2
    with torch.no_grad():
        _assert_noise_works(lambda photos, f: program(photos, torch.tensor(f)).numpy(), models[norm])


def test_texture_model_is_refused_with_one_line(tmp_path: Path) -> None:
    model = save_random_model(tmp_path / "texture.pth", mode="texture", padding="circular")
    result = run_script("export.py", "--model", model, "--format", "onnx", "--output", tmp_path / "t.onnx")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.strip().count("\n") == 0 and "texture model" in result.stderr
    assert not (tmp_path / "t.onnx").exists()


def _run_exported(path: Path, fmt: str) -> Callable[[torch.Tensor, float], torch.Tensor]:
    """The exported file as a function of (photos, noise factor), in the runtime each format is for."""
    if fmt == "onnx":
        onnxruntime = pytest.importorskip("onnxruntime", reason="the ONNX check needs onnxruntime")
        session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        return lambda photos, f: torch.from_numpy(session.run(None, {"image": photos.numpy(), "noise_factor": np.array(f, np.float32)})[0])
    program = torch.export.load(str(path)).module() if fmt == "pt2" else torch.jit.load(str(path))
    return lambda photos, f: program(photos, torch.tensor(f))


@pytest.mark.slow
@pytest.mark.parametrize("fmt", ["pt2", "onnx", "torchscript"])
def test_the_noise_factor_input_is_the_style_strength(tmp_path: Path, models: dict[str, Path], fmt: str) -> None:
    """A model with the strength dial: the exported graph's noise_factor conditions its norms as PyTorch's does."""
    if fmt == "onnx":
        pytest.importorskip("onnx", reason="ONNX export needs pip install 'texturenet[export]'")
        pytest.importorskip("onnxscript", reason="torch.onnx.export(dynamo=True) needs onnxscript")
    output = tmp_path / f"strength.{fmt}"
    result = run_script("export.py", "--model", models["strength"], "--format", fmt, "--output", output)
    assert result.returncode == 0, result.stderr
    run = _run_exported(output, fmt)
    generator = load_generator(models["strength"])
    photos = _photos(*SIZES[1])
    with torch.no_grad():
        for factor in (0.0, 0.7, 2.0):
            expected = generator(photos, strength=factor).clamp(0, 1)
            difference = (run(photos, factor) - expected).abs()
            assert difference.max() < MAX_DIFFERENCE and difference.mean() < MEAN_DIFFERENCE, (factor, difference.max())
        assert (run(photos, 0.0) - run(photos, 0.7)).abs().mean() > 1e-3  # the input is not ignored
