"""How many candidates each device scores at once: a cost model of a generation's two phases.

A generation trains every candidate's policy by BC and then rolls it out. On one device a
chunk's candidates run side by side (vmap), so each step of either phase is one batched matmul
per layer over the chunk. Per step and device the model charges

    t(c) = overhead + c * max(flops / rate(c), bytes / bandwidth(level(c * working_set)))

- ``flops``, ``bytes``: one candidate's arithmetic and weight traffic in that step (rollout: a
  forward pass over its environments, reading the weights once; BC: forward and backward over
  the dataset (3x the forward FLOPs) and Adam, which reads weights, gradient and two moments and
  writes three of them back: 32 bytes per parameter);
- ``working_set``: what the step touches per candidate (rollout: the weights; BC: weights,
  gradient and the two moments, 16 bytes per parameter) plus its activations;
- ``level``: the smallest memory level the chunk's working set fits in (a core's own cache, its
  share of the shared cache, main memory), each with its bandwidth;
- ``rate(c)``: the FLOP rate of the step's batched matmuls; ``single`` times it for one
  candidate per device, whose matmuls are plain ones (no batch dimension) and run faster on CPU;
- ``overhead``: the fixed cost of one loop iteration (launching the step's kernels), paid once
  per chunk whatever its size, plus the environment's own fixed cost per step where it is known
  (``Phase.overhead``: Brax's positional physics launches many small kernels per step).

Bigger chunks spread the overhead over more candidates until their working set falls out of a
cache level; ``choose_chunk`` takes the chunk with the least predicted generation time. On
accelerators the same model, with the device's memory as its only level, says "as many as fit":
the whole population, or the largest chunk within ``MEMORY_SHARE`` of the device memory.

``Machine.detect`` reads the cache sizes the OS reports (Linux sysfs) and the devices' memory;
the rates are defaults per backend (docs/performance.md, "The chunk cost model", measures them
and checks the model against timed generations). ``--chunk`` overrides the choice. No JAX here:
the drivers describe their work as a ``Workload``.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

MEMORY_SHARE = 0.6  # of the devices' memory a generation may plan to use (XLA needs headroom)
CACHE_SHARE = (
    0.5  # of a cache a chunk's working set may fill and still stay there (code, env state, temporaries share it)
)


@dataclass(frozen=True)
class Level:
    """One level of the memory hierarchy, as one device sees it."""

    name: str
    bytes: int  # capacity available to one device
    bandwidth: float  # bytes/s one device streams from it


@dataclass(frozen=True)
class Machine:
    """What the cost model knows of the hardware; per device (a CPU core, a GPU)."""

    backend: str
    devices: int
    levels: tuple[Level, ...]  # fastest first; the last is the device's memory
    flops: float  # float32 FLOP/s of one device on small batched matmuls
    overhead: float  # seconds of fixed cost per loop iteration (one step of one chunk)
    single: float = 1.0  # speed-up of the matmuls of one candidate per device (plain, not batched)

    @property
    def memory(self) -> int:
        return self.levels[-1].bytes

    @classmethod
    def cpu(cls, devices: int, l2: int, l3: int, memory: int, **rates) -> Machine:
        """A CPU with one host device per core: a private L2 each, a shared L3 split between them.
        ``rates`` override ``CPU_RATES`` (flops, overhead, single, l2/l3/memory bandwidth per core)."""
        r = {**CPU_RATES, **rates}
        levels = [Level("L2", int(CACHE_SHARE * l2), r["l2_bandwidth"])] if l2 else []
        if l3:
            levels.append(Level("L3", int(CACHE_SHARE * l3) // max(devices, 1), r["l3_bandwidth"]))
        levels.append(Level("memory", memory // max(devices, 1), r["memory_bandwidth"]))
        return cls("cpu", devices, tuple(levels), r["flops"], r["overhead"], r["single"])

    @classmethod
    def accelerator(cls, backend: str, devices: int, memory: int, **rates) -> Machine:
        """A GPU or TPU: the device's memory (``memory``: bytes per device) is the level that
        matters; its caches are small next to a candidate at these widths."""
        r = {**ACCELERATOR_RATES, **rates}
        return cls(
            backend, devices, (Level("device memory", memory, r["memory_bandwidth"]),), r["flops"], r["overhead"]
        )

    @classmethod
    def detect(cls, backend: str, devices: int, memory: int) -> Machine:
        """This machine: CPU caches from sysfs (defaults where unreadable), ``memory`` the bytes
        the devices hold together."""
        if backend != "cpu":
            return cls.accelerator(backend, devices, memory // max(devices, 1))
        caches = cpu_caches()
        return cls.cpu(devices, caches.get(2, DEFAULT_L2), caches.get(3, DEFAULT_L3), memory)


# Rates per core, fitted by ``benchmarks/chunks.py --fit`` to 38 timed generations on this
# project's 2-core Intel machines (docs/performance.md, "The chunk cost model"): effective rates
# of the small batched matmuls a generation runs, not the machine's peaks; the choice depends on
# their ratios and on the cache sizes, which are read from the machine. The L2 bandwidth is not
# fitted (no timed step is bound by it; the fit runs it up without bound) but kept at its first fit.
CPU_RATES = {
    "flops": 25.7e9,
    "overhead": 16.7e-6,
    "single": 1.15,
    "l2_bandwidth": 184e9,
    "l3_bandwidth": 8.63e9,
    "memory_bandwidth": 3.4e9,
}
# A data-centre GPU: kernel launches dominate small steps, so bigger chunks always pay.
ACCELERATOR_RATES = {"flops": 50e12, "overhead": 20e-6, "memory_bandwidth": 2e12}
DEFAULT_L2, DEFAULT_L3 = 1 << 20, 16 << 20


def cpu_caches(root: str = "/sys/devices/system/cpu/cpu0/cache") -> dict[int, int]:
    """{level: bytes} of the data/unified caches core 0 sees (Linux); {} elsewhere."""
    out: dict[int, int] = {}
    try:
        for index in sorted(Path(root).glob("index*")):
            kind = (index / "type").read_text().strip()
            if kind not in ("Data", "Unified"):
                continue
            level = int((index / "level").read_text())
            out[level] = parse_size((index / "size").read_text().strip())
    except (OSError, ValueError):
        return {}
    return out


def parse_size(text: str) -> int:
    """'2048K' / '32M' / '512' (bytes) as sysfs writes cache sizes."""
    units = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
    return int(text[:-1]) * units[text[-1].upper()] if text[-1].upper() in units else int(text)


@dataclass(frozen=True)
class Phase:
    """One step of one candidate in one phase (all learners of the candidate together)."""

    steps: int  # loop iterations of the phase per generation
    flops: float
    bytes: float  # traffic that scales with the chunk (weights, optimiser state)
    working_set: int  # bytes live per candidate during a step
    overhead: float = 0.0  # seconds per loop iteration on top of the machine's (the environment's step)


@dataclass(frozen=True)
class Workload:
    """One generation's work per candidate, as the cost model sees it."""

    population: int
    phases: tuple[Phase, ...] = field(default=())
    candidate_bytes: int = 0  # memory one candidate holds while it is scored (the memory check's estimate)
    fixed_bytes: int = 0  # the ES's population and state (held whatever the chunk)

    @classmethod
    def hades(
        cls,
        population: int,
        params: int,
        hidden: int,
        learners: int,
        dataset_size: int,
        bc_steps: int,
        envs: int,
        rollout_steps: int,
        obs_size: int,
        candidate_bytes: int = 0,
        fixed_bytes: int = 0,
        env_overhead: float = 0.0,
    ) -> Workload:
        """A distillation candidate: BC of ``learners`` policies of ``params`` parameters
        (``hidden`` units in all) on ``dataset_size`` states, then ``envs`` environments each
        (``env_overhead``: the environment's fixed seconds per step)."""
        bc = Phase(
            bc_steps,
            flops=learners * 6 * dataset_size * params,
            bytes=learners * 32 * params,
            working_set=4 * learners * (4 * params + 3 * dataset_size * hidden),
        )
        phases = (bc, rollout_phase(params, hidden, learners, envs, rollout_steps, obs_size, env_overhead))
        return cls(population, phases, candidate_bytes or max(p.working_set for p in phases), fixed_bytes)

    @classmethod
    def direct(
        cls,
        population: int,
        params: int,
        hidden: int,
        envs: int,
        rollout_steps: int,
        obs_size: int,
        candidate_bytes: int = 0,
        fixed_bytes: int = 0,
        env_overhead: float = 0.0,
    ) -> Workload:
        """A direct-ES candidate: the policy itself, rolled out."""
        phase = rollout_phase(params, hidden, 1, envs, rollout_steps, obs_size, env_overhead)
        return cls(population, (phase,), candidate_bytes or phase.working_set, fixed_bytes)


