"""Quality report: a trained texture network's single pass against per-image optimisation.

Ulyanov et al. 2016 (Sec. 4, Table 1 and Fig. 5) compare the loss a feed-forward generator
reaches with the loss of Gatys et al.'s optimisation and the time each takes. This does the
same on any set of photos under one fixed loss network, the loss settings the model was
trained with (read from its checkpoint):

* the photo itself, a floor (zero content loss, full style loss);
* the generator along its strengths (``--noise_factors``): for a model with the strength dial, the curve of
  style against content loss that one model spans;
* per-image optimisation at several multiples of the style weight, each scored at several
  iteration counts: the front of the style/content trade-off that optimisation reaches;
* optionally the 2019 peer (texturenet/tools/peer.py), trained on the same style elsewhere.

Beside the losses, every picture is scored by a second judge that the loss network does not
define (texturenet/tools/judge.py): the distance of its colours and of its texture statistics to the
style image's, the style image at the size training used (``style_size``). The photo's own
scores are the baseline a stylised picture should beat.

Every image is scored as the 8-bit picture that is written (and shown in the grid), so the
numbers can be recomputed from the saved files. ``curve.png`` plots mean style against mean
content loss for every method, ``judge.png`` the second judge's texture against colour distance.
"""
from __future__ import annotations

import dataclasses
import json
import math
import time
from pathlib import Path
from typing import Any, Callable, Optional

import torch
from PIL import Image
from torch import Tensor
from tqdm import tqdm

from .artifacts import BLOTCHED, blotch_report
from ..model.checkpoint import load_checkpoint, training_losses
from ..config import EvaluateSettings, OptimizeSettings
from ..errors import TexturenetError, printable
from ..io.files import write_atomic
from ..io.images import UnreadableImage, find_images, load_rgb, load_style, resize_long_side, save_image, to_image, to_tensor
from .judge import judge
from ..loss.terms import PerceptualLoss
from .optimize import optimize_image
from ..io.plots import INK, PALETTE, LogChart, write_grid
from ..stylize.stylizer import Stylizer

SCORED = ("style", "content", "tv", "total")
JUDGED = ("colour", "texture")
"""The second judge's columns (tools/judge.py): distances to the style image, not losses of the loss network."""


def _quantised(image: Tensor) -> Tensor:
    """(3, H, W) as the 8-bit picture that is saved."""
    return to_tensor(to_image(image))


def _read_photos(photos: Path, most: int) -> list[tuple[Path, Image.Image]]:
    """The first ``most`` readable photos of ``photos`` (a photo or a folder); an unreadable one is skipped and said."""
    paths = find_images(photos) if photos.is_dir() else [photos] if photos.is_file() else []
    if not paths:
        raise TexturenetError(f"--photos {photos}: no images there; give a photo or a folder of photos")
    read = []
    for path in paths:
        try:
            read.append((path, load_rgb(path)))
        except UnreadableImage as error:
            tqdm.write(f"skipping unreadable image {printable(path)} ({error})")
        if len(read) == most:
            break
    if not read:
        raise TexturenetError(f"--photos {photos}: none of its {len(paths)} image file(s) could be read")
    return read


