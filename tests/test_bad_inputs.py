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
import random
import re
import shutil
import struct
import subprocess
import sys
import warnings
import zlib
from pathlib import Path
from typing import Callable, Optional

import numpy as np
import pytest
import torch
from PIL import Image

from texturenet.model.noise import IndependentNoise
from texturenet import cli
from texturenet.model.checkpoint import load_checkpoint, make_checkpoint, save_atomic
from texturenet.config import GeneratorConfig
from texturenet.io.images import UnreadableImage, find_images, load_rgb
from texturenet.errors import printable
from texturenet.model.fused import fast_generator
from texturenet.model.pyramid import PyramidGenerator
from texturenet.model.tiled import AUTO_TILE, max_windows, smallest_tile, tile_work
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


def _tiff_ifd(entries: list[tuple[int, int, int, bytes]]) -> bytes:
    """A little-endian TIFF header and one IFD of (tag, type, count, value bytes) entries, values past 4 bytes after it."""
    start = 8 + 2 + 12 * len(entries) + 4
    table, extra = struct.pack("<H", len(entries)), b""
    for tag, kind, count, value in entries:
        if len(value) <= 4:
            table += struct.pack("<HHI", tag, kind, count) + value.ljust(4, b"\0")
        else:
            table += struct.pack("<HHII", tag, kind, count, start + len(extra))
            extra += value
    return b"II*\0" + struct.pack("<I", 8) + table + struct.pack("<I", 0) + extra


def _retyped_tiff_tag(data: bytes, tag: int, value: float) -> bytes:
    """``data`` (a little-endian TIFF) with ``tag`` rewritten as one FLOAT (TIFF type 11) holding ``value``."""
    data = bytearray(data)
    ifd = struct.unpack("<I", data[4:8])[0]
    for entry in range(ifd + 2, ifd + 2 + 12 * struct.unpack("<H", data[ifd:ifd + 2])[0], 12):
        if struct.unpack("<H", data[entry:entry + 2])[0] == tag:
            data[entry + 2:entry + 12] = struct.pack("<HIf", 11, 1, value)
            return bytes(data)
    raise ValueError(f"no tag {tag}")


HOSTILE_NAME = "evil\x1b]0;pwned\x07\nsaved fake.pth\r\x1b[2K.jpg"
"""Sets the terminal's title, then forges a log line "saved fake.pth" over the real one, if printed raw (issue 21, case 20)."""


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
    elif kind == "exif_ascii_resolution":  # issue 21, case 11: ImageOps.exif_transpose raised TypeError (abs() of a str)
        path = folder / "crafted_exif.jpg"
        exif = _tiff_ifd([(0x0112, 3, 1, struct.pack("<H", 6)), (0x011B, 2, 4, b"abc\0")])  # Orientation 6; YResolution as ASCII
        path.write_bytes(_jpeg_bytes(_photo(), exif=b"Exif\0\0" + exif))
    elif kind == "float_strip_offsets_tiff":  # issue 21, case 11: TypeError "'float' object cannot be interpreted as an integer"
        path = folder / "crafted_float.tif"
        buffer = io.BytesIO()
        Image.fromarray(np.tile(np.linspace(0, 1, 48, dtype=np.float32), (40, 1))).save(buffer, "TIFF")
        path.write_bytes(_retyped_tiff_tag(buffer.getvalue(), 0x0111, 8.5))  # StripOffsets as a FLOAT
    elif kind == "hostile_name":  # an unreadable file whose name holds escape sequences and a newline
        path = folder / HOSTILE_NAME
        path.write_bytes(b"\xff\xd8 not really")
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
    "exif_ascii_resolution": ("skip", ("error", "not a readable image (TypeError)")),
    "float_strip_offsets_tiff": ("skip", ("error", "not a readable image (TypeError)")),
    "hostile_name": ("skip", ("error", f"{printable(HOSTILE_NAME)} is not a readable image")),
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
        mentioned = f"skipping unreadable image {printable(made[kind])} (" in out
        assert mentioned == (training == "skip"), (kind, out)
    assert "\x1b" not in out and "\nsaved fake.pth" not in out  # names are printed escaped (issue 21, case 20)
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
    for kind, path in made.items():
        assert (f"skipping unreadable image {printable(path)} (" in out) == (FILES[kind][0] == "skip"), (kind, out)
    assert "\x1b" not in out and "\nsaved fake.pth" not in out


