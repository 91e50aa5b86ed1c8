"""Equal work against the released code (issue 37; docs/performance.md, "Equal work against the
released code"): seconds per generation of the released scripts and of hades doing the same work,
interleaved. Three settings (``--setting``):

- ``breakout``: ``distill_minatar.py`` at the released Breakout setting (HaDES-F, population 64,
  16 states, width 512 relu, 32 BC steps, 8 envs x 1024 fixed-length steps with auto-reset);
- ``cartpole``: the same script and work on CartPole-v1 (no observation normalisation);
- ``hopper``: ``distill_brax.py`` at the paper's hopper setting (HaDES-F, population 64, 64
  states, width 512 tanh, 200 BC steps, 4 envs x 1024 auto-reset steps, positional physics,
  running observation normalisation per rollout): hades' ``paper-brax`` preset at population 64.

One rollout per candidate in both (``--rollouts``: the released scripts default to 2).

    pip install --no-deps --target /tmp/relpath evosax==0.1.5 gymnax==0.0.6
    python benchmarks/released.py --official PATH/behaviour-distillation --released-path /tmp/relpath
    python benchmarks/released.py --setting hopper --official PATH/behaviour-distillation --released-path /tmp/relpath

``--official`` is a checkout of FLAIROx/behaviour-distillation (not shipped with hades). Its
scripts run on hades' own JAX and brax: ``--released-path`` holds the official evosax and gymnax
versions, and this script adds stand-ins for what that stack needs and no longer exists or cannot
be reached here (the removed ``jax.tree_map`` alias, wandb, distrax's Categorical and
MultivariateNormalDiag, gym's spaces and the gym names gymnax 0.0.6's wrappers import); none of
them is on the timed path except the two distributions (softmax sampling; a diagonal Gaussian's
sample and log-density, as distrax's). The released code runs on one device (its pmap path needs
the population split by hand), which XLA spreads over every core; hades runs as its CLI does.
Compilation is excluded from both (the released code's first generation, hades'
``lower().compile()``). Run on an idle machine.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

SHIMS = {
    "sitecustomize.py": "import jax, jax.tree_util\njax.tree_map = jax.tree_util.tree_map\n",
    "wandb.py": "summary = {}\ndef init(**kw): return None\ndef define_metric(*a, **kw): return None\n"
    "def log(*a, **kw): return None\n",
    "distrax.py": (
        "import jax, jax.numpy as jnp\n"
        "class Categorical:\n"
        "    def __init__(self, logits): self.logits = logits\n"
        "    @property\n"
        "    def probs(self): return jax.nn.softmax(self.logits, axis=-1)\n"
        "    def sample(self, seed): return jax.random.categorical(seed, self.logits, axis=-1)\n"
        "    def log_prob(self, value):\n"
        "        logp = jax.nn.log_softmax(self.logits, axis=-1)\n"
        "        return jnp.take_along_axis(logp, value[..., None].astype(jnp.int32), axis=-1)[..., 0]\n"
        "class MultivariateNormalDiag:\n"
        "    def __init__(self, loc, scale_diag): self.loc, self.scale = loc, jnp.broadcast_to(scale_diag, loc.shape)\n"
        "    def sample(self, seed): return self.loc + self.scale * jax.random.normal(seed, self.loc.shape)\n"
        "    def log_prob(self, value):\n"
        "        z = (value - self.loc) / self.scale\n"
        "        return jnp.sum(-0.5 * z**2 - jnp.log(self.scale) - 0.5 * jnp.log(2 * jnp.pi), axis=-1)\n"
    ),
    "gym/__init__.py": "from types import SimpleNamespace as _NS\n"
    "spaces = _NS(Space=object, Discrete=object, Box=object, Dict=object, Tuple=object)\n"
    "Env = object\n"
    "from gym import core, vector\n",
    # gymnax 0.0.6's wrappers package imports its gym wrapper, which the Brax script imports through
    "gym/core.py": "ActType = ObsType = RenderFrame = object\n",
    "gym/vector/__init__.py": "VectorEnv = object\nfrom gym.vector import utils\n",
    "gym/vector/utils.py": "def batch_space(space, n=1): return space\n",
}

# Per setting: the released script and its arguments, and the hades preset and overrides doing
# the same work (chunk and device count are set per run).
SETTINGS = {
    "breakout": (
        "distill_minatar.py",
        ["--env", "Breakout-MinAtar", "--popsize", "64", "--dataset_size", "16", "--overfit", "--width", "512",
         "--activation", "relu", "--epochs", "32", "--eval_envs", "8", "--num_steps", "1024"],
        "breakout",
        "RELEASED_BREAKOUT",
    ),
    # the Breakout setting's work on CartPole-v1 (the released MinAtar script runs any gymnax
    # environment; no normalisation statistics exist for CartPole, so none is applied)
    "cartpole": (
        "distill_minatar.py",
        ["--env", "CartPole-v1", "--popsize", "64", "--dataset_size", "16", "--overfit", "--width", "512",
         "--activation", "relu", "--epochs", "32", "--eval_envs", "8", "--num_steps", "1024",
         "--const_normalize_obs", "0"],
        "cartpole",
        "RELEASED_CARTPOLE",
    ),
    # HaDES-F on hopper as the paper ran it (paper-brax: positional physics, width 512 tanh, 64
    # states, 200 BC steps at 0.005 clipped at 0.5, running observation normalisation per rollout,
    # 4 envs x 1024 auto-reset steps), population 64
    "hopper": (
        "distill_brax.py",
        ["--env", "hopper", "--popsize", "64", "--dataset_size", "64", "--overfit", "--epochs", "200",
         "--eval_envs", "4", "--const_normalize_obs", "0", "--normalize_obs", "1"],
        "paper-brax",
        "RELEASED_HOPPER",
    ),
}  # fmt: skip

LAP = re.compile(r"Gen: (\d+),.*Lap time: ([0-9.]+)s")


def released(setting: str, official: Path, path: Path, shims: Path, rollouts: int, generations: int) -> list[float]:
    """Seconds of each generation after the first (which compiles) of the released script."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(map(str, (shims, path, official)))}
    env.pop("XLA_FLAGS", None)  # one device
    script, script_args = SETTINGS[setting][:2]
    cmd = [sys.executable, script, *script_args, "--rollouts", str(rollouts)]
    cmd += ["--generations", str(generations + 1), "--folder", tempfile.mkdtemp() + "/"]
    proc = subprocess.run(cmd, cwd=official / "policy_distillation", env=env, capture_output=True, text=True)
    laps = [float(m.group(2)) for m in LAP.finditer(proc.stdout) if int(m.group(1)) > 0]
    if proc.returncode or not laps:
        raise SystemExit(f"the released script failed:\n{proc.stderr[-3000:]}")
    return laps