def evaluate(
    model: Path,
    photos: Path,
    output_dir: Path,
    settings: EvaluateSettings,
    style: Optional[Path] = None,
    vgg_weights: Optional[str] = None,
    device: torch.device = torch.device("cpu"),
) -> dict[str, Any]:
    """Score every method on every photo; write images, ``results.json`` and ``grid.png`` under ``output_dir``."""
    loss_config, trained_style, style_size = training_losses(load_checkpoint(model), model)
    if vgg_weights is not None:  # the loss network the checkpoint names may be elsewhere on this machine
        loss_config = dataclasses.replace(loss_config, vgg_weights=vgg_weights)
    style_path = style or trained_style
    if style_path is None or not Path(style_path).is_file():
        raise TexturenetError(f"style image {style_path} not found; give --style (the image the model was trained on)")
    photos_read = _read_photos(photos, settings.max_photos)
    paths = [path for path, _ in photos_read]
    stylizer = Stylizer(model, device)
    stylizer.generator.config.require_mode("style", "; the quality report compares style-transfer models", subject=str(model))
    loss = PerceptualLoss(loss_config).to(device)
    style_image = load_style(Path(style_path), style_size).to(device)
    loss.set_style(style_image)
    judged_style = style_image[0].cpu()
    for strength in settings.noise_factors:  # before any work: a strength the model was not trained for is refused
        stylizer.check(strength)
    stylizer.stylize(torch.rand(3, 64, 64))  # warm-up: first-call allocations are not the method's time
    peer = None
    if settings.peer is not None:
        from .peer import load_peer

        peer = load_peer(settings.peer, device)
    weighted = {scale: PerceptualLoss(dataclasses.replace(loss_config, style_weight=loss_config.style_weight * scale), loss.network)
                for scale in settings.style_scales}
    for scaled in weighted.values():
        scaled.set_style(style_image)

    rows: list[dict[str, Any]] = []
    tiles: list[list[Tensor]] = []
    for path, image in tqdm(photos_read, desc="photos", unit="img"):
        photo = to_tensor(resize_long_side(image, settings.image_size)).to(device)
        targets = loss.content_targets(photo.unsqueeze(0))
        row: list[Tensor] = []

        def score(method: str, image: Tensor, seconds: float) -> None:
            image = _quantised(image.cpu())
            save_image(image, output_dir / "images" / f"{path.stem}__{method.replace(' ', '_')}.png")
            with torch.no_grad():
                terms = loss(image.unsqueeze(0).to(device), targets)
            rows.append({"photo": path.name, "method": method, "seconds": seconds,
                         **{k: float(terms.get(k, torch.zeros(()))) for k in SCORED}, **judge(image, judged_style)})
            row.append(image)

        score("photo", photo, 0.0)
        for strength in settings.noise_factors:
            score(f"feed-forward nf {strength:g}", *_timed(lambda: stylizer.stylize(photo, strength, settings.seed), device))
        if peer is not None:
            score("peer 2019 nf 1", *_timed(lambda: peer.stylize(photo, 1.0, settings.seed), device))
        wanted = set(settings.iterations)
        for scale, scaled in weighted.items():
            def snapshot(iteration: int, image: Tensor, _terms: dict[str, float], seconds: float) -> None:
                if iteration in wanted:
                    score(f"optimisation x{scale:g} {iteration} it", image[0], seconds)

            optimize_image(
                scaled, OptimizeSettings(iterations=max(wanted), optimizer=settings.optimizer, lr=settings.lr, init="content"),
                photo.unsqueeze(0), every=1, callback=snapshot,
            )
        tiles.append(row)

    methods = list(dict.fromkeys(r["method"] for r in rows))
    means = {m: {k: sum(r[k] for r in rows if r["method"] == m) / len(paths) for k in (*SCORED, *JUDGED, "seconds")} for m in methods}
    result = {"model": str(model), "style": str(style_path), "photos": [p.name for p in paths],
              "image_size": settings.image_size, "device": str(device), "loss": loss_config.__dict__,
              "optimizer": settings.optimizer, "rows": rows, "means": means,
              # the blotch check (tools/artifacts.py): the worst instance norm's spike ratio, above BLOTCHED a model blotches
              "blotches": blotch_report(stylizer.generator, [to_tensor(resize_long_side(image, settings.image_size)).to(device)
                                                             for _, image in photos_read], list(settings.noise_factors), settings.seed)}
    output_dir.mkdir(parents=True, exist_ok=True)
    write_atomic(output_dir / "results.json", lambda file: file.write(json.dumps(result, indent=2, default=list).encode()), "results")
    write_grid(tiles, methods, output_dir / "grid.png")
    write_curve(means, max(wanted), output_dir / "curve.png")
    write_curve(means, max(wanted), output_dir / "judge.png", axes=JUDGE_AXES)
    return result


def _timed(run: Callable[[], Tensor], device: torch.device) -> tuple[Tensor, float]:
    """``run()``'s picture and the seconds it took (the GPU waited for)."""
    start = time.perf_counter()
    output = run()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return output, time.perf_counter() - start


