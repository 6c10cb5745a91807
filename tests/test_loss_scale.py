"""Relative losses (LossConfig.loss_scale): the same flags mean the same on a loss network whose features are c times smaller.

A copy of a VGG whose first convolution (weight and bias) and every later bias are divided by c computes the
original's features divided by c at every layer: convolutions are linear, ReLU and max-pooling positively
homogeneous. The Caffe-scale HED VGG16 and torchvision's ImageNet VGG differ by such a factor (about 58), which
is what made loss weights tuned on one meaningless on the other. Relative terms must not see it; absolute ones do.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from torchvision.models.vgg import cfgs, make_layers

from conftest import needs_shared, run_script
from texturenet.config import LossConfig
from texturenet.loss.terms import PerceptualLoss

pytestmark = pytest.mark.filterwarnings("ignore:the loss network has random weights")
SCALE = 58.0  # the HED VGG16's activations against torchvision's ImageNet VGG (about 255 x 0.226)
EXACT_SCALE = 64.0
"""For whole runs: a power of two scales every float exactly, so the two runs must agree to the bit. At 58 the losses
agree to float rounding (tested above), but training amplifies rounding: Adam moves every parameter by about its
learning rate on the first steps whatever the gradient's size, including those whose true gradient is zero (biases
followed by an instance norm), so the sign of rounding noise decides their steps (measured: weights 0.07 apart
after 4 steps at lr 0.01 with c = 58, identical with c = 64)."""


def scaled_copy(state: dict[str, torch.Tensor], c: float) -> dict[str, torch.Tensor]:
    """A VGG ``features`` state dict whose every feature is the original's divided by ``c``."""
    convs = sorted({int(key.split(".")[0]) for key in state})
    scaled = dict(state)
    scaled[f"{convs[0]}.weight"] = state[f"{convs[0]}.weight"] / c
    for index in convs:
        scaled[f"{index}.bias"] = state[f"{index}.bias"] / c
    return scaled


