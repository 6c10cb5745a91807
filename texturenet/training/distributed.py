"""Data-parallel training under ``torchrun``: PyTorch's own DistributedDataParallel, nothing else.

``torchrun --nproc_per_node N scripts/train.py ...`` (and ``--nnodes M`` for several machines)
sets RANK, WORLD_SIZE and LOCAL_RANK; :func:`rank_from_environment` reads them and
:func:`process_group` holds the process group for the run. Without them a run is a plain
single process and nothing here changes it.

What a distributed run means, so that it is the same training as one process with a bigger batch:

- ``--batch_size`` is **per process**; the effective (global) batch is batch_size x WORLD_SIZE.
- The data stream is the single-process :class:`~texturenet.training.data.RunSampler` stream of the
  global batch, cut into per-rank blocks (:class:`RankShard`, :meth:`~texturenet.model.rank.Rank.block`): global batch i is positions
  [i*G, (i+1)*G) with G = batch_size x WORLD_SIZE, and rank r takes positions
  [i*G + r*B, i*G + (r+1)*B). Resuming at iteration i starts every rank at i*G, so resume
  stays exact.
- Every rank draws the noise of the whole global batch from the same seeded RNG and keeps its
  own rows (``texturenet.model.noise.ShardedNoise``), so ranks see independent noise and the RNG stays
  in step across ranks and with a one-process run.
- All losses are means over the batch and DDP averages gradients over ranks, so a step is the
  gradient of the global-batch mean, as in one process (Ulyanov et al. 2016, Sec. 3.2: SGD on
  the expected loss over x and z). Batch norm (``--norm batch``) is the exception: its
  statistics are per rank; the default instance norm is per image and unaffected.
- Only rank 0 writes checkpoints, pictures, logs and progress bars; every rank resumes from
  the same checkpoint (on several machines, ``--checkpoint_dir`` must be a shared folder).
"""
from __future__ import annotations

import os
from contextlib import contextmanager
from typing import Iterator

import torch
import torch.distributed as dist
from torch.utils.data import Sampler

from ..errors import TexturenetError
from ..model.rank import Rank


def rank_from_environment(cuda: bool) -> Rank:
    """Where torchrun's RANK, WORLD_SIZE and LOCAL_RANK put this process (rank 0 of 1 without them); checked, nothing joined."""
    if "RANK" not in os.environ or "WORLD_SIZE" not in os.environ:
        return Rank()
    try:
        rank = Rank(int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"]), int(os.environ.get("LOCAL_RANK", "0")))
    except ValueError:
        raise TexturenetError("RANK, WORLD_SIZE and LOCAL_RANK must be integers; start distributed runs with torchrun") from None
    if rank.distributed and cuda and rank.local_rank >= torch.cuda.device_count():
        raise TexturenetError(
            f"LOCAL_RANK {rank.local_rank} but only {torch.cuda.device_count()} GPU(s) on this machine; "
            "use --nproc_per_node no larger than the number of GPUs"
        )
    return rank


@contextmanager
def process_group(rank: Rank, cuda: bool) -> Iterator[None]:
    """Within: in the process group torchrun describes (nccl on CUDA, gloo on CPU); left on the way out, however it ends.

    Leaving lets torchrun see a clean exit. A no-op for a single-process run.
    """
    if not rank.distributed:
        yield
        return
    if cuda:
        torch.cuda.set_device(rank.local_rank)
    joined = not dist.is_initialized()
    if joined:
        dist.init_process_group("nccl" if cuda else "gloo")
    try:
        yield
    finally:
        if joined and dist.is_initialized():
            dist.destroy_process_group()


def any_rank(flag: bool, rank: Rank, device: torch.device) -> bool:
    """True on every rank if ``flag`` is true on any: ranks must stop at the same step."""
    if not rank.distributed:
        return flag
    value = torch.tensor([1.0 if flag else 0.0], device=device)
    dist.all_reduce(value, op=dist.ReduceOp.MAX)
    return bool(value.item())


class RankShard(Sampler):
    """Rank ``r``'s block of every global batch of an endless key stream (see the module docstring)."""

    def __init__(self, stream: Sampler, batch_size: int, rank: Rank) -> None:
        self.stream, self.batch_size, self.rank = stream, batch_size, rank

    def __iter__(self) -> Iterator:
        block = self.rank.block(self.batch_size)
        global_batch = self.batch_size * self.rank.world_size
        for offset, key in enumerate(self.stream):
            if block.start <= offset % global_batch < block.stop:
                yield key
