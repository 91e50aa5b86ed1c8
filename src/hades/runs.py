"""A run directory: drive ``Distiller`` generation by generation, write everything, resume.

Layout of ``--out DIR``:
- ``config.json``           the full run config
- ``metrics.jsonl``         one JSON line per generation (see ``METRIC_KEYS``)
- ``checkpoint.safetensors`` the whole run state, every ``checkpoint_every`` generations and at
                            the end; ``run(..., resume=True)`` continues from it and gives the
                            same dataset as an uninterrupted run (same seed, same machine)
- ``dataset.safetensors``   the distilled dataset (HaDES) or ``policy.safetensors`` (direct ES),
                            refreshed with every checkpoint
- ``summary.json``          final evaluation and timings
- ``learning_curve.png``
Every file is replaced atomically. Progress goes to a :class:`Reporter` (the CLI draws a progress
bar with it); the library prints nothing.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from hades import __version__
from hades.artifacts import Dataset, atomic_write, load_checkpoint, save_checkpoint, save_dataset, save_policy
from hades.config import DistillConfig
from hades.distill import Distiller, RunState
from hades.errors import HadesError

CHECKPOINT = "checkpoint.safetensors"
METRIC_KEYS = ("generation", "fitness_mean", "fitness_max", "fitness_min", "bc_loss",
               "eval_return_mean", "eval_return_std", "wall_seconds")


class Reporter:
    """Receives a run's progress; subclass and override what you need."""

    def start(self, cfg: DistillConfig, out: Path, start_generation: int) -> None:
        """Called once the config and output directory are checked, before compiling."""

    def generation(self, row: dict) -> None:
        """Called after every generation with its metrics row (``METRIC_KEYS``)."""


def load_run_config(out_dir) -> DistillConfig:
    """The config of the run checkpointed in ``out_dir``."""
    path = Path(out_dir) / CHECKPOINT
    _, meta = load_checkpoint(path)
    try:
        return DistillConfig.from_dict(json.loads(meta["config"]))
    except (KeyError, json.JSONDecodeError) as e:
        raise HadesError(f"{path}: checkpoint has no readable config ({e})") from None


def _prepare(out: Path, resume: bool) -> None:
    try:
        out.mkdir(parents=True, exist_ok=True)
        atomic_write(out / ".write-test", "")
        (out / ".write-test").unlink()
    except OSError as e:
        raise HadesError(f"cannot write to output directory {out}: {e.strerror or e}") from None
    if resume and not (out / CHECKPOINT).is_file():
        raise HadesError(f"{out} has no {CHECKPOINT} to resume from")
    if not resume and (out / CHECKPOINT).is_file():
        raise HadesError(f"{out} already holds a run; pass --resume {out} to continue it, or choose another --out")


def _restore(d: Distiller, out: Path) -> tuple[RunState, float]:
    template = d.init()
    leaves, meta = load_checkpoint(out / CHECKPOINT)
    ref, treedef = jax.tree.flatten(template)
    if len(leaves) != len(ref) or any(a.shape != b.shape or a.dtype != b.dtype for a, b in zip(leaves, ref)):
        raise HadesError(f"{out / CHECKPOINT} does not match this run's config or hades version")
    return jax.tree.unflatten(treedef, [jnp.asarray(x) for x in leaves]), float(meta.get("wall_seconds", 0.0))


def _checkpoint(d: Distiller, state: RunState, out: Path, wall: float) -> None:
    leaves = [np.asarray(x) for x in jax.tree.leaves(state)]
    save_checkpoint(out / CHECKPOINT, leaves, {"config": d.cfg.to_json(), "generation": int(state.generation),
                                                "wall_seconds": f"{wall:.3f}"})
    write_product(d, state, out)


