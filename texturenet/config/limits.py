"""The ranges every command and the GUI hold settings to: seeds, the style strength (``--noise_factor``), sizes.

One rule each, so that a flag, a checkpoint's setting and a GUI field are refused alike; and the check of a setting
that takes one of a few names.
"""
from __future__ import annotations

import math

MAX_SEED = 2**32 - 1
"""Seeds are 0..2^32-1, what every use takes: torch.manual_seed overflows past 2^64, the data order seeds a torch
Generator with seed * 1_000_003 + epoch (training/data.py), tiled noise keys NumPy's PCG64 with it (no negatives)."""
STRENGTH_LIMIT = 100.0
"""|strength| above this drowns the picture (the noise input is uniform in [0, strength]; 1 is what training saw); the
dial's range (max_strength) stays within it too."""
DEFAULT_MAX_STRENGTH = 2.0
"""The strength dial's default range, 0..2: 1 is the style weight's style, 2 twice that weight (the GUI's slider spans it)."""
MAX_STYLE_SIZE = 4096
"""The style image's shorter side at most 4096 pixels: its Gram targets are computed in one VGG pass."""
MAX_SAMPLE_PIXELS = 16 * 2**20
"""A texture sample is generated in one untiled pass: measured 1.2 KB of memory a pixel at the paper's 6 scales of
8 channels (and a minute for 2048x2048 on 2 CPU cores), so 16 megapixels (4096x4096, about 20 GB) at most."""


def check_seed(seed: int) -> None:
    """A ValueError unless ``seed`` is in 0..:data:`MAX_SEED` (past it, a traceback once training or sampling starts)."""
    if not 0 <= seed <= MAX_SEED:
        raise ValueError(f"seed must be in 0..{MAX_SEED}, got {seed}")


def strength_range(max_strength: float = 0.0) -> tuple[float, float]:
    """The strengths a model with this ``max_strength`` takes, (lowest, highest): the one rule, for commands and GUI.

    With the strength dial (``max_strength`` > 0): 0..max_strength, the strengths the model was trained for (the
    README's ``--noise_factor``: outside that range is refused). Without it (models from before the dial, textures,
    batch norm), where the strength only scales the noise, and before a model is known: any strength of size at
    most :data:`STRENGTH_LIMIT`.
    """
    return (0.0, max_strength) if max_strength else (-STRENGTH_LIMIT, STRENGTH_LIMIT)


def check_strength(strength: float) -> None:
    """A ValueError unless ``strength`` is finite and in :func:`strength_range` before a model is known.

    The noise enters every scale (Ulyanov et al. 2016, Sec. 3.1) and is instance-normalised only after the first
    convolution: 1e300 overflows it to inf and the picture comes out black.
    """
    low, high = strength_range()
    if not (math.isfinite(strength) and low <= strength <= high):
        raise ValueError(f"noise_factor must be a number in {low:g}..{high:g}, got {strength}")


def check_choice(name: str, value: str, choices: tuple[str, ...]) -> None:
    """A ValueError unless ``value`` is one of ``choices`` (a setting that takes one of a few names)."""
    if value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(choices)}; got {value!r}")
