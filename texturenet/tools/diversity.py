"""How varied a trained generator's samples are, for the diversity term of Improved Texture Networks.

Ulyanov, Vedaldi & Lempitsky 2017 (Sec. 3) observe that texture networks trained with the
2016 objective learn to ignore their noise: different noise gives nearly the same picture.
Their diversity term (``--diversity_weight``, :func:`texturenet.loss.terms.diversity`) counters
that. This measures the effect: draw several samples from different noise (texture models), or
stylise one photo with different noise (style models), and report the mean pairwise distance
between the samples in a loss-network layer and in pixels. A grid of the samples, one row per
model, shows what the numbers mean.
"""
from __future__ import annotations

from pathlib import Path
from typing import Optional, Sequence

import torch
from torch import Tensor
from tqdm import tqdm

from ..config import DiversitySettings
from ..errors import TexturenetError
from ..io.images import read_image, resize_long_side, save_image, to_tensor
from ..loss.vgg import LossNetwork
from ..loss.terms import mean_pairwise_distance
from ..io.plots import sample_grid
from ..stylize.stylizer import Stylizer
from ..vgg_layers import canonical_layer


def model_samples(stylizer: Stylizer, settings: DiversitySettings, photo: Optional[Tensor]) -> Tensor:
    """(samples, 3, H, W): one sample per noise seed."""
    if stylizer.mode == "texture":
        draws = [stylizer.sample(settings.size, settings.size, settings.noise_factor, seed) for seed in range(settings.samples)]
    elif photo is None:
        raise TexturenetError("a style model needs --photo: its samples are one photo stylised with different noise")
    else:
        draws = [stylizer.stylize(photo, settings.noise_factor, seed) for seed in range(settings.samples)]
    return torch.stack(draws)


def measure_diversity(
    models: Sequence[Path],
    settings: DiversitySettings,
    photo: Optional[Path] = None,
    grid_path: Optional[Path] = None,
    device: torch.device = torch.device("cpu"),
) -> list[dict[str, float | str]]:
    """One row per model: mean pairwise feature and pixel distances of its samples; optionally a grid picture."""
    if settings.samples < 2:
        raise TexturenetError("--samples must be at least 2: diversity is a distance between samples")
    layer = canonical_layer(settings.layer)
    network = LossNetwork(settings.loss_net, settings.vgg_weights, [layer]).to(device)
    image = to_tensor(resize_long_side(read_image(photo, "--photo"), settings.size)) if photo is not None else None
    rows, rows_of_samples = [], []
    for model in tqdm(models, desc="models", unit="model"):
        samples = model_samples(Stylizer(model, device), settings, image)
        with torch.no_grad():
            features = network(samples.to(device), upto=[layer])[layer]
        rows.append({"model": str(model), f"feature_distance_{layer}": mean_pairwise_distance(features).item(),
                     "pixel_distance": mean_pairwise_distance(samples).item()})
        rows_of_samples.append(samples.cpu())
    if grid_path is not None:
        save_image(sample_grid(None, *rows_of_samples), grid_path)
    return rows