def write_product(d: Distiller, state: RunState, out: Path) -> Path:
    """Write the run's product: the dataset artifact (HaDES) or the policy (direct ES)."""
    cfg = d.cfg
    if d.direct:
        norm = state.norm if cfg.obs_norm != "none" else None
        path = out / "policy.safetensors"
        save_policy(path, jax.device_get(d.solution(state)), cfg.env, cfg.to_dict(),
                    None if norm is None else np.asarray(norm.mean), None if norm is None else np.asarray(norm.std))
        return path
    arrays = d.dataset(state)
    ds = Dataset(states=arrays["states"], actions=arrays["actions"], env=cfg.env, action_space=d.env.action_space,
                 variant=cfg.variant, obs_mean=arrays.get("obs_mean"), obs_std=arrays.get("obs_std"),
                 config=cfg.to_dict())
    path = out / "dataset.safetensors"
    save_dataset(path, ds)
    return path


def _read_metrics(out: Path, upto: int) -> list[dict]:
    path = out / "metrics.jsonl"
    if not path.is_file():
        return []
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return [r for r in rows if r["generation"] <= upto]


def run(cfg: DistillConfig, out_dir, *, resume: bool = False, reporter: Reporter | None = None) -> dict:
    """Run (or resume) a distillation into ``out_dir``; returns the summary dict."""
    out = Path(out_dir)
    reporter = reporter or Reporter()
    d = Distiller(cfg)  # checks the config (environment, strategy) before touching the disk
    _prepare(out, resume)
    if resume:
        state, wall_before = _restore(d, out)
    else:
        state, wall_before = d.init(), 0.0
    start_gen = int(state.generation)
    if start_gen > cfg.generations:
        raise HadesError(f"checkpoint is at generation {start_gen}, beyond --generations {cfg.generations}")
    atomic_write(out / "config.json", json.dumps(cfg.to_dict(), indent=2, sort_keys=True))
    rows = _read_metrics(out, start_gen)
    atomic_write(out / "metrics.jsonl", "".join(json.dumps(r) + "\n" for r in rows))

    reporter.start(cfg, out, start_gen)
    t0 = time.perf_counter()
    step = d.step.lower(state).compile()
    compile_seconds = time.perf_counter() - t0
    wall = lambda: wall_before + time.perf_counter() - t0  # noqa: E731

    try:
        with open(out / "metrics.jsonl", "a") as log:
            while int(state.generation) < cfg.generations:
                new_state, m = step(state)
                m = jax.device_get(m)
                gen = int(new_state.generation)
                if not m["finite"]:
                    _checkpoint(d, state, out, wall())
                    raise HadesError(f"non-finite fitness at generation {gen}; last good checkpoint "
                                     f"(generation {gen - 1}) kept in {out}")
                state = new_state
                row = {"generation": gen, **{k: float(m[k]) for k in METRIC_KEYS[1:5]},
                       "eval_return_mean": None, "eval_return_std": None}
                if (cfg.eval_every and gen % cfg.eval_every == 0) or gen == cfg.generations:
                    r = d.evaluate(state)
                    row["eval_return_mean"], row["eval_return_std"] = float(r.mean()), float(r.std())
                row["wall_seconds"] = round(wall(), 3)
                log.write(json.dumps(row) + "\n")
                log.flush()
                rows.append(row)
                if gen % cfg.checkpoint_every == 0 or gen == cfg.generations:
                    _checkpoint(d, state, out, wall())
                reporter.generation(row)
    except KeyboardInterrupt:
        _checkpoint(d, state, out, wall())
        raise

    returns = d.evaluate(state)
    product = write_product(d, state, out)
    summary = {
        "env": cfg.env, "variant": cfg.variant, "generations": cfg.generations,
        "final_return_mean": float(returns.mean()), "final_return_std": float(returns.std()),
        "final_returns_per_policy": [float(x) for x in returns.mean(axis=1)],
        "final_episodes": int(returns.size), "wall_seconds": round(wall(), 3),
        "compile_seconds": round(compile_seconds, 3),
        "seconds_per_generation": round((wall() - wall_before - compile_seconds) / max(1, cfg.generations - start_gen), 4),
        "artifact": product.name, "hades_version": __version__, "config": cfg.to_dict(),
    }
    atomic_write(out / "summary.json", json.dumps(summary, indent=2))
    from hades.plots import learning_curve  # plotting stays out of the import path of the engine

    learning_curve(rows, out / "learning_curve.png", title=f"{cfg.env} {cfg.variant}")
    return summary
