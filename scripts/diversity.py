#!/usr/bin/env python3
"""How varied a model's samples are: see ``python scripts/diversity.py --help`` (same as ``texturenet-diversity``)."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a source checkout without installing

from texturenet.cli import diversity_main  # noqa: E402

if __name__ == "__main__":
    diversity_main()
