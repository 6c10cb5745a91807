"""Perceptual losses: Gram-matrix style loss, feature content loss, total variation, diversity.

One implementation, shared by feed-forward training and per-image optimisation. The objective is
a weighted sum of terms (:class:`Term`), each owning its target and its normaliser;
:class:`PerceptualLoss` holds them, runs the loss network once for all, and reports each by name.
Gatys, Ecker & Bethge 2015 (texture, Eq. 3-5) and 2016 (style transfer, Eq. 1-7); Ulyanov
et al. 2016, Eq. 4-5 (the same terms as the generator's training objective).

Relative terms (``LossConfig.loss_scale``, the default): a loss network whose features are c
times another's (the Caffe-scale HED VGG16 against torchvision's ImageNet VGG: c ~ 58) makes
each Gram term c^4 and each content term c^2 times larger, so weights tuned on one network mean
nothing on the other. Each term is therefore divided by the magnitude of its own target: the
style term (the weighted sum over layers) by the same weighted sum of the style image's squared
Gram entries, the content term by the photo's squared features (per image). Both become
relative squared errors, unchanged by any such c: an image whose features are all zero scores
1 on each. The style layers keep the balance the absolute terms give them (one divisor for all
layers): dividing each layer by its own target instead was measured to let relu5_1 dominate on
the HED VGG16 (relative error 4.4 of the photo's 7.0), whose sparse edge features there the
generator then learnt to silence, with the photo's structure. Total variation acts on pixels
and the diversity term on log distances, whose gradients no c changes.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Optional, Sequence, Union

import torch
from torch import Tensor, nn

from ..config import LossConfig
from .vgg import LossNetwork
from ..vgg_layers import canonical_layer


def gram(features: Tensor) -> Tensor:
    """Gram matrix G = F F^T / (C H W) per image (Gatys et al. 2015, Eq. 2).

    Normalising by C*H*W (as texture_nets and pytorch/examples do) keeps the style loss
    comparable across layers and image sizes. Computed in float32 even under autocast: the sum
    over H*W positions overflows or loses precision in half precision.
    """
    n, c, h, w = features.shape
    with torch.autocast(features.device.type, enabled=False):  # autocast would cast bmm's inputs back down
        flat = features.reshape(n, c, h * w).float()
        return torch.bmm(flat, flat.transpose(1, 2)) / (c * h * w)


def total_variation(image: Tensor) -> Tensor:
    """Mean squared difference between neighbouring pixels (Mahendran & Vedaldi 2015, beta = 2)."""
    dx = image[..., :, 1:] - image[..., :, :-1]
    dy = image[..., 1:, :] - image[..., :-1, :]
    return dx.pow(2).mean() + dy.pow(2).mean()


def _rms_distances(features: Tensor) -> Tensor:
    """(N, N) root-mean-square distances between the N samples' features (scale-free across layers)."""
    with torch.autocast(features.device.type, enabled=False):  # distances in float32 under --amp too
        flat = features.reshape(features.shape[0], -1).float()
        return torch.cdist(flat, flat) / flat.shape[1] ** 0.5


def mean_pairwise_distance(features: Tensor) -> Tensor:
    """How varied N samples are: their mean RMS feature distance over all pairs (the diversity measure reported)."""
    n = features.shape[0]
    return _rms_distances(features).triu(diagonal=1).sum() / (n * (n - 1) / 2)


def diversity(features: Tensor, inputs: int = 1) -> Tensor:
    """Entropy estimate of the samples' distribution: mean log distance to the nearest other sample.

    Improved Texture Networks (Ulyanov, Vedaldi & Lempitsky 2017, Sec. 3) make the generator
    sample the Julesz ensemble instead of collapsing onto one texture by adding, with a minus
    sign, the Kozachenko-Leonenko entropy estimator: up to constants, the mean over samples of
    ln min_{j != i} ||phi(x_i) - phi(x_j)||. ``features`` (N, ...) are the samples' features;
    sample i is compared only with samples j of the same input (i = j mod ``inputs``): a
    batch of ``inputs`` photos stylised N / inputs times each, with different noise. Texture
    mode has one input (noise alone). Distances are root-mean-square per feature element, so
    the term's scale does not depend on the layer's size.
    """
    n = features.shape[0]
    index = torch.arange(n)  # the mask is built and checked on the host: no device sync per step
    comparable = (index[:, None] % inputs == index[None, :] % inputs) & (index[:, None] != index[None, :])
    if not bool(comparable.any(dim=1).all()):
        raise ValueError(f"the diversity term needs at least two samples per input; got {n} samples of {inputs} inputs")
    distances = _rms_distances(features)
    nearest = distances.masked_fill(~comparable.to(features.device, non_blocking=True), float("inf")).amin(dim=1)
    return torch.log(nearest + 1e-8).mean()


def _per_image_mse(a: Tensor, b: Tensor) -> Tensor:
    """(N,) mean squared error of each image's ``a`` against its ``b`` (float32)."""
    return (a.float() - b.float()).pow(2).flatten(1).mean(1)


