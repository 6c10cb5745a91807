#!/usr/bin/env python3
"""Speed benchmark: our pyramid generator against the Johnson et al. 2016 network, in one run.

Prints a table, writes JSON and regenerates BENCHMARKS.md (machine details, tables, and the
profile of the plain and fast generators). Figures are medians of interleaved repeats
(ours, baseline, ours, ...) so that load from other processes hits both alike; the ratios
measured in the same run are what to compare across machines. Never a timed test.

Example: python scripts/benchmark.py --sizes 256,512,1024,2048,3840x2160 --train_sizes 128,256 --huge 8000 --tiling 2048
"""
from __future__ import annotations

import argparse
import json
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a source checkout without installing

import numpy as np  # noqa: E402
import torch  # noqa: E402
from PIL import Image  # noqa: E402
from tqdm import tqdm  # noqa: E402

from texturenet.model.checkpoint import make_checkpoint, save_atomic  # noqa: E402
from texturenet.config import AMP_DTYPES, GeneratorConfig, LossConfig  # noqa: E402
from texturenet.training.data import PhotoDataset, photo_loader  # noqa: E402
from texturenet.model.fused import fast_generator  # noqa: E402
from texturenet.model.pyramid import PyramidGenerator  # noqa: E402
from texturenet.io.images import find_images  # noqa: E402
from texturenet.loss.terms import PerceptualLoss  # noqa: E402
from texturenet.model.networks import make_generator  # noqa: E402
from texturenet.stylize.stylizer import Stylizer  # noqa: E402
from texturenet.training.loop import mixed_precision  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
# Johnson et al. 2016 (Sec. 3 and pytorch/examples fast_neural_style): VGG16, content relu2_2, style relu1_2..relu4_3.
JOHNSON_LOSS = LossConfig(loss_net="vgg16", vgg_weights="random", content_layers=("relu2_2",),
                          style_layers=("relu1_2", "relu2_2", "relu3_3", "relu4_3"))
JOHNSON_NET = GeneratorConfig(generator="johnson", channels=128, noise_depth=0, max_strength=0.0)
"""The baseline: Johnson et al.'s own network (--generator johnson at width 128, without noise input or strength dial)."""
GENERATORS_SECTION = "## Generators:"
"""BENCHMARKS.md's last section, written by scripts/bench_generators.py; a run of this script keeps it."""
OUR_LOSS = LossConfig(vgg_weights="random")  # VGG19, the paper's layers (Ulyanov et al. 2016, Sec. 4)


def _size(text: str) -> tuple[int, int]:
    width, _, height = text.partition("x")
    return int(width), int(height or width)


