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
import shutil
import struct
import subprocess
import sys
import zlib
from pathlib import Path
from typing import Callable, Optional

import numpy as np
import pytest
import torch
from PIL import Image

from texturenet.noise import IndependentNoise
from texturenet import cli
from texturenet.checkpoint import load_checkpoint, make_checkpoint, save_atomic
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
    elif kind == "long_strip":  # a few hundred bytes that resize (short side to 256) into 256 x 5,120,000 pixels
        path = folder / "strip.png"
        Image.new("RGB", (20000, 1), (90, 90, 90)).save(path)
    elif kind in ("float32_tiff", "int32_tiff"):  # a horizontal ramp: black on the left to white on the right
        path = folder / f"{kind}.tif"
        ramp = np.tile(np.linspace(0, 1, 48), (40, 1))
        Image.fromarray(ramp.astype(np.float32) if kind == "float32_tiff" else (ramp * (2**31 - 1)).astype(np.int32)).save(path)
    elif kind == "negative_float_tiff":
        path = folder / "signed.tif"
        Image.fromarray(np.full((40, 48), -1.0, np.float32)).save(path)
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
    "long_strip": ("skip", ("error", "more than 20 times longer than wide")),
    "float32_tiff": ("ok", ("ok", (48, 40))),
    "int32_tiff": ("ok", ("ok", (48, 40))),
    "negative_float_tiff": ("skip", ("error", "negative or not finite")),
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
        if kind.endswith("32_tiff"):  # converted by the range of its samples: the ramp survives, not all black or white
            row = np.asarray(image)[20, :, 0].astype(int)
            assert row[0] <= 2 and row[-1] >= 253 and abs(row[24] - 128) <= 4
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
    (["--seed", "18446744073709551616"], "seed must be in 0..4294967295"),
    (["--scales", "30"], "scales must be at most 8"),
    (["--channels", "100000"], "channels must be at most 128"),
    (["--generator", "johnson", "--channels", "6"], "channels of the johnson generator must be a multiple of 4"),
    (["--generator", "johnson", "--mode", "texture"], "texture mode needs --generator pyramid"),
    (["--generator", "unet"], "argument --generator: invalid choice: 'unet'"),
    (["--noise_depth", "1000"], "noise_depth must be at most 64"),
    (["--style_size", "100000"], "style_size must be at most 4096"),
    (["--image_size", "8", "--style_layers", "relu1_1,relu2_1,relu3_1,relu4_1,relu5_1", "--content_layers", "relu4_2"],
     "image_size 8 is too small for loss layer relu5_1, which needs at least 32 pixels"),
    (["--style_size", "8", "--style_layers", "relu1_1,relu2_1,relu3_1,relu4_1,relu5_1"],
     "style_size 8 is too small for loss layer relu5_1"),
    (["--image_size", "8", "--content_layers", "relu4_2"], "image_size 8 is too small for loss layer relu4_2"),
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
    (["--noise_factor", "1e300"], "noise_factor must be a number in -100..100"),
    (["--seed", "18446744073709551616"], "seed must be in 0..4294967295"),
    (["--seed", "-1"], "seed must be in 0..4294967295"),
    (["--size", "100000x100000"], "is 9537 megapixels; a texture sample is made in one pass, at most 16 megapixels"),
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


# -- nothing lost (issue 13) ---------------------------------------------------------------------

def _same_file_spellings(tmp_path: Path) -> list[tuple[Path, Path]]:
    """(input, output) pairs that all name one photo: the same path, ``..``, a relative path, a symlink, a hard link."""
    folder = tmp_path / "photos"
    folder.mkdir()
    photo = folder / "p.jpg"
    _photo().save(photo)
    (tmp_path / "link.jpg").symlink_to(photo)
    os.link(photo, tmp_path / "hard.jpg")
    return [(photo, photo), (photo, folder / ".." / "photos" / "p.jpg"), (photo, Path(os.path.relpath(photo))),
            (photo, tmp_path / "link.jpg"), (tmp_path / "link.jpg", photo), (photo, tmp_path / "hard.jpg")]


