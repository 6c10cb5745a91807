"""Every setting of texturenet, with its default and where that default comes from: one module per subject.

One source of defaults: the command line (``cli/``) builds its flags and help texts from these dataclasses
(:func:`field_doc`). Training has one config (:class:`TrainConfig`, holding the generator's and the losses'), which
the trainer reads and checkpoints store, so that a generator can be rebuilt without the command line that made it;
stylising has :class:`StylizeConfig`; the tools (per-image optimisation, evaluation, diversity) and the GUI have a
settings class each. The names below are what the rest of the package reads, so ``from .config import X`` holds
wherever ``X`` lives.
"""
from .assets import BUNDLED_PHOTOS
from .field_docs import field_doc
from .gui import GuiConfig
from .limits import MAX_SAMPLE_PIXELS, MAX_SEED, strength_range
from .loss import LOSS_NETS, LOSS_SCALES, WEIGHTS_ENV, LossConfig
from .model import ACTIVATIONS, GENERATORS, MODES, NORMS, PADDINGS, GeneratorConfig, scales_for
from .stylize import VIDEO_NOISE, StylizeConfig
from .tools import INITS, OPTIMIZERS, DiversitySettings, EvaluateSettings, OptimizeSettings
from .training import ALONG_THE_WAY, AMP_DTYPES, CPU_DEMO, CPU_TEXTURE, RUN_NAME, VISDOM_PORT, TrainConfig

__all__ = [
    "BUNDLED_PHOTOS", "field_doc", "GuiConfig", "MAX_SAMPLE_PIXELS", "MAX_SEED", "strength_range",
    "LOSS_NETS", "LOSS_SCALES", "WEIGHTS_ENV", "LossConfig",
    "ACTIVATIONS", "GENERATORS", "MODES", "NORMS", "PADDINGS", "GeneratorConfig", "scales_for",
    "VIDEO_NOISE", "StylizeConfig", "INITS", "OPTIMIZERS", "DiversitySettings", "EvaluateSettings", "OptimizeSettings",
    "ALONG_THE_WAY", "AMP_DTYPES", "CPU_DEMO", "CPU_TEXTURE", "RUN_NAME", "VISDOM_PORT", "TrainConfig",
]
