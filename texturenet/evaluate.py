"""Quality report: a trained texture network's single pass against per-image optimisation.

Ulyanov et al. 2016 (Sec. 4, Table 1 and Fig. 5) compare the loss a feed-forward generator
reaches with the loss of Gatys et al.'s optimisation and the time each takes. This does the
same on any set of photos under one fixed loss network: the loss settings the model was trained
with (read from its checkpoint), the photo itself as a floor (zero content loss, full style
loss), the generator at several noise factors, and optimisation at several iteration counts.

Every image is scored as the 8-bit picture that is written (and shown in the grid), so the
numbers can be recomputed from the saved files.
"""
from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path
from typing import Any, Optional, Sequence

import torch
from PIL import Image, ImageDraw
from torch import Tensor
from tqdm import tqdm

from .checkpoint import load_checkpoint, training_losses
from .config import EvaluateSettings, OptimizeSettings
from .data import UnreadableImage, find_images, load_rgb, load_style, resize_long_side, save_image, save_pil, to_image, to_tensor
from .errors import TexturenetError
from .files import write_atomic
from .losses import PerceptualLoss
from .optimize import optimize_image
from .stylize import Stylizer

SCORED = ("style", "content", "tv", "total")


def _quantised(image: Tensor) -> Tensor:
    """(3, H, W) as the 8-bit picture that is saved."""
    return to_tensor(to_image(image))


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
    paths = find_images(photos) if photos.is_dir() else [photos] if photos.is_file() else []
    if not paths:
        raise TexturenetError(f"--photos {photos}: no images there; give a photo or a folder of photos")
    photos_read = []
    for path in paths:  # an unreadable photo is skipped and counted, like everywhere else
        try:
            photos_read.append((path, load_rgb(path)))
        except UnreadableImage as error:
            tqdm.write(f"skipping unreadable image {path} ({error})")
        if len(photos_read) == settings.max_photos:
            break
    if not photos_read:
        raise TexturenetError(f"--photos {photos}: none of its {len(paths)} image file(s) could be read")
    paths = [path for path, _ in photos_read]
    stylizer = Stylizer(model, device)
    if stylizer.mode != "style":
        raise TexturenetError(f"{model} is a texture model; the quality report compares style-transfer models")
    loss = PerceptualLoss(loss_config).to(device)
    loss.set_style(load_style(Path(style_path), style_size).to(device))
    stylizer.stylize(torch.rand(3, 64, 64))  # warm-up: first-call allocations are not the method's time

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
                         **{k: float(terms.get(k, torch.zeros(()))) for k in SCORED}})
            row.append(image)

        score("photo", photo, 0.0)
        for factor in settings.noise_factors:
            start = time.perf_counter()
            output = stylizer.stylize(photo, factor, settings.seed)
            if device.type == "cuda":
                torch.cuda.synchronize()
            score(f"feed-forward nf {factor:g}", output, time.perf_counter() - start)
        wanted = set(settings.iterations)

        def snapshot(iteration: int, image: Tensor, _terms: dict[str, float], seconds: float) -> None:
            if iteration in wanted:
                score(f"optimisation {iteration} it", image[0], seconds)

        optimize_image(
            loss, OptimizeSettings(iterations=max(wanted), optimizer=settings.optimizer, lr=settings.lr, init="content"),
            photo.unsqueeze(0), every=1, callback=snapshot,
        )
        tiles.append(row)

    methods = list(dict.fromkeys(r["method"] for r in rows))
    means = {m: {k: sum(r[k] for r in rows if r["method"] == m) / len(paths) for k in (*SCORED, "seconds")} for m in methods}
    result = {"model": str(model), "style": str(style_path), "photos": [p.name for p in paths],
              "image_size": settings.image_size, "device": str(device), "loss": loss_config.__dict__,
              "optimizer": settings.optimizer, "rows": rows, "means": means}
    output_dir.mkdir(parents=True, exist_ok=True)
    write_atomic(output_dir / "results.json", lambda file: file.write(json.dumps(result, indent=2, default=list).encode()), "results")
    write_grid(tiles, methods, output_dir / "grid.png")
    return result


def format_table(result: dict[str, Any]) -> str:
    """Mean losses and seconds per image for each method, as a Markdown table."""
    lines = ["| method | style | content | total | s / image |", "|---|---|---|---|---|"]
    for method, m in result["means"].items():
        lines.append(f"| {method} | {m['style']:.4g} | {m['content']:.4g} | {m['total']:.4g} | {m['seconds']:.3g} |")
    return "\n".join(lines)


def write_grid(tiles: Sequence[Sequence[Tensor]], labels: Sequence[str], path: Path, height: int = 128) -> None:
    """Rows: photos; columns: methods; each tile scaled to ``height`` pixels, labels on top."""
    images = [[to_image(t) for t in row] for row in tiles]
    width = max(round(im.width * height / im.height) for row in images for im in row)
    header = 16
    grid = Image.new("RGB", (width * len(labels), header + height * len(images)), "white")
    draw = ImageDraw.Draw(grid)
    for column, label in enumerate(labels):
        draw.text((column * width + 3, 2), label, fill="black")
    for r, row in enumerate(images):
        for column, image in enumerate(row):
            tile = image.resize((round(image.width * height / image.height), height), Image.Resampling.LANCZOS)
            grid.paste(tile, (column * width, header + r * height))
    save_pil(grid, path)
