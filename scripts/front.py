#!/usr/bin/env python3
"""The quality-against-training-time front (issue 22, item 3): equal CPU budgets per generator, scored alike.

Why CPU time: the machine is shared, so wall time measures the neighbours; the user+sys time of the training
process at one thread (``os.wait4``'s accounting, the same as ``/usr/bin/time``; the data worker, waited for, is
included) barely changes with contention. Stages, each a subcommand, all files under ``--root``:

* ``rate``: each configuration trains 10 and 50 iterations; CPU seconds per iteration = (cpu50 - cpu10) / 40
  (start-up, the style's Grams and the final save cancel out). Writes ``rate/CFG-N.time`` ("user sys wall").
* ``plan``: budgets (CPU minutes) to iteration counts: ``save_every`` = budget[0] / rate rounded to 10, the
  budgets at 1, 2 and 4 times it (the budgets are 6.5, 13, 26: doubling), so one run to the largest gives every
  budget as a saved checkpoint; ``lr_step`` = a third of the run (the recipe's 100 of 300).
* ``train CFG``: that run (``CFG/NAME_iterN.pth`` along the way, ``CFG/NAME.pth`` at the end), its CPU time
  written to ``CFG/train.time``.
* ``score CFG``: texturenet-evaluate on every saved budget (``CFG/eval_N/results.json``).
* ``inference``: each configuration's largest checkpoint, as texturenet-stylize runs it, at 1024x1024: multiply-adds
  per output pixel and ms, medians of interleaved repeats in one process (``inference.json``).
* ``table``: the Markdown table of docs/QUALITY.md's front section, and ``front.json`` for scripts/plot_front.py.

Example: python scripts/front.py rate p8 j32 && python scripts/front.py plan && python scripts/front.py train p8
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a source checkout without installing
sys.path.insert(0, str(Path(__file__).resolve().parent))

ROOT = Path(__file__).resolve().parent.parent
SHARED = Path("/work/shared")
NAME = "mosaic"
RATE_ITERATIONS = (10, 50)
STRENGTHS = "0,0.5,1"

SHAPES: dict[str, dict[str, Any]] = {
    "p8": {"scales": 4},
    "p16": {"scales": 4, "channels": 16},
    "j32": {"generator": "johnson"},
    "j16": {"generator": "johnson", "channels": 16},
}
"""The generators compared (issue 22 item 3): the pyramid at 8 and 16 channels a scale, johnson at 32 and 16
(GeneratorConfig fields beyond the dial's top, 1)."""
CONFIGS = {name: [word for field, value in shape.items() for word in (f"--{field}", str(value))] for name, shape in SHAPES.items()}
"""Each configuration's flags of texturenet-train."""


@dataclass(frozen=True)
class Plan:
    """One configuration's iteration counts: budgets (CPU minutes) -> saved iterations, and its schedule."""

    seconds_per_iteration: float
    save_every: int
    budgets: dict[float, int]
    lr_step: int


def base_command(photos: Path, style: Path, weights: Path, lr: str) -> list[str]:
    """The front's training command (HED VGG16, mosaic, 128-px crops, style at 256, the dial's top at 1)."""
    return [sys.executable, str(ROOT / "scripts" / "train.py"), "--loss_net", "vgg16", "--vgg_weights", str(weights),
            "--data_dir", str(photos), "--texture", str(style), "--image_size", "128", "--style_size", "256",
            "--log_every", "10", "--workers", "1", "--lr", lr, "--max_strength", "1"]


def timed_run(command: list[str], log: Path, time_file: Path, stoppable: bool = False) -> tuple[float, float, float]:
    """Run ``command`` at one thread, output to ``log``; (user, sys, wall) seconds, also written to ``time_file``.

    An unsuccessful run stops the stage with its log's path (one line, exit 2), except a training stopped by
    SIGTERM where ``stoppable`` (exit 143: it saved its last iteration, which is kept)."""
    import time

    environment = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    start = time.perf_counter()
    folder = Path(command[command.index("--checkpoint_dir") + 1]) if "--checkpoint_dir" in command else None
    seen: set[Path] = set()
    with open(log, "w") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=environment, cwd=ROOT)
        while True:
            pid, status, usage = os.wait4(process.pid, os.WNOHANG)
            if pid:
                break
            if folder is not None:  # the CPU spent when each checkpoint appears: the budgets' own check
                for path in sorted(set(folder.glob("*.pth")) - seen):
                    seen.add(path)
                    with open(folder / "cpu_at_checkpoints.txt", "a") as record:
                        record.write(f"{path.name} cpu_s={tree_cpu_seconds(process.pid):.1f}\n")
            time.sleep(2)
    wall = time.perf_counter() - start
    time_file.write_text(f"{usage.ru_utime:.2f} {usage.ru_stime:.2f} {wall:.2f}\n")
    code = os.waitstatus_to_exitcode(status)
    if code != 0 and not (stoppable and code == 143):
        print(f"front: {Path(command[1]).name} failed (exit {code}); see {log}", file=sys.stderr)
        sys.exit(2)
    return usage.ru_utime, usage.ru_stime, wall


