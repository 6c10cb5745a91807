"""The one ``texturenet`` command (``python -m texturenet``): its subcommand list, the aliases, ``info``, ``--json``, help texts."""
from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import ROOT, TINY, run_script
from test_scripts import assert_clean_error, entry_points
from texturenet.cli.command import SUBCOMMANDS, main
from texturenet.config import VISDOM_PORT

ASSETS = ROOT / "texturenet" / "assets"


def texturenet(*args: object, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """``python -m texturenet ARGS`` as a user runs it."""
    environment = dict(os.environ, PYTHONUNBUFFERED="1", **(env or {}))
    if not env or "TEXTURENET_VGG_WEIGHTS" not in env:
        environment.pop("TEXTURENET_VGG_WEIGHTS", None)
    return subprocess.run([sys.executable, "-m", "texturenet", *map(str, args)], capture_output=True, text=True, timeout=300,
                          cwd=ROOT, env=environment)


def help_of(capsys: pytest.CaptureFixture[str], run, *argv: str) -> str:
    with pytest.raises(SystemExit) as exited:
        run(list(argv))
    assert exited.value.code == 0
    return capsys.readouterr().out


def test_help_lists_every_subcommand_a_line_each() -> None:
    result = texturenet("--help")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    for name, subcommand in SUBCOMMANDS.items():
        assert any(line.split() == [name, *subcommand.summary.split()] for line in lines), (name, result.stdout)
    assert list(SUBCOMMANDS) == ["train", "stylize", "optimize", "evaluate", "export", "diversity", "gui", "visdom", "info"]


def test_a_missing_or_unknown_subcommand_is_one_line_and_exit_2() -> None:
    for args, phrase in (((), "the following arguments are required: COMMAND"), (("trian",), "invalid choice: 'trian'")):
        result = texturenet(*args)
        assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
        assert result.stderr.splitlines()[-1].startswith("texturenet: error: ") and phrase in result.stderr, result.stderr


def test_every_subcommand_is_its_alias(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """``texturenet SUB --help`` is ``texturenet-SUB --help`` but for the name; setup.cfg installs both, to the same function."""
    monkeypatch.setenv("COLUMNS", "100")
    installed = entry_points()
    assert installed["texturenet"] == "texturenet.cli.command:main"
    for name, subcommand in SUBCOMMANDS.items():
        text = help_of(capsys, main, name, "--help")
        assert text.startswith(f"usage: texturenet {name} "), text
        if name == "info":
            continue
        assert installed[f"texturenet-{name}"] == subcommand.entry, name
        module, function = subcommand.entry.split(":")
        alias = help_of(capsys, getattr(importlib.import_module(module), function), "--help")
        # the usage lines wrap at the name's width; the rest is the same text
        assert " ".join(text.split()).replace(f"texturenet {name}", f"texturenet-{name}") == " ".join(alias.split()), name


def test_help_texts_say_what_they_mean(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """No reST double backticks in any --help; the GUI names Visdom's port as a number; --noise_factor leads with the strength."""
    monkeypatch.setenv("COLUMNS", "100")
    helps = {name: help_of(capsys, main, name, "--help") for name in SUBCOMMANDS}
    helps[""] = help_of(capsys, main, "--help")
    for name, text in helps.items():
        assert "``" not in text, (name, [line for line in text.splitlines() if "``" in line])
        assert max(map(len, text.splitlines())) <= 100, name
    port = " ".join(helps["gui"].split("\n  --port PORT")[1].split("\n  --checkpoint_dir")[0].split())
    assert f"Visdom's default is {VISDOM_PORT}" in port and "VISDOM_PORT" not in helps["gui"], port
    for name in ("stylize", "diversity"):
        noise = " ".join(helps[name].split("--noise_factor NOISE_FACTOR")[-1].split("--")[0].split())
        assert "style strength" in noise[:60] and noise.index("strength") < noise.index("noise input"), (name, noise)


def test_info_reports_versions_devices_and_weights(tmp_path: Path) -> None:
    weights = tmp_path / "vgg16.pth"
    weights.write_bytes(b"weights")
    result = texturenet("info", "--json", env={"TEXTURENET_VGG_WEIGHTS": str(weights), "TORCH_HOME": str(tmp_path / "hub")})
    assert result.returncode == 0, result.stderr
    [line] = result.stdout.splitlines()
    facts = json.loads(line)
    import torch
    import torchvision

    import texturenet as package

    assert facts["versions"]["texturenet"] == package.__version__ and facts["versions"]["torch"] == torch.__version__
    assert facts["versions"]["torchvision"] == torchvision.__version__ and facts["versions"]["python"] == ".".join(map(str, sys.version_info[:3]))
    assert len(facts["devices"]["cuda"]) == torch.cuda.device_count() and isinstance(facts["devices"]["mps"], bool)
    assert facts["weights"]["environment"] == {"variable": "TEXTURENET_VGG_WEIGHTS", "value": str(weights), "exists": True}
    assert facts["weights"]["torch_hub"] == str(tmp_path / "hub" / "hub")
    assert [entry["loss_net"] for entry in facts["weights"]["imagenet"]] == ["vgg19", "vgg16"]
    assert all(entry["path"].startswith(str(tmp_path / "hub" / "hub" / "checkpoints")) and entry["exists"] is False
               for entry in facts["weights"]["imagenet"])
    human = texturenet("info", env={"TORCH_HOME": str(tmp_path / "hub")})
    assert human.returncode == 0 and "TEXTURENET_VGG_WEIGHTS: not set" in human.stdout, human.stdout
    assert str(tmp_path / "hub" / "hub" / "checkpoints" / "vgg19-dcbb9e9d.pth") in human.stdout


@pytest.fixture(scope="module")
def style_model(photos: Path, style_image: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("ck")
    result = texturenet("train", *TINY, "--data_dir", photos, "--texture", style_image, "--checkpoint_dir", out, "--iterations", 2,
                        "--name", "glass")
    assert result.returncode == 0, result.stderr
    assert f"saved {out / 'glass.pth'}" in result.stdout
    return out / "glass.pth"


def test_stylize_json_prints_one_object_per_picture(style_model: Path, tmp_path: Path) -> None:
    folder = tmp_path / "in"
    (folder / "sub").mkdir(parents=True)
    rng = np.random.default_rng(0)
    for name, (height, width) in (("a.png", (40, 52)), ("sub/b.jpg", (36, 30)), ("c.png", (40, 52))):
        Image.fromarray(rng.integers(0, 255, (height, width, 3), dtype=np.uint8)).save(folder / name)
    (folder / "broken.png").write_bytes(b"not an image")
    result = texturenet("stylize", "--model", style_model, "--input", folder, "--output", tmp_path / "out", "--noise_factor", 0.5,
                        "--json")
    assert result.returncode == 0, result.stderr
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert sorted(r["input"] for r in records) == sorted(str(folder / n) for n in ("a.png", "c.png", "sub/b.jpg"))
    for record in records:
        assert set(record) == {"input", "output", "strength", "size", "seconds"} and record["strength"] == 0.5
        output = Path(record["output"])
        assert output == tmp_path / "out" / Path(record["input"]).relative_to(folder)
        assert list(Image.open(output).size) == record["size"] == list(Image.open(record["input"]).size)
        assert record["seconds"] > 0
    assert "skipping unreadable image" in result.stderr and "wrote 3 images" in result.stderr  # the human lines, on stderr
    plain = texturenet("stylize", "--model", style_model, "--input", folder / "a.png", "--output", tmp_path / "a.png")
    assert plain.returncode == 0 and plain.stdout == f"wrote {tmp_path / 'a.png'}\n", plain.stdout  # unchanged without --json


def test_evaluate_json_prints_the_scores(style_model: Path, style_image: Path, tmp_path: Path) -> None:
    result = texturenet("evaluate", "--model", style_model, "--photos", ASSETS / "photos", "--output_dir", tmp_path / "report",
                        "--style", style_image, "--vgg_weights", "random", "--image_size", 32, "--max_photos", 1, "--iterations", 1,
                        "--noise_factors", "0,1", "--style_scales", 1, "--json")
    assert result.returncode == 0, result.stderr
    [line] = result.stdout.splitlines()
    scores = json.loads(line)
    assert list(scores["means"]) == ["photo", "feed-forward nf 0", "feed-forward nf 1", "optimisation x1 1 it"]
    assert scores["rows"] == json.loads((tmp_path / "report" / "results.json").read_text())["rows"]
    assert "| method | style |" in result.stderr  # the table, for a person, on stderr


def test_bad_input_through_the_subcommand_is_one_line_exit_2(tmp_path: Path, style_image: Path) -> None:
    result = texturenet("stylize", "--model", tmp_path / "missing.pth", "--input", style_image, "--output", tmp_path / "o.png")
    assert result.returncode == 2
    assert_clean_error(result, "texturenet stylize: error: ")
    assert "no such checkpoint" in result.stderr
    alias = run_script("stylize.py", "--model", tmp_path / "missing.pth", "--input", style_image, "--output", tmp_path / "o.png")
    assert alias.returncode == 2 and alias.stderr.replace("texturenet-stylize", "texturenet stylize") == result.stderr