def _sizes(text: str) -> list[tuple[int, int]]:
    return [_size(part) for part in text.split(",") if part]


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=_sizes, default=_sizes("256,512,1024"),
                        help="Inference sizes, WxH or N for NxN, comma-separated; add 2048,3840x2160 for the full set (default: 256,512,1024).")
    parser.add_argument("--train_sizes", type=_sizes, default=_sizes("128"), help="Training crop sizes (default: 128).")
    parser.add_argument("--batch_size", type=int, default=4, help="Training batch size (default: 4).")
    parser.add_argument("--repeats", type=int, default=3, help="Timed repeats per measurement; the median is reported (default: 3).")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads (default: 2).")
    parser.add_argument("--profile_size", type=int, default=1024, help="Size of the before/after profile (0: skip) (default: 1024).")
    parser.add_argument("--workers", type=int, default=2, help="Data-loading workers of the loader-included training measurement (default: 2).")
    parser.add_argument("--loader_steps", type=int, default=6, help="Training steps fed by the real data loader (0: skip) (default: 6).")
    parser.add_argument("--huge", type=int, default=0,
                        help="Also stylise an NxN photo with scripts/stylize.py (automatic tiling) and report its peak memory (default: 0, skip).")
    parser.add_argument("--tiling", type=int, default=0,
                        help="Also stylise an NxN photo untiled and in 512-pixel tiles: the cost of tiling, and how far apart the two are (default: 0, skip).")
    parser.add_argument("--cuda", action="store_true", help="Benchmark on the GPU (default: CPU).")
    parser.add_argument("--amp", action="store_true", help="Training steps under autocast (bfloat16, or float16 with loss scaling) (default: off).")
    parser.add_argument("--amp_dtype", choices=AMP_DTYPES, default="auto",
                        help="--amp's type: bfloat16 where supported, else float16 (auto), or the one given (default: auto).")
    parser.add_argument("--channels_last", action="store_true", help="Training in channels_last memory order (default: off).")
    parser.add_argument("--json", type=Path, default=ROOT / "benchmarks.json", help="JSON output (default: benchmarks.json).")
    parser.add_argument("--markdown", type=Path, default=ROOT / "BENCHMARKS.md", help="Markdown report (default: BENCHMARKS.md).")
    return parser.parse_args()


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def _reset_peak(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    else:  # Linux: writing 5 to clear_refs resets the peak resident set size (VmHWM)
        Path("/proc/self/clear_refs").write_text("5")


def _peak_mb(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated() / 2**20
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def interleaved(runs: dict[str, Callable[[], object]], repeats: int, device: torch.device) -> dict[str, dict[str, float]]:
    """Median seconds and peak memory of each run, measured in turns after one warm-up each."""
    times: dict[str, list[float]] = {name: [] for name in runs}
    peaks: dict[str, float] = {}
    for name, run in runs.items():  # warm-up (allocator, oneDNN/cuDNN kernel choice), also the peak memory
        _reset_peak(device)
        run()
        _sync(device)
        peaks[name] = _peak_mb(device)
    for _ in range(repeats):
        for name, run in runs.items():
            _sync(device)
            start = time.perf_counter()
            run()
            _sync(device)
            times[name].append(time.perf_counter() - start)
    return {name: {"seconds": statistics.median(times[name]), "peak_mb": peaks[name], "all": times[name]} for name in runs}


def inference(args: argparse.Namespace, device: torch.device) -> list[dict]:
    pyramid = PyramidGenerator(GeneratorConfig()).to(device).eval()
    models = {"pyramid": pyramid, "pyramid_fast": fast_generator(pyramid), "johnson": make_generator(JOHNSON_NET).to(device).eval()}
    rows = []
    for width, height in tqdm(args.sizes, desc="inference", unit="size"):
        image = torch.rand(1, 3, height, width, device=device)
        with torch.inference_mode():
            runs = {name: (lambda m=m: m(image)) for name, m in models.items()}
            result = interleaved(runs, args.repeats, device)
        for name, r in result.items():
            rows.append({"model": name, "width": width, "height": height, "ms": 1000 * r["seconds"],
                         "megapixels_per_s": width * height / 1e6 / r["seconds"], "peak_mb": r["peak_mb"]})
    return rows


class TrainStep:
    """One optimiser step of feed-forward training, as the Trainer takes it (``--amp``, ``--channels_last``)."""

    def __init__(self, net: torch.nn.Module, config: LossConfig, args: argparse.Namespace, device: torch.device) -> None:
        self.memory = torch.channels_last if args.channels_last else torch.contiguous_format
        self.net = net.to(device, memory_format=self.memory).train()
        self.loss = PerceptualLoss(config).to(device, memory_format=self.memory)
        self.loss.set_style(torch.rand(1, 3, 256, 256, device=device))
        self.optimizer = torch.optim.Adam(self.net.parameters(), lr=1e-3)
        self.amp, self.device = args.amp, device
        self.dtype, self.scaler = mixed_precision(device, args.amp, args.amp_dtype)

    def __call__(self, photos: torch.Tensor) -> None:
        photos = photos.to(self.device, non_blocking=True).contiguous(memory_format=self.memory)
        with torch.autocast(self.device.type, dtype=self.dtype, enabled=self.amp):
            terms = self.loss(self.net(photos), self.loss.content_targets(photos))
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(terms["total"]).backward()
        self.scaler.step(self.optimizer)
        self.scaler.update()


def _train_nets() -> tuple[tuple[str, torch.nn.Module, LossConfig], ...]:
    return (("pyramid+vgg19", PyramidGenerator(GeneratorConfig()), OUR_LOSS), ("johnson+vgg16", make_generator(JOHNSON_NET), JOHNSON_LOSS))


def training(args: argparse.Namespace, device: torch.device) -> list[dict]:
    """The training step alone, on photos already in memory, ours and the baseline interleaved."""
    rows = []
    for size, _ in tqdm(args.train_sizes, desc="training", unit="size"):
        runs = {}
        photos = torch.rand(args.batch_size, 3, size, size, device=device)
        for name, net, config in _train_nets():
            runs[name] = lambda step=TrainStep(net, config, args, device): step(photos)
        for name, r in interleaved(runs, args.repeats, device).items():
            rows.append({"model": name, "size": size, "batch": args.batch_size, "ms_per_iteration": 1000 * r["seconds"],
                         "images_per_s": args.batch_size / r["seconds"], "peak_mb": r["peak_mb"]})
    return rows


def _photo_folder() -> Path:
    """The COCO-like sample folder: ../shared/data/photos when present, else the bundled photos."""
    folder = ROOT.parent / "shared" / "data" / "photos"
    return folder if folder.is_dir() else ROOT / "texturenet" / "assets" / "photos"


def training_with_loader(args: argparse.Namespace, device: torch.device, training_rows: list[dict]) -> list[dict]:
    """Our step fed by the real loader (decode, resize, random crop in workers) against the loader alone.

    Whichever delivers fewer images per second is the bottleneck of a real run.
    """
    size = args.train_sizes[0][0]
    dataset = PhotoDataset(find_images(_photo_folder()), size)
    batches = iter(photo_loader(dataset, args.batch_size, seed=0, start=0, workers=args.workers, pin_memory=device.type == "cuda"))
    next(batches)  # start the workers
    start = time.perf_counter()
    for _ in range(4 * args.loader_steps):
        next(batches)
    loader_rate = 4 * args.loader_steps * args.batch_size / (time.perf_counter() - start)
    name, net, config = _train_nets()[0]
    step = TrainStep(net, config, args, device)
    step(next(batches)[0])  # warm-up
    _sync(device)
    start = time.perf_counter()
    for _ in range(args.loader_steps):
        step(next(batches)[0])
    _sync(device)
    step_rate = args.loader_steps * args.batch_size / (time.perf_counter() - start)
    alone = next(r for r in training_rows if r["model"] == name and r["size"] == size)["images_per_s"]
    return [{"what": f"loader alone ({args.workers} workers)", "size": size, "images_per_s": loader_rate},
            {"what": f"{name} step, photos in memory", "size": size, "images_per_s": alone},
            {"what": f"{name} step fed by the loader", "size": size, "images_per_s": step_rate},
            {"what": "bottleneck", "size": size, "images_per_s": "loader" if loader_rate < alone else "training step"}]


def _model_and_photo(folder: Path, size: int) -> tuple[Path, Path]:
    """A random-weight generator checkpoint and a smooth size x size JPEG photo in ``folder`` (speed does not depend on either)."""
    photo, model = folder / "photo.jpg", folder / "model.pth"
    save_atomic(make_checkpoint(PyramidGenerator(GeneratorConfig()), "benchmark", 0), model)
    small = np.random.default_rng(0).integers(0, 256, (size // 16, size // 16, 3), dtype=np.uint8)
    Image.fromarray(small).resize((size, size), Image.BICUBIC).save(photo, quality=90)
    return model, photo


def huge(size: int) -> dict:
    """Stylise a size x size photo with scripts/stylize.py (automatic tiling) in a child process; its peak RSS."""
    with tempfile.TemporaryDirectory() as folder:
        model, photo = _model_and_photo(Path(folder), size)
        # A fresh interpreter measures only the stylising process (getrusage of its one child).
        probe = ("import resource, subprocess, sys, time; start = time.perf_counter(); "
                 "subprocess.run(sys.argv[1:], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL); "
                 "print(time.perf_counter() - start, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)")
        command = [sys.executable, "-c", probe, sys.executable, str(ROOT / "scripts" / "stylize.py"), "--model", str(model),
                   "--input", str(photo), "--output", str(Path(folder) / "out.jpg")]
        seconds, peak_kb = subprocess.run(command, check=True, capture_output=True, text=True).stdout.split()
    return {"width": size, "height": size, "seconds": float(seconds), "peak_rss_mb": int(peak_kb) / 1024}


def tiling_cost(size: int, tile: int = 512) -> dict:
    """What tiling costs on a size x size photo: untiled and tiled time (strength 0), and how far apart they are."""
    with tempfile.TemporaryDirectory() as folder:
        model, photo = _model_and_photo(Path(folder), size)
        stylizer = Stylizer(model, torch.device("cpu"))
        image = np.asarray(Image.open(photo).convert("RGB"))
        times, outputs = {}, {}
        for name, tiles in (("untiled", 0), ("tiled", tile)):
            start = time.perf_counter()
            outputs[name] = stylizer.stylize_array(image, strength=0, tile=tiles).astype(int)
            times[name] = time.perf_counter() - start
    difference = np.abs(outputs["tiled"] - outputs["untiled"])
    return {"width": size, "height": size, "tile": tile, "untiled_s": times["untiled"], "tiled_s": times["tiled"],
            "ratio": times["tiled"] / times["untiled"], "mean_difference": float(difference.mean()), "max_difference": int(difference.max())}


def loader_throughput(size: int = 256, count: int = 48) -> list[dict]:
    """Decoded, resized and cropped training images per second on one core: PIL (with draft) vs torchvision.io."""
    from torchvision.io import ImageReadMode, decode_jpeg, read_file
    from torchvision.transforms.v2 import functional as TF

    paths = [p for p in find_images(_photo_folder()) if p.suffix.lower() in (".jpg", ".jpeg")]
    paths = (paths * (count // len(paths) + 1))[:count]

    def pil(path: Path) -> torch.Tensor:
        image = Image.open(path)
        image.draft("RGB", (size, size))  # JPEG: decode at 1/2, 1/4, 1/8 scale when that is still large enough
        image = image.convert("RGB")
        w, h = image.size
        scale = size / min(w, h)
        image = image.resize((max(size, round(w * scale)), max(size, round(h * scale))), Image.BILINEAR)
        return torch.from_numpy(np.asarray(image)[:size, :size].copy()).permute(2, 0, 1)

    def tv(path: Path) -> torch.Tensor:
        image = decode_jpeg(read_file(str(path)), mode=ImageReadMode.RGB)
        return TF.center_crop(TF.resize(image, size, antialias=True), size)

    rows = []
    for name, decode in (("PIL + draft", pil), ("torchvision.io.decode_jpeg", tv)):
        start = time.perf_counter()
        for path in paths:
            decode(path)
        rows.append({"decoder": name, "images_per_s": len(paths) / (time.perf_counter() - start), "size": size})
    return rows


def profile(size: int, device: torch.device) -> dict[str, str]:
    pyramid = PyramidGenerator(GeneratorConfig()).to(device).eval()
    image = torch.rand(1, 3, size, size, device=device)
    tables = {}
    for name, model in (("pyramid (before)", pyramid), ("pyramid_fast (after)", fast_generator(pyramid))):
        with torch.inference_mode():
            model(image)
            with torch.profiler.profile() as prof:
                model(image)
        tables[name] = prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=10)
    return tables


def machine(device: torch.device) -> dict[str, str]:
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())
    info = {"cpu": cpu, "torch_threads": str(torch.get_num_threads()), "torch": torch.__version__,
            "python": platform.python_version(), "device": str(device)}
    if device.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name()
    return info


def _md_table(rows: list[dict], columns: list[str]) -> str:
    def cell(v: object) -> str:
        return f"{v:.3g}" if isinstance(v, float) else str(v)
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(cell(r[c]) for c in columns) + " |" for r in rows]
    return "\n".join(lines)


def ratios(rows: list[dict], key: str, ours: str, base: str, group: tuple[str, ...]) -> list[dict]:
    """baseline time / our time for each size: how many times faster we are."""
    by = {(r["model"], *(r[g] for g in group)): r[key] for r in rows}
    return [{**dict(zip(group, k[1:])), "ours": ours, "speedup": by[(base, *k[1:])] / v}
            for k, v in by.items() if k[0] == ours]


def main() -> None:
    args = parse_args()
    torch.set_num_threads(args.threads)
    if args.cuda and not torch.cuda.is_available():
        raise SystemExit("benchmark: error: --cuda was given but CUDA is not available; drop --cuda")
    device = torch.device("cuda" if args.cuda else "cpu")
    torch.backends.cudnn.benchmark = True
    report = {"machine": machine(device), "inference": inference(args, device), "training": training(args, device),
              "loader": loader_throughput()}
    report["inference_speedup"] = [*ratios(report["inference"], "ms", "pyramid", "johnson", ("width", "height")),
                                   *ratios(report["inference"], "ms", "pyramid_fast", "johnson", ("width", "height"))]
    report["training_speedup"] = ratios(report["training"], "ms_per_iteration", "pyramid+vgg19", "johnson+vgg16", ("size",))
    report["training_with_loader"] = training_with_loader(args, device, report["training"]) if args.loader_steps else []
    report["huge"] = [huge(args.huge)] if args.huge else []
    report["tiling"] = [tiling_cost(args.tiling)] if args.tiling else []
    report["profile"] = profile(args.profile_size, device) if args.profile_size else {}
    args.json.write_text(json.dumps(report, indent=1))
    precision = (f"AMP ({args.amp_dtype})" if args.amp else "fp32") + (", channels_last" if args.channels_last else "")
    sections = [
        ("Inference (batch 1, fp32)", _md_table(report["inference"], ["model", "width", "height", "ms", "megapixels_per_s", "peak_mb"])),
        ("Inference speed-up over Johnson et al. (baseline ms / ours ms)", _md_table(report["inference_speedup"], ["ours", "width", "height", "speedup"])),
        (f"Training step (random-weight VGG, data loading excluded, {precision})",
         _md_table(report["training"], ["model", "size", "batch", "ms_per_iteration", "images_per_s", "peak_mb"])),
        ("Training speed-up (baseline step / ours)", _md_table(report["training_speedup"], ["ours", "size", "speedup"])),
        ("Training with data loading included (real loader on the sample photos)",
         _md_table(report["training_with_loader"], ["what", "size", "images_per_s"])),
        ("Data loading: decode + resize + crop on one core", _md_table(report["loader"], ["decoder", "size", "images_per_s"])),
        ("Huge photo: scripts/stylize.py with automatic tiling (peak RSS of the whole process)",
         _md_table(report["huge"], ["width", "height", "seconds", "peak_rss_mb"])),
        ("Tiling: untiled against tiled, noise factor 0 (differences in grey levels of 255)",
         _md_table(report["tiling"], ["width", "height", "tile", "untiled_s", "tiled_s", "ratio", "mean_difference", "max_difference"])),
    ]
    text = "\n\n".join(f"## {title}\n\n{table}" for title, table in sections)
    print(text)
    command = "python scripts/benchmark.py " + " ".join(sys.argv[1:])
    machine_lines = "\n".join(f"- {k}: {v}" for k, v in report["machine"].items())
    profiles = "\n\n".join(f"### {name}, {args.profile_size}x{args.profile_size}\n\n```\n{table}\n```" for name, table in report["profile"].items())
    old = args.markdown.read_text() if args.markdown.exists() else ""
    kept = old[old.index(GENERATORS_SECTION):] if GENERATORS_SECTION in old else ""
    args.markdown.write_text(
        "# Benchmarks\n\nGenerated by `scripts/benchmark.py` (the last section by `scripts/bench_generators.py`); do not edit by hand. "
        f"Regenerate with:\n\n    {command}\n\nMedians of {args.repeats} interleaved repeats. Machine:\n\n{machine_lines}\n\n{text}\n\n"
        f"## Profile before and after (torch.profiler, top ops by self CPU time)\n\n{profiles}\n" + (f"\n{kept}" if kept else ""))
    print(f"wrote {args.json} and {args.markdown}")


if __name__ == "__main__":
    main()