def test_stylize_never_overwrites_its_input(tmp_path: Path, capsys: pytest.CaptureFixture, model: Path) -> None:
    for source, output in _same_file_spellings(tmp_path):
        before = source.read_bytes()
        status, _, err = _call(cli.stylize_main, ["--model", model, "--input", source, "--output", output], capsys)
        _assert_one_line_error(status, err, "would overwrite the input")
        assert source.read_bytes() == before, (source, output)
    folder = tmp_path / "photos"
    for output in (folder, tmp_path / "." / "photos", tmp_path / "photos" / ".." / "photos"):  # a folder onto itself
        status, _, err = _call(cli.stylize_main, ["--model", model, "--input", folder, "--output", output], capsys)
        _assert_one_line_error(status, err, "would overwrite the input")
    assert Image.open(folder / "p.jpg").size == (48, 40)


@pytest.mark.parametrize("kind,phrase", [("fifo", "exists and is not a regular file"), ("parent_is_file", "is a file, not a folder"),
                                         ("unknown_format", "unknown image format")])
def test_stylize_refuses_unwritable_outputs_before_any_work(tmp_path: Path, capsys: pytest.CaptureFixture, model: Path, kind: str,
                                                            phrase: str) -> None:
    output = tmp_path / "o.png"
    if kind == "fifo":
        os.mkfifo(output)
    elif kind == "parent_is_file":
        (tmp_path / "blocker").write_text("a file")
        output = tmp_path / "blocker" / "sub" / "o.png"
    else:
        output = tmp_path / "o.xyz"
    status, _, err = _call(cli.stylize_main, ["--model", model, "--input", PHOTO, "--output", output], capsys)
    _assert_one_line_error(status, err, phrase)
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []  # no temporary file left behind


def _unprivileged() -> list[str]:
    """A command prefix under which file permissions hold (root ignores them unless its capabilities are dropped)."""
    if os.geteuid() != 0:
        return []
    if not shutil.which("setpriv"):
        pytest.skip("running as root without setpriv: permissions cannot be tested")
    return ["setpriv", "--bounding-set", "-dac_override,-dac_read_search"]


def test_stylize_into_unwritable_folder_is_one_line(tmp_path: Path, model: Path) -> None:
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o555)
    result = subprocess.run([*_unprivileged(), sys.executable, str(ROOT / "scripts" / "stylize.py"), "--model", str(model),
                             "--input", str(PHOTO), "--output", str(locked / "o.png")], capture_output=True, text=True, timeout=120)
    _assert_one_line_error(result.returncode, result.stderr, "is not writable")
    assert not list(locked.iterdir())


