"""The diversity term of Improved Texture Networks (Ulyanov et al. 2017): the estimator, and training with it."""
from __future__ import annotations

import copy
import csv
import itertools
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import TINY, run_script
from texturenet.model.checkpoint import make_checkpoint, save_atomic
from texturenet.config import GeneratorConfig, LossConfig, TrainConfig
from texturenet.model.pyramid import PyramidGenerator
from texturenet.loss.terms import PerceptualLoss, diversity, mean_pairwise_distance


def nearest_by_hand(features: np.ndarray, inputs: int) -> float:
    """The estimator written out with loops: mean over i of ln min_{j != i, j = i mod inputs} RMS distance."""
    n = len(features)
    flat = features.reshape(n, -1).astype(np.float64)
    logs = []
    for i in range(n):
        others = [np.sqrt(np.mean((flat[i] - flat[j]) ** 2)) for j in range(n) if j != i and j % inputs == i % inputs]
        logs.append(math.log(min(others) + 1e-8))
    return float(np.mean(logs))


@pytest.mark.parametrize("inputs", [1, 2, 3])
def test_estimator_matches_the_formula(inputs: int) -> None:
    features = torch.randn(6, 4, 5, 5, generator=torch.Generator().manual_seed(inputs))
    assert diversity(features, inputs).item() == pytest.approx(nearest_by_hand(features.numpy(), inputs), rel=1e-5)


def test_only_samples_of_the_same_input_are_compared() -> None:
    """Two photos, two samples each: the close cross-photo pair must not count."""
    a, b = torch.zeros(1, 8), torch.full((1, 8), 0.01)  # photos 0 and 1 look alike ...
    features = torch.cat([a, b, a + 1.0, b + 2.0])  # ... but each one's two samples are far apart
    assert diversity(features, inputs=2).item() == pytest.approx((math.log(1.0) + math.log(2.0)) / 2, abs=1e-6)
    pooled = (2 * math.log(0.01) + math.log(0.99) + math.log(1.01)) / 4  # all compared: the near pair dominates
    assert diversity(features, inputs=1).item() == pytest.approx(pooled, abs=1e-5)


def test_identical_samples_score_far_lower_and_need_two_per_input() -> None:
    same = torch.ones(4, 3, 2, 2)
    varied = torch.randn(4, 3, 2, 2, generator=torch.Generator().manual_seed(0))
    assert diversity(same).item() < -15 < diversity(varied).item()
    with pytest.raises(ValueError, match="at least two samples per input"):
        diversity(varied, inputs=4)


def test_mean_pairwise_distance_by_hand() -> None:
    features = torch.randn(5, 7, generator=torch.Generator().manual_seed(1))
    pairs = [torch.sqrt(((features[i] - features[j]) ** 2).mean()).item() for i, j in itertools.combinations(range(5), 2)]
    assert mean_pairwise_distance(features).item() == pytest.approx(sum(pairs) / len(pairs), rel=1e-5)


def test_the_term_pushes_samples_apart() -> None:
    """A gradient step on the weighted total moves the generated samples' features apart."""
    torch.manual_seed(0)
    config = LossConfig(vgg_weights="random", style_layers=("relu1_1",), content_layers=("relu1_1",),
                        style_weight=0.0, tv_weight=0.0, diversity_weight=1.0, diversity_layer="relu2_1")
    loss = PerceptualLoss(config)
    loss.set_style(torch.rand(1, 3, 32, 32))
    images = (0.5 + 0.01 * torch.randn(4, 3, 32, 32)).requires_grad_()
    terms = loss(images)
    assert terms["total"].item() == pytest.approx(-terms["diversity"].item(), rel=1e-6)
    terms["total"].backward()
    with torch.no_grad():
        after = loss(images - 0.5 * images.grad / images.grad.abs().max())["diversity"]
    assert after.item() > terms["diversity"].item()


