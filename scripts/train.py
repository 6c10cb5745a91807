#!/usr/bin/env python3
"""Train a texture network: see ``python scripts/train.py --help`` (same as ``texturenet-train``)."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a source checkout without installing

from texturenet.cli import train_main  # noqa: E402

if __name__ == "__main__":
    train_main()
