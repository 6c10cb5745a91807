"""Fast inference path, tiling, baseline network and the stylize CLI's --tile (issue 4)."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from texturenet.baseline import JohnsonNet
from texturenet.checkpoint import make_checkpoint, save_atomic
from texturenet.config import GeneratorConfig
from texturenet.fast import fast_generator
from texturenet.generator import PyramidGenerator
from texturenet.tiling import stylize_tiled, stylize_with_context, tile_starts

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
            expected = plain(image, noise_factor=factor, generator=torch.Generator().manual_seed(3))
            got = fast(image, noise_factor=factor, generator=torch.Generator().manual_seed(3))
            # float64: the split/sub-pixel convolutions are exact, only rounding differs.
            assert torch.allclose(got, expected, atol=1e-9, rtol=0), (got - expected).abs().max()


def test_fast_generator_float32_close_and_state_dict_unchanged() -> None:
    plain = _trained_like(GeneratorConfig())
    keys = list(plain.state_dict())
    fast = fast_generator(plain)
    assert list(plain.state_dict()) == keys and list(fast.state_dict()) == keys
    image = torch.rand(1, 3, 96, 128)
    with torch.no_grad():
        expected = plain(image, noise_factor=0)
        diff = (fast(image, noise_factor=0) - expected).abs().max().item()
    # float32 rounding, amplified by six instance norms; float64 agreement above shows it is only rounding.
    assert diff < 1e-3 * expected.abs().max().item()
    with pytest.raises(RuntimeError):
        fast.train()


def test_fast_generator_texture_mode_odd_size_falls_back_exactly() -> None:
    plain = _trained_like(GeneratorConfig(mode="texture", scales=3, padding="circular"))
    fast = fast_generator(plain)
    with torch.no_grad():
        for size in ((40, 40), (37, 29)):
            a = plain(size=size, generator=torch.Generator().manual_seed(1))
            b = fast(size=size, generator=torch.Generator().manual_seed(1))
            assert torch.allclose(a, b, atol=1e-4 * a.abs().max().item())


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


def test_tiling_with_whole_photo_context_is_exact_for_one_window_and_closer_for_many() -> None:
    """Coarse scales from the whole photo, fine statistics pooled over tiles: tiles agree with the untiled pass."""
    import texturenet.tiling as tiling

    generator = fast_generator(_trained_like(GeneratorConfig()))
    rng = np.random.default_rng(1)
    photo = np.kron(rng.integers(0, 256, size=(12, 16, 3)), np.ones((16, 16, 1))).astype(np.uint8)  # 192 x 256
    photo = np.clip(photo.astype(int) + rng.integers(-20, 21, size=photo.shape), 0, 255).astype(np.uint8)

    def whole(image: np.ndarray) -> np.ndarray:
        out = generator(torch.from_numpy(image).permute(2, 0, 1)[None].float() / 255, noise_factor=0)
        return out.clamp(0, 1)[0].permute(1, 2, 0).mul(255).round().numpy()

    untiled = whole(photo)
    with torch.no_grad():
        for pixels in (96 * 128, 24 * 32):  # context at scale 1, then at scale 3
            tiling.CONTEXT_PIXELS = pixels
            one = stylize_with_context(generator, photo, 256, 32, noise_factor=0, progress=False)
            assert np.abs(one - untiled).max() <= 1  # a single window: the untiled computation, split in two
        own = stylize_tiled(lambda w, y, x: generator(w, noise_factor=0), photo, 96, 16, progress=False)
        shared = stylize_with_context(generator, photo, 96, 16, noise_factor=0, progress=False)
    tiling.CONTEXT_PIXELS = 1024 * 1024
    assert shared.shape == photo.shape
    own_error, shared_error = np.abs(own - untiled).mean(), np.abs(shared - untiled).mean()
    assert shared_error < 0.5 * own_error, (shared_error, own_error)  # measured: 22 against 90 grey levels


def test_johnson_baseline_shape_and_size() -> None:
    net = JohnsonNet().eval()
    params = sum(p.numel() for p in net.parameters())
    assert 1.6e6 < params < 1.8e6  # Johnson et al. 2016: ~1.68M parameters
    pyramid = sum(p.numel() for p in PyramidGenerator(GeneratorConfig()).parameters())
    assert 12 < params / pyramid < 16  # "~15x fewer parameters"
    with torch.no_grad():
        assert net(torch.rand(1, 3, 64, 48)).shape == (1, 3, 64, 48)


@pytest.fixture()
def checkpoint(tmp_path: Path) -> Path:
    path = tmp_path / "style.pth"
    save_atomic(make_checkpoint(_trained_like(GeneratorConfig(scales=4)), "style", 1), path)
    return path


def _stylize(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ROOT / "scripts" / "stylize.py"), *args], capture_output=True, text=True, timeout=120)


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
    assert bad.returncode == 2 and "--tile" in bad.stderr and "Traceback" not in bad.stderr


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


def test_mixed_precision_losses_close_to_float32() -> None:
    """--amp numerics: every loss term under bfloat16 autocast within 1% of float32 (measured: at most 0.5%)."""
    from texturenet.config import LossConfig
    from texturenet.losses import PerceptualLoss

    torch.manual_seed(0)
    generator = _trained_like(GeneratorConfig()).train()
    loss = PerceptualLoss(LossConfig(vgg_weights="random", diversity_weight=1.0))
    loss.set_style(torch.rand(1, 3, 96, 96))
    photos = torch.rand(2, 3, 64, 64).repeat(2, 1, 1, 1)
    results = {}
    for amp in (False, True):
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=amp):
            output = generator(photos, generator=torch.Generator().manual_seed(5))
            terms = loss(output, loss.content_targets(photos), inputs=2)
        assert terms["total"].dtype == torch.float32
        results[amp] = {name: value.item() for name, value in terms.items()}
    for name, exact in results[False].items():
        assert abs(results[True][name] - exact) <= 0.01 * abs(exact) + 1e-6, (name, results[True][name], exact)


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
