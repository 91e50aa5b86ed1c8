"""What several test modules share: the small artifacts in tests/data and running the CLI."""

import subprocess
import sys
from pathlib import Path

DATA = Path(__file__).parent / "data"
ROOT = Path(__file__).resolve().parents[1]
# the tiny run of conftest.TINY as command-line options (a few seconds per run, compilation included)
TINY_ARGS = (
    "--population 8 --generations 2 --width 16 --depth 1 --bc-steps 10 --eval-envs 2 --eval-steps 30 "
    "--eval-episodes 2 --eval-policies 2"
).split()


def hades(*args, **kwargs):
    """Run ``hades ARGS`` in a fresh process (the way a user does) and capture its output."""
    return subprocess.run(
        [sys.executable, "-m", "hades.cli", *map(str, args)], capture_output=True, text=True, **kwargs
    )
