"""Datasets that train any learner (docs/experiments.md): distil with several methods and seeds,
then score every dataset with hades' own learner and with learners built outside hades.

    python tools/learners_experiment.py --out runs/learners [--envs cartpole,acrobot,breakout,hopper]
        [--methods hades-f,hades-r,hades-r-wide,hades-r-wide-linear,hades-r-soft] [--seeds 5] [--fits 3] [--episodes 5]

Methods (every one at its environment preset's budget; only the learners differ):
- ``hades-f``: one fixed init;  ``hades-r``: 2 fresh inits of the run's learner per generation;
- ``hades-r-wide``: ``--learners wide`` (2 learners per generation from tanh/relu/gelu x 1-3
  hidden layers x Adam/SGD with and without clipping x init scale in [1/2, 2], beside width, lr, steps);
- ``hades-r-wide-linear``: the wide distribution with linear models (depth 0) among the depths
  (observations must fit in the width: not Breakout's 400 values at width 64);
- ``hades-r-soft``: HaDES-R with an evolved label temperature (``--evolve-label-temperature
  --bc-label-temperature 0.2``; discrete actions only).

Every cell is an ordinary run directory ``OUT/<env>/<method>/seed<S>``: finished cells are kept,
interrupted ones resume, so the same command continues the experiment. Each dataset is then
scored (cached in the cell as ``learners.json``) by:
- ``hades``: the protocol's figure, 5 fresh inits of the learner it was evolved for x 10 episodes
  (evaluation seed 1000, never used for fitness);
- ``torch-mlp``, ``linear``, ``knn``, ``tree``: examples/outside_learners.py (``--fits`` fits x
  ``--episodes`` episodes each; Gymnasium where it has the environment).
``OUT/learners.json`` and ``OUT/learners.md`` hold the table: per environment, method and learner,
the mean over the seeds' datasets with a 95% t interval, and the random policy's return.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "examples"))

import numpy as np  # noqa: E402

from hades.artifacts import atomic_write, load_dataset  # noqa: E402
from hades.config import RetrainConfig  # noqa: E402
from hades.evaluation import run_config, summarize, train_and_evaluate  # noqa: E402
from hades.presets import make_config  # noqa: E402
from hades.report import number, pm  # noqa: E402
from hades.runs import CHECKPOINT, run  # noqa: E402
from hades.stats import ci95  # noqa: E402

METHODS = {
    "hades-f": {"variant": "hades-f"},
    "hades-r": {"variant": "hades-r"},
    "hades-r-wide": {"variant": "hades-r", "learners": "wide"},
    "hades-r-wide-linear": {"variant": "hades-r", "learners": "wide", "learner_depths": "0,1,2,3"},
    "hades-r-soft": {"variant": "hades-r", "evolve_label_temperature": True, "bc_label_temperature": 0.2},
}
ENVS = {"cartpole": "CartPole-v1", "acrobot": "Acrobot-v1", "breakout": "Breakout-MinAtar", "hopper": "brax/hopper"}
OUTSIDE = ("torch-mlp", "linear", "knn", "tree")
CONTINUOUS = ("hopper",)


def distil(out: Path, env: str, method: str, seed: int) -> Path:
    cell = out / env / method / f"seed{seed}"
    if (cell / "summary.json").is_file():
        return cell
    cfg = make_config(env, seed=seed, **METHODS[method])
    print(f"{env} {method} seed {seed}: distilling ({cfg.generations} generations)", file=sys.stderr, flush=True)
    run(cfg, cell, resume=(cell / CHECKPOINT).is_file())
    return cell


def score(cell: Path, fits: int, episodes: int) -> dict:
    cached = cell / "learners.json"
    if cached.is_file():
        return json.loads(cached.read_text())
    import outside_learners

    path = cell / "dataset.safetensors"
    ds = load_dataset(path)
    cfg = run_config(ds)
    t = time.time()
    rollouts = train_and_evaluate(
        ds, cfg.policy, cfg.bc, RetrainConfig(5, 10, seed=1000), backend=cfg.backend, actions=cfg.actions
    )
    from hades.envs import make_env

    fresh = summarize(rollouts, make_env(ds.env, cfg.backend))
    out = {"hades": {"return_mean": fresh["return_mean"], "return_ci95": fresh["return_ci95"]}}
    for row in outside_learners.evaluate(str(path), list(OUTSIDE), fits, episodes):
        out[row["learner"]] = {"return_mean": row["return_mean"], "return_ci95": row["return_ci95"]}
    summary = json.loads((cell / "summary.json").read_text())
    out["_random"] = summary["random_return_mean"]
    out["_seconds"] = round(time.time() - t, 1)
    atomic_write(cached, json.dumps(out, indent=1))
    return out


def table(out: Path, envs, methods, seeds) -> dict:
    result = {}
    lines = ["| environment | method | seeds | " + " | ".join(("hades", *OUTSIDE)) + " | random |", "|---" * 9 + "|"]
    for env in envs:
        for method in methods:
            scores = [
                json.loads(p.read_text())
                for s in seeds
                if (p := out / env / method / f"seed{s}" / "learners.json").is_file()
            ]
            if not scores:
                continue
            row = {"seeds": len(scores), "random": float(np.mean([s["_random"] for s in scores]))}
            for learner in ("hades", *OUTSIDE):
                v = [s[learner]["return_mean"] for s in scores]
                row[learner] = {"mean": float(np.mean(v)), "ci95": ci95(v), "per_seed": v}
            result.setdefault(env, {})[method] = row
            cells = [pm(row[x]["mean"], row[x]["ci95"], 4) for x in ("hades", *OUTSIDE)]
            lines.append(
                f"| {ENVS[env]} | {method} | {len(scores)} | " + " | ".join(cells) + f" | {number(row['random'])} |"
            )
    atomic_write(out / "learners.json", json.dumps(result, indent=1))
    atomic_write(out / "learners.md", "\n".join(lines) + "\n")
    return result


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", required=True)
    p.add_argument("--envs", default=",".join(ENVS))
    p.add_argument("--methods", default=",".join(METHODS))
    p.add_argument("--seeds", type=int, default=5)
    p.add_argument("--fits", type=int, default=3, help="fits per outside learner (default: 3)")
    p.add_argument("--episodes", type=int, default=5, help="episodes per outside fit (default: 5)")
    a = p.parse_args(argv)
    envs = [e for e in a.envs.split(",") if e]
    methods = [m for m in a.methods.split(",") if m]
    bad = [x for x in envs if x not in ENVS] + [x for x in methods if x not in METHODS]
    if bad:
        p.error(f"unknown environment or method {bad[0]!r}")
    out = Path(a.out)
    seeds = range(a.seeds)
    for env in envs:
        for method in methods:
            if (method == "hades-r-soft" and env in CONTINUOUS) or (
                method == "hades-r-wide-linear" and env == "breakout"
            ):
                continue
            for s in seeds:
                score(distil(out, env, method, s), a.fits, a.episodes)
                table(out, envs, methods, seeds)
    print((out / "learners.md").read_text())


if __name__ == "__main__":
    main()
