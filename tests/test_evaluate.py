"""The quality report runs end to end on tiny inputs, and its numbers match a direct computation of the losses."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import numpy as np
from PIL import Image
from torchvision.models.vgg import cfgs, make_layers

from texturenet.config import GeneratorConfig, LossConfig, TrainConfig
from texturenet.io.images import load_rgb, load_style, resize_long_side, to_image, to_tensor
from texturenet.tools.judge import judge
from texturenet.loss.terms import PerceptualLoss
from texturenet.stylize.stylizer import Stylizer
from texturenet.training.loop import Trainer

ROOT = Path(__file__).resolve().parent.parent
ASSETS = ROOT / "texturenet" / "assets"
LAYERS = {"loss_net": "vgg16", "style_layers": ("relu1_1", "relu2_1", "relu3_1"), "content_layers": ("relu3_2",)}


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, dict]:
    folder = tmp_path_factory.mktemp("evaluate")
    # One fixed random VGG in a file: the report and the direct computation must use the same network.
    torch.manual_seed(0)
    weights = folder / "random_vgg16.pth"
    torch.save(make_layers(cfgs["D"]).state_dict(), weights)
    loss = LossConfig(**LAYERS, vgg_weights=str(weights))
    model = Trainer(TrainConfig(
        data_dir=ASSETS / "photos", texture=ASSETS / "style.png", name="tiny", checkpoint_dir=folder, image_size=32,
        style_size=32, batch_size=1, iterations=1, workers=0, save_every=0, val_images=1,
        generator=GeneratorConfig(scales=3, channels=4), loss=loss,
    )).run()
    out = folder / "report"
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "evaluate.py"), "--model", str(model), "--photos", str(ASSETS / "photos"),
         "--output_dir", str(out), "--image_size", "32", "--max_photos", "2", "--iterations", "2,3", "--noise_factors", "0,1",
         "--style_scales", "0.5,2"],
        capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stderr
    return model, out, {"vgg_weights": str(weights), "stdout": result.stdout, **json.loads((out / "results.json").read_text())}


def test_report_has_every_method_a_grid_and_a_curve(report) -> None:
    _model, out, result = report
    methods = ["photo", "feed-forward nf 0", "feed-forward nf 1", "optimisation x0.5 2 it", "optimisation x0.5 3 it",
               "optimisation x2 2 it", "optimisation x2 3 it"]
    assert list(result["means"]) == methods
    assert len(result["rows"]) == 2 * len(methods) and result["photos"] == ["astronaut.jpg", "chelsea.jpg"]
    for method in methods:
        assert f"| {method} |" in result["stdout"]
    assert "| method | style | content | total | colour (Lab SW) | texture (SW) | s / image |" in result["stdout"]
    assert all(row["colour"] > 0 and row["texture"] > 0 for row in result["rows"])  # none of these pictures is the style image
    grid = Image.open(out / "grid.png")
    assert grid.height == 16 + 2 * 128 + 6 and grid.width >= len(methods) * 128  # two rows of 128 px, 6 px apart
    photo = next(r for r in result["rows"] if r["method"] == "photo")
    assert photo["content"] == 0 and photo["seconds"] == 0
    for scale in ("0.5", "2"):
        three = [r for r in result["rows"] if r["method"] == f"optimisation x{scale} 3 it"]
        two = [r for r in result["rows"] if r["method"] == f"optimisation x{scale} 2 it"]
        assert all(b["seconds"] > a["seconds"] > 0 for a, b in zip(two, three))
    curve = Image.open(out / "curve.png").convert("RGB")
    assert curve.size == (720, 460)
    blue = (31, 119, 180)  # the feed-forward series' colour: its points are drawn
    assert any(pixel == blue for pixel in curve.getdata())
    judged = Image.open(out / "judge.png").convert("RGB")  # the second judge's plot: texture against colour distance
    assert judged.size == (720, 460) and any(pixel == blue for pixel in judged.getdata())


def test_report_has_the_blotch_check(report) -> None:
    """The worst instance norm's spike ratio per noise factor (texturenet/tools/artifacts.py), in results.json and the printed table."""
    _model, _out, result = report
    assert list(result["blotches"]) == ["nf 0", "nf 1"] and all(ratio >= 1 for ratio in result["blotches"].values())
    assert "blotch check (worst instance-norm spike ratio" in result["stdout"]


