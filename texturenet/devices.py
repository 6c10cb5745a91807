"""The torch device a command or the Python API runs on: the one refusal of a device this machine does not have."""
from __future__ import annotations

from typing import Any

from .errors import TexturenetError


def torch_device(name: str, given: str, instead: str) -> Any:
    """``torch.device(name)``, or one line naming what asked for it (``given``) and what to do (``instead``) when it is absent here.

    Checked now rather than at the first tensor moved, where torch fails with a traceback deep in a run. torch is
    imported here, not with the module: the commands import this before they parse their flags, and ``--help`` or
    a refused flag should not wait seconds for torch.
    """
    import torch

    try:
        device = torch.device(name)
    except (RuntimeError, TypeError):
        raise TexturenetError(f"{given}: {name!r} is not a device name; {instead}") from None
    present = {"cpu": True, "cuda": torch.cuda.is_available(), "mps": torch.backends.mps.is_available()}.get(device.type, False)
    if not present:
        raise TexturenetError(f"{given} but {device.type.upper()} is not available; {instead}")
    return device


def cuda_device(cuda: bool, work: str = "run", index: int | None = None) -> Any:
    """The commands' ``--cuda``: ``cuda`` (``cuda:index`` when given), else ``cpu``; ``work`` is what the refusal
    offers to do on the CPU instead (run, train, stylise)."""
    if not cuda:
        return torch_device("cpu", "", "")
    return torch_device("cuda" if index is None else f"cuda:{index}", "--cuda was given", f"drop --cuda to {work} on the CPU")
