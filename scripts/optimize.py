#!/usr/bin/env python3
"""Per-image optimisation (Gatys et al.): see ``python scripts/optimize.py --help`` (same as ``texturenet-optimize``)."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a source checkout without installing

from texturenet.cli import optimize_main  # noqa: E402

if __name__ == "__main__":
    optimize_main()
