"""Paper-scale generations on an accelerator: seconds per generation and peak device memory.

    python benchmarks/accelerator.py                      # paper-brax hopper + paper-minatar Breakout, P = 2048
    python benchmarks/accelerator.py --generations 3 --precision bfloat16 --json acc.json

For each case it builds the Distiller ``hades distill --preset P --population 2048`` builds (the
population over every visible device, the chunk chosen from the devices' memory unless
``--chunk`` says), runs one generation to compile, then ``--generations`` timed ones, and reports
seconds per generation (compile excluded), the compile time, the chunk used, hades' memory
estimate and the peak memory (accelerators: ``memory_stats()['peak_bytes_in_use']`` summed over
the devices; CPU: the process' peak resident set, which includes everything else it holds),
beside the paper's Table 4 figure (8 V100s: hopper HaDES-F 5.6 s, Breakout 1.6 s).
It runs anywhere; on a CPU a paper-scale generation takes minutes (use ``--population`` to shrink).
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
from hades.devices import float32_matmuls, use_host_cores  # noqa: E402

use_host_cores()

import jax  # noqa: E402

from hades.distill import Distiller  # noqa: E402
from hades.presets import make_config  # noqa: E402

# case -> (preset, the paper's Table 4 seconds per generation on 8 V100s)
CASES = {"hopper": ("paper-brax", 5.6), "breakout": ("paper-minatar", 1.6)}


def peak_bytes() -> int | None:
    """Peak memory of the devices (accelerators), or of this process (CPU: its peak resident set)."""
    if jax.default_backend() == "cpu":
        import resource

        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux reports KiB
    try:
        stats = [d.memory_stats() or {} for d in jax.local_devices()]
    except Exception:  # backends without memory_stats
        return None
    peaks = [s.get("peak_bytes_in_use") for s in stats]
    return sum(peaks) if all(p is not None for p in peaks) and peaks else None


def measure(case: str, population: int, generations: int, chunk: int, precision: str) -> dict:
    preset, paper = CASES[case]
    cfg = make_config(preset, population=population, chunk=chunk, precision=precision, eval_every=0)
    d = Distiller(cfg)
    state = d.init()
    t = time.perf_counter()
    state, metrics = d.step(state)
    jax.block_until_ready(metrics)
    compile_s = time.perf_counter() - t
    t = time.perf_counter()
    for _ in range(generations):
        state, metrics = d.step(state)
    jax.block_until_ready(metrics)
    per_gen = (time.perf_counter() - t) / generations
    return {
        "case": case,
        "preset": preset,
        "env": cfg.env,
        "variant": cfg.variant,
        "population": population,
        "precision": precision,
        "chunk": d.chunk or population,
        "devices": 1 if d.mesh is None else int(d.mesh.devices.size),
        "seconds_per_generation": round(per_gen, 3),
        "first_generation_seconds": round(compile_s, 1),
        "memory_estimate_gb": round(d.memory_estimate() / 2**30, 2),
        "peak_memory_gb": None if (p := peak_bytes()) is None else round(p / 2**30, 2),
        "env_steps_per_generation": float(metrics["env_steps"]),
        "bc_sample_steps_per_generation": float(metrics["bc_sample_steps"]),
        "paper_seconds_per_generation": paper,
    }


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--cases", default="hopper,breakout", help="comma-separated from hopper, breakout")
    p.add_argument("--population", type=int, default=2048)
    p.add_argument("--generations", type=int, default=3, help="timed generations per case (after one to compile)")
    p.add_argument("--chunk", type=int, default=0, help="0: from the devices' memory (hades' default)")
    p.add_argument("--precision", default="float32", choices=("float32", "bfloat16"))
    p.add_argument("--json", default="accelerator-results.json")
    a = p.parse_args(argv)
    cases = [c for c in a.cases.split(",") if c]
    if any(c not in CASES for c in cases) or a.generations < 1:
        p.error(f"cases from {', '.join(CASES)}; --generations >= 1")
    device = jax.devices()[0]
    header = {
        "device": f"{len(jax.devices())} x {device.device_kind}",
        "backend": jax.default_backend(),
        "jax": jax.__version__,
        "host": platform.node(),
    }
    print(json.dumps(header), file=sys.stderr)
    rows = []
    for case in cases:
        with float32_matmuls():  # as every hades run: float32 dots in float32 (JAX's GPU default is TF32)
            rows.append(measure(case, a.population, a.generations, a.chunk, a.precision))
        print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
        Path(a.json).write_text(json.dumps({**header, "rows": rows}, indent=1))  # each case kept as it ends
    print("| case | preset | P | devices | chunk | s / gen | paper (8 V100) | peak GB | estimate GB |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['case']} | {r['preset']} | {r['population']} | {r['devices']} | {r['chunk']} | "
            f"{r['seconds_per_generation']} | {r['paper_seconds_per_generation']} | {r['peak_memory_gb']} | "
            f"{r['memory_estimate_gb']} |"
        )


if __name__ == "__main__":
    main()
