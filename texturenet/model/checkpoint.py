"""Checkpoints: a generator's weights, the config that rebuilds it, and the state to resume from.

A checkpoint is a plain dict of tensors, numbers, strings and lists, so it loads with
``torch.load(path, weights_only=True)``: a file with code in it is refused, not run. Writes go
to a temporary file in the same folder, are flushed to disk, then renamed over the target, so
a crash or a full disk at any moment leaves the previous checkpoint intact. Which files in a folder are a
run's, its lock and the checks of its folder are training/run.py's.
"""
from __future__ import annotations

import io
import math
import re
import reprlib
import stat
from pathlib import Path
from typing import Any, Optional

import torch

from ..config import GeneratorConfig, LossConfig
from ..errors import TexturenetError, first_few
from ..io.files import write_atomic
from .networks import Generator, make_generator
from ..io.weights import load_plain, state_dict_mismatch, tensor_kind_problem, weights_problem

FORMAT = "texturenet"
VERSION = 1
LEGACY_GENERATOR = {"max_strength": 0.0, "generator": "pyramid", "residual": False, "fade": False}
"""Generator settings that checkpoints written before they existed lack, each with the value that gives those
checkpoints the pictures they gave (no strength dial: the strength only scales the noise; the pyramid, the only
generator there was; the output is the network's own, not the photo plus it)."""
LEGACY_LOSS = {"loss_scale": "absolute"}
"""The same for loss settings: models trained before ``loss_scale`` existed were trained on the plain mean squared errors."""
GARBLED = "{name} is not a readable checkpoint (truncated or corrupt: {why})"
"""What :func:`load_checkpoint` says of a file that does not unpickle (a template of weights.load_plain)."""
REFUSED = "{name} was refused: it is not a plain-data checkpoint (it may contain code); only files written by texturenet are loaded"
"""What it says of a file that holds more than plain data (a template of weights.load_plain)."""


def make_checkpoint(
    generator: Generator, name: str, iteration: int, train_state: Optional[dict[str, Any]] = None
) -> dict[str, Any]:
    """The checkpoint dict: format tag, generator config and weights, and the optional training state."""
    return {
        "format": FORMAT,
        "version": VERSION,
        "name": name,
        "iteration": iteration,
        "generator_config": {k: getattr(generator.config, k) for k in GeneratorConfig.__dataclass_fields__},
        "state_dict": {k: v.detach().cpu() for k, v in generator.state_dict().items()},
        "train_state": train_state,
    }


def save_atomic(checkpoint: dict[str, Any], path: Path) -> None:
    """Write ``checkpoint`` to ``path`` so that ``path`` is always either the old or the new file (see io/files.py).

    Serialised in memory first (a checkpoint is a few MB), then written: torch.save's zip writer
    turns a full disk met while it writes into a RuntimeError about file positions, which would
    hide the OSError (ENOSPC) behind it; a plain write raises the OSError itself.
    A failed write (disk full, folder gone) leaves the file already there and says so; what to do next is the
    caller's to say (the trainer keeps the run's state elsewhere, Trainer._write).
    """
    buffer = io.BytesIO()
    torch.save(checkpoint, buffer)
    write_atomic(path, lambda file: file.write(buffer.getbuffer()), "checkpoint")


def stored_name(path: Path) -> Optional[str]:
    """The run name checkpoint ``path`` holds (``checkpoint["name"]``), or None where it cannot be read.

    The file is memory-mapped, so only the small entries are read, not its tensors.
    """
    try:
        _check_regular_file(path)
        checkpoint = load_plain(path, GARBLED, mmap=True)
    except TexturenetError:  # damaged, not ours, unreadable: no name to go by
        return None
    name = checkpoint.get("name") if isinstance(checkpoint, dict) else None
    return name if isinstance(name, str) else None


