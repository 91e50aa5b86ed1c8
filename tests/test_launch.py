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


def _where(x):
    """A unit that says where it ran: its process, its cores and the variables it started with."""
    time.sleep(0.5)  # long enough that both workers take units
    cores = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
    return x * x, os.getpid(), cores, os.environ.get("XLA_FLAGS", ""), os.environ.get("XLA_PYTHON_CLIENT_PREALLOCATE")


def _until_stopped(folder, i):
    """A unit that runs until its worker is told to stop, then stops the way a run does."""
    from hades.runs import Interrupted

    folder = Path(folder)
    (folder / f"started-{i}").touch()
    try:
        time.sleep(120)
    except KeyboardInterrupt:
        (folder / f"stopped-{i}").touch()
        raise Interrupted(folder, 3) from None
    return "never stopped"


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


def test_local_jobs_run_units_in_worker_processes_each_on_its_own_core():
    seen, status = [], []
    out = launch(
        [Unit(f"u{i}", _where, (i,)) for i in range(4)],
        Launcher(jobs=2, cpus=1),
        on_done=lambda u, r: seen.append(u.name),
        on_status=lambda *s: status.append(s),
    )
    assert [r[0] for r in out] == [0, 1, 4, 9] and sorted(seen) == ["u0", "u1", "u2", "u3"]
    pids = {r[1] for r in out}
    assert os.getpid() not in pids and len(pids) == 2  # two workers, not this process
    assert status[0] == (0, 2, 0, 4) and status[-1] == (4, 0, 0, 4)
    for _, _, _, flags, preallocate in out:
        assert with_device_count(flags, 1) == flags  # one host device per task CPU
        assert preallocate == "false" or any(k.startswith("XLA_PYTHON_CLIENT_") for k in os.environ)
    cores = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
    if len(cores) >= 2:  # each worker pinned to one core of its own
        by_pid = {r[1]: tuple(r[2]) for r in out}
        assert all(len(c) == 1 for c in by_pid.values()) and len(set(by_pid.values())) == 2


def test_local_jobs_keep_going_past_a_failed_unit():
    done = []
    with pytest.raises(HadesError, match=r"1 of 3 units failed: bad: bad input 7"):
        launch(
            [Unit("a", _square, (2,)), Unit("bad", _fail, (7,)), Unit("c", _square, (3,))],
            Launcher(jobs=2),
            on_done=lambda u, r: done.append((u.name, r)),
        )
    assert sorted(done) == [("a", 4), ("c", 9)]


STOPPABLE_COMMAND = """
import json, signal, sys
from hades import stopping
from hades.launch import Launcher, Unit, launch
from hades.runs import Interrupted
from test_launch import _until_stopped

signal.signal(signal.SIGTERM, stopping.stop_once)  # what the command line's handler does: raise KeyboardInterrupt
try:
    launch([Unit(f"u{i}", _until_stopped, (sys.argv[1], i)) for i in range(3)], Launcher(jobs=2))
except Interrupted as e:
    print(json.dumps({"generation": e.generation, "out": str(e.out)}))
    sys.exit(143)
"""


def test_stopping_the_command_stops_every_worker_run_with_its_checkpoint(tmp_path):
    """SIGTERM to the command (a scheduler's stop; Ctrl-C likewise): each worker's run is told to
    stop and stops as a run does, and the command gets a run's own Interrupted back, at once
    rather than after the units' 120 s; the third unit never starts."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path(__file__).parent), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.Popen([sys.executable, "-c", STOPPABLE_COMMAND, str(tmp_path)], env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # fmt: skip
    try:
        end = time.time() + 120
        while time.time() < end and len(list(tmp_path.glob("started-*"))) < 2 and proc.poll() is None:
            time.sleep(0.1)
        start = time.time()
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 143, err[-2000:]
    assert time.time() - start < 60
    assert json.loads(out) == {"generation": 3, "out": str(tmp_path)}  # the run's own, pickled whole
    assert sorted(p.name for p in tmp_path.iterdir()) == ["started-0", "started-1", "stopped-0", "stopped-1"]


def _once_started(folder, i):
    """A unit that finishes once unit ``i`` has started."""
    end = time.time() + 60
    while not (Path(folder) / f"started-{i}").exists() and time.time() < end:
        time.sleep(0.05)
    return "done"


def test_a_failure_in_the_command_stops_the_running_units(tmp_path):
    """When the command itself fails while units run (here writing a finished unit's result
    hits a full disk), the running units are stopped with their checkpoints and the command's
    own error comes back, rather than the command waiting out the units' 120 s."""

    def on_done(unit, result):
        raise OSError(28, "No space left on device")

    start = time.time()
    with pytest.raises(OSError, match="No space left"):
        launch([Unit("a", _once_started, (tmp_path, 1)), Unit("b", _until_stopped, (tmp_path, 1))],
               Launcher(jobs=2), on_done=on_done)  # fmt: skip
    assert time.time() - start < 60
    assert sorted(p.name for p in tmp_path.iterdir()) == ["started-1", "stopped-1"]


