#!/usr/bin/env python3
"""Soak test: a long CPU training (tiny images, thousands of iterations, several workers); prints memory.

A leak in the training loop, the loss history, the data workers or the checkpoint writer
shows as resident memory (RSS) that grows with iterations. This prints the RSS of the
training process and of its data-loader workers at every ``--report_every`` iterations, then
the change from the first report to the last. Not a test: run it by hand, read the figures.

    python scripts/soak.py --iterations 3000 --workers 2
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a source checkout without installing

from texturenet.config import GeneratorConfig, LossConfig, TrainConfig  # noqa: E402


def rss_mib(pid: int) -> float:
    """Resident set size of ``pid`` in MiB, from /proc (Linux)."""
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def children(pid: int) -> list[int]:
    """Direct child processes of ``pid`` (the data-loader workers)."""
    found = []
    for task in os.listdir(f"/proc/{pid}/task"):
        with open(f"/proc/{pid}/task/{task}/children") as file:
            found += [int(child) for child in file.read().split()]
    return found


class RssMonitor:
    """A :class:`texturenet.training.monitor.Monitor` that records memory instead of losses."""

    def __init__(self, every: int) -> None:
        self.every = every
        self.reports: list[tuple[int, float, float]] = []

    def start(self, run_name: str, config: dict[str, Any]) -> None:
        pass

    def log(self, iteration: int, losses: dict[str, float], lr: float, images_per_second: float) -> None:
        if iteration % self.every == 0:
            main, workers = rss_mib(os.getpid()), sum(rss_mib(child) for child in children(os.getpid()))
            self.reports.append((iteration, main, workers))
            print(f"iteration {iteration:6d}: main process {main:8.1f} MiB, workers {workers:8.1f} MiB, {images_per_second:.0f} img/s", flush=True)

    def samples(self, iteration: int, grid: Any) -> None:
        pass

    def checkpoint(self, iteration: int, path: Path) -> None:
        pass

    def close(self) -> None:
        pass


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    parser.add_argument("--iterations", type=int, default=3000, help="Training iterations (default: 3000).")
    parser.add_argument("--workers", type=int, default=2, help="Data-loading worker processes (default: 2).")
    parser.add_argument("--image_size", type=int, default=32, help="Training crop size (default: 32).")
    parser.add_argument("--batch_size", type=int, default=4, help="Images per iteration (default: 4).")
    parser.add_argument("--report_every", type=int, default=250, help="Print memory every this many iterations (default: 250).")
    parser.add_argument("--data_dir", type=Path, default=None, help="Training photos (default: the bundled sample photos).")
    args = parser.parse_args()

    from texturenet.training.loop import Trainer

    monitor = RssMonitor(args.report_every)
    with tempfile.TemporaryDirectory() as folder:
        config = TrainConfig(
            data_dir=args.data_dir, checkpoint_dir=Path(folder), image_size=args.image_size, style_size=args.image_size,
            batch_size=args.batch_size, iterations=args.iterations, workers=args.workers, save_every=args.iterations // 4,
            log_every=args.report_every, generator=GeneratorConfig(scales=3), loss=LossConfig(vgg_weights="random"),
        )
        Trainer(config, monitors=[monitor]).run()
    (first, main0, workers0), (last, main1, workers1) = monitor.reports[0], monitor.reports[-1]
    print(f"RSS from iteration {first} to {last}: main process {main0:.1f} -> {main1:.1f} MiB ({main1 - main0:+.1f}), "
          f"workers {workers0:.1f} -> {workers1:.1f} MiB ({workers1 - workers0:+.1f})")


if __name__ == "__main__":
    main()