def _mean_square(target: Tensor) -> Tensor:
    """The magnitude a relative term divides by: the target's mean square (never 0, so a black target stays finite)."""
    return target.float().pow(2).flatten(1).mean(1).clamp_min(torch.finfo(torch.float32).tiny)


TERMS = ("total", "content", "style", "tv")
"""The loss terms every run reports (those its losses have), in the order plots and tables show them."""
DIVERSITY = "diversity"
"""The diversity term (an entropy estimate, subtracted from the total) of runs with a diversity weight."""
_LAYER = "style_"


def layer_term(layer: str) -> str:
    """The name under which :class:`PerceptualLoss` reports one style layer's term (``style_relu1_1``)."""
    return _LAYER + layer


def layer_losses(terms: Mapping[str, float]) -> dict[str, float]:
    """The per-layer style terms among ``terms``, by layer name, sorted: ``{"relu1_1": ...}``."""
    return {name[len(_LAYER):]: terms[name] for name in sorted(terms) if name.startswith(_LAYER)}



@dataclass
class Batch:
    """One batch as the terms compare it: the generator's inputs and what each output is compared with.

    Output i is a sample of input ``i mod inputs``: a term that needs several samples of each input
    (:class:`DiversityTerm`) gets them through :meth:`PerceptualLoss.batch`, which repeats the photos.
    """

    photos: Optional[Tensor] = None
    """(N, 3, H, W) what the generator stylises, each photo as many times as the terms want samples of it; None for textures."""
    content: Optional[Mapping[str, Tensor]] = None
    """Content-layer features of ``photos`` (the content term's target); None: no content term (textures)."""
    strength: Optional[Tensor] = None
    """(N,) each output's style strength, its multiplier of the style weight (training/loop.py); None: 1 for every output."""
    inputs: int = 1
    """How many distinct inputs the N outputs are samples of (texture mode: one, noise alone)."""


class Term:
    """One part of the objective: what it compares, with which target, divided by which normaliser.

    A :class:`PerceptualLoss` runs the loss network once for all its terms and hands each the
    features of its ``layers``; a term returns the values it reports (by the names the monitors show)
    and the value the weighted total takes.
    """

    layers: tuple[str, ...] = ()
    """The loss-network layers the term reads."""
    samples: int = 1
    """Samples of each input the term needs in a batch."""

    def applies(self, batch: Batch) -> bool:
        """Whether the term has a target in ``batch`` (the content term has none for textures)."""
        return True

    def __call__(self, output: Tensor, features: Mapping[str, Tensor], batch: Batch) -> tuple[dict[str, Tensor], Tensor]:
        raise NotImplementedError


class StyleTerm(Term):
    """Gram-matrix style loss over weighted layers (Gatys et al. 2015, Eq. 3-5; Ulyanov et al. 2016, Eq. 4).

    Its target, the style image's Grams, is set once per run; relative (module docstring), its
    normaliser is their weighted mean square, one divisor for all layers.
    """

    def __init__(self, layer_weights: dict[str, float], relative: bool) -> None:
        self.layer_weights = layer_weights
        self.layers = tuple(layer_weights)
        self.relative = relative
        self.target_grams: dict[str, Tensor] = {}
        self.scale = torch.ones(())
        """The normaliser: the target's weighted mean square (relative), else 1."""

    def set_target(self, features: Mapping[str, Tensor]) -> None:
        """Keep the Grams of the style image's ``features``, and their weighted magnitude."""
        self.target_grams = {name: gram(f)[0] for name, f in features.items()}
        magnitude = sum(weight * _mean_square(self.target_grams[name][None])[0] for name, weight in self.layer_weights.items())
        self.scale = magnitude if self.relative else torch.ones((), device=next(iter(features.values())).device)

    def __call__(self, output: Tensor, features: Mapping[str, Tensor], batch: Batch) -> tuple[dict[str, Tensor], Tensor]:
        """Each layer's term and their weighted sum, means over the batch; the total's share is weighted by each output's strength."""
        reported: dict[str, Tensor] = {}
        style = output.new_zeros(len(output), dtype=torch.float32)  # per image
        for name, weight in self.layer_weights.items():
            g = gram(features[name])
            term = _per_image_mse(g, self.target_grams[name].expand_as(g)) / self.scale
            reported[layer_term(name)] = term.mean()
            style = style + weight * term
        reported["style"] = style.mean()
        return reported, (style if batch.strength is None else style * batch.strength.float()).mean()


class ContentTerm(Term):
    """Feature reconstruction loss (Gatys et al. 2016, Eq. 1; Ulyanov et al. 2016, Eq. 5): outputs against their photos.

    Its target is each batch's (:attr:`Batch.content`); relative, each image's term is divided by its
    photo's own mean squared features.
    """

    def __init__(self, layer_weights: dict[str, float], relative: bool) -> None:
        self.layer_weights = layer_weights
        self.layers = tuple(layer_weights)
        self.relative = relative

    def applies(self, batch: Batch) -> bool:
        return batch.content is not None

    def __call__(self, output: Tensor, features: Mapping[str, Tensor], batch: Batch) -> tuple[dict[str, Tensor], Tensor]:
        assert batch.content is not None
        content = output.new_zeros(len(output), dtype=torch.float32)  # per image
        for name, weight in self.layer_weights.items():
            target = batch.content[name]
            term = _per_image_mse(features[name], target)
            content = content + weight * (term / _mean_square(target) if self.relative else term)
        value = content.mean()
        return {"content": value}, value


