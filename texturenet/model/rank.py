"""Where this process stands in a data-parallel run, and its block of every global batch.

A distributed run is one process's training with a batch WORLD_SIZE times larger
(training/distributed.py): each global batch is cut into per-rank blocks of the per-process batch, in
rank order. The data stream, the noise and the style strengths are cut the same way, by
:meth:`Rank.block`, so every rank's photos meet their own noise and strengths.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Rank:
    """Where this process stands in the run: rank 0 of 1 for a plain single-process run."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        """Only the main process writes files and shows progress."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    def block(self, per_rank: int) -> slice:
        """This rank's rows of a global batch of ``per_rank`` x world_size rows: [rank x per_rank, (rank + 1) x per_rank)."""
        return slice(self.rank * per_rank, (self.rank + 1) * per_rank)
