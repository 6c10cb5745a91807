"""The frozen VGG loss network: named layers, weight loading, input normalisation, truncation.

Gatys et al. 2015 and Ulyanov et al. 2016 (Sec. 3.2) measure style and content in the feature
space of a VGG network trained on ImageNet. This module wraps torchvision's VGG ``features`` so
that one forward pass returns every requested layer, runs no further than the deepest of them,
and takes RGB in [0, 1] (the ImageNet mean/std normalisation happens inside, so the generator
never needs to know the loss network's convention).
"""
from __future__ import annotations

import contextlib
import io
import sys
import warnings
from pathlib import Path
from typing import Any, Iterable, Mapping, Optional, Sequence

import torch
from torch import Tensor, nn

from ..errors import TexturenetError
from ..vgg_layers import canonical_layer
from ..io.weights import load_plain, state_dict_mismatch, weights_problem

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def layer_names(features: nn.Sequential) -> list[str]:
    """Names for each module of a VGG ``features`` stack: conv1_1, relu1_1, ..., pool1, conv2_1, ..."""
    names, block, index = [], 1, 0
    for module in features:
        if isinstance(module, nn.Conv2d):
            index += 1
            names.append(f"conv{block}_{index}")
        elif isinstance(module, nn.ReLU):
            names.append(f"relu{block}_{index}")
        elif isinstance(module, nn.MaxPool2d):
            names.append(f"pool{block}")
            block, index = block + 1, 0
        else:  # pragma: no cover - torchvision's VGG has nothing else
            raise ValueError(f"unexpected module in VGG features: {module}")
    return names


ARCHS = {"vgg16": "D", "vgg19": "E"}
"""The loss networks and their torchvision configurations (Simonyan & Zisserman 2015, Table 1: D and E)."""


def _vgg(arch: str) -> nn.Sequential:
    """Randomly initialised VGG ``features`` only: skips building the 120M-parameter classifier."""
    from torchvision.models.vgg import cfgs, make_layers

    return make_layers(cfgs[ARCHS[arch]])


def _imagenet(arch: str) -> Any:
    """torchvision's ImageNet weights entry for ``arch`` (IMAGENET1K_V1)."""
    from torchvision import models

    return {"vgg16": models.VGG16_Weights, "vgg19": models.VGG19_Weights}[arch].IMAGENET1K_V1


def imagenet_weights(arch: str) -> tuple[str, Path]:
    """Where torchvision downloads ``arch``'s ImageNet weights from, and the file in torch's hub cache it keeps them in
    (``texturenet info`` shows it; the refusal when the download fails names it)."""
    url = _imagenet(arch).url
    return url, Path(torch.hub.get_dir()) / "checkpoints" / Path(url).name


def _load_imagenet(arch: str) -> nn.Sequential:
    from torchvision import models

    weights = _imagenet(arch)
    notes = io.StringIO()  # torch.hub announces the download on stderr; keep it only if it works
    try:
        with contextlib.redirect_stderr(notes):
            features = getattr(models, arch)(weights=weights).features
        sys.stderr.write(notes.getvalue())
        return features
    except Exception as error:  # URLError, OSError, hash mismatch: all mean "no usable download"
        url, cache = imagenet_weights(arch)
        other = next(name for name in ARCHS if name != arch)
        raise TexturenetError(  # offline the fix is a file at hand, of either VGG: the line names the flags for both
            f"could not download the ImageNet {arch} weights ({type(error).__name__}); put {url} at "
            f"{cache}, or pass --vgg_weights PATH (or set TEXTURENET_VGG_WEIGHTS) to a torchvision {arch} state dict, "
            f"or --loss_net {other} --vgg_weights PATH to a {other} one"
        ) from None


def _features_state_dict(state: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """Accept a whole-model state dict (``features.0.weight``, ``classifier...``) or ``features`` only."""
    if any(key.startswith("features.") for key in state):
        return {key[len("features."):]: value for key, value in state.items() if key.startswith("features.")}
    return dict(state)


def load_features(arch: str, weights: str) -> nn.Sequential:
    """VGG ``features`` with ``imagenet``, ``random`` or a state-dict file's weights."""
    if weights == "imagenet":
        return _load_imagenet(arch)
    features = _vgg(arch)
    if weights == "random":
        warnings.warn(
            "the loss network has random weights (--vgg_weights random): fine for tests, "
            "but results will not be stylised",
            stacklevel=2,
        )
        return features
    path = Path(weights).expanduser()
    if not path.is_file():
        raise TexturenetError(f"--vgg_weights {weights}: no such file; give imagenet, random or a state-dict path")
    state = load_plain(path, "{name} not a readable PyTorch state dict ({why})", name=f"--vgg_weights {weights}:")
    if not isinstance(state, Mapping):
        raise TexturenetError(f"--vgg_weights {weights}: expected a state dict, found a {type(state).__name__}")
    state = _features_state_dict(state)
    mismatch = state_dict_mismatch(state, features.state_dict())
    if mismatch:
        other = next(name for name in ARCHS if name != arch)
        with torch.device("meta"):  # shapes only: nothing is allocated or initialised
            expected = _vgg(other).state_dict()
        if not state_dict_mismatch(state, expected):
            raise TexturenetError(f"--vgg_weights {weights} looks like {other}, not {arch}; pass --loss_net {other}")
        raise TexturenetError(f"--vgg_weights {weights} does not fit torchvision's {arch}: {mismatch}")
    problem = weights_problem(state, features.state_dict())  # checked like a checkpoint's: one NaN makes every loss NaN
    if problem:
        raise TexturenetError(f"--vgg_weights {weights}: {problem}")
    features.load_state_dict(state)
    return features


class LossNetwork(nn.Module):
    """Frozen VGG that returns named activations for RGB input in [0, 1].

    Truncated after the deepest layer in ``layers``; ``forward(x, upto=...)`` can stop even
    earlier (e.g. content targets need nothing past the content layer).
    """

    def __init__(self, arch: str = "vgg19", weights: str = "imagenet", layers: Iterable[str] = ("relu4_2",)) -> None:
        super().__init__()
        features = load_features(arch, weights)
        all_names = layer_names(features)
        self.layers = [canonical_layer(name) for name in layers]
        unknown = [name for name in self.layers if name not in all_names]
        if unknown:
            raise TexturenetError(
                f"unknown {arch} layer(s) {', '.join(unknown)}; valid names are like relu4_2, conv1_1, pool3 "
                "or block4_conv2"
            )
        depth = max(all_names.index(name) for name in self.layers) + 1
        self.names = all_names[:depth]
        self.features = nn.Sequential(*list(features)[:depth])
        for module in self.features:
            if isinstance(module, nn.ReLU):
                module.inplace = False  # a returned activation must not be overwritten by the next layer
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)
        self.requires_grad_(False)
        self.eval()

    def train(self, mode: bool = True) -> "LossNetwork":
        """Always stays in eval mode: it is a fixed measuring instrument."""
        return super().train(False)

    def forward(self, x: Tensor, upto: Optional[Sequence[str]] = None) -> dict[str, Tensor]:
        """Activations of ``upto`` (default: every layer this network was built for), in one pass."""
        wanted = set(self.layers if upto is None else (canonical_layer(n) for n in upto))
        out: dict[str, Tensor] = {}
        x = (x - self.mean) / self.std
        for name, module in zip(self.names, self.features):
            x = module(x)
            if name in wanted:
                out[name] = x
                if len(out) == len(wanted):
                    break
        return out
