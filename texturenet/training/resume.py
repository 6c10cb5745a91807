"""``--resume``: which checkpoint a run continues, which of its settings the run keeps, and its state put back.

Decided in one place (:class:`Resume`), from the checkpoint read once: the command line keeps the
generator and loss settings it does not give (:meth:`Resume.settings`), the trainer asks whether
the checkpoint is this run's own (:meth:`Resume.continues`) and puts its state back
(:meth:`Resume.restore`): the weights, Adam's moments, the schedule, the loss scaler, the random
states and the loss history, so that the run reaches the weights an uninterrupted one would.
"""
from __future__ import annotations

import dataclasses
import hashlib
from pathlib import Path
from typing import Any, Optional

import torch
from tqdm import tqdm

from ..model.checkpoint import check_resume_state, generator_config, load_checkpoint, training_losses
from ..config import GeneratorConfig, TrainConfig
from ..errors import TexturenetError
from ..model.networks import Generator
from .run import resume_file

RESUME_SETTINGS = ("lr", "lr_step", "lr_decay", "batch_size", "image_size", "style_size", "seed", "data_dir")
"""Settings (with every loss setting) that change what training computes: a resumed run that changes one says so."""
SCHEDULE = {"lr", "lr_step", "lr_decay"}
"""The settings of the learning-rate schedule (Adam's step size, decayed every lr_step iterations)."""


def file_digest(path: Path) -> str:
    """SHA-256 of a file: the checkpoint keeps the style image's, so a resume on another image is refused."""
    return hashlib.sha256(path.read_bytes()).hexdigest()


class Resume:
    """The checkpoint ``--resume`` names, read once, and what a run takes from it."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.checkpoint = load_checkpoint(path)

    @classmethod
    def of(cls, config: TrainConfig) -> Optional[Resume]:
        """The resume ``config`` asks for (``auto``: the newest checkpoint of its run); None without --resume."""
        path = resume_file(config)
        return None if path is None else cls(path)

    @property
    def owner(self) -> Any:
        """The run name the checkpoint holds."""
        return self.checkpoint.get("name")

    def settings(self, config: TrainConfig, given: set[str]) -> TrainConfig:
        """``config`` with the generator and loss settings not in ``given`` (the flags on the command line) the checkpoint's.

        A resumed run continues the training it resumes, even when defaults have changed since
        (a model trained before the strength dial and relative losses keeps its architecture and its
        objective). Settings given explicitly win, and :meth:`restore` names any that differ. A
        checkpoint that cannot be resumed is refused here, before anything is built or printed.
        """
        check_resume_state(self.checkpoint, self.path)

        def saved(now: Any, stored: Any) -> Any:
            return dataclasses.replace(now, **{name: getattr(stored, name) for name in now.__dataclass_fields__
                                               if name not in given and name != "mode"})

        return dataclasses.replace(config, generator=saved(config.generator, generator_config(self.checkpoint)),
                                   loss=saved(config.loss, training_losses(self.checkpoint, self.path)[0]))

    def continues(self, config: TrainConfig) -> bool:
        """Whether the checkpoint continues ``config``'s run: it holds the run's name and is its folder's.

        That is, it lies in --checkpoint_dir, or was written for it and kept elsewhere when the folder could
        not take it (Trainer._write). Another run's checkpoint, or a run of this name from another folder,
        resumed under this name would replace this folder's run, so the trainer asks first.
        """
        if self.owner != config.run_name:
            return False
        folder = config.checkpoint_dir.resolve()
        state = self.checkpoint.get("train_state")
        stored = state.get("config") if isinstance(state, dict) else None
        written_for = stored.get("checkpoint_dir") if isinstance(stored, dict) else None
        return self.path.resolve().parent == folder or (isinstance(written_for, str) and Path(written_for).resolve() == folder)

    def restore(self, config: TrainConfig, generator: Generator, optimizer: torch.optim.Optimizer,
                scheduler: torch.optim.lr_scheduler.StepLR, scaler: torch.amp.GradScaler) -> tuple[int, list[dict[str, float]]]:
        """Put the checkpoint's training state back; returns the iterations done and the loss history.

        Everything is checked (the whole state, the generator's architecture, the style image, the
        iteration count) before anything is loaded. torch's random states come back too: the
        noise, the strengths and the photo order of the iterations to come are an uninterrupted run's.
        """
        path = self.path
        checkpoint = check_resume_state(self.checkpoint, path)
        state = checkpoint["train_state"]
        saved = generator_config(checkpoint)
        if saved != config.generator:
            differences = [
                f"{k} {getattr(saved, k)!r} (checkpoint) vs {getattr(config.generator, k)!r} (now)"
                for k in GeneratorConfig.__dataclass_fields__
                if getattr(saved, k) != getattr(config.generator, k)
            ]
            raise TexturenetError(f"--resume {path}: different generator architecture: {'; '.join(differences)}")
        if state["texture_sha256"] != file_digest(Path(config.texture)):
            raise TexturenetError(
                f"--resume {path}: it was trained on a different --texture than {config.texture}; "
                f"pass the same style image ({state['config']['texture']})"
            )
        done = int(checkpoint["iteration"])
        if done > config.iterations:
            raise TexturenetError(
                f"--resume {path}: the checkpoint has done {done} iterations, more than --iterations {config.iterations}; "
                f"pass --iterations above {done} to train on (the checkpoint itself is a usable model)"
            )
        generator.load_state_dict(checkpoint["state_dict"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        if SCHEDULE & self._changed(state["config"], config):
            _follow_schedule(config, optimizer, scheduler, done)
        if state.get("scaler") and scaler.is_enabled():
            scaler.load_state_dict(state["scaler"])
        torch.set_rng_state(state["torch_rng"])
        if state["cuda_rng"] and next(generator.parameters()).device.type == "cuda":
            torch.cuda.set_rng_state_all(state["cuda_rng"])
        return done, list(state["history"])

    @staticmethod
    def _changed(saved: dict[str, Any], config: TrainConfig) -> set[str]:
        """The settings that differ from the checkpoint's, each named, so a changed run is never mistaken for a continued one."""
        now = config.to_dict()
        pairs = [(name, saved[name], now[name]) for name in RESUME_SETTINGS if name in saved]
        pairs += [(name, saved["loss"][name], value) for name, value in now["loss"].items() if name in saved.get("loss", {})]
        changed = {name for name, old, new in pairs if old != new}
        for name, old, new in pairs:
            if name in changed:
                tqdm.write(f"resuming with --{name} {new!r}; the checkpoint was trained with {old!r}")
        return changed


def _follow_schedule(config: TrainConfig, optimizer: torch.optim.Optimizer, scheduler: torch.optim.lr_scheduler.StepLR,
                     done: int) -> None:
    """Resuming with another --lr, --lr_step or --lr_decay: the new schedule holds from iteration ``done`` on.

    The loaded optimiser and scheduler states carry the old values, which would otherwise win
    silently. The scheduler keeps its position (``last_epoch``) and takes the new schedule through
    its public settings; every parameter group's learning rate becomes the new schedule's at
    ``done``, from which StepLR goes on decaying it.
    """
    scheduler.step_size, scheduler.gamma = config.lr_step, config.lr_decay
    scheduler.base_lrs = [config.lr for _ in optimizer.param_groups]
    lr = config.lr * config.lr_decay ** (done // config.lr_step)
    for group in optimizer.param_groups:
        group["initial_lr"], group["lr"] = config.lr, lr
