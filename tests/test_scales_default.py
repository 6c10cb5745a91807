"""--scales left out: the pyramid's depth follows the crop size (config.scales_for), so no coarsest map is under 16 px."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch

from texturenet.cli.arguments import train_config
from texturenet.cli.parsers import train_parser
from texturenet.config import scales_for

from conftest import ROOT

pytestmark = pytest.mark.filterwarnings("ignore:the loss network has random weights")

SMALL = ["--vgg_weights", "random", "--style_size", "32", "--workers", "0", "--style_layers", "relu1_1,relu2_1",
         "--content_layers", "relu2_1", "--save_every", "0"]


@pytest.mark.parametrize("size, scales", [(32, 2), (64, 3), (127, 3), (128, 4), (200, 4), (256, 5), (512, 6), (4096, 6)])
def test_the_coarsest_map_is_at_least_16_pixels(size: int, scales: int) -> None:
    assert scales_for(size) == scales
    assert size / 2 ** (scales - 1) >= 16 or scales == 1
    config = train_config(train_parser().parse_args([*SMALL, "--image_size", str(size)]))
    assert config.generator.scales == scales
    given = train_config(train_parser().parse_args([*SMALL, "--image_size", str(size), "--scales", "6"]))
    assert given.generator.scales == 6  # a given --scales wins


def test_a_resumed_run_keeps_its_scales(photos: Path, style_image: Path, tmp_path: Path) -> None:
    """A model trained with other scales than today's default for its crop resumes with its own (not the new rule's)."""
    run = [sys.executable, str(ROOT / "scripts" / "train.py"), *SMALL, "--image_size", "64", "--data_dir", str(photos),
           "--texture", str(style_image), "--checkpoint_dir", str(tmp_path), "--name", "deep", "--batch_size", "1"]
    first = subprocess.run([*run, "--scales", "2", "--iterations", "2", "--save_every", "1"], capture_output=True, text=True)
    assert first.returncode == 0, first.stderr
    (tmp_path / "deep.pth").unlink()
    resumed = subprocess.run([*run, "--iterations", "3", "--resume", "auto"], capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr
    assert torch.load(tmp_path / "deep.pth", weights_only=True)["generator_config"]["scales"] == 2
