"""Bad input to every script, one table: each row says what must happen.

Outcomes: ``("error", phrase)``: exit status 2, one error line on stderr containing ``phrase``
(below argparse's usage for flag errors), no traceback. ``("skip", None)``: the file is skipped and counted, the run goes on. ``("ok",
None)``: the file is used. Every bad file is made here, in tmp_path.

Rows run in-process through the real entry points (``cli.train_main`` / ``cli.stylize_main``,
what ``scripts/*.py`` call), so a traceback would fail the test as an uncaught exception;
one row per script also runs the script as a real subprocess. About 60 s on 2 shared cores (over 2 min when they are loaded).
"""
from __future__ import annotations

import io
import os
import pickle
import struct
import subprocess
import sys
import zlib
from pathlib import Path
from typing import Callable

import numpy as np
import pytest
import torch
from PIL import Image

from texturenet import cli
from texturenet.checkpoint import make_checkpoint, save_atomic
from texturenet.config import GeneratorConfig
from texturenet.data import load_rgb
from texturenet.generator import PyramidGenerator
from conftest import ROOT

TINY = ["--vgg_weights", "random", "--image_size", "32", "--style_size", "32", "--scales", "3", "--channels", "4",
        "--iterations", "2", "--workers", "0", "--val_images", "0", "--save_every", "0",
        "--style_layers", "relu1_1,relu2_1", "--content_layers", "relu2_1"]
PHOTO = ROOT / "texturenet" / "assets" / "photos" / "chelsea.jpg"


# -- bad files, made here ---------------------------------------------------------------------

def _photo(size: tuple[int, int] = (48, 40)) -> Image.Image:
    return Image.open(PHOTO).convert("RGB").resize(size)