def hades_seconds(setting: str, generations: int, chunk: int) -> dict:
    """One hades timing in a fresh process (as the released script gets one)."""
    preset, overrides = SETTINGS[setting][2:]
    code = (
        "import json, sys; sys.path.insert(0, 'benchmarks');"
        f"from chunks import {overrides}, time_generation;"
        "from hades.presets import make_config;"
        f"cfg = make_config('{preset}', devices=0, chunk={chunk}, **{overrides});"
        f"c, s, d = time_generation(cfg, {generations});"
        "print(json.dumps({'compile': c, 'per_gen': s, 'chunk': d.chunk or d.cfg.es.population}))"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True)
    if proc.returncode:
        raise SystemExit(f"hades failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


CEILING = """
import json, time, jax, jax.numpy as jnp
def rate(f, args, flop, n):
    f = jax.jit(f); jax.block_until_ready(f(*args)); t = time.perf_counter()
    for _ in range(n): out = f(*args)
    jax.block_until_ready(out); return flop * n / (time.perf_counter() - t) / 1e9
k = jax.random.PRNGKey(0); a = jax.random.normal(k, (2048, 2048)); x, w = a[:8, :512], a[:512, :512]
def steps(x, w): return jax.lax.scan(lambda h, _: (jnp.tanh(h @ w), None), x, None, 1000)[0]
print(json.dumps({"matmul 2048^3 f32": rate(lambda p, q: p @ q, (a, a), 2 * 2048**3, 5),
                  "1000 x (8x512 @ 512x512) f32": rate(steps, (x, w), 2 * 1000 * 8 * 512 * 512, 3)}))
"""


def ceiling() -> dict:
    """GFLOP/s of a large float32 matmul and of the rollout's own shape (8-row products in
    sequence), on every core as JAX runs them by default: the ceiling an equal-work speed-up meets."""
    proc = subprocess.run([sys.executable, "-c", CEILING], capture_output=True, text=True)
    if proc.returncode:
        raise SystemExit(f"the ceiling measurement failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--official", type=Path, required=True, help="a checkout of FLAIROx/behaviour-distillation")
    ap.add_argument("--released-path", type=Path, required=True, help="evosax 0.1.5 and gymnax 0.0.6 (pip --target)")
    ap.add_argument("--setting", choices=sorted(SETTINGS), default="breakout", help="the work (default breakout)")
    ap.add_argument("--reps", type=int, default=2, help="interleaved repetitions (default 2)")
    ap.add_argument("--generations", type=int, default=3, help="timed generations per run (default 3)")
    ap.add_argument("--rollouts", type=int, default=1, help="released: policies per candidate (HaDES-F: 1)")
    ap.add_argument("--chunks", default="0", help="hades chunks to time, comma-separated (0: the model's)")
    ap.add_argument("--json", type=Path, help="write the timings here")
    ap.add_argument("--ceiling", action="store_true", help="also measure the machine's matmul GFLOP/s first")
    args = ap.parse_args()
    shims = Path(tempfile.mkdtemp(prefix="hades-released-shims-"))
    for name, text in SHIMS.items():
        (shims / name).parent.mkdir(parents=True, exist_ok=True)
        (shims / name).write_text(text)
    rows = []
    if args.ceiling:
        rows.append({"who": "ceiling GFLOP/s", **ceiling()})
        print("ceiling: " + ", ".join(f"{k} {v:.0f} GFLOP/s" for k, v in rows[-1].items() if k != "who"))
    for rep in range(args.reps):
        t0 = time.perf_counter()
        laps = released(args.setting, args.official, args.released_path, shims, args.rollouts, args.generations)
        rows.append({"rep": rep, "who": f"released (rollouts {args.rollouts})", "per_gen": laps})
        print(f"rep {rep} released: {', '.join(f'{x:.1f}' for x in laps)} s/gen ({time.perf_counter() - t0:.0f} s)")
        for chunk in map(int, args.chunks.split(",")):
            h = hades_seconds(args.setting, args.generations, chunk)
            rows.append({"rep": rep, "who": f"hades chunk {h['chunk']}", **h})
            print(f"rep {rep} hades chunk {h['chunk']}: {h['per_gen']:.2f} s/gen (compile {h['compile']:.0f} s)")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
