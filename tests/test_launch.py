"""Launchers: the plain local loop, a real local Ray cluster (head on 127.0.0.1, 2 worker
slots) and submitit's local executor. The cluster tests need the ``cluster`` extra."""

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from helpers import SUITE_LEVEL, assert_one_line_error, cli, hades
from safetensors.numpy import load_file

from hades.devices import with_device_count
from hades.errors import HadesError
from hades.launch import Launcher, Unit, launch
from hades.reproduce import Cell, run_cell

# One xdist worker runs this module (pyproject: --dist loadfile, each file on one worker), so the
# cluster fixture starts once and the other worker goes on with the rest of the suite instead of
# waiting for the cluster lock. (xdist 3.8's loadgroup does not group under pytest 9.2.)
LIMIT = 900  # seconds a command may take before the test fails (a lost cluster must not hang the suite)
SMOKE = ["reproduce", "--tier", "smoke", "--envs", "breakout", "--variants", "hades-f,direct-es", "--quiet"]


def _square(x):
    return x * x


def _fail(x):
    raise HadesError(f"bad input {x}")


def test_local_launcher_runs_units_in_order_and_reports_each():
    seen, status = [], []
    out = launch(
        [Unit(f"u{i}", _square, (i,)) for i in range(4)],
        on_done=lambda u, r: seen.append((u.name, r)),
        on_status=lambda *s: status.append(s),
    )
    assert out == [0, 1, 4, 9]
    assert seen == [("u0", 0), ("u1", 1), ("u2", 4), ("u3", 9)]
    assert status[-1] == (4, 0, 0, 4)


def test_bad_launcher_settings_are_one_line_errors(tmp_path):
    with pytest.raises(HadesError, match="unknown launcher"):
        Launcher("k8s")
    assert_one_line_error(cli(*SMOKE, "--out", tmp_path, "--address", "auto"), "--address is for --launcher ray")
    assert_one_line_error(cli(*SMOKE, "--out", tmp_path, "--slurm-partition", "gpu"), "--launcher slurm")


@pytest.fixture(scope="module")
def ray_cluster(tmp_path_factory):
    """A Ray head on 127.0.0.1 with 2 CPUs (2 tasks at a time), stopped after the module. One
    cluster at a time on the machine (a file lock across xdist workers): two stall each other's
    workers, and ``ray stop`` stops every Ray process of the machine. Token authentication is off
    for the cluster and its clients (the test processes inherit the variable): Ray 2.60 turns it
    on whenever ``~/.ray/auth_token`` exists, which any earlier local ``ray.init()`` leaves.
    Workers run at niceness 0, not Ray's default 15: at 15 the suite's other xdist worker (nice 0)
    starves them on 2 cores (a smoke cell measured 6-7x slower), and their tests end only after
    the rest of the suite."""
    pytest.importorskip("ray")
    import fcntl

    lock = open(tmp_path_factory.getbasetemp().parent / "hades-ray-cluster.lock", "w")
    fcntl.flock(lock, fcntl.LOCK_EX)
    ray_bin = Path(sys.executable).with_name("ray")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    environ = pytest.MonkeyPatch()
    environ.setenv("RAY_AUTH_MODE", "disabled")
    environ.setenv("RAY_USAGE_STATS_ENABLED", "0")
    environ.setenv("RAY_worker_niceness", "0")
    env = dict(os.environ)
    start = subprocess.run(
        [ray_bin, "start", "--head", "--node-ip-address", "127.0.0.1", "--port", str(port), "--num-cpus", "2",
         "--include-dashboard", "false", "--disable-usage-stats"],
        capture_output=True, text=True, env=env,
    )  # fmt: skip
    assert start.returncode == 0, start.stderr[-2000:]
    try:
        yield f"127.0.0.1:{port}"
    finally:
        subprocess.run([ray_bin, "stop", "--force"], capture_output=True, env=env)
        environ.undo()
        lock.close()


def _datasets(grid: Path) -> dict:
    return {
        str(p.relative_to(grid)): load_file(p)
        for p in sorted(grid.rglob("*.safetensors"))
        if p.name in ("dataset.safetensors", "policy.safetensors")
    }


@pytest.mark.slow  # 87 s idle; the default suite keeps Ray's path through the killed-worker and tuning tests
def test_a_smoke_grid_on_ray_gives_the_local_grid(tmp_path, ray_cluster):
    """Bit for bit, with the plain loop on the device count a task gets (one host device per task
    CPU); on 2 devices the plain loop differs from it by float32 rounding (other chunks and
    partitions), as any 1- against 2-device run may."""
    one_device = {**os.environ, "XLA_FLAGS": with_device_count(os.environ.get("XLA_FLAGS", ""), 1)}
    local = hades(*SMOKE, "--out", tmp_path / "local", env=one_device, timeout=LIMIT)
    assert local.returncode == 0, local.stderr[-2000:]
    remote = hades(*SMOKE, "--out", tmp_path / "ray", "--launcher", "ray", "--address", ray_cluster, timeout=LIMIT)
    assert remote.returncode == 0, remote.stderr[-2000:]
    a, b = _datasets(tmp_path / "local"), _datasets(tmp_path / "ray")
    assert sorted(a) == sorted(b) and len(a) == 2
    for name in a:
        for key in a[name]:
            np.testing.assert_array_equal(a[name][key], b[name][key])
    rows = [json.loads((tmp_path / d / "reproduction.json").read_text())["rows"] for d in ("local", "ray")]
    returns = [[(r["env"], r["method"], r["return_mean"], r["random_return_mean"]) for r in rs] for rs in rows]
    assert returns[0] == returns[1] and len(returns[0]) == 2