def test_bad_files_are_skipped_again_on_resume(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    """Sampling is deterministic, so a resumed run meets the same crafted files: skipped again, never fatal (issue 21, case 11)."""
    data = tmp_path / "data"
    for name in ("c1", "c2"):
        _make(data, "one_pixel").rename(data / f"{name}.png")
    crafted = [_make(data, kind) for kind in ("exif_ascii_resolution", "float_strip_offsets_tiff")]
    for iterations in ("1", "2"):
        resume = ["--resume", "auto"] if iterations == "2" else []
        status, out, err = _call(cli.train_main, [*TINY, "--iterations", iterations, "--batch_size", 4, "--workers", 1,
                                                  "--data_dir", data, "--checkpoint_dir", tmp_path / "ckpt", *resume], capsys)
        assert status == 0, err
        assert all(f"skipping unreadable image {path} (" in out for path in crafted), out


DECODER_MUTATIONS = 6000
"""Mutated files decoded by test_decoder_fuzz (about 3 s on one core); each a pure function of its index and the seed."""


def _mutate(data: bytes, rng: random.Random) -> bytes:
    """One mutation: a few flipped bits, a truncation, or a chunk repeated in place (length fields then lie)."""
    data = bytearray(data)
    operation = rng.randrange(3)
    if operation == 0:
        for _ in range(rng.randint(1, 8)):
            data[rng.randrange(len(data))] ^= 1 << rng.randrange(8)
    elif operation == 1:
        del data[rng.randrange(len(data)):]
    else:
        start = rng.randrange(len(data))
        chunk = data[start:start + rng.randint(1, 64)]
        at = rng.randrange(len(data))
        data[at:at] = chunk * rng.randint(1, 4)
    return bytes(data)


def test_decoder_fuzz(tmp_path: Path) -> None:
    """Every mutation of small JPEG, PNG, TIFF, GIF, BMP and WebP files decodes to RGB or is an UnreadableImage, nothing else.

    Seeded: a failure names the mutation's index, and the same index gives the same bytes again.
    """
    picture = Image.fromarray(np.random.default_rng(0).integers(0, 255, (12, 16, 3), dtype=np.uint8))
    seeds = {}
    for name, image, options in [("jpg", picture, {"quality": 90}), ("png", picture.convert("RGBA"), {}), ("tif", picture, {}),
                                 ("gif", picture.convert("P"), {}), ("bmp", picture, {}), ("webp", picture, {"quality": 80})]:
        buffer = io.BytesIO()
        image.save(buffer, Image.registered_extensions()[f".{name}"], **options)
        seeds[name] = buffer.getvalue()
    for kind in ("exif_rotated", "float32_tiff", "png_16bit"):  # the paths that EXIF, float and 16-bit samples take
        seeds[kind] = _make(tmp_path, kind).read_bytes()
    names = sorted(seeds)
    rng = random.Random(21)
    outcomes = {"decoded": 0, "unreadable": 0}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Pillow warns about the damage it works around
        for index in range(DECODER_MUTATIONS):
            data = _mutate(seeds[names[index % len(names)]], rng)
            try:
                image = load_rgb(io.BytesIO(data))
            except UnreadableImage:
                outcomes["unreadable"] += 1
                continue
            except Exception as error:  # noqa: BLE001
                pytest.fail(f"mutation {index} of {names[index % len(names)]}: {type(error).__name__}: {error}")
            assert image.mode == "RGB", index
            outcomes["decoded"] += 1
    assert min(outcomes.values()) > DECODER_MUTATIONS // 10, outcomes  # the mutations exercise both outcomes


def _nested(root: Path, depth: int) -> Path:
    """A folder ``depth`` levels of ``d`` below ``root`` (os.makedirs recurses per level; relative to a folder
    descriptor, each level costs the same however deep)."""
    root.mkdir()
    descriptor = os.open(root, os.O_RDONLY)
    try:
        for _ in range(depth):
            os.mkdir("d", dir_fd=descriptor)
            below = os.open("d", os.O_RDONLY, dir_fd=descriptor)
            os.close(descriptor)
            descriptor = below
    finally:
        os.close(descriptor)
    return root.joinpath(*["d"] * depth)


def _remove_tree(root: Path) -> None:
    """``shutil.rmtree`` without recursion, for trees of ``d`` folders as _nested makes, with files and links anywhere.

    rmtree recurses per level in Python < 3.12, and pytest's clean-up of old temporary folders
    (every earlier run's on this machine) would then fail on a deep tree left behind.
    """
    descriptors = [os.open(root, os.O_RDONLY)]
    try:
        while True:  # down to the deepest folder, removing everything that is not a folder on the way
            folders = []
            for entry in os.scandir(descriptors[-1]):
                if entry.is_dir(follow_symlinks=False):
                    folders.append(entry.name)
                else:
                    os.unlink(entry.name, dir_fd=descriptors[-1])
            if not folders:
                break
            assert folders == ["d"], folders
            descriptors.append(os.open("d", os.O_RDONLY, dir_fd=descriptors[-1]))
        while len(descriptors) > 1:  # and up again, each folder now empty
            os.close(descriptors.pop())
            os.rmdir("d", dir_fd=descriptors[-1])
    finally:
        for descriptor in descriptors:
            os.close(descriptor)
    root.rmdir()


def test_deeply_nested_folders_are_walked(tmp_path: Path, capsys: pytest.CaptureFixture, model: Path) -> None:
    """A data folder nested 1100 deep gave RecursionError in training, stylising and the GUI (issue 21, case 12).

    They all find photos with data.find_images (the GUI through data.photo_paths).
    """
    data, output = tmp_path / "data", tmp_path / "out"
    try:
        deep = _nested(data, 1100)
        _photo().save(deep / "deep.png")
        _photo().save(data / "top.png")
        (deep / "up").symlink_to(data, target_is_directory=True)  # a loop, not followed
        assert find_images(data) == [deep / "deep.png", data / "top.png"]
        status, out, err = _call(cli.train_main, [*TINY, "--iterations", "1", "--data_dir", data,
                                                  "--checkpoint_dir", tmp_path / "ckpt"], capsys)
        assert status == 0, err
        assert "2 photos from" in out
        status, out, err = _call(cli.stylize_main, ["--model", model, "--input", data, "--output", output], capsys)
        assert status == 0, err
        assert Image.open(output / deep.relative_to(data) / "deep.png").size == (48, 40)
    finally:
        for tree in (data, output):
            if tree.exists():
                _remove_tree(tree)


@pytest.mark.parametrize("name,shown", [
    ("plain photo.jpg", "plain photo.jpg"),
    ("café Ünïcode 写真.jpg", "café Ünïcode 写真.jpg"),
    (HOSTILE_NAME, "evil\\x1b]0;pwned\\x07\\nsaved fake.pth\\r\\x1b[2K.jpg"),
    ("right\u202eto-left.jpg", "right\\u202eto-left.jpg"),
    ("back\\slash.jpg", "back\\\\slash.jpg"),
    (os.fsdecode(b"bad\xff.jpg"), "bad\\xff.jpg"),
], ids=["plain", "accents", "escapes", "bidi", "backslash", "not_utf8"])
def test_printable_names(name: str, shown: str) -> None:
    """Ordinary names print as they are; control and format characters, bytes that are not UTF-8 and backslashes are escaped."""
    assert printable(Path("/photos") / name) == f"/photos/{shown}"
    assert printable(name).isprintable()


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


def test_tiles_that_multiply_the_work_are_refused(tmp_path: Path, capsys: pytest.CaptureFixture, model: Path) -> None:
    """--tile 64 on a 1600x1068 photo planned 7200 statistics passes, minutes for an untiled 37 s (issue 21, case 16).

    Refused before any work, naming the tile that keeps within tiling.max_windows; this photo is
    smaller (216 windows at --tile 64 with the test's model), so the old code finished it, slowly.
    """
    photo = tmp_path / "wide.jpg"
    _photo((800, 534)).save(photo)
    output = tmp_path / "o.png"
    status, _, err = _call(cli.stylize_main, ["--model", model, "--input", photo, "--output", output, "--tile", "64"], capsys)
    _assert_one_line_error(status, err, "--tile 64 would cut this 800x534 photo into 216 windows, 1944 generator passes")
    assert "use --tile 128 or more" in err and not output.exists()


@pytest.mark.parametrize("scales", [3, 6, 8])
def test_automatic_and_suggested_tiles_keep_within_the_work_bound(scales: int) -> None:
    fast = fast_generator(PyramidGenerator(GeneratorConfig(scales=scales, channels=4)))
    for height, width in [(2049, 2049), (1068, 1600), (300, 6000), (200, 4000), (4000, 6000), (9000, 9000), (9459, 9459)]:
        assert smallest_tile(fast, height, width, AUTO_TILE) == AUTO_TILE, (height, width)
        for tile in (64, 128, AUTO_TILE):
            suggested = smallest_tile(fast, height, width, tile)
            assert suggested >= tile and tile_work(fast, height, width, suggested)[0] <= max_windows(height, width)


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
                               "from texturenet.training.run import RunLock; from pathlib import Path; "
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
    assert _train_into(folder, capsys, "--iterations", "3", "--lr_step", "2", "--lr", "0.001")[0] == 0
    status, _, err = _train_into(folder, capsys, "--resume", "auto", "--iterations", "2")
    _assert_one_line_error(status, err, "has done 3 iterations, more than --iterations 2")
    status, out, err = _train_into(folder, capsys, "--resume", "auto", "--iterations", "4", "--lr_step", "2", "--lr", "0.01")
    assert status == 0, err
    assert "resuming with --lr 0.01; the checkpoint was trained with 0.001" in out
    state = load_checkpoint(folder / "style.pth")["train_state"]
    assert state["optimizer"]["param_groups"][0]["lr"] == pytest.approx(0.01 * 0.8 ** 2)  # the new schedule at iteration 4


# -- a run's files are the run's (issue 21, cases 3-6) ---------------------------------------------

RUN_NAME_ERRORS = [
    (["--name", "../escaped"], "is not a usable run name"),
    (["--name", "sub/run"], "is not a usable run name"),
    (["--name", ".hidden"], "is not a usable run name"),
    (["--name", "nul\0byte"], "is not a usable run name"),
    (["--name", "mosaic_iter3000"], "not ending in _iterN"),
]


@pytest.mark.parametrize("argv,phrase", RUN_NAME_ERRORS, ids=[repr(a[1]) for a, _ in RUN_NAME_ERRORS])
def test_run_names_that_leave_the_folder_or_read_as_a_checkpoint_are_refused(tmp_path: Path, capsys: pytest.CaptureFixture,
                                                                              argv: list[str], phrase: str) -> None:
    status, _, err = _train_into(tmp_path / "ckpt" / "in", capsys, *argv)
    _assert_one_line_error(status, err, phrase)
    assert not [p for p in tmp_path.rglob("*") if p.is_file()]  # nothing written, inside the folder or beside it


def test_a_texture_named_like_a_checkpoint_needs_a_name(tmp_path: Path, capsys: pytest.CaptureFixture, style_image: Path) -> None:
    texture = tmp_path / "glass_iter2.png"
    shutil.copy(style_image, texture)
    status, _, err = _train_into(tmp_path / "ckpt", capsys, "--texture", texture)
    _assert_one_line_error(status, err, "the run name 'glass_iter2' (from --texture) ends like a checkpoint along the way")
    assert _train_into(tmp_path / "ckpt", capsys, "--texture", texture, "--name", "glass")[0] == 0


def _renamed_run(source: Path, target: Path, name: str) -> bytes:
    """``source``'s checkpoint stored as run ``name`` in ``target``, as a run of that name made before such names were refused."""
    checkpoint = torch.load(source, weights_only=True)
    checkpoint["name"] = name
    save_atomic(checkpoint, target)
    return target.read_bytes()


def test_a_run_named_like_an_iteration_of_another_is_left_alone(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    folder = tmp_path / "ckpt"
    assert _train_into(folder, capsys, "--name", "other", "--iterations", "3")[0] == 0
    theirs = _renamed_run(folder / "other.pth", folder / "mosaic_iter3000.pth", "mosaic_iter3000")
    assert _train_into(folder, capsys, "--name", "mosaic")[0] == 0  # not an earlier run of 'mosaic'
    status, out, err = _train_into(folder, capsys, "--name", "mosaic", "--overwrite")
    assert status == 0 and "--overwrite: removed 1 checkpoint(s) of the earlier run 'mosaic'" in out, err
    status, out, err = _train_into(folder, capsys, "--name", "mosaic", "--resume", "auto", "--iterations", "4")
    assert status == 0 and "resuming at iteration 1" in out, err  # its own mosaic.pth (1), not the other run's file (3)
    assert (folder / "mosaic_iter3000.pth").read_bytes() == theirs
    # A run that could reach iteration 3000 could write over it: refused, --overwrite or not.
    for extra in ((), ("--overwrite",)):
        status, _, err = _train_into(folder, capsys, "--name", "mosaic", "--resume", "auto", "--iterations", "3000", *extra)
        _assert_one_line_error(status, err, f"could write over {folder / 'mosaic_iter3000.pth'}, which holds another run ('mosaic_iter3000')")
    assert (folder / "mosaic_iter3000.pth").read_bytes() == theirs


def test_resuming_another_run_into_a_finished_one_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    folder = tmp_path / "ckpt"
    assert _train_into(folder, capsys)[0] == 0
    finished = {path.name: path.read_bytes() for path in folder.glob("style*")}
    assert {"style.pth", "style_loss.png", "style_losses.csv"} <= set(finished)
    assert _train_into(folder, capsys, "--name", "other", "--save_every", "1", "--iterations", "3")[0] == 0
    status, _, err = _train_into(folder, capsys, "--resume", folder / "other_iter2.pth", "--iterations", "4")
    _assert_one_line_error(status, err, f"run 'style' already has checkpoints in {folder} (style.pth), and --resume "
                                        f"{folder / 'other_iter2.pth'} is not one of them (it holds run 'other')")
    assert "--name OTHER" in err and "--overwrite" in err
    assert {path.name: path.read_bytes() for path in folder.glob("style*")} == finished
    # Its own checkpoint continues it; another run's, under a new name, starts a run beside it.
    assert _train_into(folder, capsys, "--resume", folder / "style.pth", "--iterations", "2")[0] == 0
    status, out, err = _train_into(folder, capsys, "--resume", folder / "other_iter2.pth", "--iterations", "4", "--name", "branch")
    assert status == 0 and "resuming at iteration 2" in out, err
    assert load_checkpoint(folder / "branch.pth")["iteration"] == 4


def test_a_diverged_run_stops_and_keeps_the_last_good_model(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    folder = tmp_path / "ckpt"
    assert _train_into(folder, capsys, "--iterations", "2")[0] == 0
    before = {path.name: path.read_bytes() for path in folder.iterdir()}
    status, _, err = _train_into(folder, capsys, "--resume", "auto", "--lr", "1e30", "--iterations", "30", "--log_every", "10",
                                 "--save_every", "5")
    _assert_one_line_error(status, err, "training diverged: the ")
    line = next(line for line in err.splitlines() if "error:" in line)
    assert re.search(r"losse?s? (was|were) NaN or infinite at iteration \d+; likely cause: a learning rate too high "
                     r"\(--lr 1e\+30: try 10x lower\)", line), line
    assert f"stopped without writing anything: the last checkpoint, {folder / 'style.pth'}, is kept as it was" in line
    assert {path.name: path.read_bytes() for path in folder.iterdir()} == before  # no NaN checkpoint, grid or loss table


def test_a_loss_that_overflows_at_the_first_step_names_its_weights(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    status, _, err = _train_into(tmp_path / "ckpt", capsys, "--style_weight", "1e38", "--iterations", "2")
    _assert_one_line_error(status, err, "training diverged: the total loss was NaN or infinite at iteration 1; likely cause: "
                                        "loss weights too large for float32 (--style_weight, --content_weight, --tv_weight); "
                                        "stopped without writing anything: no checkpoint of this run was written")
    assert not list((tmp_path / "ckpt").glob("*.pth"))


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
        elif kind in WRONG_KINDS:  # the right shape, another kind of tensor
            state["to_rgb.weight"] = WRONG_KINDS[kind](state["to_rgb.weight"])
        elif kind.startswith("iteration_"):
            checkpoint["iteration"] = {"iteration_string": "abc", "iteration_negative": -4, "iteration_bool": True}[kind]
    torch.save(checkpoint, path)
    return path


WRONG_KINDS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "sparse_weights": lambda w: w.to_sparse(),
    "quantized_weights": lambda w: torch.quantize_per_tensor(w, 0.01, 0, torch.qint8),
    "complex_weights": lambda w: w.to(torch.complex64),
    "bool_weights": lambda w: w > 0,
    "integer_weights": lambda w: w.round().long(),
    "fp8_weights": lambda w: w.to(torch.float8_e4m3fn),
}
"""Issue 21, case 18: weights of the right shape but the wrong kind (sparse and quantized ones gave tracebacks, the
others loaded silently cast)."""


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
    "sparse_weights": "1 weight tensor(s) are not dense floating-point tensors: to_rgb.weight (sparse_coo tensor)",
    "quantized_weights": "1 weight tensor(s) are not dense floating-point tensors: to_rgb.weight (quantized tensor)",
    "complex_weights": "1 weight tensor(s) are not dense floating-point tensors: to_rgb.weight (complex64)",
    "bool_weights": "1 weight tensor(s) are not dense floating-point tensors: to_rgb.weight (bool)",
    "integer_weights": "1 weight tensor(s) are not dense floating-point tensors: to_rgb.weight (int64)",
    "fp8_weights": "1 weight tensor(s) are not dense floating-point tensors: to_rgb.weight (float8_e4m3fn)",
    "iteration_string": "is damaged: iteration must be a whole number >= 0, got 'abc'",
    "iteration_negative": "is damaged: iteration must be a whole number >= 0, got -4",
    "iteration_bool": "is damaged: iteration must be a whole number >= 0, got True",
}


@pytest.mark.parametrize("kind", sorted(CRAFTED))
def test_crafted_checkpoints_are_refused_before_anything_is_built(tmp_path: Path, capsys: pytest.CaptureFixture, model: Path,
                                                                  kind: str) -> None:
    checkpoint = _crafted(tmp_path / "ckpt", kind, model)
    status, _, err = _call(cli.stylize_main, ["--model", checkpoint, "--input", PHOTO, "--output", tmp_path / "o.png"], capsys)
    _assert_one_line_error(status, err, CRAFTED[kind])
    assert str(checkpoint) in err
    status, _, err = _call(cli.train_main, [*TINY, "--checkpoint_dir", tmp_path / "run", "--resume", checkpoint], capsys)
    _assert_one_line_error(status, err, CRAFTED[kind])
    assert str(checkpoint) in err
    assert not (tmp_path / "o.png").exists()


def test_one_bad_model_never_hides_the_others_in_the_gui_list(tmp_path: Path, model: Path) -> None:
    """The GUI's /api/models list (ModelShelf.listing): a sparse file made it answer 500, so no model was listed."""
    from texturenet.apps.gui.models import ModelShelf

    folder = tmp_path / "models"
    folder.mkdir()
    shutil.copy(model, folder / "good.pth")
    for kind in ("sparse_weights", "quantized_weights", "iteration_string"):
        _crafted(folder, kind, model)
    listed = {entry["name"]: entry for entry in ModelShelf(folder, torch.device("cpu")).listing()}
    assert sorted(listed) == ["good", "iteration_string", "quantized_weights", "sparse_weights"]
    assert listed["good"]["mode"] == "style" and "error" not in listed["good"]
    for kind in ("sparse_weights", "quantized_weights", "iteration_string"):  # listed as unusable, saying why
        assert listed[kind]["mode"] is None and CRAFTED[kind] in listed[kind]["error"], listed[kind]


# -- crafted resume states (issue 21, cases 5 and 17) ---------------------------------------------

def _adam(checkpoint: dict) -> dict:
    return checkpoint["train_state"]["optimizer"]


def _set(target: dict, key: object, value: object) -> None:
    target[key] = value


RESUME: dict[str, tuple[Callable[[dict], object], str]] = {
    "train_state_a_list": (lambda c: _set(c, "train_state", [1]), "train_state must be a dict, got a list"),
    "no_texture_sha256": (lambda c: c["train_state"].pop("texture_sha256"), "train_state has no texture_sha256"),
    "texture_sha256_a_number": (lambda c: _set(c["train_state"], "texture_sha256", 7), "texture_sha256 must be a SHA-256 in hex, got 7"),
    "config_a_string": (lambda c: _set(c["train_state"], "config", "lr=1"), "config: it must be a dict, got a str"),
    "config_without_loss": (lambda c: c["train_state"]["config"].pop("loss"), "config: it has no loss settings"),
    "unknown_loss_key": (lambda c: _set(c["train_state"]["config"]["loss"], "colour", "red"), "config: loss has unknown key(s) 'colour'"),
    "loss_weight_a_string": (lambda c: _set(c["train_state"]["config"]["loss"], "style_weight", "3"),
                             "config: style_weight must be a number >= 0, got '3'"),
    "param_groups_changed": (lambda c: _adam(c)["param_groups"][0]["params"].pop(),
                             "optimizer's parameter group does not list the generator's"),
    "two_param_groups": (lambda c: _adam(c)["param_groups"].append(dict(_adam(c)["param_groups"][0])),
                         "optimizer has 2 parameter groups; the trainer's Adam has 1"),
    "lr_nan": (lambda c: _set(_adam(c)["param_groups"][0], "lr", float("nan")), "optimizer's lr is nan; expected a finite number > 0"),
    "betas_above_one": (lambda c: _set(_adam(c)["param_groups"][0], "betas", (0.9, 1.5)), "optimizer's betas is (0.9, 1.5)"),
    "amsgrad_on": (lambda c: _set(_adam(c)["param_groups"][0], "amsgrad", True), "optimizer's amsgrad is True; the trainer's Adam has False"),
    "exp_avg_wrong_shape": (lambda c: _set(_adam(c)["state"][0], "exp_avg", torch.zeros(7)),
                            "optimizer state of parameter 0: exp_avg has shape 7 (expected 4x6x3x3)"),
    "exp_avg_sq_negative": (lambda c: _adam(c)["state"][3]["exp_avg_sq"].fill_(-1.0),
                            "optimizer state of parameter 3: exp_avg_sq holds negative values"),
    "exp_avg_infinite": (lambda c: _adam(c)["state"][1]["exp_avg"].fill_(float("inf")),
                         "optimizer state of parameter 1: exp_avg holds NaN or infinite values"),
    "exp_avg_sparse": (lambda c: _set(_adam(c)["state"][0], "exp_avg", _adam(c)["state"][0]["exp_avg"].to_sparse()),
                       "optimizer state of parameter 0: exp_avg is a sparse_coo tensor"),
    "step_negative": (lambda c: _set(_adam(c)["state"][0], "step", torch.tensor(-3.0)),
                      "optimizer state of parameter 0: step must be a whole number >= 0"),
    "state_of_a_parameter_not_there": (lambda c: _set(_adam(c)["state"], 999, _adam(c)["state"][0]),
                                       "optimizer holds state for parameter 999, which the generator does not have"),
    "scheduler_unknown_key": (lambda c: _set(c["train_state"]["scheduler"], "optimizer", None), "scheduler has unknown key(s) 'optimizer'"),
    "scheduler_gamma_nan": (lambda c: _set(c["train_state"]["scheduler"], "gamma", float("nan")), "scheduler's gamma is nan"),
    "scaler_scale_nan": (lambda c: _set(c["train_state"], "scaler", {"scale": float("nan"), "growth_factor": 2.0, "backoff_factor": 0.5,
                                                                      "growth_interval": 2000, "_growth_tracker": 0}), "scaler's scale is nan"),
    "torch_rng_7_bytes": (lambda c: _set(c["train_state"], "torch_rng", torch.zeros(7, dtype=torch.uint8)),
                          "torch_rng is not a random-number state: Expected a CPUGeneratorImplState of size 5056"),
    "torch_rng_garbage": (lambda c: c["train_state"]["torch_rng"].fill_(7), "torch_rng is not a random-number state: Invalid mt19937 state"),
    "cuda_rng_a_string": (lambda c: _set(c["train_state"], "cuda_rng", "abc"), "cuda_rng must be a list of byte tensors"),
    "history_a_dict": (lambda c: _set(c["train_state"], "history", {}), "history must be a list, got a dict"),
    "history_value_a_string": (lambda c: _set(c["train_state"]["history"][0], "total", "abc"),
                               "history entry 0 has values that are not numbers: 'total'"),
    "history_without_iteration": (lambda c: c["train_state"]["history"][1].pop("iteration"),
                                  "history entry 1 is not a dict with an iteration and an lr"),
    "history_past_the_checkpoint": (lambda c: _set(c["train_state"]["history"][1], "iteration", 99),
                                    "history entry 1 has iteration 99, not in 2..2"),
    "iteration_negative": (lambda c: _set(c, "iteration", -4), "is damaged: iteration must be a whole number >= 0, got -4"),
    "iteration_a_string": (lambda c: _set(c, "iteration", "abc"), "is damaged: iteration must be a whole number >= 0, got 'abc'"),
}
"""Issue 21, case 17 (and case 5's crafted optimiser state): each row changes one part of a real training state.
Before, these gave tracebacks (KeyError, ValueError, AttributeError, TypeError, RuntimeError, some after "resuming"
was printed or at the first save), trained on NaN (lr NaN, negative exp_avg_sq), or ran 9 steps instead of 2 and
wrote ``_iter-4.pth`` (a negative iteration)."""

TRAINED = [*TINY, "--log_every", "1", "--texture", ROOT / "texturenet" / "assets" / "style.png",
           "--data_dir", ROOT / "texturenet" / "assets" / "photos"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real checkpoint of a short real run (2 iterations, a loss logged at each), to craft resume states from."""
    folder = tmp_path_factory.mktemp("trained")
    try:
        cli.train_main([str(a) for a in [*TRAINED, "--checkpoint_dir", folder]])
    except SystemExit as stop:
        assert not stop.code, stop.code
    return folder / "style.pth"


def _craft_resume(trained: Path, folder: Path, kind: str) -> Path:
    checkpoint = torch.load(trained, weights_only=True)
    RESUME[kind][0](checkpoint)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{kind}.pth"
    torch.save(checkpoint, path)
    return path


@pytest.mark.parametrize("kind", sorted(RESUME))
def test_crafted_resume_states_are_refused_before_anything_is_built(tmp_path: Path, capsys: pytest.CaptureFixture, trained: Path,
                                                                    kind: str) -> None:
    path = _craft_resume(trained, tmp_path / "ckpt", kind)
    status, out, err = _call(cli.train_main, [*TRAINED, "--iterations", "4", "--checkpoint_dir", tmp_path / "ckpt", "--resume", path], capsys)
    _assert_one_line_error(status, err, RESUME[kind][1])
    assert str(path) in err
    assert "training 'style'" not in out + err and "resuming" not in out + err  # refused before anything was built or printed
    assert sorted(p.name for p in (tmp_path / "ckpt").iterdir()) == [path.name]  # nothing written, no lock left


def test_a_crafted_resume_state_through_the_script(tmp_path: Path, trained: Path) -> None:
    path = _craft_resume(trained, tmp_path / "ckpt", "exp_avg_wrong_shape")
    result = subprocess.run([sys.executable, str(ROOT / "scripts" / "train.py"), *map(str, TRAINED), "--iterations", "4",
                             "--checkpoint_dir", str(tmp_path / "ckpt"), "--resume", str(path)], capture_output=True, text=True, timeout=300)
    _assert_one_line_error(result.returncode, result.stderr, f"--resume {path}: its training state is unusable: {RESUME['exp_avg_wrong_shape'][1]}")
    assert "resuming" not in result.stdout


def test_real_resume_states_pass_the_check(trained: Path) -> None:
    """The check refuses nothing that texturenet wrote: today's run, and the checkpoints of an earlier main (tests/fixtures/compat)."""
    from texturenet.model.checkpoint import load_checkpoint, resume_state_problem

    for path in [trained, *sorted((ROOT / "tests" / "fixtures" / "compat").glob("*.pth"))]:
        assert resume_state_problem(load_checkpoint(path)) == "", path


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


@pytest.mark.parametrize("kind,phrase", [
    ("nan", "1 weight tensor(s) hold NaN or infinite values: 0.weight"),
    ("nan_from_environment", "1 weight tensor(s) hold NaN or infinite values: 0.weight"),
    ("sparse", "1 weight tensor(s) are not dense floating-point tensors: 0.weight (sparse_coo tensor)"),
    ("fp8", "1 weight tensor(s) are not dense floating-point tensors: 0.weight (float8_e4m3fn)"),
])
def test_vgg_weights_are_checked_like_checkpoints(tmp_path: Path, capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch,
                                                  kind: str, phrase: str) -> None:
    """Issue 21, case 5: one NaN in TEXTURENET_VGG_WEIGHTS made every loss NaN and the saved model NaN, with exit status 0."""
    weights = _fake_vgg(tmp_path, "vgg19")
    state = torch.load(weights, weights_only=True)
    first = torch.zeros(state["features.0.weight"].shape)
    first[0, 0, 0, 0] = float("nan")
    state["features.0.weight"] = {"sparse": first.nan_to_num().to_sparse(), "fp8": first.nan_to_num().to(torch.float8_e4m3fn)}.get(kind, first)
    torch.save(state, weights)
    argv = [*TINY, "--loss_net", "vgg19", "--checkpoint_dir", tmp_path / "run"]
    if kind == "nan_from_environment":  # the variable sets --vgg_weights' default
        monkeypatch.setenv(cli.parsers.WEIGHTS_ENV, str(weights))
        argv = argv[2:]
    else:
        argv += ["--vgg_weights", weights]
    status, _, err = _call(cli.train_main, argv, capsys)
    _assert_one_line_error(status, err, f"--vgg_weights {weights}: {phrase}")
    assert not list((tmp_path / "run").glob("*.pth"))


@pytest.mark.parametrize("value,phrase", [
    ("99999999999999999999", "(too large)"), ("2147483648", "(too large)"), ("abc", "(not a whole number >= 0)"),
    ("-1", "(not a whole number >= 0)"), ("closed", "(Bad file descriptor)"), ("read_only", "(it is open for reading only)"),
])
def test_bad_events_descriptor_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch, value: str,
                                           phrase: str) -> None:
    """Issue 21, case 22: TEXTURENET_EVENTS_FD (the GUI's progress channel) past a C int was a TypeError traceback."""
    import resource

    from texturenet.training.monitor import EVENTS_FD

    descriptor = os.open(PHOTO, os.O_RDONLY) if value == "read_only" else None
    try:
        if value == "closed":  # the highest descriptor this process may have: not open
            value = str(resource.getrlimit(resource.RLIMIT_NOFILE)[0] - 1)
        elif descriptor is not None:
            value = str(descriptor)
        monkeypatch.setenv(EVENTS_FD, value)
        status, out, err = _call(cli.train_main, [*TINY, "--checkpoint_dir", tmp_path], capsys)
    finally:
        if descriptor is not None:
            os.close(descriptor)
    _assert_one_line_error(status, err, f"{EVENTS_FD}='{value}' is not an open file descriptor {phrase}; unset it")
    assert "training 'style'" not in out and not list(tmp_path.glob("*.pth"))


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