def tree_cpu_seconds(pid: int) -> float:
    """user + sys so far of a running process and its children (the data worker), from /proc (Linux)."""
    total = 0
    children = Path(f"/proc/{pid}/task/{pid}/children")
    for each in [pid, *map(int, children.read_text().split() if children.exists() else [])]:
        try:
            fields = Path(f"/proc/{each}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:  # a child that just ended
            continue
        total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def cpu_seconds(time_file: Path) -> float:
    """user + sys of a ``.time`` file ("user sys wall", as ``/usr/bin/time -f "%U %S %e"`` writes it)."""
    user, system = time_file.read_text().split()[:2]
    return float(user) + float(system)


def plan(root: Path, config: str, budgets: list[float]) -> Plan:
    """Iteration counts for ``budgets`` (CPU minutes at one thread) from the configuration's measured rate."""
    cpu = {n: cpu_seconds(root / "rate" / f"{config}-{n}.time") for n in RATE_ITERATIONS}
    rate = (cpu[RATE_ITERATIONS[1]] - cpu[RATE_ITERATIONS[0]]) / (RATE_ITERATIONS[1] - RATE_ITERATIONS[0])
    save_every = max(10, round(budgets[0] * 60 / rate / 10) * 10)
    counts = {budget: save_every * round(budget / budgets[0]) for budget in budgets}
    return Plan(rate, save_every, counts, max(1, round(max(counts.values()) / 3)))


def checkpoint(root: Path, config: str, iterations: int, planned: int) -> Path:
    """The run's checkpoint at ``iterations``: the trainer writes NAME_iterN.pth along the way (and where a SIGTERM
    stopped it), NAME.pth at the end of the ``planned`` run."""
    along = root / config / f"{NAME}_iter{iterations}.pth"
    return root / config / f"{NAME}.pth" if iterations == planned and not along.is_file() else along


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("stage", choices=["rate", "plan", "train", "score", "inference", "table"], help="What to do (see above).")
    parser.add_argument("configs", nargs="*", help=f"Configurations, of {', '.join(CONFIGS)} (default: all).")
    parser.add_argument("--root", type=Path, default=Path("/tmp/front"), help="Where runs and figures go (default: /tmp/front).")
    parser.add_argument("--budgets", default="6.5,13,26", help="CPU minutes at one thread, each double the last (default: 6.5,13,26).")
    parser.add_argument("--upto", type=float, default=None, help="train: stop at this budget instead of the largest (default: the largest).")
    parser.add_argument("--photos", type=Path, default=SHARED / "data/photos", help="Training photos (default: /work/shared/data/photos).")
    parser.add_argument("--eval_photos", type=Path, default=SHARED / "data/eval/photos", help="Held-out photos scored (default: /work/shared/data/eval/photos).")
    parser.add_argument("--style", type=Path, default=SHARED / "data/styles/mosaic.jpg", help="Style image (default: /work/shared/data/styles/mosaic.jpg).")
    parser.add_argument("--vgg_weights", type=Path, default=SHARED / "weights/vgg16_hed_bsds500.pth", help="HED VGG16 weights (default: /work/shared/weights/vgg16_hed_bsds500.pth).")
    parser.add_argument("--lr", default="1e-2", help="train and rate: Adam learning rate (default: 1e-2, the recipe's).")
    parser.add_argument("--speed_root", type=Path, default=None, help="table: the root whose inference.json to use (default: --root).")
    parser.add_argument("--size", type=int, default=1024, help="inference: photo side (default: 1024).")
    parser.add_argument("--repeats", type=int, default=5, help="inference: interleaved repeats, median reported (default: 5).")
    args = parser.parse_intermixed_args()
    configs = args.configs or list(CONFIGS)
    unknown = [c for c in configs if c not in CONFIGS]
    if unknown:
        parser.error(f"unknown configuration {unknown[0]!r}; choose from {', '.join(CONFIGS)}")
    budgets = [float(b) for b in args.budgets.split(",")]
    base = base_command(args.photos, args.style, args.vgg_weights, args.lr)
    (args.root / "rate").mkdir(parents=True, exist_ok=True)

    if args.stage == "rate":
        for config in configs:
            for n in RATE_ITERATIONS:
                folder = args.root / "rate" / f"{config}-{n}"
                user, system, wall = timed_run(base + CONFIGS[config] + ["--iterations", str(n), "--save_every", "0", "--checkpoint_dir",
                                                                        str(folder), "--overwrite"],
                                               args.root / "rate" / f"{config}-{n}.log", args.root / "rate" / f"{config}-{n}.time")
                print(f"{config} {n} iterations: {user + system:.1f} CPU s ({wall:.0f} s wall)", flush=True)
    elif args.stage == "plan":
        for config in configs:
            p = plan(args.root, config, budgets)
            print(f"{config}: {p.seconds_per_iteration:.3f} CPU s/iteration -> save_every {p.save_every}, "
                  + ", ".join(f"{b:g} min = {n} it" for b, n in p.budgets.items()) + f", lr_step {p.lr_step}")
    elif args.stage == "train":
        for config in configs:
            p = plan(args.root, config, budgets)
            last = p.budgets[args.upto] if args.upto is not None else max(p.budgets.values())
            (args.root / config).mkdir(exist_ok=True)
            user, system, wall = timed_run(base + CONFIGS[config] + ["--iterations", str(last), "--save_every", str(p.save_every),
                                                                    "--lr_step", str(p.lr_step), "--checkpoint_dir", str(args.root / config)],
                                           args.root / config / "train.log", args.root / config / "train.time", stoppable=True)
            print(f"{config}: up to {last} iterations in {(user + system) / 60:.1f} CPU min ({wall / 60:.1f} min wall)", flush=True)
    elif args.stage == "score":
        for config in configs:
            p = plan(args.root, config, budgets)
            for n in sorted(set(p.budgets.values())):
                model = checkpoint(args.root, config, n, planned_iterations(args.root, config))
                if not model.is_file():
                    continue
                out = args.root / config / f"eval_{n}"
                if (out / "results.json").is_file():  # scored already (the runs are scored as their budgets arrive)
                    continue
                out.mkdir(exist_ok=True)
                timed_run([sys.executable, str(ROOT / "scripts" / "evaluate.py"), "--model", str(model), "--photos", str(args.eval_photos),
                           "--output_dir", str(out), "--image_size", "256", "--noise_factors", STRENGTHS, "--style_scales", "1",
                           "--iterations", "1"], out / "evaluate.log", out / "evaluate.time")
                print(f"{config} {n}: scored in {out}", flush=True)
    elif args.stage == "inference":
        inference(args, configs)
    else:
        table(args.root, configs, budgets, args.lr, args.speed_root or args.root)


def planned_iterations(root: Path, config: str) -> int:
    """The iterations the configuration's run was started for (its log's first line: "...; N iterations x 4, ...")."""
    log = (root / config / "train.log").read_text(errors="replace")
    return int(log.split(" iterations x ")[0].rsplit(";", 1)[-1].strip())


def inference(args: argparse.Namespace, configs: list[str]) -> None:
    """Multiply-adds per output pixel and ms at ``--size``^2 of each configuration, interleaved in this one process.

    The generator runs as texturenet-stylize runs it (the pyramid on model/fused.py's path, johnson plain). Its newest
    checkpoint is used where there is one, else the same shape untrained: weights change neither cost."""
    import torch

    from bench_generators import multiply_adds_per_pixel
    from benchmark import interleaved
    from texturenet.model.checkpoint import load_generator
    from texturenet.config import GeneratorConfig
    from texturenet.model.fused import fast_generator
    from texturenet.model.networks import make_generator

    torch.set_num_threads(1)
    device = torch.device("cpu")
    runs, macs, sources = {}, {}, {}
    for config in configs:
        saved = sorted((args.root / config).glob(f"{NAME}*.pth"), key=lambda path: path.stat().st_mtime)
        generator = (load_generator(saved[-1]) if saved else make_generator(GeneratorConfig(max_strength=1.0, **SHAPES[config])).eval())
        sources[config] = str(saved[-1]) if saved else "untrained, same shape"
        macs[config] = multiply_adds_per_pixel(generator)
        runs[config] = fast_generator(generator) if generator.config.generator == "pyramid" else generator
    image = torch.rand(1, 3, args.size, args.size)
    load = os.getloadavg()[0]
    with torch.inference_mode():
        timed = interleaved({c: (lambda g=g: g(image, strength=1.0)) for c, g in runs.items()}, args.repeats, device)
    result: dict[str, Any] = {c: {"macs_per_pixel": macs[c], "ms": 1000 * timed[c]["seconds"], "all_ms": [1000 * t for t in timed[c]["all"]],
                                  "model": sources[c]} for c in runs}
    result["_"] = {"size": args.size, "repeats": args.repeats, "threads": 1, "load_before": load, "load_after": os.getloadavg()[0]}
    (args.root / "inference.json").write_text(json.dumps(result, indent=2))
    for c in runs:
        print(f"{c}: {macs[c] / 1e3:.1f}K multiply-adds / output pixel, {result[c]['ms']:.0f} ms at {args.size}^2 "
              f"(repeats {', '.join(f'{t:.0f}' for t in result[c]['all_ms'])})")
    print(f"one thread, {args.repeats} interleaved repeats; load average {load:.1f} before, {os.getloadavg()[0]:.1f} after")


def cpu_at_checkpoints(root: Path, config: str) -> dict[str, float]:
    """CPU seconds the run had spent when each checkpoint appeared (``train``'s record), by file name."""
    record, finished = root / config / "cpu_at_checkpoints.txt", root / config / "train.time"
    lines = record.read_text().split("\n") if record.is_file() else []
    spent = {line.split()[-2]: float(line.split("cpu_s=")[1]) for line in lines if "cpu_s=" in line}
    if finished.is_file() and (root / config / f"{NAME}.pth").is_file():  # the final model: the whole run's time
        spent.setdefault(f"{NAME}.pth", cpu_seconds(finished))
    return spent


def table(root: Path, configs: list[str], budgets: list[float], lr: str, speed_root: Path) -> None:
    """The front's Markdown table, and ``front.json`` (every figure of it) for scripts/plot_front.py.

    Configurations trained at another ``--lr`` than the recipe's are labelled with it; the inference cost comes from
    ``speed_root``'s inference.json (one process for all)."""
    speed = json.loads((speed_root / "inference.json").read_text()) if (speed_root / "inference.json").is_file() else {}
    rows, lines = [], ["| config | budget (CPU min) | CPU min spent | iterations | style / content at 0 | at 0.5 | at 1 | "
                       "colour, texture at 1 | blotch (0 / 0.5 / 1) | multiply-adds / px | ms at 1024² |",
                       "|---|---|---|---|---|---|---|---|---|---|---|"]
    for config in configs:
        if not (root / "rate" / f"{config}-{RATE_ITERATIONS[1]}.time").is_file():
            continue
        p = plan(root, config, budgets)
        for budget, n in p.budgets.items():
            results = root / config / f"eval_{n}" / "results.json"
            if not results.is_file():
                continue
            result = json.loads(results.read_text())
            spent = cpu_at_checkpoints(root, config).get(Path(result["model"]).name)
            label = config if lr == "1e-2" else f"{config} lr {lr}"
            means = {m: result["means"][f"feed-forward nf {m}"] for m in ("0", "0.5", "1")}
            row = {"config": label, "budget": budget, "cpu_minutes": spent and spent / 60, "iterations": n,
                   "rate": p.seconds_per_iteration,
                   **{f"{k}_{m}": means[m][k] for m in means for k in ("style", "content", "colour", "texture")},
                   "photo_colour": result["means"]["photo"]["colour"], "photo_texture": result["means"]["photo"]["texture"],
                   "blotch": result["blotches"], **{k: speed.get(config, {}).get(k) for k in ("macs_per_pixel", "ms")}}
            rows.append(row)
            cost = (f"{row['macs_per_pixel'] / 1e3:.1f}K | {row['ms']:.0f}" if row["ms"] is not None else "- | -")
            lines.append(f"| {label} | {budget:g} | {'-' if spent is None else f'{spent / 60:.1f}'} | {n} | " + " | ".join(f"{row[f'style_{m}']:.3f} / {row[f'content_{m}']:.3f}" for m in means)
                         + f" | {row['colour_1']:.1f}, {row['texture_1']:.2f} | "
                         + " / ".join(f"{v:.2f}" for v in result["blotches"].values()) + f" | {cost} |")
    (root / "front.json").write_text(json.dumps(rows, indent=2))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