def _png_header(width: int, height: int) -> bytes:
    """A PNG that claims width x height but holds almost no data: a decompression-bomb header."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")


def _jpeg_bytes(image: Image.Image, **kwargs) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", **kwargs)
    return buffer.getvalue()


def _exif_rotated(path: Path) -> None:
    """Stored 48 wide x 40 high, left half red; EXIF orientation 6: shown rotated 90 degrees clockwise."""
    array = np.zeros((40, 48, 3), np.uint8)
    array[:, :24] = (255, 0, 0)
    array[:, 24:] = (0, 0, 255)
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.fromarray(array).save(path, exif=exif, quality=95)


def _make(folder: Path, kind: str) -> Path:
    """Create the bad (or awkward but valid) input ``kind`` in ``folder``; returns its path."""
    folder.mkdir(parents=True, exist_ok=True)
    if kind == "truncated_jpeg":
        path = folder / "truncated.jpg"
        path.write_bytes(_jpeg_bytes(_photo())[:300])
    elif kind == "text_named_jpg":
        path = folder / "notes.jpg"
        path.write_text("this is not an image\n")
    elif kind == "zero_bytes":
        path = folder / "empty.png"
        path.write_bytes(b"")
    elif kind == "one_pixel":
        path = folder / "dot.png"
        Image.new("RGB", (1, 1), (10, 200, 30)).save(path)
    elif kind == "png_16bit":
        path = folder / "deep.png"
        Image.fromarray((np.arange(48 * 40).reshape(40, 48) * 30).astype(np.uint16)).save(path)
    elif kind == "cmyk_jpeg":
        path = folder / "print.jpg"
        path.write_bytes(_jpeg_bytes(_photo().convert("CMYK")))
    elif kind == "palette_gif":
        path = folder / "anim.gif"
        _photo().convert("P", palette=Image.Palette.ADAPTIVE).save(path)
    elif kind == "png_alpha":
        path = folder / "cutout.png"
        image = _photo().convert("RGBA")
        image.putalpha(128)
        image.save(path)
    elif kind == "exif_rotated":
        path = folder / "phone.jpg"
        _exif_rotated(path)
    elif kind == "bomb_header":
        path = folder / "bomb.png"
        path.write_bytes(_png_header(20000, 20000))
    elif kind == "non_utf8_name":
        path = Path(os.fsdecode(os.fsencode(folder) + b"/caf\xe9.jpg"))
        _photo().save(path)
    elif kind == "non_utf8_name_unreadable":
        path = Path(os.fsdecode(os.fsencode(folder) + b"/bad\xff.jpg"))
        path.write_bytes(b"\xff\xd8 not really")
    elif kind == "symlink_loop":
        path = folder / "loop.jpg"
        (folder / "loop").symlink_to(folder, target_is_directory=True)  # a folder that contains itself
        path.symlink_to(folder / "loop2.jpg")
        (folder / "loop2.jpg").symlink_to(path)  # a file link cycle
    elif kind == "directory_named_jpg":
        path = folder / "album.jpg"
        path.mkdir()
    else:
        raise ValueError(kind)
    return path


# What training does with each file among good photos (skip-and-count or use), and what
# stylising that one file does (error or a picture of the right size).
FILES = {
    "truncated_jpeg": ("skip", ("error", "not a readable image")),
    "text_named_jpg": ("skip", ("error", "not a readable image")),
    "zero_bytes": ("skip", ("error", "not a readable image")),
    "one_pixel": ("ok", ("ok", (1, 1))),
    "png_16bit": ("ok", ("ok", (48, 40))),
    "cmyk_jpeg": ("ok", ("ok", (48, 40))),
    "palette_gif": ("ok", ("ok", (48, 40))),
    "png_alpha": ("ok", ("ok", (48, 40))),
    "exif_rotated": ("ok", ("ok", (40, 48))),  # upright: 40 wide, 48 high
    "bomb_header": ("skip", ("error", "DecompressionBombError")),
    "non_utf8_name": ("ok", ("ok", (48, 40))),
    "non_utf8_name_unreadable": ("skip", ("error", "not a readable image")),
    "symlink_loop": ("absent", ("error", "no such file or folder")),
    "directory_named_jpg": ("absent", ("error", "holds no images")),
}


# -- running the entry points -----------------------------------------------------------------

def _call(main: Callable, argv: list[str], capsys: pytest.CaptureFixture) -> tuple[int, str, str]:
    """Run an entry point in-process: (exit status, stdout, stderr). Any other exception fails the test."""
    try:
        main([str(a) for a in argv])
        status = 0
    except SystemExit as stop:
        status = stop.code if isinstance(stop.code, int) else 1
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def _assert_one_line_error(status: int, err: str, phrase: str) -> None:
    """Exit 2 and one error line (argparse puts its usage lines above it), no traceback."""
    lines = [line for line in err.splitlines() if "error:" in line]
    assert status == 2, err
    assert len(lines) == 1 and phrase in lines[0], err
    assert "Traceback" not in err


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny style checkpoint (untrained weights are enough for error handling)."""
    torch.manual_seed(0)
    generator = PyramidGenerator(GeneratorConfig(scales=3, channels=4))
    path = tmp_path_factory.mktemp("model") / "tiny.pth"
    save_atomic(make_checkpoint(generator, "tiny", 0), path)
    return path


