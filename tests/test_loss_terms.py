"""The loss as composable terms (loss/terms.py): the container's values are the formulas' values, bit for bit.

The reference below is the objective written out as one function, as PerceptualLoss computed it
before it became a container of terms: each term with its normaliser, the per-output strength on the
style term, the diversity term within each photo's samples, subtracted from the total.
"""
from __future__ import annotations

import pytest
import torch

from texturenet.config import LossConfig
from texturenet.loss.terms import Batch, PerceptualLoss, diversity, gram, layer_term, total_variation

pytestmark = pytest.mark.filterwarnings("ignore:the loss network has random weights")


def _mse(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return (a.float() - b.float()).pow(2).flatten(1).mean(1)


def _mean_square(t: torch.Tensor) -> torch.Tensor:
    return t.float().pow(2).flatten(1).mean(1).clamp_min(torch.finfo(torch.float32).tiny)


def reference(loss: PerceptualLoss, style: torch.Tensor, output: torch.Tensor, photos: torch.Tensor,
              strength: torch.Tensor, inputs: int) -> dict[str, torch.Tensor]:
    """The objective as one function: style, content, tv and diversity terms in the order they are reported."""
    config, relative = loss.config, loss.config.loss_scale == "relative"
    style_layers, content_layers = dict(zip(config.style_layers, config.style_layer_weights)), dict(zip(config.content_layers, (1.0,)))
    with torch.no_grad():
        targets = {n: gram(f)[0] for n, f in loss.network(style, upto=list(style_layers)).items()}
        content = loss.network(photos, upto=list(content_layers))
    magnitude = sum(w * _mean_square(targets[n][None])[0] for n, w in style_layers.items()) if relative else torch.ones(())
    features = loss.network(output, upto=[*style_layers, *content_layers, config.diversity_layer])
    terms, per_image = {}, torch.zeros(len(output))
    for name, weight in style_layers.items():
        g = gram(features[name])
        term = _mse(g, targets[name].expand_as(g)) / magnitude
        terms[layer_term(name)] = term.mean()
        per_image = per_image + weight * term
    terms["style"] = per_image.mean()
    total = config.style_weight * (per_image * strength).mean()
    content_loss = torch.zeros(len(output))
    for name, weight in content_layers.items():
        term = _mse(features[name], content[name])
        content_loss = content_loss + weight * (term / _mean_square(content[name]) if relative else term)
    terms["content"] = content_loss.mean()
    total = total + config.content_weight * terms["content"]
    terms["tv"] = total_variation(output)
    total = total + config.tv_weight * terms["tv"]
    terms["diversity"] = diversity(features[config.diversity_layer], inputs)
    terms["total"] = total - config.diversity_weight * terms["diversity"]
    return terms


@pytest.mark.parametrize("loss_scale", ["absolute", "relative"])
def test_the_container_of_terms_gives_the_formulas_values(loss_scale: str) -> None:
    torch.manual_seed(0)
    config = LossConfig(loss_net="vgg16", vgg_weights="random", style_layers=("relu1_1", "relu2_1"), style_layer_weights=(5.0, 6.0),
                        content_layers=("relu2_2",), content_weight=2.0, style_weight=3.0, tv_weight=0.5, diversity_weight=0.7,
                        diversity_layer="relu2_1", loss_scale=loss_scale)
    loss = PerceptualLoss(config)
    style, photos, strength = torch.rand(1, 3, 40, 36), torch.rand(3, 3, 32, 32), torch.tensor([0.0, 2.0, 2.0])
    loss.set_style(style)
    batch = loss.batch(photos, strength)  # the diversity term asks for two samples of each photo
    assert torch.equal(batch.photos, photos.repeat(2, 1, 1, 1)) and torch.equal(batch.strength, strength.repeat(2))
    assert batch.inputs == 3
    output = torch.rand(6, 3, 32, 32)
    terms = loss(output, batch)
    expected = reference(loss, style, output, batch.photos, batch.strength, inputs=3)
    assert list(terms) == list(expected)  # the names and order the monitors show
    for name, value in expected.items():
        assert torch.equal(terms[name], value), name


def test_without_a_diversity_term_a_batch_is_the_photos_once() -> None:
    loss = PerceptualLoss(LossConfig(vgg_weights="random", style_layers=("relu1_1",), content_layers=("relu1_1",)))
    photos = torch.rand(2, 3, 16, 16)
    batch = loss.batch(photos)
    assert batch.photos is photos and batch.strength is None and batch.inputs == 2
    assert isinstance(batch, Batch) and set(batch.content) == {"relu1_1"}