def test_bad_launcher_settings_are_one_line_errors(tmp_path):
    with pytest.raises(HadesError, match="unknown launcher"):
        Launcher("k8s")
    with pytest.raises(HadesError, match="--jobs must be an integer >= 1"):
        Launcher(jobs=0)
    with pytest.raises(HadesError, match="--jobs is for the local launcher"):
        Launcher("ray", jobs=2)
    with pytest.raises(HadesError, match="--task-gpus is for --launcher ray or slurm"):
        Launcher(jobs=2, gpus=0.25)
    assert_one_line_error(cli(*SMOKE, "--out", tmp_path, "--jobs", "0"), "--jobs must be an integer >= 1")
    assert_one_line_error(
        cli("sweep-size", "--preset", "cartpole", "--sizes", "2,4", "--jobs", "2", "--out", tmp_path / "s"),
        "give --seeds",
    )
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


def _assert_same_grid(a_dir: Path, b_dir: Path) -> None:
    """Two smoke grids of two cells: the same datasets bit for bit, and the same table."""
    a, b = _datasets(a_dir), _datasets(b_dir)
    assert sorted(a) == sorted(b) and len(a) == 2
    for name in a:
        for key in a[name]:
            np.testing.assert_array_equal(a[name][key], b[name][key])
    rows = [json.loads((d / "reproduction.json").read_text())["rows"] for d in (a_dir, b_dir)]
    returns = [[(r["env"], r["method"], r["return_mean"], r["random_return_mean"]) for r in rs] for rs in rows]
    assert returns[0] == returns[1] and len(returns[0]) == 2


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
    _assert_same_grid(tmp_path / "local", tmp_path / "ray")


@pytest.mark.slow  # two smoke grids; the default suite runs local jobs through the tuning test
def test_a_smoke_grid_in_local_jobs_gives_the_local_grid(tmp_path):
    """`--jobs 2`: bit for bit the plain loop's grid on the device count a job gets (one host
    device per core of its own)."""
    one_device = {**os.environ, "XLA_FLAGS": with_device_count(os.environ.get("XLA_FLAGS", ""), 1)}
    local = hades(*SMOKE, "--out", tmp_path / "local", env=one_device, timeout=LIMIT)
    assert local.returncode == 0, local.stderr[-2000:]
    jobs = hades(*SMOKE, "--out", tmp_path / "jobs", "--jobs", "2", "--task-cpus", "1", timeout=LIMIT)
    assert jobs.returncode == 0, jobs.stderr[-2000:]
    # the cells ran now, on the workers: not "finished by an earlier invocation"
    assert jobs.stderr.count(" s so far") == 2 and "earlier invocation" not in jobs.stderr, jobs.stderr[-2000:]
    _assert_same_grid(tmp_path / "local", tmp_path / "jobs")


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


@pytest.mark.slow  # ~25 s idle; the default suite has local jobs (above) and tune's launcher path (test_tune)
def test_a_tuning_study_runs_its_trials_as_local_jobs(tmp_path):
    """`hades tune --jobs 2`: trials two at a time in worker processes, the study shared through
    OUT/study.db, the same number of finished trials as the plain loop; the command's output
    shows the cluster bar's counts, not a traceback."""
    pytest.importorskip("optuna")
    tiny = "--generations 2 --population 8 --depth 1 --eval-envs 2 --eval-steps 30 --eval-episodes 2 --eval-policies 2"
    out = tmp_path / "tune"
    proc = hades("tune", "--preset", "cartpole", "--variants", "hades-f", "--trials", "2", "--out", out,
                 *tiny.split(), "--jobs", "2", timeout=LIMIT)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    studies = json.loads((out / "tuning.json").read_text())["studies"]
    assert len(studies["CartPole-v1_hades-f"]["trials"]) == 2
    summaries = [json.loads(p.read_text()) for p in (out / "trials").rglob("summary.json")]
    assert len(summaries) == 2 and {s["provenance"]["device_count"] for s in summaries} == {1}
    assert "Traceback" not in proc.stderr
