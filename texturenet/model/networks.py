"""The one place a generator is built from its config: every path (training, checkpoints, stylising, export) asks here.

``GeneratorConfig.generator`` names the network: ``pyramid`` (Ulyanov et al. 2016, model/pyramid.py) or ``johnson``
(Johnson et al. 2016, model/johnson.py). Both are called alike in style mode and keep the same checkpoint layout.
"""
from __future__ import annotations

from typing import Union

from ..config import GeneratorConfig
from .pyramid import PyramidGenerator
from .johnson import JohnsonGenerator

Generator = Union[PyramidGenerator, JohnsonGenerator]


def make_generator(config: GeneratorConfig) -> Generator:
    """A new, randomly initialised generator of the kind and shape ``config`` describes."""
    return JohnsonGenerator(config) if config.generator == "johnson" else PyramidGenerator(config)
