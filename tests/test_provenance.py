"""Provenance: what produced a summary or an artifact is recorded with it."""

import json
import os

from safetensors import safe_open

from hades import __version__
from hades.provenance import command_line, provenance
from hades.runs import run


def test_provenance_names_versions_devices_and_command():
    p = provenance()
    assert p["versions"]["hades"] == __version__
    assert all(p["versions"][name] for name in ("jax", "jaxlib", "flax", "optax", "evosax", "gymnax", "brax"))
    assert p["device_count"] >= 1 and p["device_kind"] and p["backend"] and p["platform"] and p["cpu"]
    assert "git_commit" in p and "command" in p
    assert p["xla_flags"] == os.environ.get("XLA_FLAGS", "")  # the compiler's settings change machine code


def test_the_command_is_recorded_as_a_user_would_type_it():
    # `python -m hades.cli reproduce ...` runs as .../hades/cli/__main__.py; zoo cards quote this line
    assert command_line(["/x/src/hades/cli/__main__.py", "reproduce", "--tier", "cpu"]) == "hades reproduce --tier cpu"
    assert command_line(["/venv/bin/hades", "distill"]) == "hades distill"
    assert command_line(["/x/bench/__main__.py", "-q"]) == "__main__.py -q"  # not ours: left as it was


def test_summary_and_artifacts_record_it(tmp_path, tiny_config):
    out = tmp_path / "run"
    summary = run(tiny_config(generations=1), out)
    assert summary["provenance"]["versions"]["jax"]
    assert json.loads((out / "summary.json").read_text())["provenance"] == summary["provenance"]
    for name in ("dataset.safetensors", "checkpoint.safetensors"):
        with safe_open(out / name, "numpy") as f:
            assert json.loads(f.metadata()["provenance"])["versions"]["hades"] == __version__