@pytest.fixture(scope="module")
def random_vgg16(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    """A random VGG16 ``features`` state dict and its copies scaled by 1/SCALE and 1/EXACT_SCALE, as files."""
    folder = tmp_path_factory.mktemp("vgg")
    torch.manual_seed(0)
    state = make_layers(cfgs["D"]).state_dict()
    torch.save(state, folder / "vgg16.pth")
    for name, c in (("scaled", SCALE), ("exact", EXACT_SCALE)):
        torch.save(scaled_copy(state, c), folder / f"vgg16_{name}.pth")
    return folder / "vgg16.pth", folder / "vgg16_scaled.pth", folder / "vgg16_exact.pth"


@pytest.fixture(scope="module")
def hed_vgg16(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    """The shared HED VGG16 and its copies scaled by 1/SCALE and 1/EXACT_SCALE."""
    original = needs_shared("weights", "vgg16_hed_bsds500.pth")
    state = torch.load(original, weights_only=True)
    folder = tmp_path_factory.mktemp("hed")
    for name, c in (("scaled", SCALE), ("exact", EXACT_SCALE)):
        torch.save(scaled_copy(state, c), folder / f"hed_{name}.pth")
    return original, folder / "hed_scaled.pth", folder / "hed_exact.pth"


def _terms(weights: Path, loss_scale: str) -> dict[str, float]:
    loss = PerceptualLoss(LossConfig(loss_net="vgg16", vgg_weights=str(weights), loss_scale=loss_scale))
    rng = torch.Generator().manual_seed(0)
    style, photo, output = (torch.rand(shape, generator=rng) for shape in ((1, 3, 64, 64), (2, 3, 48, 48), (2, 3, 48, 48)))
    loss.set_style(style)
    with torch.no_grad():
        return {k: float(v) for k, v in loss(output, loss.content_targets(photo)).items()}


def test_the_scaled_copy_computes_scaled_features(random_vgg16: tuple[Path, Path, Path]) -> None:
    from texturenet.loss.vgg import LossNetwork

    layers = ["relu1_1", "pool2", "relu4_2", "relu5_3"]
    original, scaled = (LossNetwork("vgg16", str(path), layers) for path in random_vgg16[:2])
    x = torch.rand(1, 3, 48, 48)
    with torch.no_grad():
        for layer, feature in original(x).items():
            assert torch.allclose(scaled(x)[layer] * SCALE, feature, rtol=1e-4, atol=1e-5 * float(feature.abs().max())), layer


@pytest.mark.parametrize("network", ["random", "hed"])
def test_relative_terms_are_the_same_on_the_scaled_network(network: str, request: pytest.FixtureRequest) -> None:
    original, scaled, exact = (_terms(path, "relative") for path in request.getfixturevalue(f"{network}_vgg16"))
    for name, value in original.items():
        assert scaled[name] == pytest.approx(value, rel=1e-4), name
        assert exact[name] == value, name  # a power of two: to the bit


def test_absolute_terms_scale_with_the_network(random_vgg16: tuple[Path, Path, Path]) -> None:
    """What the relative terms remove: a Gram term scales by c^4, a content term by c^2 (tv is on pixels)."""
    original, scaled = (_terms(path, "absolute") for path in random_vgg16[:2])
    assert scaled["style"] * SCALE**4 == pytest.approx(original["style"], rel=1e-3)
    assert scaled["content"] * SCALE**2 == pytest.approx(original["content"], rel=1e-3)
    assert scaled["tv"] == original["tv"]


def _train_and_stylise(weights: Path, folder: Path, photos: Path, style: Path, photo: Path, *flags: str) -> np.ndarray:
    run = run_script("train.py", "--data_dir", photos, "--texture", style, "--checkpoint_dir", folder, "--name", "m",
                     "--loss_net", "vgg16", "--vgg_weights", weights, "--image_size", "64", "--style_size", "64",
                     "--batch_size", "2", "--iterations", "4", "--workers", "0", "--scales", "3", "--save_every", "0",
                     "--lr", "0.01", *flags)
    assert run.returncode == 0, run.stderr
    from texturenet.model.checkpoint import load_generator
    from texturenet.io.images import load_rgb, to_tensor

    torch.manual_seed(0)  # the same noise for every model (stylised here, not by a 5-second subprocess per picture)
    with torch.no_grad():
        picture = load_generator(folder / "m.pth")(to_tensor(load_rgb(photo))[None], strength=0.7)[0]
    return (picture.clamp(0, 1) * 255).round().to(torch.int16).permute(1, 2, 0).numpy()


def _optimise(weights: Path, photo: Path, style: Path, *flags: str) -> np.ndarray:
    """optimize.py's run (5 L-BFGS iterations at 64 px), in this process: the flags parsed as the script parses them."""
    from texturenet.cli.arguments import loss_config
    from texturenet.cli.parsers import optimize_parser
    from texturenet.config import OptimizeSettings
    from texturenet.io.images import load_rgb, load_style, resize_long_side, to_tensor
    from texturenet.tools.optimize import optimize_image

    args = optimize_parser().parse_args(["--content", str(photo), "--style", str(style), "--output", "unused.png",
                                         "--loss_net", "vgg16", "--vgg_weights", str(weights), *flags])
    loss = PerceptualLoss(loss_config(args))
    loss.set_style(load_style(style, 64))
    image, _ = optimize_image(loss, OptimizeSettings(iterations=5), to_tensor(resize_long_side(load_rgb(photo), 64))[None],
                              progress=False)
    return (image[0].clamp(0, 1) * 255).round().to(torch.int16).permute(1, 2, 0).numpy()


def _absolute_twin(weights: Path, style: Path, photo: Path) -> list[str]:
    """Absolute-term flags that weigh each term as the relative objective does on the network at ``weights``.

    The style weight is 1 / (the style image's summed mean squared Gram entries) and the content weight 1 / (the
    photo's mean squared features), measured on this network: so on it, the absolute objective is about the
    relative one, and on a network c times smaller it puts c^2 times less weight on style than on content.
    """
    from texturenet.io.images import load_rgb, load_style, resize_long_side, to_tensor

    loss = PerceptualLoss(LossConfig(loss_net="vgg16", vgg_weights=str(weights)))
    loss.set_style(load_style(style, 64))
    content = loss.content_targets(to_tensor(resize_long_side(load_rgb(photo), 64))[None])["relu4_2"]
    return ["--loss_scale", "absolute", "--style_weight", f"{loss.config.style_weight / float(loss.style_scale):.6g}",
            "--content_weight", f"{1 / float(content.pow(2).mean()):.6g}"]


@pytest.mark.slow
def test_training_and_optimisation_give_the_same_pictures_on_the_scaled_network(
        hed_vgg16: tuple[Path, Path, Path], tmp_path: Path, photos: Path, style_image: Path) -> None:
    """The HED VGG16 (a network trained on natural images, on Caffe's scale) and its copy 64 times smaller."""
    original, _, scaled = hed_vgg16
    photo = next(photos.glob("*.JPG"))
    absolute = _absolute_twin(original, style_image, photo)
    pictures = {}
    for name, weights in (("original", original), ("scaled", scaled)):
        for loss_scale, flags in (("relative", ["--loss_scale", "relative"]), ("absolute", absolute)):
            folder = tmp_path / f"{name}_{loss_scale}"
            pictures[name, loss_scale, "trained"] = _train_and_stylise(weights, folder, photos, style_image, photo, *flags)
            pictures[name, loss_scale, "optimised"] = _optimise(weights, photo, style_image, *flags)
    from texturenet.io.images import load_rgb, resize_long_side

    start = np.asarray(resize_long_side(load_rgb(photo), 64), dtype=np.int16)  # where optimisation starts
    assert np.abs(pictures["original", "relative", "optimised"] - start).mean() > 2  # it moved: the comparison means something
    for method in ("trained", "optimised"):
        same = np.abs(pictures["original", "relative", method] - pictures["scaled", "relative", method])
        assert same.max() == 0, f"{method}: relative losses see the network's scale ({int((same > 0).sum())} values differ)"
        # The check can fail: weights that give absolute terms the relative balance on one network give another
        # balance on the scaled one (style c^2 times lighter against content), and another picture.
        moved = np.abs(pictures["original", "absolute", method] - pictures["scaled", "absolute", method])
        assert moved.mean() > 2, f"{method}: absolute losses should depend on the network's scale ({moved.mean():.2f})"
