"""What ``texturenet info`` reports: versions, devices, and where the loss-network weights are looked for.

The facts a bug report or a failed first run needs, in one place: which torch sees which GPU, and
whether the ImageNet VGG weights are already in torch's hub cache (training downloads them there at
first use, which fails offline) or where ``TEXTURENET_VGG_WEIGHTS`` points instead.
"""
from __future__ import annotations

import importlib.metadata
import os
import platform
from pathlib import Path
from typing import Any, Optional

from ..version import __version__
from ..config import LOSS_NETS, WEIGHTS_ENV

WEIGHT_KEYWORDS = ("imagenet", "random")
"""``--vgg_weights`` values that name no file."""


def _version(package: str) -> Optional[str]:
    """An installed package's version, or None when it is not installed (read from its metadata, not imported)."""
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return None


def report() -> dict[str, Any]:
    """Versions, devices and weight locations, as plain JSON types."""
    import torch
    import torchvision

    from ..loss.vgg import imagenet_weights

    given = os.environ.get(WEIGHTS_ENV)
    imagenet = []
    for arch in LOSS_NETS:
        url, path = imagenet_weights(arch)
        imagenet.append({"loss_net": arch, "url": url, "path": str(path), "exists": path.is_file()})
    cuda = torch.cuda.is_available()
    return {
        "versions": {"texturenet": __version__, "python": platform.python_version(), "torch": torch.__version__,
                     "torchvision": torchvision.__version__, "visdom": _version("visdom")},
        "devices": {"cuda": [torch.cuda.get_device_name(index) for index in range(torch.cuda.device_count())] if cuda else [],
                    "cuda_version": torch.version.cuda, "mps": torch.backends.mps.is_available()},
        "weights": {
            "environment": {"variable": WEIGHTS_ENV, "value": given,
                            "exists": None if given is None or given in WEIGHT_KEYWORDS else Path(given).expanduser().is_file()},
            "default": given or "imagenet",
            "torch_hub": torch.hub.get_dir(),
            "imagenet": imagenet,
        },
    }


def format_report(facts: dict[str, Any]) -> str:
    """The report as lines for a person."""
    versions = facts["versions"]
    devices = facts["devices"]
    weights = facts["weights"]
    environment = weights["environment"]
    cuda = ", ".join(f"cuda:{index} {name}" for index, name in enumerate(devices["cuda"])) or "none"
    if environment["value"] is None:
        given = "not set"
    elif environment["exists"] is None:
        given = environment["value"]
    else:
        given = f"{environment['value']} ({'found' if environment['exists'] else 'no such file'})"
    lines = [
        f"texturenet {versions['texturenet']}",
        "python {python}, torch {torch}, torchvision {torchvision}, visdom {visdom}".format(
            **{**versions, "visdom": versions["visdom"] or "not installed"}),
        f"devices: cpu; CUDA: {cuda}; MPS: {'yes' if devices['mps'] else 'no'}",
        f"loss-network weights (--vgg_weights, default here: {weights['default']}):",
        f"  {environment['variable']}: {given}",
    ]
    for entry in weights["imagenet"]:
        state = "found" if entry["exists"] else f"not there yet; downloaded from {entry['url']} at first use"
        lines.append(f"  {entry['loss_net']} ImageNet weights: {entry['path']} ({state})")
    return "\n".join(lines)
