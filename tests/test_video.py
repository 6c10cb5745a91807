"""Video stylisation through the real script: frame count, size, frame rate, stylised frames, noise modes, bad files."""
from __future__ import annotations

import re
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import BUNDLED_PHOTOS, run_script

av = pytest.importorskip("av", reason="video needs PyAV (pip install 'texturenet[video]')")

from texturenet.model.noise import IndependentNoise, SharedNoise
from texturenet.model.checkpoint import load_generator  # noqa: E402
from texturenet.stylize.video import VideoWriter  # noqa: E402


def _pan_clip(path: Path, frames: int, width: int, height: int, rate: Fraction, step: int = 2) -> list[np.ndarray]:
    """A clip panning across a bundled photo by ``step`` pixels a frame; returns the frames written."""
    photo = np.asarray(Image.open(sorted(BUNDLED_PHOTOS.glob("*.jpg"))[0]).convert("RGB").resize((width + step * frames, height)))
    clip = [np.ascontiguousarray(photo[:, t * step:t * step + width]) for t in range(frames)]
    with VideoWriter(path, rate, width, height) as writer:
        for frame in clip:
            writer.write(frame)
    return clip


def _read(path: Path) -> tuple[list[np.ndarray], Fraction]:
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        return [frame.to_ndarray(format="rgb24") for frame in container.decode(stream)], stream.average_rate


def _flicker(stdout: str) -> float:
    return float(re.search(r"flicker ([0-9.]+)", stdout).group(1))


@pytest.mark.parametrize("width, height", [(48, 36), (45, 33)], ids=["even", "odd"])
def test_script_stylises_every_frame_keeping_rate_and_size(tmp_path: Path, random_model: Path, width: int, height: int) -> None:
    clip = _pan_clip(tmp_path / "clip.mp4", 7, width, height, Fraction(25, 2))
    result = run_script("stylize.py", "--model", random_model, "--input", tmp_path / "clip.mp4", "--output", tmp_path / "out.mkv",
                        "--batch_size", 3)  # batches of 3, 3, 1
    assert result.returncode == 0, result.stderr
    assert "frames:" in result.stderr  # the progress bar
    frames, rate = _read(tmp_path / "out.mkv")
    assert len(frames) == 7 and rate == Fraction(25, 2)
    assert all(frame.shape == (height, width, 3) for frame in frames)
    inputs, _ = _read(tmp_path / "clip.mp4")
    assert all(np.abs(a.astype(int) - b).mean() > 10 for a, b in zip(frames, inputs))  # stylised, not copied
    assert f"7 frames, {width}x{height} at 12.5 fps" in result.stdout and _flicker(result.stdout) > 0


def test_fixed_noise_flickers_less_than_fresh_noise(tmp_path: Path, random_model: Path) -> None:
    """A slow pan: with the same noise field on every frame the output moves with the picture; fresh noise adds its own motion."""
    _pan_clip(tmp_path / "clip.mp4", 6, 40, 32, Fraction(10), step=1)
    flicker = {}
    for mode in ("fixed", "fresh"):
        result = run_script("stylize.py", "--model", random_model, "--input", tmp_path / "clip.mp4",
                            "--output", tmp_path / f"{mode}.mp4", "--video_noise", mode, "--noise_factor", "1")
        assert result.returncode == 0, result.stderr
        flicker[mode] = _flicker(result.stdout)
    assert flicker["fixed"] < 0.8 * flicker["fresh"], flicker


def test_shared_noise_gives_each_frame_the_noise_of_a_batch_of_one(random_model: Path) -> None:
    """``SharedNoise`` (the fixed video noise): batching does not change any frame's result."""
    generator = load_generator(random_model)
    frames = torch.rand(3, 3, 20, 28, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        batched = generator(frames, noise=SharedNoise(torch.Generator().manual_seed(5)))
        for frame, result in zip(frames, batched):
            alone = generator(frame[None], noise=IndependentNoise(torch.Generator().manual_seed(5)))[0]
            assert torch.allclose(result, alone, atol=1e-5)
        assert not torch.allclose(batched, generator(frames, noise=IndependentNoise(torch.Generator().manual_seed(5))), atol=1e-3)


def test_bad_video_gives_one_clear_line(tmp_path: Path, random_model: Path) -> None:
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 8)
    result = run_script("stylize.py", "--model", random_model, "--input", broken, "--output", tmp_path / "out.mp4")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.strip().count("\n") == 0 and "is not a readable video" in result.stderr
    _pan_clip(tmp_path / "clip.mp4", 2, 16, 16, Fraction(5))
    result = run_script("stylize.py", "--model", random_model, "--input", tmp_path / "clip.mp4", "--output", tmp_path / "out.png")
    assert result.returncode == 2 and "--output must be a video file" in result.stderr and "Traceback" not in result.stderr


