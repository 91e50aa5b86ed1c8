"""Scale-out with JAX's own SPMD: one population split over every device, on one host or many.

``population_mesh`` builds a 1-D ``Mesh`` over the devices (axis ``"pop"``); the drivers lay the
population out as ``NamedSharding(mesh, P("pop"))`` inside their jitted generation and
``map_population`` runs each device's block of candidates there (``shard_map``), after which the
fitness is gathered for the ES update; the code is the same for 1 CPU, 8 GPUs or a multi-host slice.

On CPU, ``XLA_FLAGS=--xla_force_host_platform_device_count=N`` (set before JAX starts) gives N
host devices; the ``hades`` command sets it to the number of usable cores unless XLA_FLAGS
already says otherwise (measured on 2 cores: 1.3-1.9x faster than one device). Across hosts, call
``initialize_distributed`` (``hades --coordinator ...``) in
every process before anything else touches JAX; ``jax.devices()`` then lists every host's
devices and the mesh spans them all.
"""

from __future__ import annotations

import contextlib
import os

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from hades.chunking import Machine, Workload, choose_chunk
from hades.errors import HadesError

AXIS = "pop"


def population_mesh(devices: int, population: int) -> Mesh | None:
    """A mesh over ``devices`` devices, or None when that is one. ``devices=0`` picks the most
    visible devices that divide the population evenly; an explicit count must divide it."""
    available = jax.devices()
    count = devices or max(n for n in range(1, len(available) + 1) if population % n == 0)
    if count > len(available):
        raise HadesError(
            f"--devices {count} asked for, but JAX sees {len(available)} device(s) "
            f"(on CPU: XLA_FLAGS=--xla_force_host_platform_device_count={count})"
        )
    if population % count:
        raise HadesError(
            f"the population ({population}) must be a multiple of the device count ({count}): "
            f"use --population {population + count - population % count} or --devices 1"
        )
    if count == 1:
        return None
    return Mesh(np.asarray(available[:count]), (AXIS,))


def shard_population(tree, mesh: Mesh | None):
    """Inside jit: lay the population's leading axis out over the mesh (no-op without one)."""
    if mesh is None:
        return tree
    return jax.lax.with_sharding_constraint(tree, NamedSharding(mesh, PartitionSpec(AXIS)))


def auto_chunk(
    chunk: int, work: Workload, mesh: Mesh | None, backend: str | None = None, memory: int | None = None
) -> int:
    """``chunk`` as given, or for 0 the chunk the cost model predicts fastest for ``work`` on
    this machine (``hades.chunking``: cache sizes from the OS, the devices' memory from
    ``available_memory``; ``backend`` and ``memory`` override what is detected)."""
    if chunk:
        return chunk
    devices = 1 if mesh is None else int(mesh.devices.size)
    backend = backend or jax.default_backend()
    machine = Machine.detect(backend, devices, available_memory() if memory is None else memory)
    return choose_chunk(machine, work)


def vmap_batch(fn):
    """``jax.vmap(fn)``, except that a batch of one calls ``fn`` on its one element: XLA's CPU
    backend runs a batched dot whose batch is 1 on a slow path (BC's weight gradients at width
    512: 2.3x slower than the same dot unbatched; docs/performance.md, "Batches of one")."""

    def run(*args):
        if jax.tree.leaves(args)[0].shape[0] != 1:
            return jax.vmap(fn)(*args)
        return jax.tree.map(lambda a: a[None], fn(*jax.tree.map(lambda a: a[0], args)))

    return run


