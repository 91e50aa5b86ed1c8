"""Where the independent units of a grid, a sweep or a tuning study run.

A unit is a module-level function and its arguments (a grid cell: one run into its own
resumable run directory). ``launch`` runs the units

- ``local`` (the default): here, one after another, no new dependency; with ``jobs`` > 1, ``jobs``
  at a time in worker processes on this machine (spawned: each its own JAX), each pinned to its
  own ``cpus`` cores (default: the cores divided among the jobs) with one host device per core,
  and sharing an accelerator's memory as it needs it (no preallocation, unless the user set
  JAX's ``XLA_PYTHON_CLIENT_*`` variables). Ctrl-C or SIGTERM stops every worker's run with its
  checkpoint written; a worker that dies fails its unit (run the command again to continue);
- ``ray``: as Ray tasks on a cluster (``address``: an existing one, e.g. ``ray://head:10001`` or
  ``auto``; none: a local one on this machine), ``cpus``/``gpus`` per task; a task whose worker
  is lost is retried by Ray (``retries`` times) and its run resumes from its last checkpoint;
- ``slurm``: as a SLURM job array through submitit (``folder`` holds its logs; ``local`` runs the
  same array with submitit's local executor, for tests and single machines).

Units must write only their own directories: the caller is the one writer of anything shared
(the grid's tables), from ``on_done``, which is called here, in this process, as each unit
finishes. A unit that fails (a user error, a crash) does not stop the others; ``launch`` then
raises one ``HadesError`` naming the failed units, after every other unit has finished.
Ray and submitit are imported only when asked for (the ``cluster`` extra).
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from hades.devices import with_device_count
from hades.errors import HadesError

LAUNCHERS = ("local", "ray", "slurm")


@dataclass(frozen=True)
class Unit:
    name: str  # shown in progress and errors ("Breakout-MinAtar hades-f seed 0")
    fn: Callable  # a module-level function (pickled to the workers)
    args: tuple = ()


@dataclass(frozen=True)
class Launcher:
    kind: str = "local"
    address: str | None = None  # ray: cluster address (None: start a local cluster)
    cpus: float | None = None  # per unit (None: 1, or for local jobs the cores divided among them)
    gpus: float = 0.0  # per unit
    retries: int = 3  # ray: retries of a unit whose worker died
    folder: str | None = None  # slurm: submitit's log folder
    slurm: dict = field(default_factory=dict)  # slurm: extra submitit parameters (partition, time, ...)
    jobs: int = 1  # local: units at a time (> 1: in worker processes)

    def __post_init__(self):
        if self.kind not in LAUNCHERS:
            raise HadesError(f"unknown launcher {self.kind!r}; choose one of {', '.join(LAUNCHERS)}")
        if (self.cpus is not None and self.cpus <= 0) or self.gpus < 0 or self.retries < 0:
            raise HadesError("--task-cpus must be > 0, --task-gpus >= 0")
        if not isinstance(self.jobs, int) or self.jobs < 1:
            raise HadesError(f"--jobs must be an integer >= 1 (got {self.jobs!r})")
        if self.gpus and self.kind == "local":
            raise HadesError(
                "--task-gpus is for --launcher ray or slurm (local jobs share this machine's accelerators)"
            )
        if self.jobs > 1 and self.kind != "local":
            raise HadesError(
                "--jobs is for the local launcher (ray and slurm run as many tasks as their resources allow)"
            )

    @property
    def remote(self) -> bool:
        """Whether the units run outside this process (so they report through ``on_status``)."""
        return self.kind != "local" or self.jobs > 1

    @property
    def task_cpus(self) -> int:
        """The whole CPUs (and host devices) one unit gets."""
        if self.cpus is not None:
            return max(int(self.cpus), 1)
        return max(len(_cores()) // self.jobs, 1) if self.kind == "local" else 1


def launch(
    units: list[Unit],
    launcher: Launcher | None = None,
    on_done: Callable[[Unit, Any], None] | None = None,
    on_status: Callable[[int, int, int, int], None] | None = None,
) -> list:
    """Run every unit; returns their results in the units' order. ``on_done(unit, result)`` as
    each finishes (in this process; an error it raises stops the command, with the local jobs'
    running units stopped at a checkpoint); ``on_status(done, running, failed, total)`` as it changes."""
    launcher = launcher or Launcher()
    run = {"local": _processes if launcher.jobs > 1 else _local, "ray": _ray, "slurm": _slurm}[launcher.kind]
    results, failures = run(units, launcher, on_done or (lambda u, r: None), on_status or (lambda *a: None))
    if failures:
        names = "; ".join(f"{u.name}: {msg}" for u, msg in failures[:3])
        more = f" (and {len(failures) - 3} more)" if len(failures) > 3 else ""
        raise HadesError(f"{len(failures)} of {len(units)} units failed: {names}{more}")
    return results


def _local(units, launcher, on_done, on_status):
    results = []
    for i, unit in enumerate(units):
        on_status(i, 1, 0, len(units))
        results.append(unit.fn(*unit.args))
        on_done(unit, results[-1])
    on_status(len(units), 0, 0, len(units))
    return results, []


def _one_line(e: BaseException) -> str:
    """The root cause of a remote failure, in one line."""
    cause = getattr(e, "cause", None) or e
    text = str(cause).strip().splitlines()
    return (text[-1] if text else type(cause).__name__)[:300]


def execute(fn, args):
    """What a worker runs: the unit. Its process was started with ``_task_flags``. A worker told
    to stop takes no new unit (a local job's queue may hold one more than it runs)."""
    from hades import stopping

    stopping.check()
    return fn(*args)


def _task_flags(launcher) -> str:
    """A task's ``XLA_FLAGS``: this process' flags (a compiler setting applies to every cell of a
    grid, wherever it runs) with one host device per CPU the task is given."""
    return with_device_count(os.environ.get("XLA_FLAGS", ""), launcher.task_cpus)


@contextmanager
def _environment(**variables):
    """``os.environ`` with ``variables`` set while submitting (submitit's local processes and
    sbatch take the submitter's environment), put back after."""
    saved = {k: os.environ.get(k) for k in variables}
    os.environ.update(variables)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _ray(units, launcher, on_done, on_status):
    ray = _import("ray")
    env = {"XLA_FLAGS": _task_flags(launcher)}
    if not ray.is_initialized():
        try:
            ray.init(
                address=launcher.address,
                runtime_env={"env_vars": env},
                include_dashboard=False,
                log_to_driver=False,
                configure_logging=False,
            )
        except (ConnectionError, RuntimeError, ValueError) as e:
            raise HadesError(f"could not reach the Ray cluster at {launcher.address}: {_one_line(e)}") from None
    cpus = launcher.cpus or 1.0  # Ray schedules fractions of a CPU too
    task = ray.remote(num_cpus=cpus, num_gpus=launcher.gpus, max_retries=launcher.retries)(execute)
    slots = max(int(ray.cluster_resources().get("CPU", 1) // cpus), 1)
    refs = [task.remote(u.fn, u.args) for u in units]
    ready = lambda pending: ray.wait(pending, num_returns=1, timeout=1.0)[0]
    return _gather(units, refs, ready, ray.get, lambda n: min(slots, n), on_done, on_status)


def _processes(units, launcher, on_done, on_status):
    """``launcher.jobs`` units at a time in spawned worker processes on this machine."""
    import multiprocessing
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait

    jobs, cpus = launcher.jobs, launcher.task_cpus
    context = multiprocessing.get_context("spawn")  # a fresh JAX per worker: forking a running JAX can hang
    slots, pids = context.Queue(), context.Queue()
    for slot in range(jobs):
        slots.put(slot)
    env = {"XLA_FLAGS": _task_flags(launcher)}
    if not any(k.startswith("XLA_PYTHON_CLIENT_") for k in os.environ):  # the jobs share an accelerator's memory
        env["XLA_PYTHON_CLIENT_PREALLOCATE"] = "false"
    futures = []
    with _environment(**env):  # what the workers start with
        pool = ProcessPoolExecutor(jobs, mp_context=context, initializer=_worker, initargs=(slots, pids, cpus, jobs))
        try:
            futures = [pool.submit(execute, u.fn, u.args) for u in units]
            ready = lambda pending: wait(pending, timeout=1.0, return_when=FIRST_COMPLETED).done
            return _gather(units, futures, ready, lambda f: f.result(), lambda n: min(jobs, n), on_done, on_status)
        except BaseException as e:  # Ctrl-C, SIGTERM, or this process failed (a full disk in on_done):
            for f in futures:  # every worker's run checkpoints and stops, rather than running on unwatched
                f.cancel()
            for pid in _drain(pids):
                try:
                    os.kill(pid, signal.SIGTERM)
                except ProcessLookupError:  # that worker has already gone
                    pass
            pool.shutdown(wait=True, cancel_futures=True)
            if not isinstance(e, KeyboardInterrupt):
                raise
            stopped = [f.exception() for f in futures if f.done() and not f.cancelled()]
            stopped = [e for e in stopped if isinstance(e, KeyboardInterrupt)]
            raise (stopped[0] if stopped else KeyboardInterrupt()) from None  # a run's own says where it stopped
        finally:
            pool.shutdown(wait=True, cancel_futures=True)


def _worker(slots, pids, cpus: int, jobs: int) -> None:
    """A worker process' start: its own ``cpus`` cores when the jobs' cores fit the machine's
    (XLA sizes its thread pools by them), and signals that stop its run with a checkpoint."""
    from hades import stopping

    slot = slots.get()
    pids.put(os.getpid())
    cores = _cores()
    if hasattr(os, "sched_setaffinity") and cpus * jobs <= len(cores):
        os.sched_setaffinity(0, cores[slot * cpus : (slot + 1) * cpus])
    signal.signal(signal.SIGTERM, stopping.stop_once)
    signal.signal(signal.SIGINT, stopping.stop_once)


def _drain(q) -> list:
    """Everything a multiprocessing queue holds (``empty()`` may miss what a feeder thread is
    still sending, so read until a short wait finds nothing)."""
    import queue

    items = []
    while True:
        try:
            items.append(q.get(timeout=0.5))
        except queue.Empty:
            return items


def _cores() -> list[int]:
    """The CPU cores this process may run on."""
    return sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else list(range(os.cpu_count() or 1))


def _slurm(units, launcher, on_done, on_status):
    submitit = _import("submitit")
    folder = launcher.folder or os.path.join(os.getcwd(), "submitit")
    params = dict(launcher.slurm)
    local = params.pop("cluster", None) == "local"
    executor = (submitit.LocalExecutor if local else submitit.AutoExecutor)(folder=folder)
    resources = {"timeout_min": params.pop("timeout_min", 24 * 60), "cpus_per_task": launcher.task_cpus}
    if launcher.gpus:
        resources["gpus_per_node"] = int(launcher.gpus)
    if not local:
        resources.update({f"slurm_{k}": v for k, v in params.items()})
    executor.update_parameters(**resources)
    with _environment(XLA_FLAGS=_task_flags(launcher)):
        jobs = executor.map_array(execute, [u.fn for u in units], [u.args for u in units])

    def ready(pending):
        finished = [job for job in pending if job.done()]
        if not finished:
            time.sleep(1.0)
        return finished

    return _gather(units, jobs, ready, lambda job: job.result(), lambda n: n, on_done, on_status)


def _gather(units, handles, ready, result, running, on_done, on_status):
    """Wait on one handle per unit (a Ray ref, a submitit job): ``ready(pending)`` gives the
    finished ones, ``result(handle)`` a unit's value or its error; ``on_done`` is called here as
    each finishes, ``on_status`` with ``running(len(pending))`` units taken to be running."""
    pending = {h: i for i, h in enumerate(handles)}
    results, failures, done = [None] * len(units), [], 0
    on_status(0, running(len(pending)), 0, len(units))
    while pending:
        for handle in ready(list(pending)):
            i = pending.pop(handle)
            try:
                results[i] = result(handle)
            except Exception as e:  # the unit's own error, or its worker lost more often than retried
                failures.append((units[i], _one_line(e)))
            else:
                done += 1
                on_done(units[i], results[i])  # its error (a full disk) is this process' own: it stops the command
            on_status(done, running(len(pending)), len(failures), len(units))
    return results, failures


def _import(name: str):
    try:
        return __import__(name)
    except ImportError:
        raise HadesError(
            f"--launcher {'slurm' if name == 'submitit' else name} needs {name}: pip install 'hades[cluster]'"
        ) from None
