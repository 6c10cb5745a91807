#!/usr/bin/env python3
"""How much does --viz slow training? Prints figures; asserts nothing (timings depend on the machine).

Two measurements against a real Visdom server started here (``texturenet.apps.visdom_server`` on a free
loopback port):
1. the time the training thread spends inside VisdomMonitor.log / .samples (the only work --viz
   adds to a step; the network traffic happens on the monitor's own thread);
2. end-to-end training throughput (images/s) of the same short run with and without --viz,
   alternated to spread machine noise, median per run.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

import torch  # noqa: E402

from texturenet.config import GeneratorConfig, LossConfig, TrainConfig  # noqa: E402
from texturenet.training.monitor import VisdomMonitor  # noqa: E402
from texturenet.training.loop import Trainer  # noqa: E402
from _visdom_server import HOST, free_port, visdom_server  # noqa: E402


class Speeds:
    """A Monitor that keeps the images/s the trainer reports."""

    def __init__(self) -> None:
        self.values: list[float] = []

    def start(self, run_name, config) -> None: ...
    def log(self, iteration, losses, lr, images_per_second) -> None:
        self.values.append(images_per_second)
    def samples(self, iteration, grid) -> None: ...
    def checkpoint(self, iteration, path) -> None: ...
    def close(self) -> None: ...


def call_cost(port: int, calls: int) -> tuple[float, float]:
    """Microseconds per log() and per samples() call on the calling (training) thread."""
    monitor = VisdomMonitor(f"http://{HOST}", port, "bench-calls")
    monitor.start("bench-calls", {})
    losses = {k: 1.0 for k in ("total", "content", "style", "tv", "style_relu1_1", "style_relu2_1", "style_relu3_1",
                                "style_relu4_1", "style_relu5_1")}
    grid = torch.rand(3, 260, 1044)
    start = time.perf_counter()
    for i in range(calls):
        monitor.log(i, losses, 1e-3, 10.0)
    log_us = (time.perf_counter() - start) / calls * 1e6
    start = time.perf_counter()
    for i in range(calls):
        monitor.samples(i, grid)
    samples_us = (time.perf_counter() - start) / calls * 1e6
    monitor.close()
    return log_us, samples_us


def run(viz: bool, port: int, args: argparse.Namespace, folder: Path) -> float:
    speeds = Speeds()
    config = TrainConfig(
        name="bench", checkpoint_dir=folder, image_size=args.image_size, style_size=args.image_size,
        batch_size=args.batch_size, iterations=args.iterations, workers=0, log_every=args.log_every, save_every=0,
        viz=viz, viz_server=f"http://{HOST}", viz_port=port, viz_every=args.viz_every,
        generator=GeneratorConfig(), loss=LossConfig(vgg_weights="random"),
    )
    Trainer(config, [speeds]).run()
    return statistics.median(speeds.values[1:])  # the first interval includes warm-up


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--image_size", type=int, default=64, help="Training crop size (default: 64).")
    parser.add_argument("--batch_size", type=int, default=2, help="Images per iteration (default: 2).")
    parser.add_argument("--iterations", type=int, default=40, help="Iterations per run (default: 40).")
    parser.add_argument("--log_every", type=int, default=1, help="Trainer log period: every log reaches Visdom (default: 1, the worst case).")
    parser.add_argument("--viz_every", type=int, default=10, help="Sample-grid period with --viz (default: 10).")
    parser.add_argument("--repeats", type=int, default=3, help="Runs with and without --viz each, alternated; 0 measures the per-call cost only (default: 3).")
    parser.add_argument("--calls", type=int, default=2000, help="Calls timed for the per-call cost (default: 2000).")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, visdom_server(port := free_port(), Path(tmp) / "envs"):
        log_us, samples_us = call_cost(port, args.calls)
        results: dict[bool, list[float]] = {False: [], True: []}
        for _ in range(args.repeats):
            for viz in (False, True):
                results[viz].append(run(viz, port, args, Path(tmp) / "ck"))
    print(f"\ntraining-thread cost of VisdomMonitor: log() {log_us:.1f} us/call, samples() {samples_us:.1f} us/call")
    if not args.repeats:
        return
    off, on = statistics.median(results[False]), statistics.median(results[True])
    print(f"images/s without --viz: {', '.join(f'{v:.2f}' for v in results[False])} (median {off:.2f})")
    print(f"images/s with --viz:    {', '.join(f'{v:.2f}' for v in results[True])} (median {on:.2f})")
    print(f"throughput change with --viz: {100 * (on - off) / off:+.1f}% "
          f"({args.image_size}px, batch {args.batch_size}, log every {args.log_every}, samples every {args.viz_every})")


if __name__ == "__main__":
    main()
