"""How a trained generator is run on photos, folders and videos (:class:`StylizeConfig`)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from .limits import check_choice, check_seed, check_strength

VIDEO_NOISE = ("fixed", "fresh")


@dataclass(frozen=True)
class StylizeConfig:
    """How texturenet-stylize runs a trained generator on a photo, a folder or a video (stylize/stylizer.py, stylize/video.py)."""

    noise_factor: float = 1.0
    """The style strength, for models with the strength dial (every style model trained with max_strength > 0): 0 the photo's shapes in the style's colours, 1 the full style, up to the model's max_strength stronger still. For models without the dial (textures, older models) it scales the noise input: 0 deterministic, 1 as in training, more for stronger texture (Ulyanov et al. 2016, Sec. 4)."""
    seed: int = 0
    """Seed of the noise; the same seed gives the same picture."""
    max_size: Optional[int] = None
    """Shrink inputs so the longer side is at most this."""
    tile: Optional[int] = None
    """Stylise in overlapping NxN tiles (bounded memory for huge photos); 0 never tiles; unset, photos above 2048x2048 pixels are tiled in 512-pixel tiles. A tile that cuts a photo into more than 64 windows and more than one per 256x256 pixels is refused (tiling.max_windows)."""
    preserve_color: bool = False
    """Keep the photo's colours, take only the stylised luminance (Gatys et al. 2016, YIQ)."""
    batch_size: int = 8
    """Photos of one size (a folder's, or a video's frames) per forward pass; fewer for big ones: a batch holds at most 2048x2048 pixels in all."""
    video_noise: str = "fixed"
    """``fixed``: the same noise field on every frame (steady texture); ``fresh``: new noise for each frame (it flickers)."""

    def __post_init__(self) -> None:
        check_strength(self.noise_factor)
        check_seed(self.seed)
        if self.max_size is not None and self.max_size < 1:
            raise ValueError(f"max_size must be at least 1, got {self.max_size}")
        if self.tile is not None and (self.tile < 0 or 0 < self.tile < 64):
            raise ValueError(f"tile must be 0 (never tile) or at least 64 pixels, got {self.tile}")
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {self.batch_size}")
        check_choice("video_noise", self.video_noise, VIDEO_NOISE)
