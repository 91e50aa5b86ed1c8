"""Provenance: what produced a summary or an artifact is recorded with it."""

import json
import os

from safetensors import safe_open

from hades import __version__
from hades.provenance import command_line, cpu_features, provenance
from hades.runs import run


def test_provenance_names_versions_devices_and_command():
    p = provenance()
    assert p["versions"]["hades"] == __version__
    assert all(p["versions"][name] for name in ("jax", "jaxlib", "flax", "optax", "evosax", "gymnax", "brax"))
    assert p["device_count"] >= 1 and p["device_kind"] and p["backend"] and p["platform"] and p["cpu"]
    assert "git_commit" in p and "command" in p
    assert p["xla_flags"] == os.environ.get("XLA_FLAGS", "")  # the compiler's settings change machine code


def test_the_cpu_s_vector_instructions_are_recorded():
    # two VMs both called "AMD EPYC" gave ant's seed-0 random-policy figure as -257 and -286 with the
    # same hades code: XLA compiles for the host's instructions, which the model name does not show
    info = "processor : 0\nmodel name : AMD EPYC\nflags : fpu sse2 sse4_2 avx avx2 fma avx512f avx512bw bmi2\n"
    assert cpu_features(info) == ["avx", "avx2", "avx512bw", "avx512f", "fma", "sse4_2"]
    assert cpu_features("model name : Apple M2\n") == []  # no flags line: nothing claimed
    p = provenance()
    assert isinstance(p["cpu_features"], list) and p["cpu_features"] == sorted(p["cpu_features"])


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
