"""What several test modules share: the small artifacts in tests/data and running the CLI."""

import os
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


def one_line_error(proc, code=2) -> str:
    """The one ``hades: error`` line of a refused command (exit ``code``, no traceback)."""
    assert proc.returncode == code, (proc.returncode, proc.stdout[-500:], proc.stderr[-2000:])
    assert "Traceback" not in proc.stderr, proc.stderr[-2000:]
    lines = [line for line in proc.stderr.splitlines() if line.startswith("hades: error")]
    assert len(lines) == 1, proc.stderr[-2000:]
    return lines[0]


def assert_one_line_error(proc, pattern: str) -> None:
    """Stricter: stderr is that one line and nothing else, and it names ``pattern``."""
    assert one_line_error(proc) == proc.stderr.strip(), proc.stderr
    assert pattern in proc.stderr, proc.stderr


SUITE_LEVEL = "--xla_backend_optimization_level=1"  # tests/conftest.py compiles at it
# tests/conftest.py pins one host device for the whole session (in-process code and the CLI
# subprocesses alike), whatever ran first in a worker: `hades.cli.main` otherwise starts JAX with
# one device per core, so a library call's device count depended on whether an in-process CLI
# test had run earlier in the same process, and device count changes float32 rounding
SUITE_DEVICES = "--xla_force_host_platform_device_count=1"


def users_level_env() -> dict:
    """This environment with the suite's compiler level taken out of XLA_FLAGS: XLA's default,
    what a user's command compiles at; the suite's device count kept, so a run in it differs
    from the suite's by the compiler level alone."""
    flags = os.environ.get("XLA_FLAGS", "").replace(SUITE_LEVEL, "").strip()
    return {**os.environ, "XLA_FLAGS": flags}


def users_env() -> dict:
    """This environment as a user's command has it: XLA's default compiler level and no device
    count, so the command starts one host device per core. For commands whose figures were
    measured by a user's command (the zoo cards): -O1 can round differently (Brax reacher
    retrained to -325.4 at -O1 against the card's -312.3 at the default), and so can a different
    device count."""
    flags = users_level_env()["XLA_FLAGS"].replace(SUITE_DEVICES, "").strip()
    return {**os.environ, "XLA_FLAGS": flags}


def hades(*args, **kwargs):
    """Run ``hades ARGS`` in a fresh process and capture its output: for what only a process shows
    (signals, locks held by another process, the environment, compiler flags, launchers). Each
    start costs seconds of Python, JAX and compiling; everything else goes through ``cli``."""
    return subprocess.run(
        [sys.executable, "-m", "hades.cli", *map(str, args)], capture_output=True, text=True, **kwargs
    )


def cli(*args, cwd=None):
    """Run ``hades ARGS`` in this process, in ``cwd`` if given, and capture its exit code and
    output like ``hades``: the same ``main`` a user's command runs, without starting Python and
    JAX again and with this process's compiled programs (a tiny `hades train`: 0.6 s here, 7 s in a
    fresh process). ``main`` touches the process's SIGTERM handler and XLA_FLAGS; both are put back."""
    import contextlib
    import io
    import signal

    from hades.cli import main

    out, err = io.StringIO(), io.StringIO()
    handler, flags, here = signal.getsignal(signal.SIGTERM), os.environ.get("XLA_FLAGS"), os.getcwd()
    try:
        os.chdir(cwd or here)  # contextlib.chdir needs Python 3.11
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                code = main([str(a) for a in args])
            except SystemExit as e:  # argparse's own errors exit 2
                code = e.code
    finally:
        os.chdir(here)
        signal.signal(signal.SIGTERM, handler)
        if flags is None:
            os.environ.pop("XLA_FLAGS", None)
        else:
            os.environ["XLA_FLAGS"] = flags
    return subprocess.CompletedProcess(args, code, out.getvalue(), err.getvalue())
