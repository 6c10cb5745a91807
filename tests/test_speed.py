"""Fast inference path, tiling and the stylize CLI's --tile (issue 4; the baseline network is tests/test_johnson.py's)."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from texturenet.model.checkpoint import make_checkpoint, save_atomic
from texturenet.config import GeneratorConfig
from texturenet.model.fused import fast_generator, instance_stats
from texturenet.model.pyramid import PyramidGenerator
from texturenet.model.noise import IndependentNoise
from texturenet.model.tiled import stylize_tiled, stylize_with_context, tile_starts

ROOT = Path(__file__).resolve().parent.parent


def _trained_like(config: GeneratorConfig, seed: int = 0) -> PyramidGenerator:
    """A generator with non-trivial weights (random affine norms too), as training would leave it."""
    torch.manual_seed(seed)
    generator = PyramidGenerator(config)
    with torch.no_grad():
        for parameter in generator.parameters():
            parameter.add_(0.2 * torch.randn_like(parameter))
        for module in generator.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.running_mean.uniform_(-0.5, 0.5)
                module.running_var.uniform_(0.5, 2.0)
    return generator.eval()


@pytest.mark.parametrize(
    "config",
    [
        GeneratorConfig(),
        GeneratorConfig(scales=4, channels=6, norm="batch", activation="relu"),
        GeneratorConfig(scales=3, padding="circular"),
        GeneratorConfig(scales=3, padding="zeros", noise_depth=0),
    ],
    ids=["default", "batchnorm-relu", "circular", "zeros-nonoise"],
)
def test_fast_generator_computes_the_same_function(config: GeneratorConfig) -> None:
    plain = _trained_like(config).double()
    fast = fast_generator(plain)
    image = torch.rand(2, 3, 70, 45, dtype=torch.float64)  # not a multiple of 2^(K-1): padding path too
    with torch.no_grad():
        for factor in (0.0, 1.0):
            expected = plain(image, strength=factor, noise=IndependentNoise(torch.Generator().manual_seed(3)))
            got = fast(image, strength=factor, noise=IndependentNoise(torch.Generator().manual_seed(3)))
            # float64: the split/sub-pixel convolutions are exact, only rounding differs.
            assert torch.allclose(got, expected, atol=1e-9, rtol=0), (got - expected).abs().max()


def test_fast_generator_float32_close_and_state_dict_unchanged() -> None:
    plain = _trained_like(GeneratorConfig())
    state = {name: value.clone() for name, value in plain.state_dict().items()}
    fast = fast_generator(plain)
    assert plain.state_dict().keys() == state.keys() and all(torch.equal(v, state[k]) for k, v in plain.state_dict().items())
    image = torch.rand(1, 3, 96, 128)
    with torch.no_grad():
        expected = plain(image, strength=0)
        got = fast(image, strength=0)
        diff = (got - expected).abs().max().item()
        # float32 rounding, amplified by six instance norms; float64 agreement above shows it is only rounding.
        assert diff < 1e-3 * expected.abs().max().item()
        for parameter in plain.parameters():  # the network trained on: the fused body keeps the weights it was built from
            parameter.add_(1.0)
        assert torch.equal(fast(image, strength=0), got)
    assert not isinstance(fast, torch.nn.Module)  # inference only: nothing to train


def test_fast_generator_texture_mode_odd_size_falls_back_exactly() -> None:
    plain = _trained_like(GeneratorConfig(mode="texture", scales=3, padding="circular"))
    fast = fast_generator(plain)
    with torch.no_grad():
        for size in ((40, 40), (37, 29)):
            a = plain(size=size, noise=IndependentNoise(torch.Generator().manual_seed(1)))
            b = fast(size=size, noise=IndependentNoise(torch.Generator().manual_seed(1)))
            assert torch.allclose(a, b, atol=1e-4 * a.abs().max().item())


def test_norm_input_stops_the_fine_pass_at_each_instance_norm() -> None:
    """Tiling's interface (model/tiled.py TiledBody): norm_input(j) returns what the fine pass's norm j normalises, for every j."""
    config = GeneratorConfig(scales=4)
    body = fast_generator(_trained_like(config)).body
    inputs = [torch.rand(2, config.image_channels + config.noise_depth, 64 >> k, 96 >> k) for k in range(config.scales)]
    context = body.context(inputs, 2)
    seen: list[torch.Tensor] = []
    body.fine(context, inputs, 2, statistics=lambda j, x: seen.append(x.clone()) or instance_stats(x))
    assert len(seen) == body.instance_norms(2) == 2 * (3 + 1 + 4)  # per scale: branch, its join's norm of it, the join
    for j, expected in enumerate(seen):
        assert torch.equal(body.norm_input(context, inputs, 2, j), expected), j
    with pytest.raises(ValueError):
        body.norm_input(context, inputs, 2, len(seen))


def test_tile_starts_cover_with_overlap() -> None:
    for length, tile, overlap in ((1000, 256, 32), (257, 256, 32), (100, 256, 32), (4096, 1024, 128)):
        starts = tile_starts(length, tile, overlap)
        size = min(tile, length)
        assert starts[0] == 0 and starts[-1] + size == length
        assert all(b - a <= tile - overlap for a, b in zip(starts, starts[1:]))
        for align in (8, 32):  # aligned starts: the last window may pass the end by less than align
            starts = tile_starts(length, tile, overlap, align)
            assert starts[0] == 0 and all(s % align == 0 for s in starts)
            assert length <= starts[-1] + size < length + align or size == length
            assert all(b - a <= tile - overlap for a, b in zip(starts, starts[1:]))


def test_tiling_blends_to_identity_and_matches_untiled_for_pointwise_maps() -> None:
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, size=(150, 333, 3), dtype=np.uint8)
    assert np.array_equal(stylize_tiled(lambda x, y, z: x, image, 64, 16, progress=False), image)
    inverted = stylize_tiled(lambda x, y, z: 1 - x, image, 64, 8, progress=False)
    assert np.array_equal(inverted, 255 - image)
    # aligned windows that pass the edge: read reflected, the extra output dropped
    assert np.array_equal(stylize_tiled(lambda x, y, z: x, image, 64, 16, progress=False, align=16), image)
    with pytest.raises(ValueError):
        stylize_tiled(lambda x, y, z: x, image, 64, 32, progress=False)


def _blocky_photo(height: int, width: int, seed: int = 1) -> np.ndarray:
    """A photo-like test image: 16-pixel blocks of colour (large-scale structure) plus pixel noise."""
    rng = np.random.default_rng(seed)
    photo = np.kron(rng.integers(0, 256, size=(-(-height // 16), -(-width // 16), 3)), np.ones((16, 16, 1)))[:height, :width]
    return np.clip(photo + rng.integers(-20, 21, size=photo.shape), 0, 255).astype(np.uint8)


def _untiled(generator: torch.nn.Module, image: np.ndarray, strength: float = 0.0) -> np.ndarray:
    with torch.no_grad():
        out = generator(torch.from_numpy(image).permute(2, 0, 1)[None].float() / 255, strength=strength)
    return out.clamp(0, 1)[0].permute(1, 2, 0).mul(255).round().numpy()


@pytest.mark.slow
@pytest.mark.parametrize("norm,noise_depth,factor", [("instance", 3, 0.0), ("batch", 3, 0.0), ("instance", 0, 0.7)],
                         ids=["instance", "batch", "strength-0.7"])
def test_tiled_is_the_untiled_picture_at_every_context_level(norm: str, noise_depth: int, factor: float,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """Coarse scales from the whole photo, statistics gathered layer by layer over every tile's core, and margins
    past the reach of the windows' borders: many tiles give the untiled picture (batch norm: nothing to gather).
    Without noise input, a style strength other than 0 conditions every tile's norms as it does the untiled pass's."""
    import texturenet.model.tiled as tiling

    generator = fast_generator(_trained_like(GeneratorConfig(norm=norm, noise_depth=noise_depth)))
    photo = _blocky_photo(200, 296)  # padded to 224 x 320 by the untiled pass
    untiled = _untiled(generator, photo, factor)
    windows = []
    fine = generator.body.fine
    monkeypatch.setattr(generator.body, "fine", lambda *args, **kwargs: windows.append(args[0].shape) or fine(*args, **kwargs))
    for level in (1, 2, 3):
        monkeypatch.setattr(tiling, "CONTEXT_PIXELS", -(-200 // 2**level) * -(-296 // 2**level))
        windows.clear()
        with torch.no_grad():
            tiled = stylize_with_context(generator, photo, 96, 16, strength=factor, progress=False)
        assert windows[0][-1] * 2**level < 320  # really tiled, with crops of the scale-``level`` context
        assert len(windows) >= 4
        assert np.abs(tiled - untiled).max() <= 1, (level, np.abs(tiled - untiled).max())
    if norm == "instance":  # what this fixes: tiles run alone, each with its own statistics, coarse scales and noise
        with torch.no_grad():
            alone = stylize_tiled(lambda w, y, x: generator(w, strength=factor), photo, 96, 16, progress=False)
        assert np.abs(alone - untiled).mean() > 10
    if factor:  # and the strength matters: the same tiles at strength 0 give another picture
        with torch.no_grad():
            assert np.abs(stylize_with_context(generator, photo, 96, 16, strength=0.0, progress=False) - untiled).mean() > 1


def test_positional_noise_agrees_where_windows_overlap_and_tiles_do_not_change_the_picture() -> None:
    from texturenet.model.noise import positional_noise

    big = positional_noise(7, 0, 100, 60, 100, 140, 3)
    assert torch.equal(big[..., 30:, 40:], positional_noise(7, 0, 130, 100, 70, 100, 3))
    assert not torch.equal(big, positional_noise(8, 0, 100, 60, 100, 140, 3))  # the seed matters
    assert not torch.equal(big, positional_noise(7, 1, 100, 60, 100, 140, 3))  # and so does the scale
    assert 0 <= big.min() and big.max() < 1 and abs(big.mean().item() - 0.5) < 0.02
    generator = fast_generator(_trained_like(GeneratorConfig()))
    photo = _blocky_photo(200, 296)
    with torch.no_grad():
        tiled = [stylize_with_context(generator, photo, tile, 16, strength=1.0, rng=torch.Generator().manual_seed(3),
                                      progress=False).astype(int) for tile in (96, 128)]
        other_seed = stylize_with_context(generator, photo, 96, 16, strength=1.0, rng=torch.Generator().manual_seed(4),
                                          progress=False).astype(int)
    assert np.abs(tiled[0] - tiled[1]).max() <= 1  # noise 1: the same picture whatever the tile size
    assert np.abs(tiled[0] - other_seed).mean() > 1  # while the seed still changes it


@pytest.fixture()
def checkpoint(tmp_path: Path) -> Path:
    path = tmp_path / "style.pth"
    save_atomic(make_checkpoint(_trained_like(GeneratorConfig(scales=4)), "style", 1), path)
    return path


def _stylize(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ROOT / "scripts" / "stylize.py"), *args], capture_output=True, text=True, timeout=120)


@pytest.mark.slow
def test_stylize_cli_tile_and_folder(tmp_path: Path, checkpoint: Path) -> None:
    photos = tmp_path / "photos"
    photos.mkdir()
    rng = np.random.default_rng(2)
    for i, size in enumerate(((300, 200), (64, 96), (130, 130))):
        Image.fromarray(rng.integers(0, 256, size=(size[1], size[0], 3), dtype=np.uint8)).save(photos / f"p{i}.png")
    (photos / "broken.jpg").write_bytes(b"not an image")
    tiled, whole = tmp_path / "tiled", tmp_path / "whole"
    result = _stylize("--model", str(checkpoint), "--input", str(photos), "--output", str(tiled), "--tile", "128", "--noise_factor", "0")
    assert result.returncode == 0, result.stderr
    assert _stylize("--model", str(checkpoint), "--input", str(photos), "--output", str(whole), "--tile", "0", "--noise_factor", "0").returncode == 0
    for i, size in enumerate(((300, 200), (64, 96), (130, 130))):
        a = np.asarray(Image.open(tiled / f"p{i}.png")).astype(int)
        b = np.asarray(Image.open(whole / f"p{i}.png")).astype(int)
        assert a.shape == (size[1], size[0], 3) == b.shape
        if max(size) <= 128:
            assert np.array_equal(a, b)  # fits in one tile: not tiled at all
    assert "skipped 1 unreadable" in result.stdout + result.stderr
    bad = _stylize("--model", str(checkpoint), "--input", str(photos), "--output", str(tiled), "--tile", "10")
    assert bad.returncode == 2 and "tile must be 0 (never tile)" in bad.stderr and "Traceback" not in bad.stderr


def test_stylize_folder_batches_without_changing_a_picture(tmp_path: Path, checkpoint: Path) -> None:
    """Same-size photos share a forward pass; each still gets the noise it would get alone."""
    photos = tmp_path / "photos"
    photos.mkdir()
    rng = np.random.default_rng(3)
    sizes = [(80, 64)] * 5 + [(72, 40)] * 2 + [(80, 64)]  # runs of one size, interrupted
    for i, (width, height) in enumerate(sizes):
        Image.fromarray(rng.integers(0, 256, size=(height, width, 3), dtype=np.uint8)).save(photos / f"p{i}.png")
    outputs = {}
    for batch in ("1", "3"):
        outputs[batch] = tmp_path / f"batch{batch}"
        result = _stylize("--model", str(checkpoint), "--input", str(photos), "--output", str(outputs[batch]), "--batch_size", batch)
        assert result.returncode == 0, result.stderr
    for i, (width, height) in enumerate(sizes):
        one = np.asarray(Image.open(outputs["1"] / f"p{i}.png")).astype(int)
        three = np.asarray(Image.open(outputs["3"] / f"p{i}.png")).astype(int)
        assert one.shape == (height, width, 3)
        assert np.abs(one - three).max() <= 1  # float rounding of a batched convolution, at most one grey level
    assert len({np.asarray(Image.open(outputs["3"] / f"p{i}.png")).tobytes() for i in range(5)}) == 5  # not one picture copied
    bad = _stylize("--model", str(checkpoint), "--input", str(photos), "--output", str(tmp_path / "x"), "--batch_size", "0")
    assert bad.returncode == 2 and "batch_size" in bad.stderr and "Traceback" not in bad.stderr


@pytest.mark.slow
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16], ids=["bfloat16", "float16"])
def test_mixed_precision_losses_close_to_float32(dtype: torch.dtype) -> None:
    """--amp numerics: every loss term under autocast within 1% of float32 (measured: 0.42% bfloat16, 0.11% float16)."""
    from texturenet.config import LossConfig
    from texturenet.loss.terms import Batch, PerceptualLoss

    torch.manual_seed(0)
    generator = _trained_like(GeneratorConfig()).train()
    loss = PerceptualLoss(LossConfig(vgg_weights="random", diversity_weight=1.0))
    loss.set_style(torch.rand(1, 3, 96, 96))
    photos = torch.rand(2, 3, 64, 64).repeat(2, 1, 1, 1)
    results = {}
    for amp in (False, True):
        with torch.autocast("cpu", dtype=dtype, enabled=amp):
            output = generator(photos, noise=IndependentNoise(torch.Generator().manual_seed(5)))
            terms = loss(output, Batch(content=loss.content_targets(photos), inputs=2))
        assert terms["total"].dtype == torch.float32
        results[amp] = {name: value.item() for name, value in terms.items()}
    for name, exact in results[False].items():
        assert abs(results[True][name] - exact) <= 0.01 * abs(exact) + 1e-6, (name, results[True][name], exact)


def test_mixed_precision_choice() -> None:
    from texturenet.training.loop import mixed_precision

    cpu = torch.device("cpu")
    assert mixed_precision(cpu, True)[0] == torch.bfloat16 and not mixed_precision(cpu, True)[1].is_enabled()
    dtype, scaler = mixed_precision(cpu, True, "float16")
    assert dtype == torch.float16 and scaler.is_enabled()  # float16 always comes with loss scaling
    assert not mixed_precision(cpu, False, "float16")[1].is_enabled()


@pytest.mark.slow
def test_float16_training_scales_the_loss_and_resumes_the_scaler(tmp_path: Path, photos: Path, style_image: Path) -> None:
    """--amp --amp_dtype float16 (what GPUs without bfloat16 get): a GradScaler steps, its state is saved and resumed."""
    from conftest import TINY, run_script

    common = ("--data_dir", photos, "--texture", style_image, "--checkpoint_dir", tmp_path, "--amp", "--amp_dtype", "float16",
              "--save_every", "2", *TINY)
    result = run_script("train.py", "--iterations", "2", *common)
    assert result.returncode == 0, result.stderr
    first = torch.load(tmp_path / f"{style_image.stem}.pth", weights_only=True)
    scaler = first["train_state"]["scaler"]
    assert scaler["scale"] > 0 and scaler["_growth_tracker"] + (scaler["scale"] < 65536) >= 1  # the scaler took the steps
    result = run_script("train.py", "--iterations", "4", "--resume", tmp_path / f"{style_image.stem}.pth", *common)
    assert result.returncode == 0, result.stderr
    final = torch.load(tmp_path / f"{style_image.stem}.pth", weights_only=True)
    resumed = final["train_state"]["scaler"]
    if scaler["scale"] == resumed["scale"]:  # no overflow in between: the growth count carried on from the checkpoint
        assert resumed["_growth_tracker"] == scaler["_growth_tracker"] + 2
    assert all(value.dtype == torch.float32 and torch.isfinite(value).all() for value in final["state_dict"].values())
    bad = run_script("train.py", "--amp_dtype", "half", *TINY)
    assert bad.returncode == 2 and "--amp_dtype" in bad.stderr and "Traceback" not in bad.stderr


def test_training_with_amp_and_channels_last(tmp_path: Path, photos: Path, style_image: Path) -> None:
    """The speed flags train end to end and leave a normal float32 checkpoint that stylises."""
    from conftest import TINY, run_script

    result = run_script("train.py", "--data_dir", photos, "--texture", style_image, "--checkpoint_dir", tmp_path,
                        "--iterations", "4", "--amp", "--channels_last", *TINY)
    assert result.returncode == 0, result.stderr
    checkpoint = tmp_path / f"{style_image.stem}.pth"
    state = torch.load(checkpoint, weights_only=True)["state_dict"]
    assert all(value.dtype == torch.float32 and torch.isfinite(value).all() for value in state.values())
    assert _stylize("--model", str(checkpoint), "--input", str(next(photos.iterdir())), "--output", str(tmp_path / "out.png")).returncode == 0


@pytest.mark.parametrize("height,width", [(8, 300), (16, 400)])
def test_a_photo_thinner_than_the_coarsest_block_tiles_like_the_untiled_pass(height: int, width: int) -> None:
    """Tiling pads as the untiled pass does (the input plan's rule): an 8x300 photo in 64-pixel tiles raised before."""
    generator = fast_generator(_trained_like(GeneratorConfig(scales=4)))
    photo = (np.random.default_rng(0).random((height, width, 3)) * 255).astype(np.uint8)
    with torch.no_grad():
        tiled = stylize_with_context(generator, photo, 64, 8, strength=0.0, progress=False).astype(int)
        untiled = generator(torch.from_numpy(photo).permute(2, 0, 1)[None].float() / 255, strength=0)
    untiled = untiled[0].clamp(0, 1).mul(255).round().byte().permute(1, 2, 0).numpy().astype(int)
    assert tiled.shape == untiled.shape and np.abs(tiled - untiled).max() <= 1
