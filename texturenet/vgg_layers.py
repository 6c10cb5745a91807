"""VGG's layer names: the Keras names the seed projects use, and how deep each layer sees.

Plain names, no network: the configuration checks them (config/training.py) before any VGG is built,
and the loss network (loss/vgg.py) and the losses (loss/terms.py) read them the same way.
"""
from __future__ import annotations

import re
from typing import Iterable

_KERAS_NAME = re.compile(r"^block(\d+)_(conv(\d+)|pool)$")


def canonical_layer(name: str) -> str:
    """Accept torch-style names (``relu4_2``) and the Keras names of the seed projects.

    Keras' ``block4_conv2`` is a convolution with its ReLU built in, so it is our ``relu4_2``;
    ``block4_pool`` is ``pool4``.
    """
    match = _KERAS_NAME.match(name.strip())
    if match:
        block, conv, index = match.groups()
        return f"pool{block}" if conv == "pool" else f"relu{block}_{index}"
    return name.strip()


_BLOCK = re.compile(r"^(?:conv|relu)(\d+)_\d+$|^pool(\d+)$")


def smallest_input(layers: Iterable[str]) -> tuple[int, str]:
    """The smallest input side at which every layer of ``layers`` still has 2x2 pixels, and the layer that needs it.

    VGG halves the resolution at each 2x2 pool (floor); convB_i and reluB_i see the input after B-1 pools, poolB
    after B. On a 1x1 map a Gram matrix (Gatys et al. 2015) has no spatial statistics left to match, and the
    next pool fails. Names this does not know count as needing nothing (the loss network reports them).
    """
    least, deepest = 1, ""
    for name in layers:
        match = _BLOCK.match(canonical_layer(name))
        if match:
            block, pool = match.groups()
            needed = 2 * 2 ** (int(block) - 1 if block else int(pool))
            if needed > least:
                least, deepest = needed, canonical_layer(name)
    return least, deepest
