"""What several test modules share: the small artifacts in tests/data and running the CLI."""

import subprocess
import sys
from pathlib import Path

DATA = Path(__file__).parent / "data"
ROOT = Path(__file__).resolve().parents[1]


def hades(*args, **kwargs):
    """Run ``hades ARGS`` in a fresh process (the way a user does) and capture its output."""
    return subprocess.run(
        [sys.executable, "-m", "hades.cli", *map(str, args)], capture_output=True, text=True, **kwargs
    )
