"""Perceptual losses: Gram-matrix style loss, feature content loss, total variation.

One implementation, shared by feed-forward training and per-image optimisation.
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

from typing import Mapping, Optional, Sequence

import torch
from torch import Tensor, nn

from .config import LossConfig
from .loss_network import LossNetwork
from .vgg_layers import canonical_layer


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


def _weights(layers: Sequence[str], weights: Optional[Sequence[float]]) -> dict[str, float]:
    return dict(zip(layers, weights if weights is not None else [1.0] * len(layers)))


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


class PerceptualLoss(nn.Module):
    """Weighted sum of style, content and total-variation losses for images in [0, 1].

    ``set_style`` computes the style image's Grams once; ``content_targets`` computes content
    features without gradient and only as deep as the content layers; ``forward`` runs the
    loss network once for all layers and returns every term (per-layer style terms too, for
    monitoring; each the mean over the batch), with the weighted total under ``"total"``.
    """

    def __init__(self, config: LossConfig, network: Optional[LossNetwork] = None) -> None:
        super().__init__()
        self.config = config
        self.style_weights = _weights([canonical_layer(n) for n in config.style_layers], config.style_layer_weights)
        self.content_weights = _weights(
            [canonical_layer(n) for n in config.content_layers], config.content_layer_weights
        )
        self.diversity_layer = canonical_layer(config.diversity_layer) if config.diversity_weight else None
        layers = list(dict.fromkeys([*self.style_weights, *self.content_weights, *filter(None, [self.diversity_layer])]))
        self.network = network or LossNetwork(config.loss_net, config.vgg_weights, layers)
        self.relative = config.loss_scale == "relative"
        self.target_grams: dict[str, Tensor] = {}
        self.style_scale = torch.ones(())

    @torch.no_grad()
    def set_style(self, style: Tensor) -> None:
        """Remember the Gram matrices of ``style`` (1, 3, H, W), and their weighted magnitude: computed once per run."""
        features = self.network(style, upto=list(self.style_weights))
        self.target_grams = {name: gram(f)[0] for name, f in features.items()}
        magnitude = sum(weight * _mean_square(self.target_grams[name][None])[0] for name, weight in self.style_weights.items())
        self.style_scale = magnitude if self.relative else torch.ones((), device=style.device)

    @torch.no_grad()
    def content_targets(self, content: Tensor) -> dict[str, Tensor]:
        """Content-layer features of ``content``, without gradient and no deeper than needed."""
        return self.network(content, upto=list(self.content_weights))

    def forward(self, output: Tensor, content: Optional[dict[str, Tensor]] = None, inputs: int = 1,
                style_scale: Optional[Tensor] = None) -> dict[str, Tensor]:
        """Loss terms for ``output``; pass ``content`` targets in style mode, None for textures.

        ``style_scale`` (N,): each image's own multiplier of the style weight (the strength the
        generator was asked for: trainer.py); the reported terms stay unweighted. With a
        diversity weight, ``output`` holds several samples of each of ``inputs`` inputs (see
        :func:`diversity`) and the total subtracts the weighted entropy estimate.
        """
        if not self.target_grams:
            raise RuntimeError("call set_style() before computing losses")
        wanted = list(self.style_weights) + (list(self.content_weights) if content is not None else [])
        wanted += [self.diversity_layer] if self.diversity_layer else []
        features = self.network(output, upto=wanted)
        terms: dict[str, Tensor] = {}
        style = output.new_zeros(len(output), dtype=torch.float32)  # per image
        for name, weight in self.style_weights.items():
            g = gram(features[name])
            term = _per_image_mse(g, self.target_grams[name].expand_as(g)) / self.style_scale
            terms[layer_term(name)] = term.mean()
            style = style + weight * term
        terms["style"] = style.mean()
        total = self.config.style_weight * (style if style_scale is None else style * style_scale.float()).mean()
        if content is not None:
            content_loss = output.new_zeros(len(output), dtype=torch.float32)
            for name, weight in self.content_weights.items():
                target = content[name]
                term = _per_image_mse(features[name], target)
                content_loss = content_loss + weight * (term / _mean_square(target) if self.relative else term)
            terms["content"] = content_loss.mean()
            total = total + self.config.content_weight * terms["content"]
        if self.config.tv_weight:
            terms["tv"] = total_variation(output.float())
            total = total + self.config.tv_weight * terms["tv"]
        if self.diversity_layer:
            terms[DIVERSITY] = diversity(features[self.diversity_layer], inputs)
            total = total - self.config.diversity_weight * terms[DIVERSITY]
        terms["total"] = total
        return terms
