"""Training in-process: the loss goes down, checkpoints round-trip, resume equals an uninterrupted run."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from PIL import Image

from texturenet.model.noise import IndependentNoise
from texturenet.model.checkpoint import load_checkpoint, load_generator
from texturenet.cli.arguments import train_config
from texturenet.cli.parsers import train_parser
from texturenet.config import TrainConfig
from texturenet.errors import TexturenetError
from texturenet.stylize.stylizer import Stylizer
from texturenet.training.loop import Trainer

from conftest import ROOT, TINY

pytestmark = pytest.mark.filterwarnings("ignore:the loss network has random weights")


def config(*args: object) -> TrainConfig:
    """A config exactly as the command line builds it."""
    return train_config(train_parser().parse_args([*TINY, *map(str, args)]))


def test_twenty_iterations_lower_the_loss(photos: Path, style_image: Path, tmp_path: Path) -> None:
    trainer = Trainer(config("--data_dir", photos, "--texture", style_image, "--checkpoint_dir", tmp_path,
                             "--iterations", 20, "--log_every", 1, "--lr", "1e-2"))
    trainer.run()
    totals = [h["total"] for h in trainer.history]
    assert len(totals) == 20
    assert sum(totals[-4:]) / 4 < 0.7 * sum(totals[:4]) / 4, totals


def test_checkpoint_round_trip(photos: Path, style_image: Path, tmp_path: Path) -> None:
    final = Trainer(config("--data_dir", photos, "--texture", style_image, "--checkpoint_dir", tmp_path,
                           "--iterations", 3, "--name", "glass")).run()
    assert final == tmp_path / "glass.pth"
    raw = torch.load(final, weights_only=True)  # plain data: loads without unpickling code
    assert raw["format"] == "texturenet" and raw["iteration"] == 3 and raw["generator_config"]["scales"] == 3
    generator = load_generator(final)
    for key, value in raw["state_dict"].items():
        assert torch.equal(generator.state_dict()[key], value)
    photo = torch.rand(3, 45, 61)
    stylizer = Stylizer(final, torch.device("cpu"))
    a, b = stylizer.stylize(photo, seed=5), stylizer.stylize(photo, seed=5)
    assert torch.equal(a, b) and a.shape == photo.shape
    assert not torch.equal(a, stylizer.stylize(photo, seed=6))
    with torch.no_grad():
        direct = generator(photo[None], noise=IndependentNoise(torch.Generator().manual_seed(5)))[0].clamp(0, 1)
    assert torch.allclose(a, direct, atol=1e-3)  # Stylizer runs the fast inference path (texturenet/model/fused.py)
    for picture in ("glass_samples.png", "glass_loss.png", "glass_losses.csv"):
        assert (tmp_path / picture).stat().st_size > 0


@pytest.mark.parametrize("mode", ["style", "texture"])
def test_resume_reaches_the_same_weights_as_an_uninterrupted_run(photos: Path, style_image: Path, tmp_path: Path, mode: str) -> None:
    common = ["--texture", style_image, "--iterations", 6, "--save_every", 3, "--mode", mode, "--lr", "1e-2"]
    if mode == "style":
        common += ["--data_dir", photos]
    whole = Trainer(config(*common, "--checkpoint_dir", tmp_path / "whole")).run()
    halfway = tmp_path / "whole" / "glass_iter3.pth"
    resumed = Trainer(config(*common, "--checkpoint_dir", tmp_path / "resumed", "--resume", halfway)).run()
    a, b = load_checkpoint(whole), load_checkpoint(resumed)
    assert b["iteration"] == 6
    for key in a["state_dict"]:
        assert torch.allclose(a["state_dict"][key], b["state_dict"][key], atol=1e-6), key
    # and it did continue: the weights moved after iteration 3
    c = load_checkpoint(halfway)
    assert any(not torch.equal(c["state_dict"][k], b["state_dict"][k]) for k in c["state_dict"])
    assert [h["iteration"] for h in b["train_state"]["history"]] == [h["iteration"] for h in a["train_state"]["history"]]


def test_resume_auto_and_mismatches(photos: Path, style_image: Path, tmp_path: Path) -> None:
    base = ["--data_dir", photos, "--texture", style_image, "--checkpoint_dir", tmp_path, "--iterations", 4, "--save_every", 2]
    Trainer(config(*base)).run()
    assert Trainer(config(*base, "--iterations", 6, "--resume", "auto")).resume_from == tmp_path / "glass.pth"
    with pytest.raises(TexturenetError, match="channels 8 .checkpoint. vs 6 .now."):
        Trainer(config(*base, "--channels", 6, "--resume", tmp_path / "glass_iter2.pth")).run()
    other = tmp_path / "other.png"
    Image.new("RGB", (40, 40), (200, 10, 10)).save(other)
    with pytest.raises(TexturenetError, match="different --texture"):
        Trainer(config(*base, "--texture", other, "--name", "glass", "--resume", tmp_path / "glass_iter2.pth")).run()


def test_bundled_demo_on_cpu_is_short_and_ends_with_a_stylised_photo(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    """No --data_dir, --texture or --cuda: CPU_DEMO's settings, except those given; then a stylised bundled photo."""
    from texturenet.cli import train_main
    from texturenet.config import CPU_DEMO

    train_main(["--vgg_weights", "random", "--scales", "3", "--workers", "0", "--style_layers", "relu1_1,relu2_1",
                "--content_layers", "relu2_1", "--image_size", "32", "--iterations", "2", "--checkpoint_dir", str(tmp_path)])
    out = capsys.readouterr().out
    assert (f"--batch_size {CPU_DEMO['batch_size']}, --save_every {CPU_DEMO['save_every']}, --max_strength {CPU_DEMO['max_strength']}, "
            f"--lr {CPU_DEMO['lr']}; give them to choose otherwise") in out
    saved = load_checkpoint(tmp_path / "style.pth")
    assert saved["generator_config"]["max_strength"] == CPU_DEMO["max_strength"] == 1
    assert saved["train_state"]["config"]["lr"] == CPU_DEMO["lr"] == 1e-2
    assert "--iterations" not in out.splitlines()[0] and f"2 iterations x {CPU_DEMO['batch_size']}" in out  # explicit flags win
    picture = tmp_path / "style_chelsea.jpg"
    assert f"model: {tmp_path / 'style.pth'}\nstylised bundled photo chelsea.jpg: {picture}" in out
    assert Image.open(picture).size == Image.open(Path(__file__).resolve().parent.parent / "texturenet/assets/photos/chelsea.jpg").size