def test_a_higher_style_scale_optimises_towards_the_style(report) -> None:
    """Optimisation's front: the same run with 4x the style weight ends with less style loss (scored under the model's loss)."""
    _model, _out, result = report
    for photo in result["photos"]:
        low, high = (next(r for r in result["rows"] if r["photo"] == photo and r["method"] == f"optimisation x{s} 3 it")
                     for s in ("0.5", "2"))
        assert high["style"] < low["style"]


def test_numbers_match_a_direct_computation(report) -> None:
    model, out, result = report
    loss = PerceptualLoss(LossConfig(**LAYERS, vgg_weights=result["vgg_weights"]))
    style = load_style(ASSETS / "style.png", 32)
    loss.set_style(style)
    stylizer = Stylizer(model, torch.device("cpu"))
    for row in result["rows"]:
        photo = to_tensor(resize_long_side(load_rgb(ASSETS / "photos" / row["photo"]), 32))
        if row["method"] == "photo":
            image = to_tensor(to_image(photo))
        elif row["method"].startswith("feed-forward"):
            image = to_tensor(to_image(stylizer.stylize(photo, float(row["method"].split()[-1]), seed=0)))
        else:  # optimisation: recompute from the written picture
            stem = Path(row["photo"]).stem
            image = to_tensor(load_rgb(out / "images" / f"{stem}__{row['method'].replace(' ', '_')}.png"))
        with torch.no_grad():
            terms = loss(image.unsqueeze(0), loss.content_targets(photo.unsqueeze(0)))
        for key in ("style", "content", "total"):
            assert row[key] == pytest.approx(float(terms[key]), rel=1e-4, abs=1e-12), (row, key)
        judged = judge(image, style[0])  # the second judge, against the style image at the training's style_size
        for key in ("colour", "texture"):
            assert row[key] == pytest.approx(judged[key], rel=1e-4), (row, key)


def test_grid_draws_every_picture_whole_in_columns_as_wide_as_their_widest(tmp_path: Path) -> None:
    """Pictures of different aspect ratios: each tile lies whole and untouched in its box, boxes neither overlap nor touch,
    and each column is exactly as wide as its widest picture (or label), not the widest of all."""
    from texturenet.io.plots import write_grid

    rng = torch.Generator().manual_seed(0)
    sizes = [[(40, 90), (40, 30), (40, 40)], [(40, 20), (40, 70), (40, 41)]]  # (height, width): the widest in another row each
    tiles = [[_quantise(torch.rand(3, h, w, generator=rng)) for h, w in row] for row in sizes]
    labels = ["photo", "a", "b"]
    boxes = write_grid(tiles, labels, tmp_path / "grid.png", height=40, gap=6)
    grid = np.asarray(Image.open(tmp_path / "grid.png").convert("RGB"))
    flat = [box for row in boxes for box in row]
    for row, row_boxes in zip(tiles, boxes):
        for tile, (left, top, right, bottom) in zip(row, row_boxes):
            expected = np.asarray(to_image(tile).resize((tile.shape[2], 40), Image.Resampling.LANCZOS))  # height 40 already
            assert (right - left, bottom - top) == (tile.shape[2], 40)  # whole, aspect kept
            assert np.array_equal(grid[top:bottom, left:right], expected)  # pixel-exact: nothing drawn over it
    for i, a in enumerate(flat):  # no two boxes overlap or touch (a gap of at least one pixel between them)
        for b in flat[i + 1:]:
            assert a[2] < b[0] or b[2] < a[0] or a[3] < b[1] or b[3] < a[1], (a, b)
    lefts = [sorted({row[c][0] for row in boxes}) for c in range(3)]
    assert all(len(x) == 1 for x in lefts)  # columns aligned
    widths = [max(row[c][2] - row[c][0] for row in boxes) for c in range(3)]
    assert widths == [90, 70, 41] and grid.shape[1] == sum(widths) + 2 * 6  # as wide as the widest picture, no wider
    outside = np.ones(grid.shape[:2], bool)
    outside[:16] = False  # the labels
    for left, top, right, bottom in flat:
        outside[top:bottom, left:right] = False
    assert (grid[outside] == 255).all()  # everything else is white: no picture spills out of its box


def _quantise(image: torch.Tensor) -> torch.Tensor:
    return to_tensor(to_image(image))
