"""Time to a solved task: wall seconds from a cold start until the mean dataset's evaluated
return first reaches a threshold, at the CPU presets.

    python benchmarks/time_to_threshold.py                          # CartPole 475, Breakout 1.0, hopper 1000
    python benchmarks/time_to_threshold.py --tasks cartpole --seeds 0,1,2

Each (task, seed) is a fresh ``hades distill --preset P --seed S --eval-every 1`` process (so
the time includes starting Python, importing JAX, building the environment and compiling);
the clock starts when the process is launched and stops when a metrics row with
``eval_return_mean >= threshold`` appears in its run directory (then the process is stopped).
The evaluation is the protocol's (held-out keys, fresh inits, whole episodes, sampled actions),
made every generation, and its time counts. A seed that does not reach the threshold within the
preset's generations is reported as not reached. Run it on an otherwise idle machine.
Prints a table and writes JSON (``--json``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
# task -> (preset, threshold, variant): thresholds are the solved score (CartPole) or a return
# well above the random policy's at the CPU preset's budget (Breakout random: 0.46; hopper: ~20)
TASKS = {
    "cartpole": ("cartpole", 475.0, "hades-r"),
    "breakout": ("breakout", 1.0, "hades-r"),
    "hopper": ("hopper", 1000.0, "hades-f"),
}


def time_one(preset: str, threshold: float, variant: str, seed: int, poll: float = 0.05) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "run"
        cmd = [sys.executable, "-m", "hades.cli", "distill", "--preset", preset, "--variant", variant]
        cmd += ["--seed", str(seed), "--eval-every", "1", "--out", str(out), "--quiet"]
        env = {**os.environ, "PYTHONPATH": str(ROOT / "src") + os.pathsep + os.environ.get("PYTHONPATH", "")}
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env, text=True)
        seen, hit = 0, None
        while hit is None:
            done = proc.poll() is not None
            metrics = out / "metrics.jsonl"
            if metrics.is_file():
                lines = metrics.read_text().splitlines()
                for line in lines[seen:]:
                    try:
                        row = json.loads(line)
                    except json.JSONDecodeError:
                        break  # a line being written: read it next time
                    seen += 1
                    if row.get("eval_return_mean") is not None and row["eval_return_mean"] >= threshold:
                        hit = (time.perf_counter() - t0, row)
                        break
            if done:
                break
            time.sleep(poll)
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            proc.wait()
        elif proc.returncode not in (0, None) and hit is None:
            raise SystemExit(f"{preset} seed {seed} failed: {proc.stderr.read()[-500:]}")
        result = {"seed": seed, "reached": hit is not None, "generations_run": seen}
        if hit:
            result |= {
                "seconds": round(hit[0], 2),
                "generations": hit[1]["generation"],
                "return": hit[1]["eval_return_mean"],
                "run_wall_seconds": hit[1]["wall_seconds"],  # from the run's start, compile included
            }
        return result


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--tasks", default=",".join(TASKS), help=f"comma-separated subset of {', '.join(TASKS)}")
    p.add_argument("--seeds", default="0,1,2")
    p.add_argument("--json", help="write the results here")
    args = p.parse_args()
    seeds = [int(s) for s in args.seeds.split(",")]
    results = []
    for task in args.tasks.split(","):
        preset, threshold, variant = TASKS[task]
        runs = []
        for s in seeds:
            runs.append(time_one(preset, threshold, variant, s))
            print(f"{task} seed {s}: {runs[-1]}", file=sys.stderr, flush=True)
        reached = [r for r in runs if r["reached"]]
        results.append(
            {
                "task": task,
                "preset": preset,
                "variant": variant,
                "threshold": threshold,
                "seeds": len(runs),
                "reached": len(reached),
                "seconds_mean": float(np.mean([r["seconds"] for r in reached])) if reached else None,
                "seconds_max": max((r["seconds"] for r in reached), default=None),
                "generations_mean": float(np.mean([r["generations"] for r in reached])) if reached else None,
                "runs": runs,
            }
        )
    print(
        "| task | preset (variant) | threshold | seeds reaching it | wall s to threshold (mean / max) | generations |"
    )
    print("|---|---|---|---|---|---|")
    for r in results:
        secs = f"{r['seconds_mean']:.1f} / {r['seconds_max']:.1f}" if r["reached"] else "not reached"
        gens = f"{r['generations_mean']:.1f}" if r["reached"] else "—"
        print(
            f"| {r['task']} | {r['preset']} ({r['variant']}) | {r['threshold']:g} | {r['reached']} / {r['seeds']} | "
            f"{secs} | {gens} |"
        )
    if args.json:
        machine = {"platform": platform.platform(), "cpus": os.cpu_count()}
        Path(args.json).write_text(json.dumps({"machine": machine, "results": results}, indent=1))


if __name__ == "__main__":
    main()