def test_the_cpu_demo_keeps_johnsons_learning_rate(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    """The demo's lr (1e-2) is the pyramid's; johnson collapsed at it on the front, so with --generator johnson the
    demo leaves --lr at TrainConfig's default and does not list it among the CPU settings."""
    from texturenet.cli import train_main
    from texturenet.config import TrainConfig

    train_main(["--vgg_weights", "random", "--generator", "johnson", "--channels", "8", "--workers", "0", "--style_layers",
                "relu1_1,relu2_1", "--content_layers", "relu2_1", "--image_size", "32", "--iterations", "1",
                "--checkpoint_dir", str(tmp_path)])
    first = capsys.readouterr().out.splitlines()[0]
    assert first.startswith("sized for the CPU, the CPU demo") and "--max_strength" in first and "--lr" not in first
    assert load_checkpoint(tmp_path / "style.pth")["train_state"]["config"]["lr"] == TrainConfig.lr == 1e-3

def test_a_texture_run_on_cpu_is_sized_for_it_and_help_says_so(tmp_path: Path, style_image: Path) -> None:
    """--mode texture without --cuda: CPU_TEXTURE's settings except those given, printed; --help shows every CPU default."""
    from texturenet.config import CPU_DEMO, CPU_TEXTURE

    at = TINY.index("--image_size")
    flags = TINY[:at] + TINY[at + 2:]  # the crop size left to the CPU sizing
    result = subprocess.run([sys.executable, str(ROOT / "scripts" / "train.py"), "--mode", "texture", "--texture", str(style_image),
                             "--checkpoint_dir", str(tmp_path), "--iterations", "1", *flags], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert (f"sized for the CPU, a CPU texture run (--mode texture, no --cuda): --image_size {CPU_TEXTURE['image_size']}, "
            f"--save_every {CPU_TEXTURE['save_every']}; give them to choose otherwise") in result.stdout.splitlines()[0]
    config = load_checkpoint(tmp_path / "glass.pth")["train_state"]["config"]
    assert (config["iterations"], config["image_size"], config["batch_size"]) == (1, CPU_TEXTURE["image_size"], 2)  # given flags win
    help_text = " ".join(subprocess.run([sys.executable, str(ROOT / "scripts" / "train.py"), "--help"],
                                        capture_output=True, text=True, timeout=60).stdout.split())
    for name in {*CPU_DEMO, *CPU_TEXTURE}:  # the generator's max_strength shows its rule, the others TrainConfig's default
        default = ("2 for style with instance norm, else 0" if name == "max_strength"
                   else TrainConfig.__dataclass_fields__[name].default)
        shown = f"(default: {default}; " + ", ".join(
            f"{sizing[name]} in {run}" for sizing, run in ((CPU_DEMO, "the CPU demo (no --data_dir, --texture or --cuda)"),
                                                            (CPU_TEXTURE, "a CPU texture run (--mode texture, no --cuda)")) if name in sizing)
        assert shown + ")" in help_text, name


def test_progress_reaches_a_supervisor_as_json_lines(tmp_path: Path, photos: Path, style_image: Path) -> None:
    """TEXTURENET_EVENTS_FD (what the GUI sets): the Monitor protocol as JSON lines, ending on the final checkpoint."""
    events, child_end = os.pipe()
    command = [sys.executable, str(ROOT / "scripts" / "train.py"), "--data_dir", photos, "--texture", style_image,
               "--checkpoint_dir", tmp_path, "--name", "piped", "--iterations", "4", "--log_every", "2", "--save_every", "2", *TINY]
    process = subprocess.Popen(list(map(str, command)), env=dict(os.environ, TEXTURENET_EVENTS_FD=str(child_end)),
                               pass_fds=(child_end,), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    os.close(child_end)
    with open(events, encoding="utf-8") as stream:
        received = [json.loads(line) for line in stream]
    assert process.wait(timeout=300) == 0, process.stderr.read()
    kinds = [event["event"] for event in received]
    assert kinds[0] == "start" and received[0] == {"event": "start", "name": "piped", "iterations": 4}
    assert [e["iteration"] for e in received if e["event"] == "log"] == [2, 4]
    assert [(e["iteration"], Path(e["path"]).name) for e in received if e["event"] == "checkpoint"] == [(2, "piped_iter2.pth"), (4, "piped.pth")]
    assert kinds[-1] == "close"
    assert {"total", "style", "content"} <= set(next(e for e in received if e["event"] == "log")["losses"])


def test_a_bad_events_descriptor_is_one_clear_line(tmp_path: Path, photos: Path, style_image: Path) -> None:
    result = subprocess.run([sys.executable, str(ROOT / "scripts" / "train.py"), "--data_dir", str(photos), "--texture", str(style_image),
                             "--checkpoint_dir", str(tmp_path), "--iterations", "1", *TINY],
                            env=dict(os.environ, TEXTURENET_EVENTS_FD="987"), capture_output=True, text=True, timeout=300)
    assert result.returncode != 0 and "Traceback" not in result.stderr
    assert "TEXTURENET_EVENTS_FD='987' is not an open file descriptor" in result.stderr and "unset it" in result.stderr
