"""Where a result came from: library versions, devices, platform, CPU model and vector instructions,
git commit and command line.

Recorded in every ``summary.json`` and every artifact's metadata (``provenance``), so two
"identical" runs that differ can be told apart.
"""

from __future__ import annotations

import functools
import os
import platform
import subprocess
import sys
from importlib import metadata
from pathlib import Path

from hades import __version__

PACKAGES = ("jax", "jaxlib", "flax", "optax", "evosax", "gymnax", "brax", "mujoco", "numpy")


def _version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def _git_commit() -> str | None:
    """The commit of the checkout hades runs from (``+dirty`` with local changes), else None."""
    here = Path(__file__).resolve().parent
    try:
        top = subprocess.run(
            ["git", "-C", str(here), "rev-parse", "--show-toplevel"], capture_output=True, text=True, timeout=5
        )
        if top.returncode or not (Path(top.stdout.strip()) / "src" / "hades").is_dir():
            return None  # hades is installed, not run from its own checkout
        commit = subprocess.run(
            ["git", "-C", str(here), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5
        )
        dirty = subprocess.run(
            ["git", "-C", str(here), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=5,
        )
        return commit.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "") if commit.returncode == 0 else None
    except (OSError, subprocess.SubprocessError):
        return None


def _cpuinfo() -> str:
    """``/proc/cpuinfo``'s text, read once per process (``_static`` is cached); "" where there is none."""
    try:
        return Path("/proc/cpuinfo").read_text()
    except OSError:
        return ""


def _cpuinfo_field(cpuinfo: str, name: str) -> str | None:
    """The first value of ``name`` (``model name``, ``flags``) in /proc/cpuinfo's text, else None."""
    for line in cpuinfo.splitlines():
        key, _, value = line.partition(":")
        if key.strip().lower() == name:
            return value.strip()
    return None


def _cpu_model(cpuinfo: str) -> str:
    """The host CPU's model name: XLA compiles CPU code for the instructions the host has, so the
    same run on another CPU model can round differently and, over many generations, diverge."""
    return _cpuinfo_field(cpuinfo, "model name") or platform.processor() or platform.machine()


# the instruction-set extensions XLA's CPU code generator chooses among: two hosts that report
# the same model name (a cloud VM's "AMD EPYC") can still differ in these, and so in rounding
_VECTOR_FLAGS = ("avx", "fma", "sse4", "f16c", "amx")


def cpu_features(cpuinfo: str | None = None) -> list[str]:
    """The host's vector-instruction flags (``avx2``, ``avx512f``, ``fma``, ...), sorted; [] where
    ``/proc/cpuinfo`` cannot say (not Linux, or not x86)."""
    flags = _cpuinfo_field(_cpuinfo() if cpuinfo is None else cpuinfo, "flags") or ""
    return sorted({f for f in flags.split() if f.startswith(_VECTOR_FLAGS)})


@functools.lru_cache(maxsize=1)
def _static() -> dict:
    cpuinfo = _cpuinfo()
    return {
        "versions": {"hades": __version__, **{name: _version(name) for name in PACKAGES}},
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu": _cpu_model(cpuinfo),
        "cpu_features": cpu_features(cpuinfo),
        "git_commit": _git_commit(),
    }


def provenance() -> dict:
    """Versions, devices, XLA's flags, platform, git commit and the command line of this process."""
    import jax

    devices = jax.devices()
    return {
        **_static(),
        "device_kind": devices[0].device_kind,
        "device_count": len(devices),
        "backend": jax.default_backend(),
        "xla_flags": os.environ.get("XLA_FLAGS", ""),
        "command": command_line(),
    }


def command_line(argv: list[str] | None = None) -> str:
    """The command line as a user would type it again: ``python -m hades.cli ...`` is ``hades ...``."""
    argv = sys.argv if argv is None else argv
    program = Path(argv[0]).name if argv else ""
    if program == "__main__.py" and Path(argv[0]).parent.name == "cli":
        program = "hades"
    return " ".join([program, *argv[1:]])