class TotalVariationTerm(Term):
    """Smoothness of the output's pixels (:func:`total_variation`); no loss network, no target."""

    def __call__(self, output: Tensor, features: Mapping[str, Tensor], batch: Batch) -> tuple[dict[str, Tensor], Tensor]:
        value = total_variation(output.float())
        return {"tv": value}, value


class DiversityTerm(Term):
    """The samples' entropy estimate (:func:`diversity`; Ulyanov et al. 2017, Sec. 3), compared within each input.

    It needs two samples of each input, so :meth:`PerceptualLoss.batch` stylises every photo twice,
    with different noise; the container gives it a negative weight (the total subtracts it).
    """

    samples = 2

    def __init__(self, layer: str) -> None:
        self.layers = (layer,)

    def __call__(self, output: Tensor, features: Mapping[str, Tensor], batch: Batch) -> tuple[dict[str, Tensor], Tensor]:
        value = diversity(features[self.layers[0]], batch.inputs)
        return {DIVERSITY: value}, value


def _weights(layers: Sequence[str], weights: Optional[Sequence[float]]) -> dict[str, float]:
    return dict(zip([canonical_layer(n) for n in layers], weights if weights is not None else [1.0] * len(layers)))


class PerceptualLoss(nn.Module):
    """The weighted sum of the terms a :class:`LossConfig` asks for, for images in [0, 1] (Ulyanov et al. 2016, Eq. 5).

    ``set_style`` sets the style term's target once per run; ``batch`` gives a training batch its
    targets; ``forward`` runs the loss network once for all terms and returns every term by name
    (per-layer style terms too, for monitoring; each the mean over the batch), the weighted total
    under ``"total"``.
    """

    def __init__(self, config: LossConfig, network: Optional[LossNetwork] = None) -> None:
        super().__init__()
        self.config = config
        relative = config.loss_scale == "relative"
        self.style = StyleTerm(_weights(config.style_layers, config.style_layer_weights), relative)
        self.terms: list[tuple[float, Term]] = [
            (config.style_weight, self.style),
            (config.content_weight, ContentTerm(_weights(config.content_layers, config.content_layer_weights), relative)),
        ]
        if config.tv_weight:
            self.terms.append((config.tv_weight, TotalVariationTerm()))
        if config.diversity_weight:
            self.terms.append((-config.diversity_weight, DiversityTerm(canonical_layer(config.diversity_layer))))
        self.content_layers = list(self.terms[1][1].layers)
        layers = list(dict.fromkeys(layer for _, term in self.terms for layer in term.layers))
        self.network = network or LossNetwork(config.loss_net, config.vgg_weights, layers)

    @property
    def style_scale(self) -> Tensor:
        """The style term's normaliser (the style image's weighted mean squared Gram entries when relative, else 1)."""
        return self.style.scale

    @torch.no_grad()
    def set_style(self, style: Tensor) -> None:
        """Set the style term's target from ``style`` (1, 3, H, W): computed once per run."""
        self.style.set_target(self.network(style, upto=list(self.style.layers)))

    @torch.no_grad()
    def content_targets(self, content: Tensor) -> dict[str, Tensor]:
        """Content-layer features of ``content``, without gradient and no deeper than needed."""
        return self.network(content, upto=self.content_layers)

    def batch(self, photos: Tensor, strength: Optional[Tensor] = None) -> Batch:
        """A training batch of ``photos`` with its targets: each photo (and its ``strength``) repeated as the terms need samples."""
        copies = max(term.samples for _, term in self.terms)
        if copies > 1:
            photos = torch.cat([photos] * copies)  # unlike repeat, keeps channels_last
            strength = None if strength is None else strength.repeat(copies)
        return Batch(photos, self.content_targets(photos), strength, len(photos) // copies)

    def forward(self, output: Tensor, batch: Union[Batch, Mapping[str, Tensor], None] = None) -> dict[str, Tensor]:
        """Loss terms for ``output`` against ``batch`` (None for textures: no content term).

        ``batch`` may also be content features alone (:meth:`content_targets`), at strength 1: one output per
        input, as optimisation and evaluation score.
        """
        if not self.style.target_grams:
            raise RuntimeError("call set_style() before computing losses")
        if not isinstance(batch, Batch):
            batch = Batch(content=batch)
        active = [(weight, term) for weight, term in self.terms if term.applies(batch)]
        features = self.network(output, upto=list(dict.fromkeys(layer for _, term in active for layer in term.layers)))
        terms: dict[str, Tensor] = {}
        total: Optional[Tensor] = None
        for weight, term in active:
            reported, value = term(output, features, batch)
            terms.update(reported)
            total = weight * value if total is None else total + weight * value
        assert total is not None  # the style term always applies
        terms["total"] = total
        return terms
