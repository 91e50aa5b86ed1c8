"""The performance suite: seconds per generation, its BC / rollout split, and roofline figures.

    python benchmarks/suite.py                                  # CartPole, Breakout, hopper at P = 64/256/1024
    python benchmarks/suite.py --envs cartpole --populations 64 --generations 2
    python benchmarks/suite.py --envs cartpole --populations 64 --set dataset_size=16 width=512

For every (CPU preset, population) pair it builds the Distiller the CLI would build (the
population split over one host device per core) and measures, compile time excluded:
- ``s/gen``: one whole generation (ES ask, BC of every candidate, rollouts, ES tell);
- ``bc s``: the BC phase alone (every candidate's inits trained on it, one jitted call) and its
  useful FLOP/s (MLP forward + backward = 3x forward FLOPs per sample and step) as a fraction of
  the machine's dense float32 matmul rate, measured here with ``jnp.dot`` (a 2048^3 product), and
  its least memory traffic (Adam streams params, gradient and moments: 32 bytes per parameter
  and step) as a fraction of the streaming memory bandwidth (a 128 MB triad);
- ``roll s``: the rollout phase alone (the trained policies, the same keys, the same chunks) and
  its env-steps/s (batched loop iterations x lanes) as a fraction of the bare environment's:
  ``env.step`` vmapped over the whole batch for as many steps with a constant action (no policy);
- ``overhead``: s/gen / (bc s + roll s) (target <= 1.3);
- ``scaling``: s/gen per candidate relative to the smallest population (1.0 = linear cost);
- ``1-dev x``: the speed-up of the sharded generation over one device (populations >= 256);
- ``chunk x``: the speed-up of evaluating the population in chunks (the CPU default, ``--chunk``)
  over evaluating it whole (populations >= 256).
Prints a table and writes JSON (``--json``). Compare ratios from one run: machines are noisy.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
from hades.devices import use_host_cores  # noqa: E402

use_host_cores()  # before JAX starts, like the CLI

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

from hades.devices import map_population, shard_population  # noqa: E402
from hades.presets import make_config  # noqa: E402
from hades.rollout import make_rollout  # noqa: E402
from hades.runs import make_driver  # noqa: E402

PRESETS = {"cartpole": "cartpole", "breakout": "breakout", "hopper": "hopper"}


def timed(fn, *args, repeat: int = 1):
    """(compile seconds, mean run seconds, last output) of a jitted function."""
    t0 = time.perf_counter()
    compiled = jax.jit(fn).lower(*args).compile()
    compile_s = time.perf_counter() - t0
    out = compiled(*args)
    jax.block_until_ready(out)
    t0 = time.perf_counter()
    for _ in range(repeat):
        out = compiled(*args)
    jax.block_until_ready(out)
    return compile_s, (time.perf_counter() - t0) / repeat, out


def matmul_rate(n: int = 2048, repeat: int = 5) -> float:
    a = jnp.ones((n, n), jnp.float32)
    _, sec, _ = timed(lambda x, y: x @ y, a, a, repeat=repeat)
    return 2 * n**3 / sec


def memory_bandwidth(n: int = 2**25, repeat: int = 5) -> float:
    """Bytes/s of a streaming update (read two 128 MB arrays, write one), STREAM-triad style."""
    a, b = jnp.ones(n, jnp.float32), jnp.ones(n, jnp.float32)
    _, sec, _ = timed(lambda x, y: x * 1.5 + y, a, b, repeat=repeat)
    return 3 * 4 * n / sec


def mlp_params(cfg, in_dim: int, out_dim: int) -> int:
    w, depth = cfg.policy.width, cfg.policy.depth
    return in_dim * w + w + (depth - 1) * (w * w + w) + w * out_dim + out_dim


def mlp_forward_flops(cfg, in_dim: int, out_dim: int) -> int:
    w, depth = cfg.policy.width, cfg.policy.depth
    return 2 * (in_dim * w + (depth - 1) * w * w + w * out_dim)


def measure(
    preset: str,
    population: int,
    generations: int,
    overrides: dict,
    peak: float,
    bandwidth: float,
    devices: int = 0,
    chunk: int | None = None,
    phases: bool = True,
) -> dict:
    settings = {**overrides, "population": population, "devices": devices}
    if chunk is not None:
        settings["chunk"] = chunk
    d = make_driver(make_config(preset, **settings))
    cfg, env = d.cfg, d.env
    state = d.init()
    # -- the whole generation
    t0 = time.perf_counter()
    step = d.step.lower(state).compile()
    compile_s = time.perf_counter() - t0
    state, _ = step(state)
    jax.block_until_ready(state)
    t0 = time.perf_counter()
    for _ in range(generations):
        state, m = step(state)
    jax.block_until_ready((state, m))
    per_gen = (time.perf_counter() - t0) / generations
    row = {
        "preset": preset,
        "chunk": d.chunk or population,
        "env": cfg.env,
        "variant": cfg.variant,
        "population": population,
        "devices": 1 if d.mesh is None else int(d.mesh.devices.size),
        "dataset_size": cfg.dataset_size,
        "width": cfg.policy.width,
        "bc_steps": cfg.bc.bc_steps,
        "eval_envs": cfg.eval_envs,
        "compile_seconds": round(compile_s, 2),
        "seconds_per_generation": round(per_gen, 4),
        "candidates_per_second": round(population / per_gen, 1),
    }
    if not phases:
        return row
    # -- the phases, on this generation's population (sharded the same way)
    k_ask, k_init, k_env, _ = d.generation_keys(state.generation)
    population_, _ = jax.jit(d.es.ask)(k_ask, state.es_state)
    inits = d.learners(k_init, state, cfg.num_inits)
    n_inits = 1 if inits is None else jax.tree.leaves(inits[0])[0].shape[0]
    rollout = make_rollout(env, d.policy, cfg.eval_envs, cfg.eval_steps, cfg.actions, cfg.obs_norm == "rollout")
    if cfg.variant == "direct-es":
        params, bc_s = population_, 0.0
        params = jax.tree.map(lambda a: a[:, None], params)
    else:

        def bc_phase(pop, inits):
            def candidate(sol, inits, norm):
                x, y = d.bc_data(sol, norm)  # once per candidate, as Distiller.score does
                train = lambda p, lr, n: d.bc_train(p, x, y, *d.bc_hyperparameters(sol, lr, n))[0]
                return jax.vmap(train)(*inits)

            return map_population(candidate, pop, d.mesh, d.chunk, (inits, state.norm))  # as the generation does

        _, bc_s, params = timed(bc_phase, population_, inits, repeat=2)

    def rollout_phase(params):
        steps = jax.vmap(lambda p, key, norm: rollout(p, key, norm).steps, in_axes=(0, None, None))
        return map_population(steps, params, d.mesh, d.chunk, (k_env, state.norm))

    _, roll_s, iters = timed(rollout_phase, params, repeat=2)
    loop_steps = int(np.max(iters))
    batch = population * n_inits * cfg.eval_envs
    # lane-steps the rollouts computed: each chunk's batched loop runs until its longest episode ends
    chunk = d.chunk or population
    lane_steps = (
        int(np.asarray(iters).reshape(population // chunk, -1).max(axis=1).sum()) * chunk * n_inits * cfg.eval_envs
    )

    def bare_env(keys):
        keys = shard_population(keys, d.mesh)
        obs, st = jax.vmap(env.reset)(keys)
        act = jnp.zeros((batch,), jnp.int32) if env.discrete else jnp.zeros((batch, env.action_dim))

        def body(st, t):
            _, st, r, _ = jax.vmap(env.step)(jax.random.split(jax.random.fold_in(k_env, t), batch), st, act)
            return st, r.sum()

        return jax.lax.scan(body, st, jnp.arange(loop_steps))[1].sum()

    _, bare_s, _ = timed(bare_env, jax.random.split(k_env, batch), repeat=2)
    in_dim = int(np.prod(env.obs_shape))
    bc_flops = (
        3 * population * n_inits * cfg.bc.bc_steps * cfg.dataset_size * mlp_forward_flops(cfg, in_dim, env.action_dim)
    )
    # the least memory traffic of a BC step: Adam reads params, gradient and two moments and writes
    # params and moments back (28 bytes per parameter), plus the gradient written once (4)
    bc_bytes = 32 * population * n_inits * cfg.bc.bc_steps * mlp_params(cfg, in_dim, env.action_dim)
    row.update(
        {
            "bc_seconds": round(bc_s, 4),
            "rollout_seconds": round(roll_s, 4),
            "overhead": round(per_gen / (bc_s + roll_s), 3),
            "bc_gflops": round(bc_flops / bc_s / 1e9, 2) if bc_s else None,
            "bc_fraction_of_matmul": round(bc_flops / bc_s / peak, 4) if bc_s else None,
            "bc_flop_per_byte": round(bc_flops / bc_bytes, 2),
            "bc_fraction_of_bandwidth": round(bc_bytes / bc_s / bandwidth, 3) if bc_s else None,
            "rollout_loop_steps": loop_steps,
            "rollout_batch": batch,
            "env_steps_per_second": round(lane_steps / roll_s),
            "bare_env_steps_per_second": round(loop_steps * batch / bare_s),
            "rollout_fraction_of_bare_env": round((lane_steps / roll_s) / (loop_steps * batch / bare_s), 3),
        }
    )
    return row


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--envs", default="cartpole,breakout,hopper", help="comma-separated presets")
    p.add_argument("--populations", default="64,256,1024")
    p.add_argument("--generations", type=int, default=3, help="timed generations per point")
    p.add_argument("--no-device-comparison", action="store_true", help="skip the 1-device runs")
    p.add_argument(
        "--no-chunk-comparison", action="store_true", help="skip the runs that evaluate the whole population at once"
    )
    p.add_argument("--json", default="benchmark-results.json", help="where to write the results")
    p.add_argument(
        "--set",
        nargs="*",
        default=[],
        metavar="KEY=VALUE",
        help="config overrides, e.g. --set dataset_size=16 width=512 (values parsed as JSON)",
    )
    args = p.parse_args()
    overrides = {}
    for item in args.set:
        key, _, value = item.partition("=")
        try:
            overrides[key] = json.loads(value)
        except json.JSONDecodeError:
            overrides[key] = value
    peak, bandwidth = matmul_rate(), memory_bandwidth()
    print(
        f"dense float32 matmul (2048^3 jnp.dot): {peak / 1e9:.1f} GFLOP/s; streaming memory: "
        f"{bandwidth / 1e9:.1f} GB/s; devices: {len(jax.devices())}"
    )
    head = (
        f"{'preset':9s} {'pop':>5s} {'dev':>3s} {'compile':>7s} {'s/gen':>7s} {'bc s':>7s} {'roll s':>7s} "
        f"{'ovh':>5s} {'BC GF/s':>8s} {'BC/mm':>6s} {'BC/bw':>6s} {'env st/s':>9s} {'/bare':>6s} {'scale':>6s} "
        f"{'1-dev x':>7s} {'chunk x':>7s}"
    )
    print(head)
    rows = []
    for preset in args.envs.split(","):
        first = None
        for pop in map(int, args.populations.split(",")):
            r = measure(PRESETS.get(preset, preset), pop, args.generations, overrides, peak, bandwidth)
            per_candidate = r["seconds_per_generation"] / pop
            first = first or per_candidate
            r["scaling"] = round(per_candidate / first, 3)
            if not args.no_device_comparison and pop >= 256 and r["devices"] > 1:
                one = measure(
                    PRESETS.get(preset, preset),
                    pop,
                    args.generations,
                    overrides,
                    peak,
                    bandwidth,
                    devices=1,
                    phases=False,
                )
                r["one_device_seconds_per_generation"] = one["seconds_per_generation"]
                r["device_speedup"] = round(one["seconds_per_generation"] / r["seconds_per_generation"], 2)
            if not args.no_chunk_comparison and pop >= 256 and r["chunk"] < pop:
                whole = measure(
                    PRESETS.get(preset, preset),
                    pop,
                    args.generations,
                    overrides,
                    peak,
                    bandwidth,
                    chunk=pop,
                    phases=False,
                )
                r["whole_population_seconds_per_generation"] = whole["seconds_per_generation"]
                r["chunk_speedup"] = round(whole["seconds_per_generation"] / r["seconds_per_generation"], 2)
            rows.append(r)
            fmt = lambda v, f: format(v, f) if v is not None else "-"
            print(
                f"{preset:9s} {pop:5d} {r['devices']:3d} {r['compile_seconds']:7.1f} "
                f"{r['seconds_per_generation']:7.3f} "
                f"{r['bc_seconds']:7.3f} {r['rollout_seconds']:7.3f} {r['overhead']:5.2f} "
                f"{fmt(r['bc_gflops'], '8.2f')} {fmt(r['bc_fraction_of_matmul'], '6.3f')} "
                f"{fmt(r['bc_fraction_of_bandwidth'], '6.2f')} "
                f"{r['env_steps_per_second']:9d} {r['rollout_fraction_of_bare_env']:6.2f} {r['scaling']:6.2f} "
                f"{fmt(r.get('device_speedup'), '7.2f')} {fmt(r.get('chunk_speedup'), '7.2f')}",
                flush=True,
            )
    meta = {
        "date": time.strftime("%Y-%m-%d %H:%M"),
        "machine": platform.machine(),
        "processor": platform.processor(),
        "cores": len(os.sched_getaffinity(0)),
        "devices": len(jax.devices()),
        "jax": jax.__version__,
        "matmul_gflops": round(peak / 1e9, 2),
        "memory_gb_per_s": round(bandwidth / 1e9, 2),
    }
    Path(args.json).write_text(json.dumps({"meta": meta, "results": rows}, indent=2))
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