def load_checkpoint(path: Path) -> dict[str, Any]:
    """Read and validate a texturenet checkpoint; one clear error for anything else.

    A checkpoint is input from strangers. Its generator config is checked against
    ``config.model.GENERATOR_BOUNDS`` and its weights against the shapes that config implies
    (:func:`checkpoint_problem`) before anything is built, so a crafted file is refused at once
    instead of hanging or allocating gigabytes, and a damaged one says what is wrong with it.
    """
    _check_regular_file(path)
    checkpoint = load_plain(path, GARBLED, refused=REFUSED)
    if not isinstance(checkpoint, dict) or checkpoint.get("format") != FORMAT:
        raise TexturenetError(f"{path} is not a texturenet checkpoint (train one with texturenet-train)")
    if checkpoint.get("version") != VERSION:
        raise TexturenetError(f"{path} has checkpoint version {checkpoint.get('version')}; this texturenet reads {VERSION}")
    problem = checkpoint_problem(checkpoint)
    if problem:
        raise TexturenetError(f"{path} is damaged: {problem}")
    return checkpoint


def _check_regular_file(path: Path) -> None:
    """Refuse what is not a regular file before opening it (opening a FIFO would wait for a writer forever)."""
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        raise TexturenetError(f"{path}: no such checkpoint file") from None
    except OSError as error:  # a symlink loop, a folder on the way that cannot be searched
        raise TexturenetError(f"{path} cannot be read ({error.strerror or error})") from None
    if stat.S_ISDIR(mode):
        raise TexturenetError(f"{path} is a folder, not a checkpoint file")
    if not stat.S_ISREG(mode):
        raise TexturenetError(f"{path} is not a regular file (a pipe, socket or device), so not a checkpoint")


def checkpoint_problem(checkpoint: dict[str, Any]) -> str:
    """Why the generator a checkpoint describes cannot be built from it, in one line ("" if it can).

    The config's keys and values first (GeneratorConfig's own validation, with its bounds), then
    every weight's name and shape against a generator built on the meta device (shapes only,
    nothing allocated), then NaN or infinite weights, which would make every picture blank.
    """
    iteration = checkpoint.get("iteration")
    if not _whole(iteration, 0):
        return f"iteration must be a whole number >= 0, got {reprlib.repr(iteration)}"
    raw = checkpoint.get("generator_config")
    if not isinstance(raw, dict):
        return "it has no generator_config"
    raw = {**LEGACY_GENERATOR, **raw}
    fields = GeneratorConfig.__dataclass_fields__
    unknown = sorted(repr(key) for key in raw if key not in fields)
    missing = [name for name in fields if name not in raw]
    if unknown or missing:
        return "generator_config has " + " and ".join(
            f"{what} key(s) {', '.join(names)}" for what, names in (("unknown", unknown), ("missing", missing)) if names)
    try:
        config = GeneratorConfig(**raw)
    except ValueError as error:
        return f"generator_config: {error}"
    state = checkpoint.get("state_dict")
    if not isinstance(state, dict):
        return "it has no state_dict"
    with torch.device("meta"):
        expected = make_generator(config).state_dict()
    mismatch = state_dict_mismatch(state, expected)
    if mismatch:
        return f"its weights do not fit its generator_config: {mismatch}"
    return weights_problem(state, expected)


def generator_config(checkpoint: dict[str, Any]) -> GeneratorConfig:
    """The generator a checkpoint from :func:`load_checkpoint` describes (validated there; older ones: :data:`LEGACY_GENERATOR`)."""
    return GeneratorConfig(**{**LEGACY_GENERATOR, **checkpoint["generator_config"]})


def training_losses(checkpoint: dict[str, Any], path: Path) -> tuple[LossConfig, Optional[Path], int]:
    """The loss settings, style image and style size the checkpoint at ``path`` was trained with."""
    state = checkpoint.get("train_state")
    if not isinstance(state, dict) or state.get("config") is None:
        raise TexturenetError(f"{path} holds no training config, so the loss it was trained with is unknown")
    try:
        return _trained_with(state["config"])
    except ValueError as error:
        raise TexturenetError(f"{path} is damaged: training config: {error}") from None


def _trained_with(config: Any) -> tuple[LossConfig, Optional[Path], int]:
    """:func:`training_losses` of a stored training config; a ValueError saying what is wrong with it."""
    if not isinstance(config, dict):
        raise ValueError(f"it must be a dict, got a {type(config).__name__}")
    if not isinstance(config.get("loss"), dict):
        raise ValueError("it has no loss settings" if "loss" not in config else f"loss must be a dict, got {reprlib.repr(config['loss'])}")
    loss = {**LEGACY_LOSS, **config["loss"]}
    unknown = sorted(reprlib.repr(key) for key in loss if key not in LossConfig.__dataclass_fields__)
    if unknown:
        raise ValueError(f"loss has unknown key(s) {', '.join(unknown)}")
    texture, style_size = config.get("texture"), config.get("style_size")
    if texture is not None and not isinstance(texture, str):
        raise ValueError(f"texture must be a path, got {reprlib.repr(texture)}")
    if not _whole(style_size, 1):
        raise ValueError(f"style_size must be a whole number >= 1, got {reprlib.repr(style_size)}")
    return LossConfig(**loss), None if texture is None else Path(texture), style_size


