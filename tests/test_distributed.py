"""torchrun with 2 CPU processes (gloo) is the same training as 1 process with twice the batch.

Real runs: ``scripts/train.py`` as subprocesses, the 2-process one under ``python -m
torch.distributed.run`` (torchrun). Costly: 90 s measured on 2 heavily loaded shared cores (three short runs, two under torchrun).
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from texturenet.model.checkpoint import load_generator
from texturenet.training.data import RunSampler
from texturenet.training.distributed import RankShard
from texturenet.model.rank import Rank
from conftest import ROOT

TINY = ["--vgg_weights", "random", "--image_size", "32", "--style_size", "32", "--scales", "3", "--workers", "0",
        "--iterations", "4", "--save_every", "2", "--log_every", "1",
        "--style_layers", "relu1_1,relu2_1", "--content_layers", "relu2_1"]


def _train(args: list[str], processes: int = 1) -> subprocess.CompletedProcess:
    launcher = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={processes}"] if processes > 1 else [sys.executable]
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK")}
    env["OMP_NUM_THREADS"] = "1"  # as torchrun sets it; tiny convolutions only contend on shared cores
    result = subprocess.run([*launcher, str(ROOT / "scripts" / "train.py"), *TINY, *args], capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    return result


def _outputs(path: Path) -> torch.Tensor:
    """The generator's output on fixed photos at noise 0: what "the same weights" means in use."""
    photos = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        return load_generator(path)(photos, strength=0)


def test_rank_shards_tile_the_global_stream() -> None:
    """Rank r's keys are block r of every global batch, so the ranks together see the 1-process stream."""
    batch, world, steps = 3, 2, 7
    stream = RunSampler(size=5, seed=4, start=6)
    shards = [iter(RankShard(RunSampler(size=5, seed=4, start=6), batch, Rank(r, world))) for r in range(world)]
    expected = iter(stream)
    for _ in range(steps):
        for shard in shards:
            assert [next(shard) for _ in range(batch)] == [next(expected) for _ in range(batch)]


@pytest.mark.slow
def test_two_gloo_processes_match_one_process_and_resume(tmp_path: Path) -> None:
    one, two, resumed = tmp_path / "one", tmp_path / "two", tmp_path / "resumed"
    _train(["--batch_size", "2", "--checkpoint_dir", str(one)])
    log = _train(["--batch_size", "1", "--checkpoint_dir", str(two)], processes=2)

    # One set of files, written once (rank 0 only): the same names a 1-process run writes.
    assert sorted(p.name for p in two.iterdir()) == sorted(p.name for p in one.iterdir())
    text = log.stdout + log.stderr
    assert text.count("saved ") == 1 and "x 1 x 2 processes = 2" in text

    # Same function within float tolerance. Weights are compared through the outputs because
    # Adam turns the float-rounding gradients of parameters that instance norm makes inert
    # (conv biases before a norm) into +-lr steps; a wrong shard or unsynchronised noise moves
    # outputs by ~0.1-1 (measured: 1 process with batch 1 differs by 0.14 mean, 0.98 max).
    difference = (_outputs(two / "style.pth") - _outputs(one / "style.pth")).abs()
    assert difference.mean() < 0.02 and difference.max() < 0.1, (difference.mean(), difference.max())

    # --resume in a distributed run: from the 2-process iteration-2 checkpoint to the end gives
    # the uninterrupted 2-process weights (same arithmetic, so much tighter).
    resumed.mkdir()
    (resumed / "style_iter2.pth").write_bytes((two / "style_iter2.pth").read_bytes())
    log = _train(["--batch_size", "1", "--checkpoint_dir", str(resumed), "--resume", "auto"], processes=2)
    assert "resuming at iteration 2" in log.stdout + log.stderr
    a = torch.load(two / "style.pth", weights_only=True)["state_dict"]
    b = torch.load(resumed / "style.pth", weights_only=True)["state_dict"]
    assert all(torch.allclose(a[k], b[k], atol=1e-6) for k in a)