class _Payload:
    """Unpickling this would run code (it creates a marker file); weights_only loading must refuse."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def _bad_checkpoint(folder: Path, kind: str, model: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{kind}.pth"
    if kind == "pickle_with_code":
        with open(path, "wb") as file:
            torch.save({"format": "texturenet", "payload": _Payload(folder / "pwned")}, file)
    elif kind == "truncated":
        path.write_bytes(model.read_bytes()[:1000])
    elif kind == "plain_pickle":
        path.write_bytes(pickle.dumps({"format": "texturenet"}))
    return path


# -- the table ----------------------------------------------------------------------------------

@pytest.mark.parametrize("kind", sorted(FILES))
def test_load_rgb_decodes_or_refuses(tmp_path: Path, kind: str) -> None:
    path = _make(tmp_path, kind)
    training, _ = FILES[kind]
    if training == "ok":
        image = load_rgb(path)
        assert image.mode == "RGB"
        if kind == "exif_rotated":  # upright: red on top, blue below
            array = np.asarray(image)
            assert image.size == (40, 48)
            assert array[5, 20, 0] > 200 and array[5, 20, 2] < 60 and array[-5, 20, 2] > 200 and array[-5, 20, 0] < 60
    elif training == "skip":
        with pytest.raises((OSError, ValueError, SyntaxError, Image.DecompressionBombError)):
            load_rgb(path)


def test_training_skips_and_counts_bad_files_and_uses_the_rest(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    data = tmp_path / "data"
    data.mkdir()
    for name in ("astronaut", "coffee"):
        _photo().save(data / f"{name}.jpg")
    made = {kind: _make(data, kind) for kind in FILES}
    images = len([k for k, (t, _) in FILES.items() if t != "absent"]) + 2
    # One epoch in one batch: every file is read exactly once.
    status, out, err = _call(cli.train_main, [*TINY, "--iterations", "1", "--batch_size", images, "--data_dir", data,
                                              "--checkpoint_dir", tmp_path / "ckpt"], capsys)
    assert status == 0, err
    assert f"{images} photos from" in out
    skipped = [k for k, (t, _) in FILES.items() if t == "skip"]
    for kind, (training, _) in FILES.items():
        mentioned = f"skipping unreadable image {made[kind]}".encode("utf-8", "backslashreplace").decode() in out.encode("utf-8", "backslashreplace").decode()
        assert mentioned == (training == "skip"), (kind, out)
    assert f"skipped {len(skipped)} unreadable image file(s) in total" in out
    assert (tmp_path / "ckpt" / "style.pth").is_file()


@pytest.mark.parametrize("kind", sorted(FILES))
def test_stylize_one_file(tmp_path: Path, capsys: pytest.CaptureFixture, model: Path, kind: str) -> None:
    path = _make(tmp_path / "in", kind)
    output = tmp_path / "out.png"
    status, out, err = _call(cli.stylize_main, ["--model", model, "--input", path, "--output", output], capsys)
    outcome, detail = FILES[kind][1]
    if outcome == "error":
        _assert_one_line_error(status, err, detail)
        assert not output.exists()
    else:
        assert status == 0, err
        assert Image.open(output).size == detail


def test_stylize_folder_skips_and_counts(tmp_path: Path, capsys: pytest.CaptureFixture, model: Path) -> None:
    source = tmp_path / "in"
    made = {kind: _make(source, kind) for kind in FILES}
    status, out, err = _call(cli.stylize_main, ["--model", model, "--input", source, "--output", tmp_path / "out"], capsys)
    assert status == 0, err
    for kind, path in made.items():
        written = (tmp_path / "out" / path.relative_to(source)).is_file()
        assert written == (FILES[kind][0] == "ok"), kind
    skipped = sum(1 for t, _ in FILES.values() if t == "skip")
    assert f"skipped {skipped} unreadable file(s)" in out + err


TRAIN_ERRORS = [
    (["--image_size", "0"], "image_size must be at least 1"),
    (["--image_size", "-32"], "image_size must be at least 1"),
    (["--batch_size", "0"], "batch_size must be at least 1"),
    (["--iterations", "-1"], "iterations must be at least 1"),
    (["--workers", "-2"], "workers must be >= 0"),
    (["--style_size", "0"], "style_size must be at least 1"),
    (["--scales", "0"], "scales must be at least 1"),
    (["--channels", "-1"], "channels must be at least 1"),
    (["--save_every", "-5"], "save_every must be >= 0"),
    (["--lr", "nan"], "expected a finite number"),
    (["--style_weight", "nan"], "expected a finite number"),
    (["--image_size", "abc"], "invalid int value"),
]


@pytest.mark.parametrize("argv,phrase", TRAIN_ERRORS, ids=[" ".join(a) for a, _ in TRAIN_ERRORS])
def test_train_refuses_bad_numbers(tmp_path: Path, capsys: pytest.CaptureFixture, argv: list[str], phrase: str) -> None:
    status, _, err = _call(cli.train_main, [*TINY, "--checkpoint_dir", tmp_path, *argv], capsys)
    _assert_one_line_error(status, err, phrase)
    assert not list(tmp_path.glob("*.pth"))


@pytest.mark.parametrize("kind,phrase", [
    ("truncated_jpeg", "is not a readable image"), ("text_named_jpg", "is not a readable image"),
    ("zero_bytes", "is not a readable image"), ("bomb_header", "is not a readable image"),
    ("directory_named_jpg", "no such file"), ("symlink_loop", "no such file"),
])
def test_train_refuses_bad_texture(tmp_path: Path, capsys: pytest.CaptureFixture, kind: str, phrase: str) -> None:
    texture = _make(tmp_path / "styles", kind)
    status, _, err = _call(cli.train_main, [*TINY, "--texture", texture, "--checkpoint_dir", tmp_path / "ckpt"], capsys)
    _assert_one_line_error(status, err, phrase)


@pytest.mark.parametrize("kind,phrase", [("pickle_with_code", "was refused"), ("truncated", "not a readable checkpoint"),
                                         ("plain_pickle", "was refused")])
def test_bad_checkpoints_refused_by_both_scripts(tmp_path: Path, capsys: pytest.CaptureFixture, model: Path, kind: str, phrase: str) -> None:
    checkpoint = _bad_checkpoint(tmp_path / "ckpt", kind, model)
    before = sorted(p.name for p in checkpoint.parent.iterdir())
    status, _, err = _call(cli.stylize_main, ["--model", checkpoint, "--input", PHOTO, "--output", tmp_path / "o.png"], capsys)
    _assert_one_line_error(status, err, phrase)
    status, _, err = _call(cli.train_main, [*TINY, "--checkpoint_dir", checkpoint.parent, "--resume", checkpoint], capsys)
    _assert_one_line_error(status, err, phrase)
    assert not (tmp_path / "ckpt" / "pwned").exists()  # the code in the pickle never ran
    assert sorted(p.name for p in checkpoint.parent.iterdir()) == before  # nothing written, nothing lost
    assert checkpoint.read_bytes()  # the bad file itself is left alone


STYLIZE_ERRORS = [
    (["--size", "0x10"], "width and height must be positive"),
    (["--size=-4x4"], "width and height must be positive"),
    (["--max_size", "0"], "max_size must be at least 1"),
    (["--tile", "10"], "tile must be 0 (never tile) or at least 64 pixels"),
    (["--tile", "-1"], "tile must be 0 (never tile) or at least 64 pixels"),
    (["--batch_size", "0"], "batch_size must be at least 1"),
    (["--noise_factor", "nan"], "expected a finite number"),
    (["--noise_factor", "inf"], "expected a finite number"),
]


@pytest.mark.parametrize("argv,phrase", STYLIZE_ERRORS, ids=[" ".join(a) for a, _ in STYLIZE_ERRORS])
def test_stylize_refuses_bad_numbers(tmp_path: Path, capsys: pytest.CaptureFixture, model: Path, argv: list[str], phrase: str) -> None:
    where = [] if any(a.startswith("--size") for a in argv) else ["--input", PHOTO]
    status, _, err = _call(cli.stylize_main, ["--model", model, *where, "--output", tmp_path / "o.png", *argv], capsys)
    _assert_one_line_error(status, err, phrase)
    assert not (tmp_path / "o.png").exists()


def test_resume_from_other_architecture_or_style_names_the_mismatch(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    folder = tmp_path / "ckpt"
    status, _, err = _call(cli.train_main, [*TINY, "--iterations", "1", "--checkpoint_dir", folder], capsys)
    assert status == 0, err
    status, _, err = _call(cli.train_main, [*TINY, "--checkpoint_dir", folder, "--resume", "auto", "--channels", "8"], capsys)
    _assert_one_line_error(status, err, "different generator architecture: channels 4 (checkpoint) vs 8 (now)")
    other = tmp_path / "other.png"
    _photo().save(other)
    status, _, err = _call(cli.train_main, [*TINY, "--checkpoint_dir", folder, "--resume", folder / "style.pth", "--texture", other], capsys)
    _assert_one_line_error(status, err, "trained on a different --texture")
    status, _, err = _call(cli.train_main, [*TINY, "--checkpoint_dir", tmp_path / "empty", "--resume", "auto"], capsys)
    _assert_one_line_error(status, err, "no readable checkpoint of run 'style'")


def test_unwritable_checkpoint_dir_is_refused_before_training(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    status, out, err = _call(cli.train_main, [*TINY, "--checkpoint_dir", blocker / "ckpt"], capsys)
    _assert_one_line_error(status, err, "is not writable")
    assert "training" not in out


@pytest.mark.parametrize("script,argv,phrase", [
    ("train.py", [*TINY, "--batch_size", "-1"], "batch_size must be at least 1"),
    ("stylize.py", ["--model", "{tmp}/missing.pth", "--input", str(PHOTO), "--output", "{tmp}/o.png"], "no such checkpoint file"),
])
def test_scripts_as_subprocesses(tmp_path: Path, script: str, argv: list[str], phrase: str) -> None:
    argv = [a.replace("{tmp}", str(tmp_path)) for a in argv]
    result = subprocess.run([sys.executable, str(ROOT / "scripts" / script), *argv],
                            capture_output=True, text=True, timeout=120, cwd=tmp_path)
    _assert_one_line_error(result.returncode, result.stderr, phrase)
