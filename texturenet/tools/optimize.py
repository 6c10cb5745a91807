"""Per-image optimisation (Gatys, Ecker & Bethge 2015, 2016): the picture itself is the variable.

The quality reference that a texture network approximates in one pass (Ulyanov et al. 2016,
Sec. 1). It uses the very same :class:`~texturenet.loss.terms.PerceptualLoss` as training: one
implementation of the losses. Style transfer starts from the content photo (or noise) and
minimises style + content + TV (Gatys et al. 2016, Eq. 7); texture synthesis starts from
noise and minimises the style term alone (Gatys et al. 2015, Eq. 5).

L-BFGS takes its steps with a strong-Wolfe line search: without one, a step of length ``lr``
along a quasi-Newton direction that an early, poor curvature estimate gives can overshoot by
orders of magnitude (measured: the loss jumped to 1e14 mid-run on the HED VGG16), where the line
search only accepts steps that decrease the loss enough (Nocedal & Wright 2006, Sec. 3.1).

Presets reproduce the seed projects' settings. Their numbers were written for other loss
normalisations; each preset's note says how they were converted to ours (absolute terms: Grams
divided by C*H*W, mean-squared errors, mean-squared TV on RGB in [0, 1]).
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Optional

import torch
from torch import Tensor
from tqdm import tqdm

from ..config import LossConfig, OptimizeSettings
from ..io.images import load_style, read_image, resize_long_side, save_image, to_tensor
from ..errors import TexturenetError
from ..loss.terms import PerceptualLoss
from ..training.run import check_writable

# Channels of relu1_1 ... relu5_1 (VGG16 and VGG19 alike).
_STYLE_CHANNELS = (64, 128, 256, 512, 512)
_STYLE_RELUS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")
# The TF tutorial's total_variation is the L1 *sum* over neighbour differences; ours is the
# mean *squared* difference. Measured on 20 of the shared photos at 256 px (long side): the ratio
# sum|d| / mean(d^2) has median 1.1e6 (range 0.84e6-2.0e6), so a TF weight w becomes w * 1.1e6
# here. Approximate by nature: the two penalties differ in form and the sum grows with image size.
TF_TV_TO_OURS = 1.1e6


@dataclass(frozen=True)
class Preset:
    """The settings of one seed project, converted to our loss normalisation (see ``note``)."""

    note: str
    """Where the settings come from and how each weight was rescaled (shown in --help)."""
    loss: dict[str, Any]
    """LossConfig fields that the preset sets."""
    optimizer: str = "adam"
    lr: float = 0.02
    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = 1e-8
    iterations: int = 1000


def _tf_style_weights(style_weight: float) -> tuple[float, ...]:
    """TF tutorial: Gram / (H*W), mean over layers -> ours (Gram / (C*H*W)) times C^2, divided by 5 layers."""
    return tuple(style_weight * c * c / len(_STYLE_CHANNELS) for c in _STYLE_CHANNELS)


PRESETS: dict[str, Preset] = {
    "keras-tutorial": Preset(
        note=(
            "TensorFlow 'Neural style transfer' tutorial: VGG19, content block5_conv2, style block1_conv1..block5_conv1, "
            "Adam lr 0.02 b1 0.99 eps 0.1, 10x100 steps, weights content 1e4, style 1e-2, TV 30. Its Keras VGG takes 0-255 BGR "
            "minus the mean; our loss network normalises inside, so for Caffe-derived weights (such as the HED VGG16) the "
            "features are identical and need no rescaling. Its Gram divides by H*W (ours by C*H*W), so each style layer's "
            "weight is 1e-2 * C^2 / 5; its TV is an L1 sum, ours a mean square: TV 30 * 1.1e6 (ratio measured on photos at 256 px)."
        ),
        loss={"loss_scale": "absolute", "content_layers": ("relu5_2",), "style_layers": _STYLE_RELUS, "style_layer_weights": _tf_style_weights(1.0),
              "content_weight": 1e4, "style_weight": 1e-2, "tv_weight": 30 * TF_TV_TO_OURS},
        optimizer="adam", lr=0.02, betas=(0.99, 0.999), eps=0.1, iterations=1000,
    ),
    "keras-block4": Preset(
        note=(
            "The same Keras/TensorFlow recipe with content block4_conv2, Adam lr 0.01, weights style 10, content 1e7, TV 20, "
            "15x100 steps; rescaled as keras-tutorial (style layer weights 10 * C^2 / 5, TV 20 * 1.1e6)."
        ),
        loss={"loss_scale": "absolute", "content_layers": ("relu4_2",), "style_layers": _STYLE_RELUS,
              "style_layer_weights": _tf_style_weights(1.0), "content_weight": 1e7, "style_weight": 10.0, "tv_weight": 20 * TF_TV_TO_OURS},
        optimizer="adam", lr=0.01, betas=(0.99, 0.999), eps=0.1, iterations=1500,
    ),
    "pytorch-udacity": Preset(
        note=(
            "PyTorch (Udacity) notebook: torchvision VGG19 on normalised input (our convention: no input rescaling), "
            "content conv4_2, style conv1_1..conv5_1 (before the ReLU) weighted 1, 0.75, 0.2, 0.2, 0.2, alpha:beta = 1:100, "
            "Adam lr 0.003, 2000 steps. Its Gram is unnormalised and each layer's loss is divided by C*H*W, i.e. C*H*W times "
            "ours: the layer weights are multiplied by C*H*W at its 400x400 working size."
        ),
        loss={"loss_scale": "absolute", "content_layers": ("conv4_2",), "style_layers": ("conv1_1", "conv2_1", "conv3_1", "conv4_1", "conv5_1"),
              "style_layer_weights": tuple(w * c * (400 // 2**i) ** 2 for i, (w, c) in enumerate(zip((1, 0.75, 0.2, 0.2, 0.2), _STYLE_CHANNELS))),
              "content_weight": 1.0, "style_weight": 100.0, "tv_weight": 0.0},
        optimizer="adam", lr=0.003, iterations=2000,
    ),
    "gatys": Preset(
        note=(
            "Gatys, Ecker & Bethge 2016 as published: L-BFGS from the photo, content relu4_2, style relu1_1..relu5_1 "
            "(w_l = 1/5), alpha/beta = 1e-3, no TV. Their E_l = sum (G-A)^2 / (4 N^2 M^2) with unnormalised Grams is "
            "N^2/4 times our layer term, and their content loss (1/2 sum) is N*M/2 times our mean: at 512x512 "
            "(relu4_2: N=512, M=64*64) the content weight is 1e-3 * 512*4096/2 and style layer weights N^2/20."
        ),
        loss={"loss_scale": "absolute", "content_layers": ("relu4_2",), "style_layers": _STYLE_RELUS,
              "style_layer_weights": tuple(c * c / 20 for c in _STYLE_CHANNELS),
              "content_weight": 1e-3 * 512 * 64 * 64 / 2, "style_weight": 1.0, "tv_weight": 0.0},
        optimizer="lbfgs", lr=1.0, iterations=500,
    ),
}


Callback = Callable[[int, Tensor, dict[str, float], float], None]


def optimize_image(
    loss: PerceptualLoss,
    settings: OptimizeSettings,
    content: Optional[Tensor] = None,
    size: Optional[tuple[int, int]] = None,
    every: int = 0,
    callback: Optional[Callback] = None,
    progress: bool = True,
) -> tuple[Tensor, dict[str, float]]:
    """Optimise a (1, 3, H, W) image in [0, 1] against ``loss`` (whose style is already set).

    ``content`` (1, 3, H, W) gives style transfer; ``size`` (height, width) without content
    gives texture synthesis. Every ``every`` iterations (and at the end) ``callback`` gets
    (iteration, clamped image, loss terms as floats, seconds spent optimising so far: setup
    and callbacks excluded). Returns the final clamped image and its terms.
    """
    device = loss.network.mean.device
    if content is None and size is None:
        raise ValueError("give a content image or a texture size")
    shape = content.shape if content is not None else (1, 3, *size)  # type: ignore[misc]
    if settings.init == "content" and content is None:
        raise TexturenetError("--init content needs --content; texture synthesis starts from noise")
    if settings.init == "content":
        image = content.detach().to(device).contiguous().clone()  # type: ignore[union-attr]
    else:
        noise = torch.Generator().manual_seed(settings.seed)
        image = torch.rand(shape, generator=noise).to(device)
    image.requires_grad_(True)
    targets = loss.content_targets(content.to(device)) if content is not None else None
    if settings.optimizer == "adam":
        optimizer: torch.optim.Optimizer = torch.optim.Adam([image], lr=settings.lr, betas=settings.betas, eps=settings.eps)
    else:
        # One L-BFGS iteration per step() keeps a per-iteration progress bar and callbacks. max_eval is the line
        # search's budget: torch's default (max_iter * 5 // 4 = 1) leaves it none, and L-BFGS then stands
        # still for good from its second iteration (measured on the HED VGG16).
        optimizer = torch.optim.LBFGS([image], lr=settings.lr, max_iter=1, max_eval=20, history_size=100,
                                      line_search_fn="strong_wolfe")
    terms: dict[str, Tensor] = {}

    def closure() -> Tensor:
        nonlocal terms
        optimizer.zero_grad(set_to_none=True)
        # The picture that is written is clamped to [0, 1], so that is what is scored: L-BFGS, which keeps
        # its pixels unconstrained, would otherwise buy loss with values no picture holds.
        terms = loss(image.clamp(0, 1) if settings.optimizer == "lbfgs" else image, targets)
        terms["total"].backward()
        return terms["total"]

    spent = 0.0
    bar = tqdm(total=settings.iterations, desc="optimising", unit="it", dynamic_ncols=True, disable=not progress, leave=False)
    for iteration in range(1, settings.iterations + 1):
        start = time.perf_counter()
        optimizer.step(closure)
        if settings.optimizer == "adam":  # the TF tutorial clips after every step; L-BFGS keeps its history intact
            with torch.no_grad():
                image.clamp_(0, 1)
        spent += time.perf_counter() - start
        bar.update()
        if iteration % 10 == 0:
            bar.set_postfix_str(format_terms({k: v.item() for k, v in terms.items()}), refresh=False)
        if callback is not None and ((every and iteration % every == 0) or iteration == settings.iterations):
            callback(iteration, image.detach().clamp(0, 1), {k: v.item() for k, v in terms.items()}, spent)
    final = image.detach().clamp(0, 1)
    with torch.no_grad():
        final_terms = {k: float(v) for k, v in loss(final, targets).items()}
    # The terms of the last step are those of the image before it; the bar ends on the final image's own.
    bar.set_postfix_str(format_terms(final_terms))
    bar.close()
    return final, final_terms


def format_terms(terms: dict[str, float]) -> str:
    """The loss terms as the progress bar and the final line show them (the per-layer style terms left out)."""
    return ", ".join(f"{k} {v:.4g}" for k, v in terms.items() if not k.startswith("style_"))


def optimize_files(
    config: LossConfig,
    settings: OptimizeSettings,
    style: Path,
    output: Path,
    content: Optional[Path] = None,
    size: tuple[int, int] = (256, 256),
    image_size: int = 512,
    style_size: int = 512,
    save_every: int = 0,
    device: torch.device = torch.device("cpu"),
) -> Path:
    """The command line's work: read the images, optimise, write ``output`` (and intermediates)."""
    style_image = load_style(style, style_size, "--style")
    photo = None if content is None else to_tensor(resize_long_side(read_image(content, "--content"), image_size)).unsqueeze(0)
    check_writable(output.parent)
    loss = PerceptualLoss(config).to(device)
    loss.set_style(style_image.to(device))

    def save(iteration: int, image: Tensor, _terms: dict[str, float], _seconds: float) -> None:
        if iteration < settings.iterations:
            save_image(image[0], output.with_name(f"{output.stem}_{iteration:04d}{output.suffix}"))

    width, height = size
    final, terms = optimize_image(loss, settings, None if photo is None else photo.to(device), (height, width), save_every, save)
    save_image(final[0], output)
    tqdm.write("final losses: " + format_terms(terms))
    return output
