"""The Python API: train a model, load it, stylise pictures or sample textures, without the command line.

The same engine as ``texturenet stylize`` (:class:`texturenet.stylize.stylizer.Stylizer`: the fast path, automatic
tiling of big photos, the strength dial's range check), so a picture made here is the picture the
command makes with the same strength and seed. Mistakes raise :class:`~texturenet.errors.TexturenetError`
with the command line's message. Importing this module loads neither torch nor a model.

An example, run by tests/test_api.py in a folder holding ``photo.jpg`` (random loss-network weights keep
it quick; train with the ImageNet weights, the default, for pictures worth keeping)::

    >>> import texturenet
    >>> config = texturenet.TrainConfig(name="mosaic", iterations=2, image_size=32, style_size=32, workers=0,
    ...                                 loss=texturenet.LossConfig(vgg_weights="random"))
    >>> final = texturenet.train(config)  # the bundled style and photos  # doctest: +ELLIPSIS
    training 'mosaic' (style mode, pyramid generator, ... parameters) on cpu: ...
    saved checkpoints/mosaic.pth
    >>> model = texturenet.load("checkpoints/mosaic.pth", device="cpu")
    >>> picture = model.stylize("photo.jpg", strength=0.7, seed=0)  # a path, a PIL image or an HxWx3 uint8 array
    >>> picture.size, picture.mode
    ((64, 48), 'RGB')
    >>> import numpy as np
    >>> model.stylize(np.asarray(picture), strength=0).size
    (64, 48)
    >>> model.sample(256, 256)
    Traceback (most recent call last):
    texturenet.errors.TexturenetError: this is a stylisation model: give --input PHOTO (--size is for texture models)
"""
from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional, Union

from .config import MAX_SAMPLE_PIXELS, MAX_SEED, StylizeConfig, TrainConfig
from .errors import TexturenetError

if TYPE_CHECKING:
    import numpy as np
    from PIL import Image

    from .stylize.stylizer import Stylizer

Picture = Union[str, "os.PathLike[str]", "Image.Image", "np.ndarray"]
"""What :meth:`Model.stylize` takes: an image file's path, a PIL image, or an (H, W, 3) uint8 array."""

DEFAULT_STRENGTH = StylizeConfig.noise_factor
"""The strength when none is given: ``texturenet stylize``'s default ``--noise_factor``."""


def load(path: Union[str, "os.PathLike[str]"], device: str = "cpu") -> "Model":
    """The model a ``texturenet train`` checkpoint holds, ready on ``device`` (``cpu``, ``cuda``, ``cuda:1``, ``mps``)."""
    from .devices import torch_device
    from .stylize.stylizer import Stylizer

    chosen = torch_device(device, f"device={device!r} was given", 'give device="cpu"')
    return Model(Stylizer(Path(path), chosen))


def train(config: TrainConfig) -> Path:
    """Train as ``texturenet train`` does with the same settings (progress on stdout); the final checkpoint's path.

    The settings are taken as they are: the command line's CPU sizing and its filling in of a resumed run's
    settings apply to flags, not to a config built in Python.
    """
    from .training.loop import Trainer

    return Trainer(config, []).run()


class Model:
    """A trained model on one device: :meth:`stylize` for style models, :meth:`sample` for texture models."""

    def __init__(self, stylizer: "Stylizer") -> None:
        self._stylizer = stylizer

    @property
    def mode(self) -> str:
        """``style`` (stylises photos) or ``texture`` (samples from noise alone)."""
        return self._stylizer.mode

    @property
    def max_strength(self) -> float:
        """The top of the strength dial the model was trained for (0: a model without the dial, where strength scales the noise)."""
        return self._stylizer.max_strength

    def stylize(self, image: Picture, strength: float = DEFAULT_STRENGTH, seed: Optional[int] = None) -> "Image.Image":
        """``image`` stylised, same size, as an RGB PIL image.

        ``strength`` is ``--noise_factor``: the style strength, 0 .. :attr:`max_strength` (0 the photo's shapes in the
        style's colours, 1 the full style). ``seed`` picks the noise (the same seed, the same picture, as the command's
        ``--seed``); None draws a new one each call.
        """
        from PIL import Image

        self._stylizer.require("style")
        config = _settings(strength, seed)
        array = self._stylizer.stylize_array(_rgb_array(image), config.noise_factor, config.seed)
        return Image.fromarray(array, mode="RGB")

    def sample(self, width: int, height: int, seed: Optional[int] = None, strength: float = DEFAULT_STRENGTH) -> "Image.Image":
        """A ``width`` x ``height`` texture sample (it tiles seamlessly) as an RGB PIL image; ``seed`` as in :meth:`stylize`."""
        from .io.images import to_image

        self._stylizer.require("texture")
        config = _settings(strength, seed)
        if width < 1 or height < 1 or width * height > MAX_SAMPLE_PIXELS:
            raise TexturenetError(f"a {width}x{height} sample: give a width and height of at least 1 and at most "
                                  f"{MAX_SAMPLE_PIXELS // 2**20} megapixels in all (e.g. 4096x4096); a sample is made in one pass")
        return to_image(self._stylizer.sample(height, width, config.noise_factor, config.seed))


def _settings(strength: float, seed: Optional[int]) -> StylizeConfig:
    """The strength and seed, checked by the rules the command line's flags follow (same messages)."""
    try:
        return StylizeConfig(noise_factor=float(strength), seed=secrets.randbelow(MAX_SEED + 1) if seed is None else int(seed))
    except (TypeError, ValueError) as error:
        raise TexturenetError(str(error)) from None


def _rgb_array(image: Any) -> "np.ndarray":
    """A path, PIL image or (H, W, 3) uint8 array as an (H, W, 3) uint8 array, decoded as the command line decodes files."""
    import numpy as np
    from PIL import Image

    from .io.images import UnreadableImage, as_rgb, read_image

    if isinstance(image, (str, os.PathLike)):
        return np.asarray(read_image(Path(image), "image"))
    if isinstance(image, Image.Image):
        try:
            return np.asarray(as_rgb(image))
        except UnreadableImage as error:
            raise TexturenetError(f"image: {error}") from None
    if isinstance(image, np.ndarray):
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise TexturenetError(f"image: an array of shape {image.shape} and dtype {image.dtype}; give an (H, W, 3) uint8 RGB array "
                                  "(e.g. np.asarray(pil_image.convert('RGB')))")
        return np.ascontiguousarray(image)
    raise TexturenetError(f"image: a {type(image).__name__}; give a file path, a PIL image or an (H, W, 3) uint8 array")
