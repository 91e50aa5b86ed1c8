"""Peak memory of one generation, HaDES against direct ES, as the policy widens (paper's claim:
HaDES' memory does not grow with policy width while direct ES' does).

    python benchmarks/memory.py                     # hopper, population 64, widths 64/256/1024
    python benchmarks/memory.py --population 2048   # the paper's population (compiles only)

For each width it compiles one generation of HaDES-F (evaluating the whole population at once,
and ``--chunk`` candidates at a time) and of direct ES on brax/hopper and reads
XLA's own memory analysis of the compiled program (arguments + outputs + temporaries, minus
aliased buffers): the peak the generation needs, deterministic and independent of whatever else
the machine runs. It also reports the run state (ES state, what is carried between generations).
Nothing is executed, so paper-sized populations can be measured on a laptop.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

import jax  # noqa: E402

from hades.presets import make_config  # noqa: E402
from hades.runs import make_driver  # noqa: E402


def generation_memory(variant: str, width: int, population: int, preset: str, env: str, chunk: int = 0) -> dict:
    d = make_driver(
        make_config(
            preset, env=env, variant=variant, width=width, population=population, devices=1, chunk=chunk or population
        )
    )
    state = d.init()
    compiled = d.step.lower(state).compile()
    m = compiled.memory_analysis()
    state_bytes = sum(x.size * x.dtype.itemsize for x in jax.tree.leaves(state))
    peak = m.argument_size_in_bytes + m.output_size_in_bytes + m.temp_size_in_bytes - m.alias_size_in_bytes
    return {
        "variant": variant + (f" chunk {chunk}" if chunk else ""),
        "width": width,
        "population": population,
        "state_mb": state_bytes / 2**20,
        "temp_mb": m.temp_size_in_bytes / 2**20,
        "peak_mb": peak / 2**20,
        "es_dimensions": int(sum(x.size for x in jax.tree.leaves(d.solution(state)))),
    }


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--env", default="brax/hopper")
    p.add_argument("--preset", default="hopper", help="preset the runs start from")
    p.add_argument("--widths", default="64,256,1024")
    p.add_argument("--population", type=int, default=64)
    p.add_argument(
        "--chunk", type=int, default=8, help="HaDES-F is also measured evaluating this many candidates at a time"
    )
    p.add_argument("--json", default="memory-results.json")
    args = p.parse_args()
    rows = []
    print(f"{args.env}, population {args.population}: peak memory of one generation (XLA memory analysis)")
    print(f"{'width':>6s} {'variant':>17s} {'ES dims':>10s} {'state MB':>9s} {'temp MB':>9s} {'peak MB':>9s}")
    for width in map(int, args.widths.split(",")):
        for variant, chunk in (("hades-f", 0), ("hades-f", args.chunk), ("direct-es", 0)):
            r = generation_memory(variant, width, args.population, args.preset, args.env, chunk)
            rows.append(r)
            print(
                f"{width:6d} {r['variant']:>17s} {r['es_dimensions']:10d} {r['state_mb']:9.2f} {r['temp_mb']:9.1f} "
                f"{r['peak_mb']:9.1f}",
                flush=True,
            )
    meta = {"date": time.strftime("%Y-%m-%d %H:%M"), "env": args.env, "preset": args.preset, "jax": jax.__version__}
    Path(args.json).write_text(json.dumps({"meta": meta, "results": rows}, indent=2))
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
