#!/usr/bin/env python3
"""Export a style model to ONNX or TorchScript: see ``python scripts/export.py --help`` (same as ``texturenet-export``)."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a source checkout without installing

from texturenet.cli import export_main  # noqa: E402

if __name__ == "__main__":
    export_main()