def map_population(fn, population, mesh: Mesh | None, chunk: int = 0, shared=()):
    """``vmap(fn)(population)`` with the population split over the mesh's devices (``shard_map``:
    each device maps its own block of candidates); with ``chunk``, each device takes its share of
    ``chunk`` candidates at a time (a scan over its chunks), so only ``chunk`` candidates'
    intermediates (e.g. trained policies) are live. A device's chunk of one runs unbatched
    (``vmap_batch``). ``fn(candidate, *shared)``: traced values every candidate uses (learners, keys,
    statistics) go in ``shared``, replicated on every device, not in ``fn``'s closure (``shard_map``
    cannot take a traced value laid out over the mesh from a closure)."""
    size = jax.tree.leaves(population)[0].shape[0]
    devices = 1 if mesh is None else int(mesh.devices.size)
    chunked = 0 < chunk < size  # 0, or at least the population: all at once
    if chunked and chunk % devices:
        raise HadesError(f"--chunk ({chunk}) must be a multiple of the device count ({devices})")
    per_device = (chunk if chunked else size) // devices

    def local(block, shared):
        one = vmap_batch(lambda candidate: fn(candidate, *shared))
        n = jax.tree.leaves(block)[0].shape[0]
        if per_device >= n:
            return one(block)
        chunks = jax.tree.map(lambda a: a.reshape((n // per_device, per_device) + a.shape[1:]), block)
        out = jax.lax.map(one, chunks)
        return jax.tree.map(lambda a: a.reshape((n,) + a.shape[2:]), out)

    if mesh is None:
        return local(population, shared)
    spec = PartitionSpec(AXIS)
    # check_vma=False: a rollout's while-loop starts from replicated values (the envs' resets from the
    # shared key) and carries per-candidate ones; with the check on, the carry's types differ
    run = jax.shard_map(local, mesh=mesh, in_specs=(spec, PartitionSpec()), out_specs=spec, check_vma=False)
    return run(shard_population(population, mesh), shared)


def score_population(fn, population, mesh: Mesh | None, chunk: int = 0, shared=()):
    """What every ES driver's generation does with its candidates: ``fn`` on each (over the
    mesh, ``chunk`` at a time; ``map_population``), the results gathered on every device."""
    return replicate(map_population(fn, population, mesh, chunk, shared), mesh)


def whole_on_every_device(fn, mesh: Mesh | None):
    """``fn`` run whole on every device, on replicated inputs to replicated outputs (``shard_map``
    over replicated specs), for the steps after the population's scores: the ES update and the
    running statistics. Left to the partitioner, their arithmetic was compiled differently on two
    devices: a 2-device ``--preset breakout`` run's ES mean differed from the 1-device run's by
    1e-8 after one generation from the same population and fitness, and the runs ended apart
    (3.52 against 3.75). Run whole on each device they round as on one."""
    if mesh is None:
        return fn
    return jax.shard_map(fn, mesh=mesh, in_specs=PartitionSpec(), out_specs=PartitionSpec(), check_vma=False)


def replicate(tree, mesh: Mesh | None):
    """Inside jit: gather a population-sized result onto every device, so reductions over the
    population (the ES update, run by ``whole_on_every_device``) add in the same order as on one
    device: same seed, same dataset."""
    if mesh is None:
        return tree
    return jax.lax.with_sharding_constraint(tree, NamedSharding(mesh, PartitionSpec()))


def initialize_distributed(coordinator: str, num_processes: int, process_id: int) -> None:
    """Join a multi-host run (one process per host, the same command on each)."""
    try:
        jax.distributed.initialize(coordinator_address=coordinator, num_processes=num_processes, process_id=process_id)
    except (RuntimeError, ValueError) as e:
        raise HadesError(f"could not join the multi-host run at {coordinator}: {str(e).splitlines()[0]}") from None


def is_main_process() -> bool:
    """Only process 0 of a multi-host run writes files and prints."""
    return jax.process_index() == 0


def place(tree, mesh: Mesh | None):
    """Commit host-made state (the same on every process) to the mesh, replicated: what a jitted
    step over a multi-host mesh needs as input (a no-op on one device)."""
    if mesh is None:
        return tree
    sharding = NamedSharding(mesh, PartitionSpec())
    if jax.process_count() == 1:
        return jax.device_put(tree, sharding)

    def commit(x):  # built from each process' own copy (device_put would compare them, NaNs included)
        x = np.asarray(x)
        return jax.make_array_from_callback(x.shape, sharding, lambda index: x[index])

    return jax.tree.map(commit, tree)


_COUNT_FLAG = "--xla_force_host_platform_device_count"


def with_device_count(flags: str, count: int) -> str:
    """``XLA_FLAGS`` ``flags`` with the host device count set to ``count``, every other flag kept
    (a process started with them computes as the one whose flags they were, on its own cores)."""
    kept = [f for f in flags.split() if not f.startswith(_COUNT_FLAG)]
    return " ".join([*kept, f"{_COUNT_FLAG}={int(count)}"])


def use_host_cores() -> None:
    """Before JAX starts: one host device per usable core (unless XLA_FLAGS already sets it)."""
    flags = os.environ.get("XLA_FLAGS", "")
    if _COUNT_FLAG not in flags:
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
        os.environ["XLA_FLAGS"] = with_device_count(flags, cores)


def float32_matmuls():
    """A context in which float32 matrix products are computed in float32 on every device.

    JAX's default lets NVIDIA GPUs from Ampere on compute float32 dots in TF32 (a 10-bit mantissa)
    and TPUs in bfloat16, so one run would compute differently on a V100 (the paper's GPUs), an
    H100 and a CPU; on a CPU this changes nothing (datasets bit for bit the same). ``hades`` runs
    every command in it, and ``runs.run`` every run; a precision the user chose
    (``JAX_DEFAULT_MATMUL_PRECISION`` or ``jax.config``) wins. bfloat16 runs are unaffected."""
    if jax.config.jax_default_matmul_precision is not None:
        return contextlib.nullcontext()
    return jax.default_matmul_precision("float32")


def available_memory() -> int:
    """Bytes the visible devices can hold together: the accelerators' limits, or the host's
    available memory (CPU devices share it)."""
    try:
        devices = jax.devices()
        stats = devices[0].memory_stats() or {}
        if devices[0].platform != "cpu" and stats.get("bytes_limit"):
            return int(stats["bytes_limit"]) * len(devices)
    except Exception:  # backends without memory_stats
        pass
    try:
        for line in open("/proc/meminfo"):
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def compiled_bytes(compiled, mesh: Mesh | None) -> int:
    """What XLA says a compiled program holds at once (temporaries, arguments and outputs), on
    the mesh's devices together; 0 where the backend does not say. (xNES on Breakout: 20 GiB.)"""
    try:
        m = compiled.memory_analysis()
        per_device = m.temp_size_in_bytes + m.argument_size_in_bytes + m.output_size_in_bytes
    except Exception:  # backends without a memory analysis
        return 0
    return int(per_device) * (1 if mesh is None else int(mesh.devices.size))


def check_memory(needed: int, what: str, how_to_lower: str, override: str = "--no-memory-check") -> None:
    """Refuse, in one line, work whose estimated memory exceeds what the device has."""
    have = available_memory()
    if needed > 0.9 * have:
        raise HadesError(
            f"{what} needs an estimated {needed / 2**30:.3g} GB of memory, "
            f"more than the {have / 2**30:.3g} GB available; "
            f"{how_to_lower}" + (f" (or pass {override} to try anyway)" if override else "")
        )
