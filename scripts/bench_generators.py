#!/usr/bin/env python3
"""Inference cost of the generators texturenet trains: multiply-adds per output pixel and ms per image, side by side.

The pyramid (Ulyanov et al. 2016) at 8, 16 and 32 channels a scale, on the fast path texturenet-stylize uses
(model/fused.py), and the johnson network (Johnson et al. 2016, --generator johnson) at widths 16 to 128, on its plain
forward (the only one it has). Multiply-adds are counted from the convolutions actually run (forward hooks:
output elements x input channels x kernel area; norms, activations, pooling and upsampling, a few per pixel, are
left out), divided by the output's pixels. Times are medians of interleaved repeats (scripts/benchmark.py's
``interleaved``), so that load from other processes hits every model alike: compare the ratios. Prints a
Markdown table and writes it as BENCHMARKS.md's last section (scripts/benchmark.py keeps it). Never a timed test.

Example: python scripts/bench_generators.py --size 1024 --repeats 3
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a source checkout without installing
sys.path.insert(0, str(Path(__file__).resolve().parent))

import torch  # noqa: E402
from torch import nn  # noqa: E402

from benchmark import GENERATORS_SECTION, ROOT, interleaved, machine  # noqa: E402
from texturenet.config import GeneratorConfig  # noqa: E402
from texturenet.model.fused import fast_generator  # noqa: E402
from texturenet.model.networks import make_generator  # noqa: E402

MODELS = [("pyramid", 8), ("pyramid", 16), ("pyramid", 32), ("johnson", 16), ("johnson", 32), ("johnson", 64), ("johnson", 128)]


def multiply_adds_per_pixel(model: nn.Module, size: int = 256) -> float:
    """Convolution multiply-adds of one forward pass on a ``size`` x ``size`` photo, per output pixel."""
    total = 0

    def count(conv: nn.Module, _inputs: object, output: torch.Tensor) -> None:
        nonlocal total
        assert isinstance(conv, nn.Conv2d)
        total += output[0].numel() * conv.in_channels // conv.groups * conv.kernel_size[0] * conv.kernel_size[1]

    hooks = [m.register_forward_hook(count) for m in model.modules() if isinstance(m, nn.Conv2d)]
    with torch.inference_mode():
        model(torch.rand(1, 3, size, size), strength=1.0)
    for hook in hooks:
        hook.remove()
    return total / size**2


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=1024, help="Photo side for the timings (default: 1024).")
    parser.add_argument("--repeats", type=int, default=3, help="Timed repeats per model, interleaved; the median is reported (default: 3).")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads (default: 2).")
    parser.add_argument("--markdown", type=Path, default=ROOT / "BENCHMARKS.md", help="Report whose last section this writes (default: BENCHMARKS.md).")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    device = torch.device("cpu")
    models, macs, parameters = {}, {}, {}
    for kind, channels in MODELS:
        name = f"{kind} {channels}"
        plain = make_generator(GeneratorConfig(generator=kind, channels=channels)).eval()
        macs[name] = multiply_adds_per_pixel(plain)
        parameters[name] = sum(p.numel() for p in plain.parameters())
        models[name] = fast_generator(plain) if kind == "pyramid" else plain  # what texturenet-stylize runs
    image = torch.rand(1, 3, args.size, args.size)
    load = os.getloadavg()[0]
    with torch.inference_mode():
        timed = interleaved({name: (lambda m=m: m(image, strength=1.0)) for name, m in models.items()}, args.repeats, device)
    base = timed["pyramid 8"]["seconds"]
    rows = ["| generator | channels | parameters | multiply-adds / output pixel | ms | time / pyramid 8 |", "|---|---|---|---|---|---|"]
    for (kind, channels), name in zip(MODELS, models):
        seconds = timed[name]["seconds"]
        rows.append(f"| {kind} | {channels} | {parameters[name]:,} | {macs[name] / 1e3:.1f}K | {1000 * seconds:.0f} | {seconds / base:.2f} |")
    command = "python scripts/bench_generators.py " + " ".join(sys.argv[1:])
    section = (f"{GENERATORS_SECTION} inference cost of --generator pyramid and johnson\n\n    {command}\n\n"
               f"{args.size}x{args.size} photo, batch 1, fp32, noise 1, {args.threads} threads, medians of {args.repeats} interleaved "
               "repeats; the pyramid on texturenet-stylize's fast path, johnson on its plain forward. Multiply-adds of the "
               "convolutions per output pixel (norms, activations, pooling and upsampling left out). Machine: "
               + "; ".join(f"{k} {v}" for k, v in machine(device).items())
               + f"; load average {load:.1f} before the run, {os.getloadavg()[0]:.1f} after (times grow with it; multiply-adds do not).\n\n"
               + "\n".join(rows) + "\n")
    print(section)
    old = args.markdown.read_text() if args.markdown.exists() else ""
    kept = old[:old.index(GENERATORS_SECTION)] if GENERATORS_SECTION in old else old + "\n"
    args.markdown.write_text(kept + section)
    print(f"wrote {args.markdown}")


if __name__ == "__main__":
    main()
