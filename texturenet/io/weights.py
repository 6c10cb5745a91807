"""Weight files from strangers: loading them as plain data, and checking a state dict before it is loaded.

Checkpoints, the loss network's VGG weights and the 2019 peer's generator all arrive as files
that anyone may have written. They are read with ``torch.load(weights_only=True)``, so a file
with code in it is refused, not run, and every way that read can fail is one line
(:func:`load_plain`); their tensors are checked by name, shape, kind and value before any of
them is loaded into a module, so a damaged or crafted file says what is wrong with it.
"""
from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any, Mapping, Optional

import torch

from ..errors import TexturenetError, first_few

CANNOT_READ = "{name} cannot be read ({why})"
"""What :func:`load_plain` says of a file it cannot open or read (``why``: the system's reason, e.g. Permission denied)."""


def load_plain(path: Path, garbled: str, *, name: Any = None, refused: Optional[str] = None, mmap: bool = False) -> Any:
    """``torch.load(path, weights_only=True)`` on the CPU; each way it fails, one line (a :class:`TexturenetError`).

    The messages are templates of ``{name}`` (``name``, default the path) and ``{why}``: :data:`CANNOT_READ`
    where the file cannot be opened or read (permission denied, an I/O error: the file may be fine);
    ``refused`` where it holds more than plain data, code perhaps (default: as ``garbled``); ``garbled``
    for anything else, ``why`` the exception's type (the unpickler raises many types for garbage; all mean
    "not loadable"). ``mmap`` maps the file instead of reading it (only the entries used are read).
    """
    name = path if name is None else name
    try:
        return torch.load(path, map_location="cpu", weights_only=True, mmap=mmap)
    except OSError as error:
        raise TexturenetError(CANNOT_READ.format(name=name, why=error.strerror or error)) from None
    except Exception as error:  # noqa: BLE001  (any failure of the unpickler on a stranger's bytes)
        code = isinstance(error, pickle.UnpicklingError) and "Weights only load failed" in str(error)
        message = refused if code and refused is not None else garbled
        raise TexturenetError(message.format(name=name, why=type(error).__name__)) from None


FLOATING = (torch.float16, torch.bfloat16, torch.float32, torch.float64)
"""The number types a stored weight may have. A crafted file can hold tensors of the right shape but another kind:
sparse or quantized ones (``torch.isfinite`` and ``load_state_dict`` fail on them with tracebacks), complex, bool,
integer or float8 ones (``load_state_dict`` casts them without a word, into a different model)."""


def tensor_kind_problem(value: Any, like: torch.Tensor) -> str:
    """What keeps ``value`` from standing in for tensor ``like`` ("" if nothing): a dense tensor on the CPU, of a
    :data:`FLOATING` type where ``like`` is floating point, else of ``like``'s type (batch norm's integer count)."""
    if not isinstance(value, torch.Tensor):
        return f"a {type(value).__name__}"
    if value.layout != torch.strided:
        return f"{str(value.layout).removeprefix('torch.')} tensor"
    if value.is_quantized:
        return "quantized tensor"
    if value.device.type != "cpu":
        return f"tensor on {value.device.type}"
    allowed = FLOATING if like.is_floating_point() else (like.dtype,)
    if value.dtype not in allowed:
        return str(value.dtype).removeprefix("torch.")
    return ""


def weights_problem(state: Mapping[str, Any], expected: Mapping[str, torch.Tensor]) -> str:
    """Why the tensors of ``state``, whose names and shapes fit ``expected``, are not usable weights ("" if they are).

    Their kind first (:func:`tensor_kind_problem`), so that the check for NaN and infinities, which would make every
    picture blank or every loss NaN, only ever sees dense floating-point tensors. Shared by checkpoints and the loss
    network's weights (loss/vgg.py).
    """
    wrong = [f"{name} ({kind})" for name, like in expected.items() if (kind := tensor_kind_problem(state[name], like))]
    if wrong:
        return f"{len(wrong)} weight tensor(s) are not dense floating-point tensors: {first_few(wrong)}"
    blank = [name for name in expected if state[name].is_floating_point() and not torch.isfinite(state[name]).all()]
    if blank:
        return f"{len(blank)} weight tensor(s) hold NaN or infinite values: {first_few(blank)}"
    return ""


def state_dict_mismatch(found: dict[Any, Any], expected: dict[str, torch.Tensor]) -> str:
    """What keeps state dict ``found`` from loading into a module whose state dict is ``expected`` ("" if nothing).

    ``load_state_dict``'s own error lists the problems on lines of their own, under a first line that ends at a
    colon; this is one line: counts of missing keys, unexpected keys and wrong shapes, and the first few of each.
    """
    def shape(value: Any) -> str:
        if not isinstance(value, torch.Tensor):
            return f"a {type(value).__name__}"
        return "x".join(map(str, value.shape)) or "scalar"

    missing = [name for name in expected if name not in found]
    unexpected = [str(name) for name in found if name not in expected]
    wrong = [f"{name} {shape(found[name])} (expected {shape(value)})" for name, value in expected.items()
             if name in found and shape(found[name]) != shape(value)]
    return "; ".join(f"{len(names)} {what}: {first_few(names)}" for what, names in
                     (("missing", missing), ("unexpected", unexpected), ("of the wrong shape", wrong)) if names)
