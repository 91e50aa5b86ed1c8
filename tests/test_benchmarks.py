"""The benchmark scripts still run against the library they measure. They are not part of the
package, so nothing else notices when an API they call changes: suite.py failed at its BC phase,
unnoticed, after ``Distiller.bc_data`` gained an argument."""

import json
import subprocess
import sys

from helpers import ROOT, TINY_ARGS

BENCHMARKS = sorted((ROOT / "benchmarks").glob("*.py"))


def test_every_benchmark_script_imports():
    """Each script's module level (imports, constants, the library names it uses) loads; main() is not run."""
    code = "import runpy, sys\nfor path in sys.argv[1:]:\n    runpy.run_path(path, run_name='benchmark')\n"
    proc = subprocess.run([sys.executable, "-c", code, *map(str, BENCHMARKS)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert len(BENCHMARKS) >= 7


def test_the_throughput_suite_times_both_phases_of_a_tiny_generation(tmp_path):
    sets = [f"{flag[2:].replace('-', '_')}={value}" for flag, value in zip(TINY_ARGS[::2], TINY_ARGS[1::2])]
    sets = [s for s in sets if not s.startswith("population=")]
    out = tmp_path / "r.json"
    cmd = [sys.executable, str(ROOT / "benchmarks/suite.py"), "--envs", "cartpole", "--populations", "8"]
    cmd += ["--generations", "1", "--no-device-comparison", "--no-chunk-comparison", "--json", str(out), "--set", *sets]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-3000:]
    (row,) = json.loads(out.read_text())["results"]
    assert row["population"] == 8 and row["width"] == 16 and row["seconds_per_generation"] > 0
    assert row["bc_seconds"] > 0 and row["rollout_seconds"] > 0  # both phases timed apart
