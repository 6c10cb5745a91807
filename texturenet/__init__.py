"""texturenet: feed-forward texture synthesis and stylisation (Ulyanov et al., Texture Networks, ICML 2016).

The Python API (texturenet/api.py has an example)::

    model = texturenet.load("mosaic.pth", device="cpu")
    picture = model.stylize("photo.jpg", strength=0.7)   # a PIL image; texture models: model.sample(512, 512)
    final = texturenet.train(texturenet.TrainConfig(texture=Path("mosaic.png"), data_dir=Path("photos")))

Importing the package is cheap: no torch, no model, until one of these is called.
"""

from .api import Model, load, train
from .config import GeneratorConfig, LossConfig, StylizeConfig, TrainConfig
from .errors import TexturenetError
from .version import __version__

__all__ = ["GeneratorConfig", "LossConfig", "Model", "StylizeConfig", "TexturenetError", "TrainConfig", "__version__", "load", "train"]
