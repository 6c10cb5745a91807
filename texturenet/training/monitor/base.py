"""The Monitor protocol: what the trainer tells whoever watches a run, and nothing of how they show it."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol

from torch import Tensor


class Monitor(Protocol):
    """Receives a run's progress. Every method must return quickly and never raise into training."""

    def start(self, run_name: str, config: dict[str, Any]) -> None: ...

    def log(self, iteration: int, losses: dict[str, float], lr: float, images_per_second: float) -> None: ...

    def samples(self, iteration: int, grid: Tensor) -> None: ...

    def checkpoint(self, iteration: int, path: Path) -> None: ...

    def close(self) -> None: ...
