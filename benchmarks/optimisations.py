"""Candidate optimisations, each measured against the baseline in one run (ratios, not absolutes).

    python benchmarks/optimisations.py                         # every variant at the default points
    python benchmarks/optimisations.py --variants baseline,unroll4 --points cartpole:256

Each (variant, point) is ``benchmarks/suite.py`` in a fresh process (XLA flags only take effect
when JAX starts), phases included, so a variant's effect on the BC phase, the rollout phase and
the whole generation are reported apart. Points are ``PRESET:POPULATION[:key=value,...]``; the
defaults are the CartPole and Breakout CPU presets at population 256 and CartPole at the paper's
width (512) with 16 states, the released-code comparison point. The table gives each variant's
seconds divided by the baseline's (< 1: faster). Run it on an otherwise idle machine.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# variant -> (config overrides, extra XLA flags)
VARIANTS = {
    "baseline": ({}, ""),
    "unroll4": ({"bc_unroll": 4}, ""),
    "unroll16": ({"bc_unroll": 16}, ""),
    "bfloat16": ({"precision": "bfloat16"}, ""),
    "eigen-single-thread": ({}, "--xla_cpu_multi_thread_eigen=false"),
    # XLA's library paths for dots (jaxlib 0.10.2): XNNPACK and oneDNN, made for small-batch GEMMs
    "xnn-dot": ({}, "--xla_cpu_experimental_xnn_fusion_type=LIBRARY_FUSION_TYPE_DOT"),
    "onednn-dot": ({}, "--xla_cpu_experimental_onednn_fusion_type=LIBRARY_FUSION_TYPE_DOT"),
}
POINTS = ("cartpole:256", "breakout:256", "cartpole:64:width=512,dataset_size=16")
KEYS = ("seconds_per_generation", "bc_seconds", "rollout_seconds")


def run_point(point: str, overrides: dict, flags: str, generations: int) -> dict:
    preset, pop, *rest = point.split(":")
    sets = dict(kv.split("=", 1) for kv in rest[0].split(",")) if rest else {}
    sets.update({k: json.dumps(v) if not isinstance(v, str) else v for k, v in overrides.items()})
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "r.json"
        cmd = [sys.executable, str(ROOT / "benchmarks/suite.py"), "--envs", preset, "--populations", pop]
        cmd += [
            "--generations",
            str(generations),
            "--no-device-comparison",
            "--no-chunk-comparison",
            "--json",
            str(out),
        ]
        if sets:
            cmd += ["--set", *(f"{k}={v}" for k, v in sets.items())]
        env = dict(os.environ)
        if flags:
            env["XLA_FLAGS"] = (env.get("XLA_FLAGS", "") + " " + flags).strip()
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
        if proc.returncode:
            raise SystemExit(f"{point} {overrides} {flags}: {proc.stderr[-2000:]}")
        return json.loads(out.read_text())["results"][0]


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--variants", default=",".join(VARIANTS))
    p.add_argument("--points", nargs="*", default=list(POINTS))
    p.add_argument("--generations", type=int, default=3)
    p.add_argument("--json", default="optimisation-results.json")
    a = p.parse_args(argv)
    variants = [v for v in a.variants.split(",") if v]
    if "baseline" not in variants or any(v not in VARIANTS for v in variants):
        p.error(f"variants from {', '.join(VARIANTS)}, baseline included")
    results = {}
    for point in a.points:
        for v in variants:
            overrides, flags = VARIANTS[v]
            results.setdefault(point, {})[v] = run_point(point, overrides, flags, a.generations)
            print(point, v, {k: results[point][v].get(k) for k in KEYS}, file=sys.stderr, flush=True)
    Path(a.json).write_text(json.dumps(results, indent=1))
    print("| point | variant | s/gen | BC s | rollout s | s/gen vs baseline | BC vs baseline | rollout vs baseline |")
    print("|---|---|---|---|---|---|---|---|")
    for point, rows in results.items():
        base = rows["baseline"]
        for v, r in rows.items():
            ratios = [r[k] / base[k] if base.get(k) else float("nan") for k in KEYS]
            print(
                f"| {point} | {v} | {r['seconds_per_generation']:.3g} | {r['bc_seconds']:.3g} | "
                f"{r['rollout_seconds']:.3g} | " + " | ".join(f"{x:.2f}" for x in ratios) + " |"
            )


if __name__ == "__main__":
    main()
