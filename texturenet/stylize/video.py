"""Stylise a video frame by frame, and measure how much the result flickers.

A texture network has no notion of time: each frame is stylised on its own. Two things make
consecutive outputs differ more than consecutive inputs. The noise input (Ulyanov et al. 2016,
Sec. 3.1) is redrawn for every call, so the texture "boils" even on a still scene; and instance
norm makes each frame's output depend on the whole frame's statistics. The first one we can
remove: ``noise="fixed"`` feeds every frame the same noise field (the one a single photo with
the same seed gets), so only the picture itself changes from frame to frame.

Flicker is measured as mean |out_t - out_(t-1)| / mean |in_t - in_(t-1)| over all consecutive
frames: 1 means the output changes exactly as much as the input does, more means the
stylisation adds motion of its own. docs/VIDEO.md lists measured values.

Frames of a video all have the same size, so they are stylised in batches; a batch holds at
most ``batch_size`` frames and no more pixels than an automatically tiled photo would
(``AUTO_TILE_PIXELS``), which bounds memory. Frames bigger than that (4K) go through the tiled
photo path one by one. Decoding and encoding use PyAV (FFmpeg); audio is not copied.
"""
from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from types import TracebackType
from typing import Any, Iterator, Optional

import numpy as np
import torch
from PIL import Image
from tqdm import tqdm

from . import color
from ..config import StylizeConfig
from ..io.images import resize_long_side
from ..errors import TexturenetError, printable
from ..io.files import atomic_path, check_target, refuse_overwriting_inputs
from .stylizer import Stylizer

ENCODERS = {".mp4": "libx264", ".m4v": "libx264", ".mov": "libx264", ".mkv": "libx264", ".webm": "libvpx-vp9"}
"""Output extension -> FFmpeg encoder (both ship with PyAV's wheels)."""
VIDEO_EXTENSIONS = frozenset(ENCODERS) | {".avi", ".mpg", ".mpeg", ".wmv", ".flv", ".ts", ".3gp", ".ogv"}
"""Inputs with these extensions are read as videos (any format FFmpeg decodes)."""


@dataclass
class VideoResult:
    """What :func:`stylize_video` wrote."""

    path: Path
    frames: int
    rate: Fraction
    width: int
    height: int
    flicker: float
    """mean |out_t - out_(t-1)| / mean |in_t - in_(t-1)| (nan for fewer than two frames or a still input)."""


def is_video(path: Path) -> bool:
    """Whether ``path`` names a video file (by its extension)."""
    return path.suffix.lower() in VIDEO_EXTENSIONS


def _av() -> Any:
    try:
        import av
    except ImportError:
        raise TexturenetError("video needs PyAV: pip install 'texturenet[video]' (or pip install av)") from None
    return av


class VideoWriter:
    """Encode RGB uint8 frames at a constant frame rate, with the encoder the file extension implies.

    Odd widths or heights cannot use 4:2:0 chroma subsampling, so such videos are written in
    4:4:4 (still H.264/VP9, but some players refuse it); even sizes use the usual 4:2:0.
    """

    def __init__(self, path: Path, rate: Fraction, width: int, height: int, quality: int = 18) -> None:
        av = _av()
        encoder = ENCODERS.get(path.suffix.lower())
        if encoder is None:
            raise TexturenetError(f"--output {printable(path)}: write videos as one of {', '.join(sorted(ENCODERS))}")
        self.container = av.open(str(path), mode="w")
        self.stream = self.container.add_stream(encoder, rate=rate)
        self.stream.width, self.stream.height = width, height
        self.stream.pix_fmt = "yuv420p" if width % 2 == 0 and height % 2 == 0 else "yuv444p"
        # Constant quality: 18 is close to visually lossless, so the stylised detail survives.
        self.stream.options = {"crf": str(quality)} if encoder == "libx264" else {"crf": str(quality + 13), "b": "0"}
        self._frame_type = av.VideoFrame

    def write(self, frame: np.ndarray) -> None:
        """Append one (H, W, 3) uint8 RGB frame."""
        for packet in self.stream.encode(self._frame_type.from_ndarray(np.ascontiguousarray(frame), format="rgb24")):
            self.container.mux(packet)

    def close(self) -> None:
        """Flush the encoder and finish the file."""
        for packet in self.stream.encode(None):
            self.container.mux(packet)
        self.container.close()

    def __enter__(self) -> "VideoWriter":
        return self

    def __exit__(self, kind: Optional[type], error: Optional[BaseException], trace: Optional[TracebackType]) -> None:
        self.close()


class _Flicker:
    """Running sums of mean absolute differences between consecutive input and output frames."""

    def __init__(self) -> None:
        self.previous: Optional[tuple[np.ndarray, np.ndarray]] = None
        self.inputs = self.outputs = 0.0

    def add(self, frame: np.ndarray, result: np.ndarray) -> None:
        frame, result = frame.astype(np.int16), result.astype(np.int16)
        if self.previous is not None:
            self.inputs += float(np.abs(frame - self.previous[0]).mean())
            self.outputs += float(np.abs(result - self.previous[1]).mean())
        self.previous = frame, result

    @property
    def ratio(self) -> float:
        return self.outputs / self.inputs if self.inputs > 0 else float("nan")