def build_generator(checkpoint: dict[str, Any]) -> Generator:
    """Rebuild the generator a checkpoint from :func:`load_checkpoint` describes (validated there) and load its weights."""
    generator = make_generator(generator_config(checkpoint))
    generator.load_state_dict(checkpoint["state_dict"])
    return generator


def load_generator(path: Path) -> Generator:
    """The trained generator stored at ``path``, in eval mode."""
    return build_generator(load_checkpoint(path)).eval()


RESUME_STATE = ("config", "optimizer", "scheduler", "torch_rng", "cuda_rng", "texture_sha256", "history")
"""What every training state holds (the trainer writes it, in ``Trainer._save``); ``scaler`` came later and may be absent."""
_OLD_SCHEDULER_KEYS = {"verbose"}
"""Scheduler state keys that earlier torch versions wrote and this one does not (verbose only chose whether to print): accepted."""


def check_resume_state(checkpoint: dict[str, Any], path: Path) -> dict[str, Any]:
    """``checkpoint`` (from :func:`load_checkpoint` of ``path``) if a run can continue from it; else one line saying why."""
    state = checkpoint.get("train_state")
    if state is None or (isinstance(state, dict) and not state):
        raise TexturenetError(f"--resume {path}: this checkpoint holds no training state (it is a final export)")
    problem = resume_state_problem(checkpoint)
    if problem:
        raise TexturenetError(f"--resume {path}: its training state is unusable: {problem}")
    return checkpoint


def resume_state_problem(checkpoint: dict[str, Any]) -> str:
    """Why a run cannot continue from this checkpoint's training state, in one line ("" if it can).

    The training state is input from strangers as much as the weights are (:func:`checkpoint_problem`, which
    ``checkpoint`` has passed): every part the trainer loads is checked here, before anything is built or printed,
    against the generator the checkpoint describes: the settings and loss it was trained with, Adam's state (Ulyanov
    et al. 2016, Sec. 3.2: finite hyperparameters, whole step counts, finite moments of the parameters' shapes, second
    moments >= 0), the learning-rate schedule, the float16 loss scaler, the random states and the loss history. A
    crafted or mismatched file is refused in one line, instead of a traceback mid-run or a run that trains on NaN.
    """
    state = checkpoint.get("train_state")
    if not isinstance(state, dict):
        return f"train_state must be a dict, got a {type(state).__name__}"
    missing = [key for key in RESUME_STATE if key not in state]
    if missing:
        return f"train_state has no {', '.join(missing)}"
    try:
        _trained_with(state["config"])
    except ValueError as error:
        return f"config: {error}"
    with torch.device("meta"):  # shapes only
        parameters = list(make_generator(generator_config(checkpoint)).parameters())
    digest = state["texture_sha256"]
    return (_optimizer_problem(state["optimizer"], parameters) or _scheduler_problem(state["scheduler"])
            or _scaler_problem(state.get("scaler") or {}) or _random_state_problem(state["torch_rng"], state["cuda_rng"])
            or _history_problem(state["history"], checkpoint["iteration"])
            or ("" if isinstance(digest, str) and re.fullmatch("[0-9a-f]{64}", digest) else
                f"texture_sha256 must be a SHA-256 in hex, got {reprlib.repr(digest)}"))


def _whole(value: Any, least: int) -> bool:
    """Whether ``value`` is an int (not a bool) of at least ``least``."""
    return isinstance(value, int) and not isinstance(value, bool) and value >= least


