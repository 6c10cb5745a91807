#!/usr/bin/env python3
"""Plot the front scripts/front.py measured (docs/quality_front.png): quality against training CPU time and inference ms.

Three panels, one colour per configuration: style loss at strength 1 against the training CPU minutes spent at
each saved budget (one thread; the nominal budgets are the ticks), content loss at strength 1 against the same, and style at strength 1 of the largest budget against
ms per 1024x1024 photo. Lower is better on every axis. Pillow only (matplotlib is not a dependency).

Example: python scripts/plot_front.py --front /tmp/front/front.json --output docs/quality_front.png
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a source checkout without installing

from PIL import Image, ImageDraw, ImageFont  # noqa: E402

COLOURS = {"p8": (31, 119, 180), "p16": (44, 160, 44), "j32": (214, 39, 40), "j16": (255, 127, 14)}
"""One per configuration; one trained otherwise (a label with more than its name) gets a colour of OTHERS."""
OTHERS = [(148, 103, 189), (140, 86, 75), (127, 127, 127)]
PANEL = (360, 300)
MARGIN = (58, 28, 16, 40)  # left, top, right, bottom


def colours(names: list[str]) -> dict[str, tuple[int, int, int]]:
    """Each series' colour: the configuration's own, else the next of OTHERS."""
    others = iter(OTHERS)
    return {name: COLOURS[name] if name in COLOURS else next(others) for name in names}


def panel(draw: ImageDraw.ImageDraw, origin: tuple[int, int], title: str, x_label: str,
          series: dict[str, list[tuple[float, float]]], x_range: tuple[float, float], x_ticks: list[float],
          palette: dict[str, tuple[int, int, int]], target: float | None = None) -> None:
    """A linear-axes panel at ``origin``: one line with dots per configuration; y ticks at 0, the middle and the top;
    ``target`` (issue 22's, for the CPU recipe) as a red line."""
    left, top = origin[0] + MARGIN[0], origin[1] + MARGIN[1]
    right, bottom = origin[0] + PANEL[0] - MARGIN[2], origin[1] + PANEL[1] - MARGIN[3]
    draw.rectangle((left, top, right, bottom), outline=(120, 120, 120))
    draw.text((left, origin[1] + 8), title, fill=(0, 0, 0))
    draw.text((left, bottom + 22), x_label, fill=(60, 60, 60))
    ys = [y for points in series.values() for _, y in points]
    if not ys:
        return
    y0, y1 = 0.0, max(ys + [target or 0.0]) * 1.1
    x0, x1 = x_range

    def xy(x: float, y: float) -> tuple[float, float]:
        return left + (x - x0) / (x1 - x0) * (right - left), bottom - (y - y0) / (y1 - y0) * (bottom - top)

    for fraction in (0.0, 0.5, 1.0):
        value = y0 + fraction * (y1 - y0)
        y = xy(x0, value)[1]
        draw.line((left, y, right, y), fill=(230, 230, 230))
        draw.text((origin[0] + 6, y - 6), f"{value:.3g}", fill=(60, 60, 60))
    for tick in x_ticks:
        x = xy(tick, y0)[0]
        draw.line((x, bottom, x, bottom + 4), fill=(120, 120, 120))
        draw.text((x - 8, bottom + 6), f"{tick:g}", fill=(60, 60, 60))
    if target is not None:
        y = xy(x0, target)[1]
        draw.line((left, y, right, y), fill=(220, 60, 60))
        draw.text((right - 70, y - 14), f"target {target:g}", fill=(220, 60, 60))
    for name, points in series.items():
        placed = [xy(x, y) for x, y in sorted(points)]
        if len(placed) > 1:
            draw.line(placed, fill=palette[name], width=2)
        for x, y in placed:
            draw.ellipse((x - 3, y - 3, x + 3, y + 3), fill=palette[name])
        if len(points) == 1:
            draw.text((placed[0][0] + 5, placed[0][1] - 12), name, fill=palette[name])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--front", type=Path, action="append", help="scripts/front.py table's figures, one or more times (default: /tmp/front/front.json).")
    parser.add_argument("--output", type=Path, default=Path("docs/quality_front.png"), help="The plot (default: docs/quality_front.png).")
    parser.add_argument("--leave_out", action="append", default=[], help="A configuration's label to leave out of the plot (a run that collapsed squeezes the others' scale), one or more times (default: none).")
    args = parser.parse_args()
    rows = [row for front in args.front or [Path("/tmp/front/front.json")] for row in json.loads(front.read_text())
            if row["config"] not in args.leave_out]
    configs = list(dict.fromkeys(r["config"] for r in rows))
    palette = colours(configs)
    spent = [r["cpu_minutes"] or r["budget"] for r in rows]
    image = Image.new("RGB", (3 * PANEL[0], PANEL[1] + 20), "white")
    draw = ImageDraw.Draw(image)
    draw.font = ImageFont.load_default(size=12)
    by_budget = (0.0, max(spent + [r["budget"] for r in rows]) * 1.05)
    for index, (key, target) in enumerate((("style_1", 0.09), ("content_1", 0.45))):
        series = {c: [(r["cpu_minutes"] or r["budget"], r[key]) for r in rows if r["config"] == c] for c in configs}
        panel(draw, (index * PANEL[0], 0), f"{key.split('_')[0]} loss at strength 1 (lower: better)",
              "training CPU minutes spent (one thread)", series, by_budget, sorted({r["budget"] for r in rows}), palette, target)
    largest = {c: max((r for r in rows if r["config"] == c), key=lambda r: r["budget"]) for c in configs}
    timed = {c: [(r["ms"], r["style_1"])] for c, r in largest.items() if r.get("ms") is not None}
    if timed:
        ms = [p[0][0] for p in timed.values()]
        panel(draw, (2 * PANEL[0], 0), "style at 1 (largest budget) against inference", "ms per 1024x1024 photo (one thread)",
              timed, (0.0, max(ms) * 1.15), [0.0, round(max(ms) / 2), round(max(ms))], palette)
    left = MARGIN[0]
    for c in configs:
        draw.text((left, PANEL[1] + 4), c, fill=palette[c])
        left += 8 * len(c) + 30
    args.output.parent.mkdir(parents=True, exist_ok=True)
    image.save(args.output)
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
