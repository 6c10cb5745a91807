#!/usr/bin/env python3
"""Stylise photos or sample textures in one pass: see ``python scripts/stylize.py --help`` (same as ``texturenet-stylize``)."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a source checkout without installing

from texturenet.cli import stylize_main  # noqa: E402

if __name__ == "__main__":
    stylize_main()