def format_table(result: dict[str, Any]) -> str:
    """Mean losses, the second judge's distances and seconds per image for each method, as a Markdown table."""
    lines = ["| method | style | content | total | colour (Lab SW) | texture (SW) | s / image |", "|---|---|---|---|---|---|---|"]
    for method, m in result["means"].items():
        lines.append(f"| {method} | {m['style']:.4g} | {m['content']:.4g} | {m['total']:.4g} | {m['colour']:.3g} | {m['texture']:.3g} "
                     f"| {m['seconds']:.3g} |")
    if result.get("blotches"):
        lines.append(f"\nblotch check (worst instance-norm spike ratio, above {BLOTCHED:g} the model blotches): "
                     + ", ".join(f"{label} {ratio:.2f}" for label, ratio in result["blotches"].items()))
    return "\n".join(lines)


LOSS_AXES = ("content", "style", "content loss (mean over photos) ->", "style loss (log)")
"""curve.png: (x key, y key, x label, y label)."""
JUDGE_AXES = ("colour", "texture", "colour distance to the style (L*a*b* sliced Wasserstein, mean) ->", "texture distance (log)")
"""judge.png: the second judge's two distances; the photo's point is the baseline, the style itself is at (0, 0)."""


def curve_points(means: dict[str, dict[str, float]], iterations: int, x: str = "content",
                 y: str = "style") -> dict[str, list[tuple[str, float, float]]]:
    """The methods as series of (label, x, y) means (content and style losses unless told): the generator's
    strengths in order, optimisation's front (each style scale after ``iterations``), and the single points (photo, peer)."""
    series: dict[str, list[tuple[str, float, float]]] = {"photo": [], "feed-forward": [], "optimisation": [], "peer 2019": []}
    for method, m in means.items():
        words = method.split()
        if method == "photo":
            series["photo"].append(("photo", m[x], m[y]))
        elif words[0] == "feed-forward":
            series["feed-forward"].append((f"nf {words[-1]}", m[x], m[y]))
        elif words[0] == "optimisation" and int(words[2]) == iterations:
            series["optimisation"].append((words[1], m[x], m[y]))
        elif words[0] == "peer":
            series["peer 2019"].append(("peer", m[x], m[y]))
    return {name: points for name, points in series.items() if points}


_SERIES_COLOURS = {"photo": (110, 110, 110), "feed-forward": PALETTE[0], "optimisation": PALETTE[1], "peer 2019": PALETTE[2]}


def write_curve(means: dict[str, dict[str, float]], iterations: int, path: Path, size: tuple[int, int] = (720, 460),
                axes: tuple[str, str, str, str] = LOSS_AXES) -> None:
    """Mean y (log scale) against mean x, by default style against content loss, a labelled point per method,
    series joined by lines."""
    x_key, y_key, x_label, y_label = axes
    series = curve_points(means, iterations, x_key, y_key)
    points = [(c, s) for values in series.values() for _, c, s in values if s > 0 and math.isfinite(s) and math.isfinite(c)]
    chart = LogChart(size, legend_width=170, bottom_margin=45)
    chart.draw.text((chart.left, chart.bottom + 26), x_label, fill=INK)
    chart.draw.text((8, chart.top - 14), y_label, fill=INK)
    if points:
        c1 = max(c for c, _ in points) * 1.05 or 1.0
        chart.decades(s for _, s in points)

        def x(content: float) -> float:
            return chart.left + content / c1 * (chart.right - chart.left)

        for fraction in (0.0, 0.5, 1.0):
            chart.draw.text((x(fraction * c1) - 10, chart.bottom + 6), f"{fraction * c1:.3g}", fill=INK)
        for n, (name, values) in enumerate(series.items()):
            colour = _SERIES_COLOURS[name]
            placed = [(label, (x(c), chart.y(s))) for label, c, s in values if s > 0]
            if len(placed) > 1:
                chart.draw.line([p for _, p in placed], fill=colour, width=2)
            for label, (px, py) in placed:
                chart.draw.ellipse((px - 3, py - 3, px + 3, py + 3), fill=colour)
                chart.draw.text((px + 5, py - 12), label, fill=colour)
            chart.legend(n, name, colour)
    chart.save(path)