def _number(value: Any, low: float = -math.inf, high: float = math.inf, *, open_low: bool = False, open_high: bool = False) -> bool:
    """Whether ``value`` is a finite int or float (not a bool) in ``low..high`` (each end open where told)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return False
    return (low < value if open_low else low <= value) and (value < high if open_high else value <= high)


def _adam_reference() -> dict[str, Any]:
    """The parameter group of an Adam as the trainer builds it (torch's defaults but the learning rate)."""
    return torch.optim.Adam([torch.nn.Parameter(torch.empty(0))]).param_groups[0]


def _optimizer_problem(saved: Any, parameters: list[torch.Tensor]) -> str:
    """What is wrong with a stored Adam state for ``parameters`` ("" if nothing)."""
    if not (isinstance(saved, dict) and isinstance(saved.get("state"), dict) and isinstance(saved.get("param_groups"), list)):
        return "optimizer must be a dict of state and param_groups"
    groups = saved["param_groups"]
    if len(groups) != 1 or not isinstance(groups[0], dict):
        return f"optimizer has {len(groups)} parameter groups; the trainer's Adam has 1"
    group = groups[0]
    params = group.get("params")
    if not (isinstance(params, list) and all(_whole(index, 0) for index in params) and params == list(range(len(parameters)))):
        return f"optimizer's parameter group does not list the generator's {len(parameters)} parameters in order"
    for key, value in _adam_reference().items():
        if key in ("params", "lr", "betas", "eps", "weight_decay") or key not in group:
            continue
        if type(group[key]) is not type(value) or group[key] != value:
            return f"optimizer's {key} is {reprlib.repr(group[key])}; the trainer's Adam has {value!r}"
    betas = group.get("betas")
    numbers = {"lr": _number(group.get("lr"), 0, open_low=True), "eps": _number(group.get("eps"), 0, open_low=True),
               "betas": isinstance(betas, (tuple, list)) and len(betas) == 2 and all(_number(b, 0, 1, open_high=True) for b in betas),
               "weight_decay": _number(group.get("weight_decay"), 0),
               "initial_lr": "initial_lr" not in group or _number(group["initial_lr"], 0, open_low=True)}
    bad = [name for name, fine in numbers.items() if not fine]
    if bad:
        return f"optimizer's {bad[0]} is {reprlib.repr(group.get(bad[0]))}; expected " + {
            "betas": "two numbers in 0..1", "weight_decay": "a finite number >= 0"}.get(bad[0], "a finite number > 0")
    for key, moments in saved["state"].items():
        if not _whole(key, 0) or key >= len(parameters):
            return f"optimizer holds state for parameter {reprlib.repr(key)}, which the generator does not have"
        problem = _moments_problem(moments, parameters[key])
        if problem:
            return f"optimizer state of parameter {key}: {problem}"
    return ""


def _moments_problem(moments: Any, parameter: torch.Tensor) -> str:
    """What is wrong with Adam's state of one parameter: its step count and its two moments ("" if nothing)."""
    if not isinstance(moments, dict):
        return f"a {type(moments).__name__}, not a dict"
    missing = [key for key in ("step", "exp_avg", "exp_avg_sq") if key not in moments]
    if missing:
        return f"no {', '.join(missing)}"
    step = moments["step"]
    if isinstance(step, torch.Tensor):  # what Adam stores: a float scalar tensor
        step = step.item() if not tensor_kind_problem(step, torch.empty(())) and step.dim() == 0 else None
    if not _number(step, 0) or step != int(step):
        return f"step must be a whole number >= 0, got {reprlib.repr(moments['step'])}"
    for key in ("exp_avg", "exp_avg_sq"):
        value = moments[key]
        kind = tensor_kind_problem(value, parameter)
        if kind:
            return f"{key} is a {kind}, not a dense floating-point tensor"
        if value.shape != parameter.shape:
            return f"{key} has shape {'x'.join(map(str, value.shape)) or 'scalar'} (expected {'x'.join(map(str, parameter.shape))})"
        if not torch.isfinite(value).all():
            return f"{key} holds NaN or infinite values"
    if (moments["exp_avg_sq"] < 0).any():
        return "exp_avg_sq holds negative values (a mean of squares cannot be negative)"
    return ""


def _scheduler_problem(saved: Any) -> str:
    """What is wrong with a stored StepLR state ("" if nothing). Its keys become the scheduler's attributes
    (``load_state_dict`` updates ``__dict__``), so only the ones a StepLR has are taken."""
    if not isinstance(saved, dict):
        return f"scheduler must be a dict, got a {type(saved).__name__}"
    reference = torch.optim.lr_scheduler.StepLR(torch.optim.Adam([torch.nn.Parameter(torch.empty(0))]), step_size=1).state_dict()
    unknown = sorted(reprlib.repr(key) for key in saved if key not in reference and key not in _OLD_SCHEDULER_KEYS)
    missing = [key for key in ("step_size", "gamma", "base_lrs", "last_epoch") if key not in saved]
    if unknown or missing:
        return "scheduler has " + " and ".join(f"{what} key(s) {', '.join(keys)}" for what, keys in
                                                (("unknown", unknown), ("missing", missing)) if keys)
    rates = {"base_lrs": saved["base_lrs"], "_last_lr": saved.get("_last_lr", [1.0])}
    checks = {"step_size": _whole(saved["step_size"], 1), "gamma": _number(saved["gamma"], 0, 1, open_low=True),
              "last_epoch": _whole(saved["last_epoch"], 0), "_step_count": _whole(saved.get("_step_count", 0), 0),
              **{name: isinstance(value, list) and len(value) == 1 and _number(value[0], 0, open_low=True) for name, value in rates.items()},
              **{name: isinstance(saved.get(name, False), bool) for name in ("_get_lr_called_within_step", "_is_initial")}}
    bad = [name for name, fine in checks.items() if not fine]
    return f"scheduler's {bad[0]} is {reprlib.repr(saved[bad[0]])}" if bad else ""


def _scaler_problem(saved: Any) -> str:
    """What is wrong with a stored GradScaler state (``{}`` when it was not scaling) ("" if nothing)."""
    if not isinstance(saved, dict):
        return f"scaler must be a dict, got a {type(saved).__name__}"
    if not saved:
        return ""
    checks = {"scale": lambda v: _number(v, 0, open_low=True), "growth_factor": lambda v: _number(v, 1, open_low=True),
              "backoff_factor": lambda v: _number(v, 0, 1, open_low=True, open_high=True),
              "growth_interval": lambda v: _whole(v, 1), "_growth_tracker": lambda v: _whole(v, 0)}
    bad = [name for name, fine in checks.items() if not fine(saved.get(name))]
    return f"scaler's {bad[0]} is {reprlib.repr(saved.get(bad[0]))}" if bad else ""


def _random_state_problem(cpu: Any, cuda: Any) -> str:
    """What is wrong with the stored random states ("" if nothing). The CPU one is tried on a scratch generator,
    which says whether torch can take it (the right size and a valid Mersenne Twister state) without touching torch's."""
    try:
        if tensor_kind_problem(cpu, torch.empty((), dtype=torch.uint8)):
            raise ValueError(f"a {type(cpu).__name__}, not a byte tensor")
        torch.Generator().set_state(cpu)
    except (RuntimeError, TypeError, ValueError) as error:
        return f"torch_rng is not a random-number state: {str(error).splitlines()[0] if str(error) else type(error).__name__}"
    if not isinstance(cuda, list) or any(tensor_kind_problem(s, torch.empty((), dtype=torch.uint8)) or s.dim() != 1 for s in cuda):
        return "cuda_rng must be a list of byte tensors"
    return ""


def _history_problem(history: Any, iteration: int) -> str:
    """What is wrong with the stored loss history ("" if nothing): a list of dicts of numbers, each with its
    iteration (1..the checkpoint's, rising) and learning rate, which the plots and the loss table are drawn from."""
    if not isinstance(history, list):
        return f"history must be a list, got a {type(history).__name__}"
    last = 0
    for index, entry in enumerate(history):
        if not isinstance(entry, dict) or "iteration" not in entry or "lr" not in entry:
            return f"history entry {index} is not a dict with an iteration and an lr"
        wrong = [reprlib.repr(key) for key, value in entry.items()
                 if not isinstance(key, str) or isinstance(value, bool) or not isinstance(value, (int, float))]
        if wrong:
            return f"history entry {index} has values that are not numbers: {first_few(wrong)}"
        if not (isinstance(entry["iteration"], int) and last < entry["iteration"] <= iteration):
            return f"history entry {index} has iteration {entry['iteration']!r}, not in {last + 1}..{iteration}"
        last = entry["iteration"]
    return ""