def test_unreadable_sub_folder_is_named_and_counted(tmp_path: Path, model: Path) -> None:
    source = tmp_path / "in"
    _make(source, "one_pixel")
    (source / "private").mkdir(mode=0o000)
    result = subprocess.run([*_unprivileged(), sys.executable, str(ROOT / "scripts" / "stylize.py"), "--model", str(model),
                             "--input", str(source), "--output", str(tmp_path / "out")], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert f"skipping unreadable folder {source / 'private'} (Permission denied)" in result.stdout + result.stderr
    assert "skipped 1 unreadable folder(s)" in result.stdout + result.stderr
    assert (tmp_path / "out" / "dot.png").is_file()


def test_folder_of_only_unreadable_files_fails(tmp_path: Path, capsys: pytest.CaptureFixture, model: Path) -> None:
    source = tmp_path / "in"
    for kind in ("truncated_jpeg", "zero_bytes"):
        _make(source, kind)
    status, _, err = _call(cli.stylize_main, ["--model", model, "--input", source, "--output", tmp_path / "out"], capsys)
    _assert_one_line_error(status, err, "none of its 2 image file(s) could be read")


def _train_into(folder: Path, capsys: pytest.CaptureFixture, *argv: object) -> tuple[int, str, str]:
    return _call(cli.train_main, [*TINY, "--iterations", "1", "--checkpoint_dir", folder, *argv], capsys)


def test_rerunning_training_never_replaces_an_earlier_run(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    folder = tmp_path / "ckpt"
    assert _train_into(folder, capsys)[0] == 0
    finished = (folder / "style.pth").read_bytes()
    status, _, err = _train_into(folder, capsys, "--seed", "5")
    _assert_one_line_error(status, err, "run 'style' already has checkpoints")
    assert "--resume auto" in err and "--name" in err and "--overwrite" in err
    assert (folder / "style.pth").read_bytes() == finished
    # A stopped run's NAME_iterN.pth alone is protected too.
    (folder / "style.pth").rename(folder / "style_iter1.pth")
    status, _, err = _train_into(folder, capsys)
    _assert_one_line_error(status, err, "style_iter1.pth")
    # --name starts a run beside it; --overwrite replaces it and says so.
    assert _train_into(folder, capsys, "--name", "other")[0] == 0
    status, out, _ = _train_into(folder, capsys, "--overwrite", "--seed", "5")
    assert status == 0 and "--overwrite: removed 1 checkpoint(s) of the earlier run 'style'" in out
    assert sorted(p.name for p in folder.glob("*.pth")) == ["other.pth", "style.pth"]
    assert not list(folder.glob("*.lock"))  # the lock went with the run


def test_a_second_run_with_the_same_name_is_refused_while_the_first_trains(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    folder = tmp_path / "ckpt"
    folder.mkdir()
    holder = subprocess.Popen([sys.executable, "-c", "import sys, time; sys.path.insert(0, sys.argv[1]); "
                               "from texturenet.checkpoint import RunLock; from pathlib import Path; "
                               "RunLock(Path(sys.argv[2]), 'style'); print('locked', flush=True); time.sleep(60)",
                               str(ROOT), str(folder)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        status, _, err = _train_into(folder, capsys)
        _assert_one_line_error(status, err, f"run 'style' is already training in {folder} (pid {holder.pid}")
    finally:
        holder.kill()
        holder.wait()
    assert _train_into(folder, capsys)[0] == 0  # a killed holder leaves no stale lock behind


def test_resume_says_what_changed_and_refuses_going_backwards(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    folder = tmp_path / "ckpt"
    assert _train_into(folder, capsys, "--iterations", "3", "--lr_step", "2")[0] == 0
    status, _, err = _train_into(folder, capsys, "--resume", "auto", "--iterations", "2")
    _assert_one_line_error(status, err, "has done 3 iterations, more than --iterations 2")
    status, out, err = _train_into(folder, capsys, "--resume", "auto", "--iterations", "4", "--lr_step", "2", "--lr", "0.01")
    assert status == 0, err
    assert "resuming with --lr 0.01; the checkpoint was trained with 0.001" in out
    state = load_checkpoint(folder / "style.pth")["train_state"]
    assert state["optimizer"]["param_groups"][0]["lr"] == pytest.approx(0.01 * 0.8 ** 2)  # the new schedule at iteration 4


def test_written_files_follow_the_umask(tmp_path: Path, capsys: pytest.CaptureFixture, model: Path) -> None:
    previous = os.umask(0o027)
    try:
        assert _train_into(tmp_path / "ckpt", capsys, "--val_images", "1")[0] == 0
        assert _call(cli.stylize_main, ["--model", model, "--input", PHOTO, "--output", tmp_path / "o.png"], capsys)[0] == 0
    finally:
        os.umask(previous)
    written = [tmp_path / "ckpt" / "style.pth", tmp_path / "ckpt" / "style_samples.png", tmp_path / "o.png"]
    assert {path.name: oct(path.stat().st_mode & 0o777) for path in written} == {path.name: "0o640" for path in written}


def test_unreadable_validation_photo_is_skipped(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    data = tmp_path / "data"
    _make(data, "bomb_header")  # bomb.png sorts first: it is one of the fixed validation photos
    for name in ("c1", "c2"):
        _photo().save(data / f"{name}.jpg")
    status, out, err = _train_into(tmp_path / "ckpt", capsys, "--data_dir", data, "--val_images", "2")
    assert status == 0, err
    assert f"skipping unreadable validation image {data / 'bomb.png'} (DecompressionBombError" in out


# -- crafted checkpoints and sizes (issue 13) ----------------------------------------------------

def _unchecked(**fields: object) -> GeneratorConfig:
    """A config holding values its validation refuses (set after the check), as a crafted checkpoint can."""
    config = GeneratorConfig(scales=3, channels=4)
    for name, value in fields.items():
        setattr(config, name, value)
    return config


def _crafted(folder: Path, kind: str, model: Path) -> Path:
    """A checkpoint file (or what stands where one should be) that must be refused: see CRAFTED."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{kind}.pth"
    if kind == "folder":
        path.mkdir()
        return path
    if kind == "fifo":  # opening it would wait for a writer forever
        os.mkfifo(path)
        return path
    if kind == "consistent_14_scales":  # weights that fit the config: stylising padded photos to 16384x16384
        checkpoint = make_checkpoint(PyramidGenerator(_unchecked(scales=14)), kind, 0)
    else:
        checkpoint = torch.load(model, weights_only=True)
        config, state = checkpoint["generator_config"], checkpoint["state_dict"]
        if kind == "absurd_scales":  # hung texturenet-stylize building 2^31 branches
            config["scales"] = 2**31
        elif kind == "string_channels":
            config["channels"] = "4"
        elif kind == "unknown_generator":
            config["generator"] = "unet"
        elif kind == "johnson_with_pyramid_weights":
            config["generator"] = "johnson"
        elif kind == "unknown_key":
            config["colour"] = "red"
        elif kind == "missing_key":
            del config["norm"]
        elif kind == "wrong_shape":
            state["to_rgb.weight"] = torch.zeros(3, 99, 1, 1)
        elif kind == "missing_weights":
            for key in [key for key in state if key.startswith("joins.1.")]:
                del state[key]
        elif kind == "nan_weights":
            state["to_rgb.weight"][0] = float("nan")
    torch.save(checkpoint, path)
    return path


CRAFTED = {
    "absurd_scales": "is damaged: generator_config: scales must be at most 8, got 2147483648",
    "consistent_14_scales": "scales must be at most 8, got 14",
    "string_channels": "channels must be a whole number, got '4'",
    "unknown_generator": "generator_config: generator must be one of pyramid, johnson; got 'unet'",
    "johnson_with_pyramid_weights": "its weights do not fit its generator_config: ",
    "unknown_key": "generator_config has unknown key(s) 'colour'",
    "missing_key": "generator_config has missing key(s) norm",
    "wrong_shape": "its weights do not fit its generator_config: 1 of the wrong shape: to_rgb.weight 3x99x1x1 (expected 3x12x1x1)",
    "missing_weights": "26 missing: joins.1.norm_coarse.weight, joins.1.norm_coarse.bias, joins.1.norm_coarse.weight_max, ... (23 more)",
    "nan_weights": "1 weight tensor(s) hold NaN or infinite values: to_rgb.weight",
    "folder": "is a folder, not a checkpoint file",
    "fifo": "is not a regular file",
}


@pytest.mark.parametrize("kind", sorted(CRAFTED))
def test_crafted_checkpoints_are_refused_before_anything_is_built(tmp_path: Path, capsys: pytest.CaptureFixture, model: Path,
                                                                  kind: str) -> None:
    checkpoint = _crafted(tmp_path / "ckpt", kind, model)
    status, _, err = _call(cli.stylize_main, ["--model", checkpoint, "--input", PHOTO, "--output", tmp_path / "o.png"], capsys)
    _assert_one_line_error(status, err, CRAFTED[kind])
    status, _, err = _call(cli.train_main, [*TINY, "--checkpoint_dir", tmp_path / "run", "--resume", checkpoint], capsys)
    _assert_one_line_error(status, err, CRAFTED[kind])
    assert not (tmp_path / "o.png").exists()


def test_unreadable_checkpoint_says_permission_denied(tmp_path: Path, model: Path) -> None:
    locked = tmp_path / "locked.pth"
    shutil.copy(model, locked)
    locked.chmod(0o000)
    result = subprocess.run([*_unprivileged(), sys.executable, str(ROOT / "scripts" / "stylize.py"), "--model", str(locked),
                             "--input", str(PHOTO), "--output", str(tmp_path / "o.png")], capture_output=True, text=True, timeout=120)
    _assert_one_line_error(result.returncode, result.stderr, f"{locked} cannot be read (Permission denied)")


def _fake_vgg(folder: Path, arch: str, drop: Optional[str] = None) -> Path:
    """A whole-model torchvision VGG state dict (features and classifier) with the right shapes, tiny on disk:
    every tensor is a zero broadcast to its shape, so torch.save stores one number for it. ``drop``: a key prefix left out."""
    import torchvision

    with torch.device("meta"):
        shapes = {key: value.shape for key, value in getattr(torchvision.models, arch)().state_dict().items()}
    path = folder / f"{arch}{'_without_' + drop if drop else ''}.pth"
    torch.save({key: torch.zeros(()).expand(shape) for key, shape in shapes.items() if not (drop and key.startswith(drop))}, path)
    return path


@pytest.mark.parametrize("arch,loss_net,drop,phrase", [
    ("vgg16", "vgg19", None, "looks like vgg16, not vgg19; pass --loss_net vgg16"),
    ("vgg19", "vgg16", None, "looks like vgg19, not vgg16; pass --loss_net vgg19"),
    ("vgg19", "vgg19", "features.34.", "does not fit torchvision's vgg19: 2 missing: 34.weight, 34.bias"),
])
def test_vgg_weights_of_the_other_network_are_named(tmp_path: Path, capsys: pytest.CaptureFixture, arch: str, loss_net: str,
                                                     drop: Optional[str], phrase: str) -> None:
    weights = _fake_vgg(tmp_path, arch, drop)
    status, _, err = _call(cli.train_main, [*TINY, "--vgg_weights", weights, "--loss_net", loss_net, "--checkpoint_dir", tmp_path / "run"],
                           capsys)
    _assert_one_line_error(status, err, phrase)
    assert not list((tmp_path / "run").glob("*.pth"))


@pytest.fixture(scope="module")
def six_scales(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Untrained 6-scale models (the paper's K), one per mode: their coarsest scale sees a 32x32 input as 1x1."""
    folder = tmp_path_factory.mktemp("six")
    paths = {}
    for mode, padding in (("texture", "circular"), ("style", "reflect")):
        torch.manual_seed(0)
        paths[mode] = folder / f"{mode}6.pth"
        save_atomic(make_checkpoint(PyramidGenerator(GeneratorConfig(mode=mode, scales=6, channels=4, padding=padding)), mode, 0), paths[mode])
    return paths


@pytest.mark.parametrize("size", ["32x32", "1x1", "7x20"])
def test_small_texture_samples_from_six_scales(tmp_path: Path, capsys: pytest.CaptureFixture, six_scales: dict[str, Path],
                                               size: str) -> None:
    status, _, err = _call(cli.stylize_main, ["--model", six_scales["texture"], "--size", size, "--output", tmp_path / "t.png"], capsys)
    assert status == 0, err
    assert Image.open(tmp_path / "t.png").size == tuple(int(side) for side in size.split("x"))


@pytest.mark.parametrize("norm", ["instance", "batch"])
@pytest.mark.parametrize("padding", ["reflect", "circular", "replicate", "zeros"])
def test_every_texture_size_runs_in_training_and_inference(norm: str, padding: str) -> None:
    """Training mode too: norms compute statistics there (batch norm as well), and texture training samples at --image_size."""
    generator = PyramidGenerator(GeneratorConfig(mode="texture", scales=6, channels=2, norm=norm, padding=padding))
    for training in (True, False):
        generator.train(training)
        for height, width in ((32, 32), (1, 1), (16, 40)):
            for batch in (1, 2):
                with torch.no_grad():
                    assert generator(size=(height, width), batch=batch).shape == (batch, 3, height, width)


@pytest.mark.parametrize("norm,padding,size,batch", [
    ("instance", "circular", (64, 64), 1), ("instance", "circular", (64, 16), 2), ("instance", "reflect", (48, 40), 1),
    ("batch", "circular", (32, 32), 1),  # batch norm in eval mode ran at a 1x1 coarsest scale too
])
def test_sizes_that_ran_before_give_the_same_pictures(norm: str, padding: str, size: tuple[int, int], batch: int) -> None:
    """Bitwise what the code before issue 13 computed: the body's sample of noise at the asked size, uncropped."""
    torch.manual_seed(0)
    generator = PyramidGenerator(GeneratorConfig(mode="texture", scales=6, channels=4, norm=norm, padding=padding)).eval()
    with torch.no_grad():
        now = generator(size=size, batch=batch, noise=IndependentNoise(torch.Generator().manual_seed(1)))
        before = generator.body(generator.noise_inputs(batch, *size, IndependentNoise(torch.Generator().manual_seed(1))))
    assert torch.equal(now, before)


def test_texture_training_and_diversity_at_32_pixels_with_six_scales(tmp_path: Path, capsys: pytest.CaptureFixture,
                                                                     six_scales: dict[str, Path]) -> None:
    status, _, err = _call(cli.train_main, [*TINY, "--mode", "texture", "--scales", "6", "--checkpoint_dir", tmp_path], capsys)
    assert status == 0, err
    status, out, err = _call(cli.diversity_main, ["--model", six_scales["texture"], "--size", "32", "--samples", "2",
                                                  "--vgg_weights", "random", "--layer", "relu1_1"], capsys)
    assert status == 0, err
    assert "pixel_distance" in out


@pytest.mark.parametrize("side", [1, 8])
def test_tiny_photos_with_six_scales(tmp_path: Path, capsys: pytest.CaptureFixture, six_scales: dict[str, Path], side: int) -> None:
    photo = tmp_path / "small.png"
    _photo((side, side)).save(photo)
    status, _, err = _call(cli.stylize_main, ["--model", six_scales["style"], "--input", photo, "--output", tmp_path / "o.png"], capsys)
    assert status == 0, err
    assert Image.open(tmp_path / "o.png").size == (side, side)


HUGE_SEED = "18446744073709551616"


@pytest.mark.parametrize("command,argv,phrase", [
    ("optimize", ["--style", PHOTO, "--output", "{tmp}/o.png", "--seed", HUGE_SEED], "seed must be in 0..4294967295"),
    ("evaluate", ["--model", "{model}", "--photos", PHOTO, "--output_dir", "{tmp}/e", "--seed", HUGE_SEED], "seed must be in 0..4294967295"),
    ("evaluate", ["--model", "{model}", "--photos", PHOTO, "--output_dir", "{tmp}/e", "--noise_factors", "0,1e300"],
     "noise_factor must be a number in -100..100"),
    ("diversity", ["--model", "{model}", "--noise_factor", "1e300"], "noise_factor must be a number in -100..100"),
])
def test_other_commands_bound_seeds_and_noise(tmp_path: Path, capsys: pytest.CaptureFixture, model: Path, command: str,
                                              argv: list[str], phrase: str) -> None:
    argv = [str(a).replace("{tmp}", str(tmp_path)).replace("{model}", str(model)) for a in argv]
    status, _, err = _call(getattr(cli, f"{command}_main"), argv, capsys)
    _assert_one_line_error(status, err, phrase)


def test_optimize_ends_its_bar_on_the_final_losses(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    status, out, err = _call(cli.optimize_main, ["--style", PHOTO, "--output", tmp_path / "o.png", "--vgg_weights", "random",
                                                 "--size", "32x32", "--style_size", "32", "--style_layers", "relu1_1,relu2_1",
                                                 "--iterations", "3", "--optimizer", "adam", "--lr", "0.05"], capsys)
    assert status == 0, err
    final = out.split("final losses: ")[1].splitlines()[0]
    last_bar = [render for render in err.split("\r") if "optimising" in render][-1]
    assert final in last_bar, (final, last_bar)