def _ts_clip(path: Path, width: int, height: int, frames: int) -> None:
    """An MPEG-TS clip (H.264) of ``frames`` flat frames getting brighter: TS files join by plain concatenation."""
    with av.open(str(path), "w", format="mpegts") as container:
        stream = container.add_stream("libx264", rate=10)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        for t in range(frames):
            picture = np.full((height, width, 3), 30 + 20 * t, np.uint8)
            for packet in stream.encode(av.VideoFrame.from_ndarray(picture, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)


def _damage_packet(path: Path, index: int) -> None:
    """Overwrite the ``index``-th video packet's bytes with 0xFF: the decoder fails there (InvalidDataError)."""
    with av.open(str(path)) as container:
        packets = [(packet.pos, packet.size) for packet in container.demux(container.streams.video[0]) if packet.size]
    data = bytearray(path.read_bytes())
    position, size = packets[index]
    data[position:position + size] = b"\xff" * size
    path.write_bytes(bytes(data))


def test_resolution_change_mid_stream_is_resized_to_the_first_frame(tmp_path: Path, random_model: Path) -> None:
    """``cat a.ts b.ts``: the frames after the change are resized to the first frame's size, said once (issue 21, case 13)."""
    _ts_clip(tmp_path / "a.ts", 48, 32, 5)
    _ts_clip(tmp_path / "b.ts", 32, 24, 4)
    joined = tmp_path / "joined.ts"
    joined.write_bytes((tmp_path / "a.ts").read_bytes() + (tmp_path / "b.ts").read_bytes())
    result = run_script("stylize.py", "--model", random_model, "--input", joined, "--output", tmp_path / "out.mp4")
    assert result.returncode == 0, result.stderr
    said = [line for line in (result.stdout + result.stderr).splitlines() if "frame size changes" in line]
    assert len(said) == 1 and "from 48x32 to 32x24 at frame 6; frames of another size are resized to 48x32" in said[0], said
    frames, _ = _read(tmp_path / "out.mp4")
    assert len(frames) == 9 and all(frame.shape == (32, 48, 3) for frame in frames)


@pytest.mark.parametrize("damaged, kept", [(8, 6), (0, 0)], ids=["mid-stream", "first-frame"])
def test_a_damaged_frame_keeps_the_frames_before_it(tmp_path: Path, random_model: Path, damaged: int, kept: int) -> None:
    """The message said --output holds the frames before a damaged one, and the output had been deleted (issue 21, case 10).

    Now the video is finished with the frames stylised so far and put in place, and the line
    (exit 2) says how many; with nothing before the damage, nothing is written and it says so.
    """
    clip, output = tmp_path / "clip.mp4", tmp_path / "out.mp4"
    _pan_clip(clip, 12, 32, 24, Fraction(10))
    _damage_packet(clip, damaged)
    result = run_script("stylize.py", "--model", random_model, "--input", clip, "--output", output)
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
    error = [line for line in result.stderr.splitlines() if "error:" in line]
    assert len(error) == 1 and "damaged" in error[0] and "(InvalidDataError)" in error[0], result.stderr
    if kept:
        assert f"after {kept} frame(s); --output {output} holds the {kept} stylised frame(s) before it" in error[0]
        frames, rate = _read(output)
        assert len(frames) == kept and rate == Fraction(10) and frames[0].shape == (24, 32, 3)
    else:
        assert "its first frame is damaged (InvalidDataError); nothing was written" in error[0] and not output.exists()
    assert [path.name for path in tmp_path.iterdir() if ".tmp" in path.name] == []  # no temporary file left behind