class _Frames:
    """A video's decoded RGB frames, every one the size of the first; the frame rate and frame count (0: unknown).

    Two ways a real file breaks the stream are handled here, so that what was stylised is kept:

    * **The resolution changes mid-stream** (``cat a.ts b.ts``: MPEG-TS is made to be joined like
      that). Later frames are resized to the first frame's size, said once, as ffmpeg does (its
      filter graph rescales to the size the encoder was opened with: a video stream has one size).
    * **A damaged frame** (a decoder error) ends the stream: iteration stops and :attr:`damage`
      says why, so the frames before it are finished and kept (:func:`stylize_video`).
    """

    def __init__(self, path: Path, max_size: Optional[int]) -> None:
        av = _av()
        self.path, self.max_size = path, max_size
        try:
            self._container = av.open(str(path))
        except av.error.FFmpegError as error:
            raise TexturenetError(f"--input {printable(path)} is not a readable video "
                                  f"({type(error).__name__}: {error.strerror or error})") from None
        if not self._container.streams.video:
            self._container.close()
            raise TexturenetError(f"--input {printable(path)} holds no video stream")
        self._stream = self._container.streams.video[0]
        rate = self._stream.average_rate or self._stream.guessed_rate
        if not rate:
            self._container.close()
            raise TexturenetError(f"--input {printable(path)} has no frame rate; re-encode it (e.g. ffmpeg -i IN -r 25 OUT.mp4)")
        self.rate, self.count = Fraction(rate), self._stream.frames
        self.damage: Optional[str] = None
        """Why decoding stopped early (the decoder's error), or None: the stream ended."""
        self.decoded = 0
        self._said_resized = False

    def __iter__(self) -> Iterator[np.ndarray]:
        size: Optional[tuple[int, int]] = None
        try:
            for frame in self._container.decode(self._stream):
                image = frame.to_image()
                if self.max_size and max(image.size) > self.max_size:
                    image = resize_long_side(image, self.max_size)
                if size is None:
                    size = image.size
                elif image.size != size:
                    self._resized(size, image.size)
                    image = image.resize(size, Image.Resampling.LANCZOS)
                self.decoded += 1
                yield np.asarray(image.convert("RGB"))
        except Exception as error:  # noqa: BLE001  (any decoder failure on the file's bytes is a damaged frame)
            self.damage = type(error).__name__
        finally:
            self._container.close()

    def _resized(self, first: tuple[int, int], now: tuple[int, int]) -> None:
        if not self._said_resized:
            self._said_resized = True
            tqdm.write(f"--input {printable(self.path)}: the frame size changes from {first[0]}x{first[1]} to {now[0]}x{now[1]} "
                       f"at frame {self.decoded + 1}; frames of another size are resized to {first[0]}x{first[1]}, as ffmpeg does")


def _batches(frames: Iterator[np.ndarray], size: int) -> Iterator[np.ndarray]:
    batch: list[np.ndarray] = []
    for frame in frames:
        batch.append(frame)
        if len(batch) == size:
            yield np.stack(batch)
            batch = []
    if batch:
        yield np.stack(batch)


def stylize_video(stylizer: Stylizer, source: Path, destination: Path, config: StylizeConfig = StylizeConfig()) -> VideoResult:
    """Stylise every frame of ``source`` into ``destination`` at the same frame rate and size.

    ``config.tile`` as in :meth:`Stylizer.stylize_array` (given, or frames above 2048x2048
    pixels: frame by frame in tiles); ``config.preserve_color`` keeps each frame's colours (see
    stylize/color.py); ``config.video_noise`` chooses a steady or a fresh noise field per frame.
    """
    stylizer.generator.config.require_mode("style", ": it cannot stylise a video (give --size WxH for a texture)")
    if not is_video(destination):
        raise TexturenetError(f"--input is a video, so --output must be a video file ({', '.join(sorted(ENCODERS))}); got {printable(destination)}")
    refuse_overwriting_inputs([source], [destination])
    check_target(destination, "video")
    decoder = _Frames(source, config.max_size)
    frames = iter(decoder)
    first = next(frames, None)
    if first is None:
        if decoder.damage:
            raise TexturenetError(f"--input {printable(source)}: its first frame is damaged ({decoder.damage}); nothing was written")
        raise TexturenetError(f"--input {printable(source)} holds no frames")
    height, width = first.shape[:2]
    rate = decoder.rate
    tiled = stylizer.tiles(height, width, config.tile)
    stylizer.check_tile(height, width, config.tile)
    per_batch = 1 if tiled else stylizer.per_batch(height, width, config.batch_size)
    fixed = config.video_noise == "fixed"
    seed = config.seed
    rng = torch.Generator(device=stylizer.device).manual_seed(seed)  # fresh noise: drawn on from here, frame after frame
    flicker = _Flicker()
    written = 0

    def all_frames() -> Iterator[np.ndarray]:
        yield first
        yield from frames

    with atomic_path(destination, "video") as temporary, VideoWriter(temporary, rate, width, height) as writer, \
            tqdm(total=decoder.count or None, desc="frames", unit="frame") as bar, torch.inference_mode():
        for batch in _batches(all_frames(), per_batch):
            if tiled:
                results = stylizer.stylize_array(batch[0], config.noise_factor, seed if fixed else seed + written, config.tile)[None]
            else:
                if fixed:
                    rng.manual_seed(seed)
                results = stylizer.stylize_batch(batch, config.noise_factor, rng, shared_noise=fixed)
            if config.preserve_color:
                results = color.preserve_color(batch, results)
            for frame, result in zip(batch, results):
                writer.write(result)
                flicker.add(frame, result)
            written += len(batch)
            bar.update(len(batch))
    if decoder.damage:  # the frames before it are in place: finished, playable, and said so
        raise TexturenetError(f"--input {printable(source)}: stopped at a damaged frame ({decoder.damage}) after {written} frame(s); "
                              f"--output {printable(destination)} holds the {written} stylised frame(s) before it")
    return VideoResult(destination, written, rate, width, height, flicker.ratio)
