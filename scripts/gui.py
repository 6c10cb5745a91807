#!/usr/bin/env python3
"""The browser GUI: see ``python scripts/gui.py --help`` (same as ``texturenet-gui``)."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a source checkout without installing

from texturenet.apps.gui import main  # noqa: E402

if __name__ == "__main__":
    main()
