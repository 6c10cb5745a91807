"""Colour preservation: keep the photo's colours, take only the stylised luminance.

A style network repaints the photo in the style's palette. Often one wants the brush strokes
but not the palette. Gatys, Bethge, Hertzmann & Shechtman 2016, "Preserving color in neural
artistic style transfer" (arXiv:1606.05897), section "Luminance-only transfer": express both
images in YIQ, keep the stylised image's luminance Y and the photo's colour channels I and Q,
and convert back to RGB. (The paper also matches the style image's luminance statistics to the
photo's before optimising; a trained feed-forward network has no style image at inference, so
that step does not apply here.)

The combination is per pixel, so it works at any size, on tiled outputs, and on video frames.
Big images are processed in strips of rows to keep the float copies small.
"""
from __future__ import annotations

import numpy as np

YIQ_FROM_RGB = np.array(
    [[0.299, 0.587, 0.114],  # Y: luminance (ITU-R BT.601 weights)
     [0.596, -0.274, -0.322],  # I: orange-blue
     [0.211, -0.523, 0.312]],  # Q: purple-green
    dtype=np.float64,
)
"""NTSC RGB -> YIQ matrix (rows Y, I, Q), as used by Gatys et al. 2016."""
RGB_FROM_YIQ = np.linalg.inv(YIQ_FROM_RGB)

_ROWS_PER_STRIP = 512


def rgb_to_yiq(rgb: np.ndarray) -> np.ndarray:
    """(..., 3) RGB (any scale) -> (..., 3) YIQ on the same scale, float32."""
    return np.asarray(rgb, dtype=np.float32) @ YIQ_FROM_RGB.T.astype(np.float32)


def yiq_to_rgb(yiq: np.ndarray) -> np.ndarray:
    """(..., 3) YIQ -> (..., 3) RGB on the same scale, float32 (not clipped: YIQ holds colours RGB cannot show)."""
    return np.asarray(yiq, dtype=np.float32) @ RGB_FROM_YIQ.T.astype(np.float32)


def preserve_color(photo: np.ndarray, stylised: np.ndarray) -> np.ndarray:
    """Luminance of ``stylised`` with the colour (I, Q) of ``photo``; uint8 (..., H, W, 3) in and out.

    Both arrays must have the same shape (a batch of video frames works too). Colours outside
    the RGB cube after the conversion back are clipped.
    """
    if photo.shape != stylised.shape:
        raise ValueError(f"photo {photo.shape} and stylised {stylised.shape} must have the same shape")
    output = np.empty_like(stylised)
    rows = photo.shape[-3]
    for top in range(0, rows, _ROWS_PER_STRIP):
        strip = (..., slice(top, top + _ROWS_PER_STRIP), slice(None), slice(None))
        yiq = rgb_to_yiq(photo[strip])
        yiq[..., 0] = rgb_to_yiq(stylised[strip])[..., 0]
        output[strip] = np.clip(np.rint(yiq_to_rgb(yiq)), 0, 255).astype(np.uint8)
    return output
