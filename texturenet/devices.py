"""The device a command computes on: the CPU, or the GPU that ``--cuda`` asks for."""
from __future__ import annotations

from typing import Any

from .errors import TexturenetError


def cuda_device(cuda: bool, work: str = "run", index: int | None = None) -> Any:
    """``torch.device`` ``cuda`` (``cuda:index`` when given) with ``--cuda``, else ``cpu``; one clear line without CUDA.

    ``work`` is what the message offers to do on the CPU instead (run, train, stylise). torch is
    imported here, not with the module: the commands import this before they parse their flags,
    and ``--help`` or a refused flag should not wait seconds for torch.
    """
    import torch

    if cuda and not torch.cuda.is_available():
        raise TexturenetError(f"--cuda was given but CUDA is not available; drop --cuda to {work} on the CPU")
    if not cuda:
        return torch.device("cpu")
    return torch.device("cuda" if index is None else f"cuda:{index}")
