"""Seconds per generation and candidate evaluations per second, compile time reported apart.

    python benchmarks/generation_speed.py                       # CartPole + Breakout, P = 64/256/1024
    python benchmarks/generation_speed.py --envs cartpole --populations 64 --generations 5
    python benchmarks/generation_speed.py --envs cartpole --populations 64 --set dataset_size=16 width=512

Each (preset, population) pair builds a Distiller from the environment's CPU preset with the
population overridden, compiles one generation (timed separately), then times ``--generations``
generations. Prints a table and writes JSON (``--json``). Numbers depend on the machine and its
load: compare ratios from one run.
"""

from __future__ import annotations

import argparse
import json
import platform
import time

import jax

from hades.config import make_config
from hades.distill import Distiller


def measure(preset: str, population: int, generations: int, overrides: dict | None = None) -> dict:
    d = Distiller(make_config(preset, **{**(overrides or {}), "population": population}))
    state = d.init()
    t0 = time.perf_counter()
    step = d.step.lower(state).compile()
    compile_s = time.perf_counter() - t0
    state, _ = step(state)  # warm-up generation
    jax.block_until_ready(state)
    t0 = time.perf_counter()
    for _ in range(generations):
        state, m = step(state)
    jax.block_until_ready((state, m))
    per_gen = (time.perf_counter() - t0) / generations
    cfg = d.cfg
    inits = 1 if cfg.variant in ("hades-f", "direct-es") else cfg.num_inits
    return {
        "preset": preset, "env": cfg.env, "variant": cfg.variant, "population": population,
        "dataset_size": cfg.dataset_size, "width": cfg.policy.width, "bc_steps": cfg.bc.bc_steps,
        "eval_envs": cfg.eval_envs, "inits_per_candidate": inits, "compile_seconds": round(compile_s, 3),
        "seconds_per_generation": round(per_gen, 4),
        "candidate_evaluations_per_second": round(population / per_gen, 1),
    }


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--envs", default="cartpole,breakout", help="comma-separated presets")
    p.add_argument("--populations", default="64,256,1024")
    p.add_argument("--generations", type=int, default=3, help="timed generations per point")
    p.add_argument("--json", default="benchmarks/generation_speed.json", help="where to write the results")
    p.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE",
                   help="config overrides, e.g. --set dataset_size=16 width=512 (values parsed as JSON)")
    args = p.parse_args()
    overrides = {}
    for item in args.set:
        key, _, value = item.partition("=")
        try:
            overrides[key] = json.loads(value)
        except json.JSONDecodeError:
            overrides[key] = value
    rows = []
    print(f"{'preset':10s} {'variant':8s} {'pop':>5s} {'compile s':>10s} {'s/gen':>8s} {'cand/s':>9s}")
    for preset in args.envs.split(","):
        for pop in map(int, args.populations.split(",")):
            r = measure(preset, pop, args.generations, overrides)
            rows.append(r)
            print(f"{preset:10s} {r['variant']:8s} {pop:5d} {r['compile_seconds']:10.2f} "
                  f"{r['seconds_per_generation']:8.3f} {r['candidate_evaluations_per_second']:9.1f}", flush=True)
    meta = {"date": time.strftime("%Y-%m-%d"), "machine": platform.machine(), "devices": str(jax.devices()),
            "cpu_count": __import__("os").cpu_count(), "jax": jax.__version__}
    with open(args.json, "w") as f:
        json.dump({"meta": meta, "results": rows}, f, indent=2)
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
