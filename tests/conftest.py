import os
from pathlib import Path

# One persistent XLA compilation cache for the test session, shared by the xdist workers and the
# CLI subprocesses they start (they inherit the environment): the same tiny configurations compile
# once instead of in every test (a tiny `hades distill` subprocess: 18 s cold, 6 s from the cache).
# Set before JAX is imported; JAX keys entries on its version and the program, so a stale entry is
# never used. A user's own JAX_COMPILATION_CACHE_DIR wins.
os.environ.setdefault("JAX_COMPILATION_CACHE_DIR", str(Path(__file__).resolve().parents[1] / ".pytest_cache" / "jax"))
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0")
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES", "0")
# Most of a fresh run is XLA compiling many small distinct programs, once each. LLVM at -O1
# compiles them faster than XLA's default level: tests/test_distill.py + test_cli.py from a cold
# cache took 417 s instead of 590 (compiling 201 s instead of 328; docs/performance.md). Tiny
# CartPole and Breakout runs compute the same bits at both levels, but not every program does
# (a Brax reacher retraining rounds differently), so tests that compare with figures a user's
# command measured (the zoo cards) run it at XLA's default (helpers.users_env). Users' runs
# keep XLA's default. A level set in XLA_FLAGS wins.
# One host device for every process of the session (helpers.SUITE_DEVICES says why); tests of
# several devices set their own count in the subprocesses they start. A count set in XLA_FLAGS wins.
from helpers import SUITE_DEVICES, SUITE_LEVEL  # noqa: E402 (stdlib only: JAX is not imported yet)

if "xla_backend_optimization_level" not in os.environ.get("XLA_FLAGS", ""):
    os.environ["XLA_FLAGS"] = f"{os.environ.get('XLA_FLAGS', '')} {SUITE_LEVEL}".strip()
if "xla_force_host_platform_device_count" not in os.environ.get("XLA_FLAGS", ""):
    os.environ["XLA_FLAGS"] = f"{os.environ.get('XLA_FLAGS', '')} {SUITE_DEVICES}".strip()

import pytest

from hades.presets import make_config

# A tiny, fast configuration: a few seconds per run, including compilation.
TINY = dict(
    population=8,
    generations=2,
    width=16,
    depth=1,
    bc_steps=10,
    eval_envs=2,
    eval_steps=30,
    eval_episodes=2,
    eval_policies=2,
    eval_every=1,
    checkpoint_every=1,
)


@pytest.fixture
def tiny_config():
    def make(**overrides):
        return make_config(None, **{**TINY, **overrides})

    return make
