"""The second judge (texturenet/tools/judge.py) on synthetic images: zero for the style itself, and ordered as the eye orders them."""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from texturenet.tools.judge import colour_distance, judge, srgb_to_lab, texture_distance

PALETTE = np.array([[0.15, 0.3, 0.8], [0.95, 0.8, 0.2], [0.9, 0.5, 0.6], [0.95, 0.95, 0.9], [0.3, 0.6, 0.9]])


def cells(size: int = 96, cell: int = 12, seed: int = 0) -> torch.Tensor:
    """A mosaic-like style: square cells of palette colours with dark leading, (3, size, size) in [0, 1]."""
    rng = np.random.default_rng(seed)
    count = size // cell + 1
    colours = PALETTE[rng.integers(0, len(PALETTE), (count, count))]
    image = np.repeat(np.repeat(colours, cell, 0), cell, 1)[:size, :size].copy()
    image[::cell] = image[:, ::cell] = 0.1  # the leading between the cells
    image = image + rng.normal(0, 0.02, image.shape)
    return torch.from_numpy(image.clip(0, 1)).permute(2, 0, 1).float()


def photo(size: int = 96) -> torch.Tensor:
    """Other colours and no cells: a smooth green-brown landscape-like gradient with a little grain."""
    y, x = torch.meshgrid(torch.linspace(0, 1, size), torch.linspace(0, 1, size), indexing="ij")
    image = torch.stack([0.3 + 0.3 * y, 0.45 + 0.2 * torch.sin(6 * x), 0.15 + 0.1 * x])
    return (image + 0.02 * torch.randn(image.shape, generator=torch.Generator().manual_seed(0))).clamp(0, 1)


def shifted(image: torch.Tensor, amount: float) -> torch.Tensor:
    """A colour-shifted copy: every pixel moved ``amount`` of the way to orange."""
    return image * (1 - amount) + amount * torch.tensor([0.9, 0.45, 0.1])[:, None, None]


def test_lab_matches_the_standard_values() -> None:
    """sRGB -> CIE L*a*b* (D65) at reference colours (values as published, e.g. by Lindbloom's calculator)."""
    colours = torch.tensor([[1.0, 1.0, 1.0], [0.0, 0.0, 0.0], [1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0], [0.5, 0.5, 0.5]])
    expected = torch.tensor([[100.0, 0.0, 0.0], [0.0, 0.0, 0.0], [53.24, 80.09, 67.20], [87.73, -86.18, 83.18],
                             [32.30, 79.19, -107.86], [53.39, 0.0, 0.0]])
    lab = srgb_to_lab(colours.T[:, :, None])[:, :, 0].T
    assert torch.allclose(lab, expected, atol=0.02), lab


def test_colour_is_zero_for_the_style_and_grows_with_a_colour_shift() -> None:
    style = cells()
    assert colour_distance(style, style) == 0
    steps = [colour_distance(shifted(style, amount), style) for amount in (0.05, 0.1, 0.2, 0.4, 0.7)]
    assert all(a < b for a, b in zip(steps, steps[1:])), steps  # monotone in the shift
    other = colour_distance(photo(), style)
    assert steps[0] > 1 and steps[2] < other  # a small shift is seen; a copy shifted 20% is closer than a photo of other colours
    shuffled = style.flatten(1)[:, torch.randperm(96 * 96, generator=torch.Generator().manual_seed(1))].reshape(style.shape)
    assert colour_distance(shuffled, style) < min(0.5 * steps[0], 0.05 * other)  # a palette measure: where colours are is not seen


def test_texture_is_zero_for_the_style_and_grows_as_its_cells_are_lost_or_rescaled() -> None:
    style = cells()
    assert texture_distance(style, style) == 0
    blurred = [texture_distance(F.avg_pool2d(style[None], k, stride=1, padding=k // 2, count_include_pad=False)[0], style)
               for k in (3, 5, 9, 15)]
    assert all(a < b for a, b in zip(blurred, blurred[1:])), blurred  # monotone as the cells and leading blur away
    assert texture_distance(cells(seed=5), style) < 0.25 * blurred[0]  # the same texture drawn again is as good as the style
    double = F.interpolate(cells(size=48)[None], scale_factor=2, mode="nearest")[0]  # cells twice as large
    assert texture_distance(double, style) > 4 * texture_distance(cells(seed=5), style)  # the scale matters
    assert texture_distance(photo(), style) > blurred[0]
    shuffled = style.flatten(1)[:, torch.randperm(96 * 96, generator=torch.Generator().manual_seed(1))].reshape(style.shape)
    assert texture_distance(shuffled, style) > texture_distance(cells(seed=5), style) * 4  # the right colours without the cells


def test_judge_takes_pictures_of_any_size() -> None:
    scores = judge(photo(64)[:, :, :50], cells(96))
    assert set(scores) == {"colour", "texture"} and all(np.isfinite(v) and v > 0 for v in scores.values())
    assert judge(cells(), cells()) == pytest.approx({"colour": 0.0, "texture": 0.0}, abs=0)