def test_config_refuses_what_cannot_be_diverse() -> None:
    with pytest.raises(ValueError, match="batch_size >= 2"):
        TrainConfig(batch_size=1, loss=LossConfig(diversity_weight=1.0),
                    generator=GeneratorConfig(mode="texture", padding="circular"))
    with pytest.raises(ValueError, match="noise_depth >= 1"):
        TrainConfig(loss=LossConfig(diversity_weight=1.0),
                    generator=GeneratorConfig(noise_depth=0))


@pytest.mark.parametrize("mode", ["style", "texture"])
def test_training_with_diversity_logs_the_term(tmp_path: Path, photos: Path, style_image: Path, mode: str) -> None:
    data = ["--data_dir", photos] if mode == "style" else []
    result = run_script("train.py", *TINY, "--mode", mode, *data, "--texture", style_image, "--iterations", "3",
                        "--log_every", "1", "--diversity_weight", "0.5", "--diversity_layer", "relu1_1",
                        "--checkpoint_dir", tmp_path, "--name", "div")
    assert result.returncode == 0, result.stderr[-3000:]
    with open(tmp_path / "div_losses.csv") as file:
        rows = list(csv.DictReader(file))
    assert len(rows) == 3 and all(math.isfinite(float(row["diversity"])) for row in rows)
    assert (tmp_path / "div.pth").is_file()


def test_batch_of_one_texture_is_one_clear_line(tmp_path: Path, style_image: Path) -> None:
    result = run_script("train.py", *TINY, "--mode", "texture", "--texture", style_image, "--batch_size", "1",
                        "--diversity_weight", "1", "--checkpoint_dir", tmp_path)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "batch_size >= 2" in result.stderr.strip().splitlines()[-1]


def test_measure_tells_a_noise_deaf_model_from_a_varied_one(tmp_path: Path) -> None:
    """scripts/diversity.py: a texture model whose first convolutions ignore the noise scores zero."""
    torch.manual_seed(0)
    varied = PyramidGenerator(GeneratorConfig(mode="texture", scales=3, padding="circular"))
    deaf = copy.deepcopy(varied)
    with torch.no_grad():
        for branch in deaf.branches:  # texture inputs are noise alone: zero weights leave a constant input
            branch[0].weight.zero_()
    for name, generator in (("varied", varied), ("deaf", deaf)):
        save_atomic(make_checkpoint(generator, name, 0), tmp_path / f"{name}.pth")
    result = run_script("diversity.py", "--model", tmp_path / "varied.pth", "--model", tmp_path / "deaf.pth",
                        "--samples", "3", "--size", "32", "--loss_net", "vgg16", "--vgg_weights", "random",
                        "--layer", "relu2_1", "--grid", tmp_path / "grid.png")
    assert result.returncode == 0, result.stderr[-3000:]
    lines = result.stdout.splitlines()
    header = lines.index("model | feature_distance_relu2_1 | pixel_distance")
    (_, varied_features, varied_pixels), (_, deaf_features, deaf_pixels) = (
        [float(v) if i else v for i, v in enumerate(line.split(" | "))] for line in lines[header + 1:header + 3])
    assert varied_pixels > 1e-3 and varied_features > 1e-4
    assert deaf_pixels < 1e-6 and deaf_features < 1e-6
    grid = Image.open(tmp_path / "grid.png")
    assert grid.size == (4 + 3 * (32 + 4), 4 + 2 * (32 + 4))  # a row of three samples per model


def test_style_model_without_photo_is_one_clear_line(tmp_path: Path) -> None:
    save_atomic(make_checkpoint(PyramidGenerator(GeneratorConfig(scales=3)), "style", 0), tmp_path / "style.pth")
    result = run_script("diversity.py", "--model", tmp_path / "style.pth", "--vgg_weights", "random", "--loss_net", "vgg16")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "needs --photo" in result.stderr.strip().splitlines()[-1]
