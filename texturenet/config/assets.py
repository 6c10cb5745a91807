"""The files shipped inside the package: the defaults of a run given no data (the bundled photos and style image)."""
from __future__ import annotations

from pathlib import Path

BUNDLED = Path(__file__).resolve().parent.parent / "assets"
BUNDLED_PHOTOS = BUNDLED / "photos"
"""Public-domain photos shipped with the package: the default training data and the demo's photo."""
BUNDLED_STYLE = BUNDLED / "style.png"
"""Our generated style image, shipped with the package: the default --texture."""
