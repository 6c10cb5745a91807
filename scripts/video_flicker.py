#!/usr/bin/env python3
"""Measure video flicker of a style model: noise factor 0, fixed noise, fresh noise per frame.

Makes a clip by panning and zooming across a real photo (so the true motion is known and
smooth), stylises it three ways with ``texturenet.stylize.video.stylize_video`` and prints
flicker = mean |out_t - out_(t-1)| / mean |in_t - in_(t-1)| for each; writes the clip, the three
stylised videos and a strip of consecutive frames (input and the three settings) to --output_dir.
Figures: docs/VIDEO.md.
"""
import argparse
import sys
from fractions import Fraction
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a source checkout without installing

import av  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from PIL import Image  # noqa: E402

from texturenet.config import StylizeConfig  # noqa: E402
from texturenet.io.images import load_rgb  # noqa: E402
from texturenet.stylize.stylizer import Stylizer  # noqa: E402
from texturenet.stylize.video import VideoWriter, stylize_video  # noqa: E402

SETTINGS = (("noise factor 0", 0.0, "fixed"), ("noise factor 1, fixed noise", 1.0, "fixed"), ("noise factor 1, fresh noise", 1.0, "fresh"))


def pan_zoom(photo: Image.Image, frames: int, width: int, height: int) -> list[np.ndarray]:
    """Frames of a camera moving right and zooming in by 25% over the clip, as a real pan would look."""
    aspect = width / height
    full_w = min(photo.width, photo.height * aspect) * 0.8
    result = []
    for t in range(frames):
        progress = t / max(frames - 1, 1)
        box_w = full_w / (1 + 0.25 * progress)
        box_h = box_w / aspect
        left = (photo.width - full_w) * (0.1 + 0.8 * progress) + (full_w - box_w) / 2
        top = (photo.height - box_h) / 2
        crop = photo.resize((width, height), Image.BICUBIC, box=(left, top, left + box_w, top + box_h))
        result.append(np.asarray(crop))
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, required=True, help="Style checkpoint (required).")
    parser.add_argument("--photo", type=Path, required=True, help="Photo to pan and zoom across (required).")
    parser.add_argument("--output_dir", type=Path, required=True, help="Where the clip, the stylised videos and frames.png go (required).")
    parser.add_argument("--frames", type=int, default=48, help="Frames in the clip (default: 48).")
    parser.add_argument("--size", default="320x240", help="WIDTHxHEIGHT of the clip (default: 320x240).")
    parser.add_argument("--rate", type=int, default=24, help="Frames per second (default: 24).")
    args = parser.parse_args()
    width, height = (int(v) for v in args.size.split("x"))
    args.output_dir.mkdir(parents=True, exist_ok=True)
    clip_path = args.output_dir / "clip.mp4"
    clip = pan_zoom(load_rgb(args.photo), args.frames, width, height)
    with VideoWriter(clip_path, Fraction(args.rate), width, height) as writer:
        for frame in clip:
            writer.write(frame)
    stylizer = Stylizer(args.model, torch.device("cpu"))
    print(f"clip: {args.frames} frames {width}x{height} from {args.photo.name}; model {args.model}")
    print("| setting | flicker |\n|---|---|")
    strips = [np.concatenate(clip[:4], axis=1)]
    for index, (name, strength, noise) in enumerate(SETTINGS):
        out = args.output_dir / f"stylised_{index}.mp4"
        result = stylize_video(stylizer, clip_path, out, StylizeConfig(noise_factor=strength, video_noise=noise))
        print(f"| {name} | {result.flicker:.3f} |")
        with av.open(str(out)) as container:
            decoded = [f.to_ndarray(format="rgb24") for _, f in zip(range(4), container.decode(video=0))]
        strips.append(np.concatenate(decoded, axis=1))
    Image.fromarray(np.concatenate(strips, axis=0)).save(args.output_dir / "frames.png")
    print(f"wrote {args.output_dir}/clip.mp4, stylised_0..2.mp4, frames.png (rows: input, then the settings above; first 4 frames)")


if __name__ == "__main__":
    main()
