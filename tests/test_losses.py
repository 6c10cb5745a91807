"""Loss network and losses: Gram against a direct computation, layer names, truncation, weights loading."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from texturenet.config import LossConfig
from texturenet.errors import TexturenetError
from texturenet.loss.vgg import LossNetwork, load_features
from texturenet.vgg_layers import canonical_layer
from texturenet.loss.terms import Batch, PerceptualLoss, gram, total_variation

pytestmark = pytest.mark.filterwarnings("ignore:the loss network has random weights")


def test_gram_matches_a_direct_computation() -> None:
    features = torch.randn(2, 5, 4, 3, dtype=torch.float64)
    expected = np.zeros((2, 5, 5))
    f = features.numpy()
    for n in range(2):
        for i in range(5):
            for j in range(5):
                expected[n, i, j] = sum(f[n, i, y, x] * f[n, j, y, x] for y in range(4) for x in range(3)) / (5 * 4 * 3)
    assert np.allclose(gram(features).numpy(), expected)


def test_total_variation_of_a_known_image() -> None:
    image = torch.zeros(1, 1, 2, 3)
    image[..., :, 2] = 1.0  # one vertical edge: horizontal differences (0, 1) per row, no vertical ones
    assert total_variation(image).item() == pytest.approx(0.5)


@pytest.mark.parametrize("name,expected", [
    ("relu4_2", "relu4_2"), ("block4_conv2", "relu4_2"), ("block1_conv1", "relu1_1"), ("block3_pool", "pool3"), ("conv5_1", "conv5_1"),
])
def test_layer_names_accept_keras_spellings(name: str, expected: str) -> None:
    assert canonical_layer(name) == expected


def test_network_is_truncated_after_the_deepest_layer_and_frozen() -> None:
    net = LossNetwork("vgg19", "random", ["relu1_1", "block3_conv1"])
    assert net.names[-1] == "relu3_1" and len(net.features) == len(net.names)
    assert not any(p.requires_grad for p in net.parameters())
    net.train()
    assert not net.training
    out = net(torch.rand(1, 3, 32, 32))
    assert set(out) == {"relu1_1", "relu3_1"} and out["relu3_1"].shape[1] == 256
    assert set(net(torch.rand(1, 3, 32, 32), upto=["relu1_1"])) == {"relu1_1"}


def test_conv_layers_return_pre_activation_values() -> None:
    net = LossNetwork("vgg16", "random", ["conv1_1", "relu1_1"])
    out = net(torch.rand(1, 3, 16, 16))
    assert (out["conv1_1"] < 0).any() and torch.equal(out["relu1_1"], out["conv1_1"].clamp(min=0))


def test_unknown_layer_is_a_clear_error() -> None:
    with pytest.raises(TexturenetError, match="relu9_9"):
        LossNetwork("vgg16", "random", ["relu9_9"])


@pytest.mark.parametrize("whole_model", [True, False])
def test_weights_load_from_whole_model_or_features_state_dicts(tmp_path: Path, whole_model: bool) -> None:
    torch.manual_seed(1)
    source = load_features("vgg16", "random")
    state = source.state_dict()
    if whole_model:
        state = {**{f"features.{k}": v for k, v in state.items()}, "classifier.0.weight": torch.zeros(2, 2)}
    torch.save(state, tmp_path / "w.pth")
    loaded = load_features("vgg16", str(tmp_path / "w.pth"))
    assert torch.equal(loaded[0].weight, source[0].weight) and torch.equal(loaded[28].bias, source[28].bias)


def test_bad_weights_files_are_clear_errors(tmp_path: Path) -> None:
    (tmp_path / "text.pth").write_text("not a state dict")
    with pytest.raises(TexturenetError, match="not a readable"):
        load_features("vgg16", str(tmp_path / "text.pth"))
    torch.save({"0.weight": torch.zeros(1)}, tmp_path / "wrong.pth")
    with pytest.raises(TexturenetError, match="does not fit"):
        load_features("vgg19", str(tmp_path / "wrong.pth"))
    with pytest.raises(TexturenetError, match="no such file"):
        load_features("vgg19", str(tmp_path / "missing.pth"))


@pytest.mark.parametrize("loss_scale", ["absolute", "relative"])
def test_perceptual_loss_matches_a_direct_computation(loss_scale: str) -> None:
    torch.manual_seed(0)
    config = LossConfig(loss_net="vgg16", vgg_weights="random", style_layers=("relu1_1", "relu2_1"),
                        style_layer_weights=(5.0, 6.0), content_layers=("relu2_2",), content_weight=2.0,
                        style_weight=3.0, tv_weight=0.5, loss_scale=loss_scale)
    loss = PerceptualLoss(config)
    style, photo, output = torch.rand(1, 3, 40, 36), torch.rand(2, 3, 32, 32), torch.rand(2, 3, 32, 32)
    loss.set_style(style)
    scale = torch.tensor([0.25, 1.5])  # each image's own multiplier of the style weight
    terms = loss(output, Batch(content=loss.content_targets(photo), strength=scale))

    features = loss.network.features  # the same frozen VGG, run layer by layer by hand
    def acts(x: torch.Tensor) -> dict[str, torch.Tensor]:
        x, out = (x - loss.network.mean) / loss.network.std, {}
        for name, module in zip(loss.network.names, features):
            x = module(x)
            out[name] = x
        return out
    s, o, p = acts(style), acts(output), acts(photo)
    relative = loss_scale == "relative"
    # relative: every layer's Gram MSE over the style image's weighted mean squared Gram entries (one divisor)
    magnitude = 5 * gram(s["relu1_1"]).pow(2).mean() + 6 * gram(s["relu2_1"]).pow(2).mean() if relative else 1.0
    per_image = {}  # (2,) per layer: Gram MSE of each image
    for n in ("relu1_1", "relu2_1"):
        target = gram(s[n])[0]
        per_image[n] = torch.stack([F.mse_loss(gram(o[n][i:i + 1])[0], target) for i in range(2)]) / magnitude
    content = torch.stack([F.mse_loss(o["relu2_2"][i], p["relu2_2"][i]) / (p["relu2_2"][i].pow(2).mean() if relative else 1.0)
                           for i in range(2)]).mean()
    style = 5 * per_image["relu1_1"] + 6 * per_image["relu2_1"]
    expected = 3.0 * (scale * style).mean() + 2.0 * content + 0.5 * total_variation(output)
    assert torch.allclose(terms["style_relu1_1"], per_image["relu1_1"].mean())
    assert torch.allclose(terms["style"], style.mean())
    assert torch.allclose(terms["content"], content)
    assert torch.allclose(terms["total"], expected, rtol=1e-5)


def test_texture_losses_have_no_content_term() -> None:
    loss = PerceptualLoss(LossConfig(vgg_weights="random", style_layers=("relu1_1",), content_layers=("relu1_1",)))
    loss.set_style(torch.rand(1, 3, 16, 16))
    terms = loss(torch.rand(1, 3, 16, 16))
    assert "content" not in terms and terms["total"] > 0