def rollout_phase(
    params: int, hidden: int, learners: int, envs: int, steps: int, obs_size: int, env_overhead: float = 0.0
) -> Phase:
    return Phase(
        steps,
        flops=learners * 2 * envs * params,
        bytes=learners * 4 * params,
        working_set=4 * learners * (params + envs * (hidden + 2 * obs_size)),
        overhead=env_overhead,
    )


def step_seconds(machine: Machine, phase: Phase, per_device: int) -> float:
    """Predicted seconds of one step of ``per_device`` candidates on one device."""
    level = next((lv for lv in machine.levels if per_device * phase.working_set <= lv.bytes), machine.levels[-1])
    rate = machine.flops * (machine.single if per_device == 1 else 1.0)
    return machine.overhead + phase.overhead + per_device * max(phase.flops / rate, phase.bytes / level.bandwidth)


def generation_seconds(machine: Machine, work: Workload, chunk: int) -> float:
    """Predicted seconds of a generation's two phases with ``chunk`` candidates at a time (0:
    the whole population), the chunk split evenly over the devices."""
    chunk = chunk or work.population
    per_device = max(chunk // machine.devices, 1)
    rounds = work.population // chunk
    return rounds * sum(p.steps * step_seconds(machine, p, per_device) for p in work.phases)


def fits(machine: Machine, work: Workload, chunk: int) -> bool:
    """Whether ``chunk`` candidates' working sets fit in the devices' memory share."""
    budget = MEMORY_SHARE * machine.memory * machine.devices - work.fixed_bytes
    return (chunk or work.population) * work.candidate_bytes <= budget


def chunks(population: int, devices: int) -> list[int]:
    """The chunks a generation can run: divisors of the population that split over the devices."""
    return [c for c in range(devices, population + 1, devices) if population % c == 0]


def choose_chunk(machine: Machine, work: Workload) -> int:
    """The chunk with the least predicted generation time among those that fit in memory
    (ties: the bigger chunk); 0 means the whole population at once. The smallest chunk when
    none fits (the memory check then says whether even that is too big)."""
    options = chunks(work.population, machine.devices) or [work.population]
    feasible = [c for c in options if fits(machine, work, c)] or options[:1]
    best = min(feasible, key=lambda c: (generation_seconds(machine, work, c), -c))
    return 0 if best >= work.population else best


def with_rates(machine: Machine, **rates) -> Machine:
    """``machine`` with some rates replaced (calibration, tests)."""
    levels = tuple(
        replace(lv, bandwidth=rates.get(f"{lv.name.split()[-1].lower()}_bandwidth", lv.bandwidth))
        for lv in machine.levels
    )
    return replace(
        machine,
        levels=levels,
        flops=rates.get("flops", machine.flops),
        overhead=rates.get("overhead", machine.overhead),
        single=rates.get("single", machine.single),
    )