def _task_pids() -> list[int]:
    """Processes running a launcher task (Ray titles its workers ``ray::execute`` while they do)."""
    pids = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                if (proc / "cmdline").read_bytes().startswith(b"ray::execute"):
                    pids.append(int(proc.name))
            except OSError:
                pass
    return pids


def test_a_killed_worker_cell_completes_bit_identically(tmp_path, ray_cluster):
    """A worker killed mid-cell (after a checkpoint) is retried by Ray; the cell resumes and ends
    with the dataset of an uninterrupted run."""
    cell = Cell("Breakout-MinAtar", "hades-f", 0, "breakout", dict(
        population=8, generations=6, width=16, eval_envs=2, eval_steps=30, eval_episodes=2, eval_policies=2,
        checkpoint_every=1, env="Breakout-MinAtar"))  # fmt: skip
    out = tmp_path / "ray"
    run_dir = cell.directory(out)
    killed = []

    def killer():
        end = time.time() + 300
        while time.time() < end and not killed:
            rows = (run_dir / "metrics.jsonl").read_text().splitlines() if (run_dir / "metrics.jsonl").is_file() else []
            if len(rows) >= 2:
                for pid in _task_pids():
                    os.kill(pid, signal.SIGKILL)
                    killed.append(pid)
            time.sleep(0.05)

    thread = threading.Thread(target=killer, daemon=True)
    import ray

    try:
        # the reference runs where the killed cell runs, as a Ray task (one host device per task
        # CPU), so only the kill differs. Run in this process it would compute on this process's
        # device count, which need not be a task's and rounds differently (before the suite
        # pinned one device, this test failed after tests/test_cli.py in one process).
        [reference] = launch(
            [Unit("reference", run_cell, (cell, str(tmp_path / "reference")))], Launcher("ray", address=ray_cluster)
        )
        thread.start()
        [summary] = launch([Unit("cell", run_cell, (cell, str(out)))], Launcher("ray", address=ray_cluster))
    finally:
        ray.shutdown()
    thread.join(timeout=5)
    assert killed, "no worker was killed: the test did not test a retry"
    rows = (run_dir / "metrics.jsonl").read_text().splitlines()
    assert len(rows) == 6  # no generation lost or repeated
    ref, got = (
        load_file(cell.directory(tmp_path / "reference") / "dataset.safetensors"),
        load_file(run_dir / "dataset.safetensors"),
    )
    np.testing.assert_array_equal(ref["states"], got["states"])
    assert summary["final_return_mean"] == reference["final_return_mean"]


def test_slurm_launcher_runs_the_grid_through_submitit(tmp_path):
    pytest.importorskip("submitit")
    proc = hades(*SMOKE[:-1], "--variants", "hades-f", "--quiet", "--out", tmp_path / "grid", "--launcher", "slurm",
                 "--slurm-local", timeout=LIMIT)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    summary = json.loads((tmp_path / "grid" / "Breakout-MinAtar" / "hades-f" / "seed0" / "summary.json").read_text())
    flags = summary["provenance"]["xla_flags"].split()
    # the task's own device count (one per task CPU; the driver had one per core), the rest the driver's
    assert summary["provenance"]["device_count"] == 1 and SUITE_LEVEL in flags
    assert list((tmp_path / "grid" / "submitit").iterdir())  # submitit's logs, where the flag says
    shutil.rmtree(tmp_path / "grid")


def test_a_tuning_study_runs_its_trials_as_ray_tasks(tmp_path, ray_cluster):
    """`hades tune --launcher ray`: one trial per task, the study shared through OUT/study.db;
    the same number of finished trials per method as the plain loop runs."""
    pytest.importorskip("optuna")
    tiny = "--generations 2 --population 8 --depth 1 --eval-envs 2 --eval-steps 30 --eval-episodes 2 --eval-policies 2"
    out = tmp_path / "tune"
    proc = hades("tune", "--preset", "cartpole", "--variants", "hades-f,direct-es", "--trials", "2", "--out", out,
                 "--quiet", *tiny.split(), "--launcher", "ray", "--address", ray_cluster, timeout=LIMIT)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    studies = json.loads((out / "tuning.json").read_text())["studies"]
    assert {k: len(s["trials"]) for k, s in studies.items()} == {"CartPole-v1_hades-f": 2, "CartPole-v1_direct-es": 2}
    assert len(list((out / "trials").rglob("summary.json"))) == 4
    params = [tuple(sorted(t["params"].items())) for t in studies["CartPole-v1_hades-f"]["trials"]]
    assert len(set(params)) == 2  # each task's sampler has its own seed: no setting tried twice
