"""The style-strength dial (GeneratorConfig.max_strength): trained in, refused outside its range, and absent from older models.

A model trained today draws a strength per photo and conditions its norms on it; its noise factor is that strength
at inference. Models written before the dial existed keep their meaning of the noise factor (noise amplitude only),
their architecture and their objective, also when training resumes from them.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import ROOT, TINY, run_script
from texturenet.model.checkpoint import load_checkpoint, save_atomic
from texturenet.config import GeneratorConfig
from texturenet.model.pyramid import PyramidGenerator

pytestmark = pytest.mark.filterwarnings("ignore:the loss network has random weights")
LEGACY = ROOT / "tests" / "fixtures" / "compat" / "style_instance.pth"  # written by main before the dial existed


def _train(folder: Path, photos: Path, style: Path, *flags: object) -> tuple[Path, str]:
    result = run_script("train.py", *TINY, "--data_dir", photos, "--texture", style, "--checkpoint_dir", folder, "--name", "m",
                        "--save_every", "0", *flags)
    assert result.returncode == 0, result.stderr
    return folder / "m.pth", result.stdout + result.stderr


def test_new_models_are_trained_with_the_dial_and_show_it_in_their_samples(tmp_path: Path, photos: Path, style_image: Path) -> None:
    model, _ = _train(tmp_path, photos, style_image, "--iterations", "3", "--val_images", "2", "--lr", "0.05")
    checkpoint = load_checkpoint(model)
    assert checkpoint["generator_config"]["max_strength"] == 2.0
    assert checkpoint["train_state"]["config"]["loss"]["loss_scale"] == "relative"
    state = checkpoint["state_dict"]
    ends = [(state[k[:-len("weight_max")] + "weight"], v) for k, v in state.items() if k.endswith("weight_max")]
    assert ends and any(not torch.equal(zero, strongest) for zero, strongest in ends)  # trained: the two ends, equal at first, parted
    # The sample grid: the photos, then a row for strength 0, 1 and 2 (4 rows of 2 tiles, 32 px and 4 px padding).
    grid = Image.open(tmp_path / "m_samples.png")
    assert grid.size == (2 * 36 + 4, 4 * 36 + 4)


def test_the_noise_factor_is_bounded_by_the_trained_range(tmp_path: Path, photos: Path, style_image: Path) -> None:
    model, _ = _train(tmp_path, photos, style_image, "--iterations", "1")
    photo = next(photos.glob("*.JPG"))
    for factor in ("2.5", "-0.5"):
        result = run_script("stylize.py", "--model", model, "--input", photo, "--output", tmp_path / "o.png", "--noise_factor", factor)
        assert result.returncode == 2 and "Traceback" not in result.stderr and result.stderr.strip().count("\n") == 0
        assert f"noise factor {float(factor):g} is outside 0..2, the style strengths this model was trained for" in result.stderr
        assert not (tmp_path / "o.png").exists()
    # an older model: the noise factor only scales the noise, and 2.5 is as allowed as it was
    result = run_script("stylize.py", "--model", LEGACY, "--input", photo, "--output", tmp_path / "old.png", "--noise_factor", "2.5")
    assert result.returncode == 0, result.stderr


def test_strength_moves_the_picture_smoothly() -> None:
    """Conditioned norms interpolate linearly in the strength: the picture at 0.5 lies between those at 0 and 1."""
    torch.manual_seed(0)
    generator = PyramidGenerator(GeneratorConfig(scales=3, noise_depth=0)).eval()
    with torch.no_grad():
        for name, value in generator.named_parameters():
            if name.endswith("_max"):
                value.add_(torch.randn_like(value), alpha=0.3)
        photo = torch.rand(1, 3, 40, 40)
        pictures = [generator(photo, strength=s) for s in (0.0, 0.25, 0.5, 0.75, 1.0)]
    steps = [float((b - a).abs().mean()) for a, b in zip(pictures, pictures[1:])]
    assert all(step > 1e-3 for step in steps)  # every step changes the picture
    assert max(steps) < 3 * min(steps)  # and no step jumps
    with torch.no_grad():  # one strength per image, as training draws them: each image gets its own picture
        batch = generator(photo.repeat(2, 1, 1, 1), strength=torch.tensor([0.0, 1.0]))
    assert torch.allclose(batch[:1], pictures[0], atol=1e-5) and torch.allclose(batch[1:], pictures[-1], atol=1e-5)


def test_a_legacy_checkpoint_resumes_with_its_own_architecture_and_objective(tmp_path: Path, photos: Path, style_image: Path) -> None:
    """A checkpoint without max_strength and loss_scale (as every one written before them) continues as it was trained."""
    model, _ = _train(tmp_path, photos, style_image, "--iterations", "2", "--max_strength", "0", "--loss_scale", "absolute",
                      "--style_weight", "2000")
    checkpoint = torch.load(model, weights_only=True)
    del checkpoint["generator_config"]["max_strength"]
    del checkpoint["train_state"]["config"]["loss"]["loss_scale"]
    checkpoint["train_state"]["config"]["loss"]["style_weight"] = 2000.0  # the default of its day
    save_atomic(checkpoint, model)
    resumed, log = _train(tmp_path, photos, style_image, "--iterations", "4", "--resume", "auto")
    saved = load_checkpoint(resumed)
    assert saved["iteration"] == 4 and saved["generator_config"]["max_strength"] == 0.0
    loss = saved["train_state"]["config"]["loss"]
    assert loss["loss_scale"] == "absolute" and loss["style_weight"] == 2000.0
    assert "resuming with" not in log  # nothing changed: the same training, continued
    # A setting given on the command line still wins, and is named.
    _, log = _train(tmp_path, photos, style_image, "--iterations", "5", "--resume", "auto", "--style_weight", "100")
    assert "resuming with --style_weight 100.0; the checkpoint was trained with 2000.0" in log


def test_a_legacy_checkpoint_gives_the_pictures_it_gave(tmp_path: Path) -> None:
    """Loaded without the keys it lacks, an old model has no conditioning parameters and an unchanged state dict."""
    checkpoint = load_checkpoint(LEGACY)
    assert "max_strength" not in checkpoint["generator_config"]
    from texturenet.model.checkpoint import build_generator

    generator = build_generator(checkpoint)
    assert generator.config.max_strength == 0.0
    assert set(generator.state_dict()) == set(checkpoint["state_dict"])
    photo = torch.rand(1, 3, 48, 48)
    with torch.no_grad():
        a = generator(photo, strength=0.0)
        assert torch.equal(a, generator(photo, strength=torch.tensor([0.0])))


@pytest.mark.parametrize("argv,phrase", [
    (["--max_strength", "-1"], "max_strength must be in 0..100"),
    (["--max_strength", "2", "--norm", "batch"], "max_strength (the style-strength dial) needs style mode and instance norm"),
    (["--loss_scale", "huge"], "invalid choice: 'huge'"),
])
def test_bad_dial_settings_are_one_line(tmp_path: Path, photos: Path, style_image: Path, argv: list[str], phrase: str) -> None:
    result = run_script("train.py", *TINY, "--data_dir", photos, "--texture", style_image, "--checkpoint_dir", tmp_path, *argv)
    assert result.returncode == 2 and "Traceback" not in result.stderr and phrase in result.stderr


@pytest.mark.parametrize("batch, world", [(2, 1), (3, 1), (1, 2), (3, 2), (1, 3)])
def test_every_global_batch_has_half_its_photos_at_each_end(tmp_path: Path, photos: Path, style_image: Path,
                                                           monkeypatch: pytest.MonkeyPatch, batch: int, world: int) -> None:
    """As docs/METHOD.md says: half the photos of every batch at strength 0, half at max_strength, in a random order.

    Under torchrun each rank keeps its rows of the global batch, so the ranks' rows together are balanced;
    an odd global batch's extra photo goes to either end (both happen); the draws come from the seeded RNG.
    """
    from texturenet.config import TrainConfig
    from texturenet.training.loop import Trainer

    def draws(rank: int) -> list[list[float]]:
        monkeypatch.setenv("RANK", str(rank))
        monkeypatch.setenv("WORLD_SIZE", str(world))
        trainer = Trainer(TrainConfig(data_dir=photos, texture=style_image, checkpoint_dir=tmp_path, batch_size=batch))
        torch.manual_seed(0)
        return [trainer._strengths(batch).tolist() for _ in range(64)]

    ranks = [draws(rank) for rank in range(world)]
    global_batches = [sum((ranks[rank][step] for rank in range(world)), []) for step in range(64)]
    total = batch * world
    tops = [values.count(2.0) for values in global_batches]
    assert all(values.count(0.0) + count == total for values, count in zip(global_batches, tops))
    assert set(tops) == ({total // 2, total - total // 2})  # exactly half (an odd batch: one more at either end, both seen)
    assert len({tuple(values) for values in global_batches}) > 1  # a random order, not a fixed one
    assert draws(0) == ranks[0]  # the seeded RNG: the same draws again (what --resume relies on)


@pytest.mark.parametrize("batch, world", [(3, 1), (4, 1), (2, 1), (1, 2)])
def test_with_three_dial_points_every_global_batch_shares_its_photos_among_0_the_middle_and_the_top(
        tmp_path: Path, photos: Path, style_image: Path, monkeypatch: pytest.MonkeyPatch, batch: int, world: int) -> None:
    """--dial_points 3 (for --fade): 0, max/2 and max each get a third of the global batch (one more or less), and a batch
    smaller than 3 meets each of them over the steps; seeded, as the two ends are."""
    from texturenet.config import TrainConfig
    from texturenet.training.loop import Trainer

    def draws(rank: int) -> list[list[float]]:
        monkeypatch.setenv("RANK", str(rank))
        monkeypatch.setenv("WORLD_SIZE", str(world))
        trainer = Trainer(TrainConfig(data_dir=photos, texture=style_image, checkpoint_dir=tmp_path, batch_size=batch, dial_points=3))
        torch.manual_seed(0)
        return [trainer._strengths(batch).tolist() for _ in range(64)]

    ranks = [draws(rank) for rank in range(world)]
    global_batches = [sum((ranks[rank][step] for rank in range(world)), []) for step in range(64)]
    for values in global_batches:
        counts = [values.count(level) for level in (0.0, 1.0, 2.0)]
        assert sum(counts) == batch * world and max(counts) - min(counts) <= 1, values
    assert {value for values in global_batches for value in values} == {0.0, 1.0, 2.0}
    assert len({tuple(values) for values in global_batches}) > 1
    assert draws(0) == ranks[0]
