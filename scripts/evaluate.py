#!/usr/bin/env python3
"""Quality report, feed-forward against optimisation: see ``python scripts/evaluate.py --help`` (same as ``texturenet-evaluate``)."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a source checkout without installing

from texturenet.cli import evaluate_main  # noqa: E402

if __name__ == "__main__":
    evaluate_main()
