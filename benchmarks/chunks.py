"""The chunk cost model against timed generations (docs/performance.md, "The chunk cost model").

    python benchmarks/chunks.py                     # the grid below (~30 min on 2 cores)
    python benchmarks/chunks.py --only breakout-512 --generations 2
    python benchmarks/chunks.py --fit               # also fit the model's CPU rates to the timings

For every configuration (three domains, widths 64-1024, populations 64-2048) it times whole
generations (compile excluded) at several chunks, and prints beside them what
``hades.chunking`` predicts on this machine (``Machine.detect``: cache sizes from sysfs): the
predicted seconds per generation at each chunk, the chunk ``--chunk 0`` picks, and how far that
pick's measured time is from the best measured chunk's (1.00 = the model picked the best). With
``--fit`` it fits the rates (FLOP/s, per-step overhead, one candidate per device's speed-up,
L3/memory bandwidth) to all the timings by least squares on log time and prints them: the
constants in ``chunking.CPU_RATES``.
Writes JSON with ``--json``. Run it on an idle machine.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
from hades.devices import use_host_cores  # noqa: E402

use_host_cores()  # before JAX starts, like the CLI

import jax  # noqa: E402
import numpy as np  # noqa: E402

from hades.chunking import CPU_RATES, Machine, chunks, generation_seconds, with_rates  # noqa: E402
from hades.devices import available_memory  # noqa: E402
from hades.presets import make_config  # noqa: E402
from hades.runs import make_driver  # noqa: E402

# the released code's Breakout setting (issue 37), hades' spelling
RELEASED_BREAKOUT = dict(
    variant="hades-f",
    population=64,
    dataset_size=16,
    width=512,
    activation="relu",
    bc_steps=32,
    bc_lr=0.03,
    bc_anneal=False,
    bc_max_grad_norm=0.0,
    bc_adam_eps=1e-5,
    strategy="SNES",
    sigma=0.5,
    es_temperature=20.0,
    obs_norm="constant",
    eval_envs=8,
    eval_steps=1024,
    fixed_length=True,
)
RELEASED_CARTPOLE = dict(RELEASED_BREAKOUT, env="CartPole-v1", obs_norm="none")
# The released hopper HaDES-F setting on top of the paper-brax preset (which is the rest of it).
RELEASED_HOPPER = dict(env="brax/hopper", variant="hades-f", population=64)

CONFIGS = {
    # name: (preset, overrides, chunks to time)
    "cartpole-64-p256": ("cartpole", dict(population=256), (2, 8, 32, 128, 256)),
    "cartpole-64-p2048": ("cartpole", dict(population=2048), (8, 32, 128, 512)),
    "cartpole-512-released": ("cartpole", RELEASED_CARTPOLE, (2, 8)),
    "breakout-64": ("breakout", dict(RELEASED_BREAKOUT, width=64), (2, 8, 32, 64)),
    "breakout-64-p1024": ("breakout", dict(RELEASED_BREAKOUT, width=64, population=1024, eval_steps=256), (8, 32, 128)),
    "breakout-256": ("breakout", dict(RELEASED_BREAKOUT, width=256), (2, 4, 8, 32)),
    "breakout-512": ("breakout", dict(RELEASED_BREAKOUT), (2, 4, 8, 32)),
    "breakout-1024": ("breakout", dict(RELEASED_BREAKOUT, width=1024, eval_steps=256), (2, 4, 8, 32)),
    "hopper-64": ("hopper", dict(population=64, eval_steps=200, fixed_length=True), (2, 8, 32, 64)),
    "hopper-256": ("hopper", dict(population=64, width=256, eval_steps=200, fixed_length=True), (2, 8, 32, 64)),
}


def time_generation(cfg, generations: int) -> tuple[float, float, object]:
    """(compile s, s per generation, driver) of one configuration."""
    d = make_driver(cfg)
    state = d.init()
    t0 = time.perf_counter()
    step = d.step.lower(state).compile()
    compile_s = time.perf_counter() - t0
    state, m = step(state)
    jax.block_until_ready((state, m))
    t0 = time.perf_counter()
    for _ in range(generations):
        state, m = step(state)
    jax.block_until_ready((state, m))
    return compile_s, (time.perf_counter() - t0) / generations, d


def fit_rates(rows: list[dict], machine: Machine) -> dict:
    """The rates minimising the squared log error of predicted against measured s/gen."""
    from scipy.optimize import least_squares

    # the L2 bandwidth is left as it is: no timed step is bound by it, and the fit runs it up
    names = ["flops", "overhead", "single", "l3_bandwidth", "memory_bandwidth"]
    bandwidth = {lv.name: lv.bandwidth for lv in machine.levels}
    l3 = bandwidth.get("L3", CPU_RATES["l3_bandwidth"])  # a machine without one: the fit cannot see it
    x0 = np.log([machine.flops, machine.overhead, machine.single, l3, bandwidth["memory"]])

    def residuals(x):
        m = with_rates(machine, **dict(zip(names, np.exp(x))))
        return [np.log(generation_seconds(m, r["_work"], c) / t) for r in rows for c, t in r["measured"].items()]

    # the max() and the cache levels make the error piecewise: start from several points (the
    # FLOP rate, the lone candidate's speed-up and the L3 bandwidth each halved, kept, doubled)
    # and keep the best fit; one start can stall where a rate stops binding
    starts = [x0 + np.log([a, 1.0, b, c, 1.0]) for a in (0.5, 1, 2) for b in (0.8, 1, 1.3) for c in (0.5, 1, 2)]
    fit = min((least_squares(residuals, x) for x in starts), key=lambda f: f.cost)
    return {n: float(v) for n, v in zip(names, np.exp(fit.x))}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--only", nargs="*", default=None, help=f"configurations to run (of {', '.join(CONFIGS)})")
    ap.add_argument("--generations", type=int, default=2)
    ap.add_argument("--fit", action="store_true", help="fit the CPU rates to the timings")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    devices = len(jax.devices())
    machine = None
    rows = []
    for name in args.only or CONFIGS:
        preset, overrides, options = CONFIGS[name]
        row = {"config": name, "measured": {}, "compile": {}}
        for chunk in options:
            cfg = make_config(
                preset, devices=0, chunk=0 if chunk == overrides.get("population") else chunk, **overrides
            )
            try:
                compile_s, per_gen, d = time_generation(cfg, args.generations)
            except Exception as e:  # a chunk the mesh cannot split: skip it, say so
                print(f"{name} chunk {chunk}: skipped ({str(e).splitlines()[0]})", flush=True)
                continue
            row["measured"][chunk] = per_gen
            row["compile"][chunk] = compile_s
            print(f"{name} chunk {chunk}: {per_gen:.3f} s/gen (compile {compile_s:.1f} s)", flush=True)
        work = d.workload()
        machine = Machine.detect(jax.default_backend(), devices, available_memory())
        row["_work"] = work
        row["choice"] = (d.chunk or work.population) if not d.cfg.chunk else None
        rows.append(row)
    if machine is None:
        return
    fitted = fit_rates(rows, machine) if args.fit else None
    models = {"default": machine} | ({"fitted": with_rates(machine, **fitted)} if fitted else {})
    print(f"\nmachine: {machine}\n")
    for label, m in models.items():
        print(f"model ({label} rates)")
        print("| config | chunk | measured s/gen | predicted s/gen | predicted / measured |")
        print("|---|---|---|---|---|")
        for r in rows:
            for c, t in r["measured"].items():
                p = generation_seconds(m, r["_work"], c)
                print(f"| {r['config']} | {c} | {t:.3f} | {p:.3f} | {p / t:.2f} |")
        print()
        print("| config | model's chunk | best measured chunk | measured(model's) / measured(best) |")
        print("|---|---|---|---|")
        for r in rows:
            timed = r["measured"]
            options = [c for c in chunks(r["_work"].population, devices) if c in timed] or list(timed)
            pick = min(options, key=lambda c: (generation_seconds(m, r["_work"], c), -c))
            best = min(timed, key=timed.get)
            r[f"pick_{label}"] = pick
            print(f"| {r['config']} | {pick} | {best} | {timed[pick] / timed[best]:.2f} |")
        print()
    if fitted:
        print("fitted rates:", {k: f"{v:.3g}" for k, v in fitted.items()})
    if args.json:
        out = [{k: v for k, v in r.items() if not k.startswith("_")} for r in rows]
        args.json.write_text(json.dumps({"machine": str(machine), "fitted": fitted, "rows": out}, indent=1))


if __name__ == "__main__":
    main()
