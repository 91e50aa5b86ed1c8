"""A run directory: drive a distiller generation by generation, write everything, resume.

Works for any *driver* (``distill.Distiller`` for RL, ``supervised.ImageDistiller`` for images):
an object with ``cfg`` (a frozen config with ``generations``, ``eval_every``,
``checkpoint_every``, ``to_dict``), ``init() -> state`` (a pytree with a ``generation``
counter), a jitted ``step(state) -> (state, metrics)`` whose metrics hold ``fitness_mean/max/min``
and ``finite``, ``evaluate(state) -> dict`` (keys listed in ``eval_keys``), ``describe(state) -> dict`` (goes into
the summary), ``title`` (of the learning curve) and ``write_product(state, out) -> Path``.

Layout of ``--out DIR``:
- ``config.json``            the full run config
- ``metrics.jsonl``          one JSON line per generation: ``generation``, the step's metrics,
                             ``eval_<key>`` (null when not evaluated that generation), ``wall_seconds``
- ``checkpoint.safetensors`` the whole run state, every ``checkpoint_every`` generations, at the
                             end, on Ctrl-C and before a non-finite-fitness error; ``resume=True``
                             continues from it to the same result as an uninterrupted run
- the product (``dataset.safetensors``, or ``policy.safetensors`` for direct ES), refreshed with
  every checkpoint
- ``init.safetensors``       HaDES-F: the policy initialisation the dataset is tied to (what
                             ``hades train --own-init`` retrains from)
- ``summary.json``           ``describe()``, ``final_<key>`` of the final evaluation, timings
- ``learning_curve.png``
Every file is replaced atomically. Progress goes to a :class:`Reporter` (the CLI draws a progress
bar with it); the library prints nothing. In a multi-host run (``devices.initialize_distributed``)
every process runs this loop and only process 0 writes; ``resume`` needs ``DIR`` on a
filesystem every host sees.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from hades import __version__
from hades.artifacts import atomic_write, load_checkpoint, save_checkpoint, save_policy
from hades.config import DistillConfig, ImageDistillConfig
from hades.devices import is_main_process, place
from hades.errors import HadesError

CHECKPOINT = "checkpoint.safetensors"
INIT = "init.safetensors"
CONFIG_KINDS = {cls.__name__: cls for cls in (DistillConfig, ImageDistillConfig)}


def make_driver(cfg):
    """The driver for a config (checks it: environment, strategy, data files)."""
    if isinstance(cfg, ImageDistillConfig):
        from hades.supervised import ImageDistiller

        return ImageDistiller(cfg)
    from hades.distill import Distiller

    return Distiller(cfg)


class Reporter:
    """Receives a run's progress; subclass and override what you need."""

    def start(self, cfg: DistillConfig, out: Path, start_generation: int) -> None:
        """Called once the config and output directory are checked, before compiling."""

    def generation(self, row: dict) -> None:
        """Called after every generation with its metrics row (``METRIC_KEYS``)."""


def load_run_config(out_dir):
    """The config of the run checkpointed in ``out_dir``."""
    path = Path(out_dir) / CHECKPOINT
    _, meta = load_checkpoint(path)
    try:
        cls = CONFIG_KINDS[meta.get("config_kind", "DistillConfig")]
        return cls.from_dict(json.loads(meta["config"]))
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


def _restore(d, out: Path):
    template = d.init()
    leaves, meta = load_checkpoint(out / CHECKPOINT)
    ref, treedef = jax.tree.flatten(template)
    if len(leaves) != len(ref) or any(a.shape != b.shape or a.dtype != b.dtype for a, b in zip(leaves, ref)):
        raise HadesError(f"{out / CHECKPOINT} does not match this run's config or hades version")
    state = jax.tree.unflatten(treedef, [jnp.asarray(x) for x in leaves])
    return place(state, getattr(d, "mesh", None)), float(meta.get("wall_seconds", 0.0))


def _checkpoint(d, state, out: Path, wall: float) -> None:
    if not is_main_process():
        return
    leaves = [np.asarray(x) for x in jax.tree.leaves(state)]
    save_checkpoint(
        out / CHECKPOINT,
        leaves,
        {
            "config": json.dumps(d.cfg.to_dict(), sort_keys=True),
            "config_kind": type(d.cfg).__name__,
            "generation": int(state.generation),
            "wall_seconds": f"{wall:.3f}",
        },
    )
    d.write_product(state, out)


def _scalars(metrics: dict) -> dict:
    return {k: float(v) for k, v in metrics.items() if k != "finite" and np.ndim(v) == 0}


def read_metrics(out, upto: int | None = None) -> list[dict]:
    """The rows of ``out/metrics.jsonl`` (up to generation ``upto``); [] when there is none."""
    path = Path(out) / "metrics.jsonl"
    if not path.is_file():
        return []
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return [r for r in rows if upto is None or r["generation"] <= upto]


def run(cfg, out_dir, *, resume: bool = False, reporter: Reporter | None = None) -> dict:
    """Run (or resume) a distillation described by ``cfg`` into ``out_dir``; returns the summary."""
    out = Path(out_dir)
    reporter = reporter or Reporter()
    d = make_driver(cfg)  # checks the config before touching the disk
    main = is_main_process()  # in a multi-host run every process computes, process 0 writes
    if main:
        _prepare(out, resume)
    if resume:
        state, wall_before = _restore(d, out)
    else:
        state, wall_before = d.init(), 0.0
    start_gen = int(state.generation)
    if start_gen > cfg.generations:
        raise HadesError(f"checkpoint is at generation {start_gen}, beyond --generations {cfg.generations}")
    rows = read_metrics(out, start_gen) if main else []
    if main:
        atomic_write(out / "config.json", json.dumps(cfg.to_dict(), indent=2, sort_keys=True))
        atomic_write(out / "metrics.jsonl", "".join(json.dumps(r) + "\n" for r in rows))
        own = d.own_init(state) if hasattr(d, "own_init") else None
        if own is not None:
            save_policy(out / INIT, jax.device_get(own), cfg.env, cfg.to_dict())
    else:
        reporter = Reporter()

    reporter.start(cfg, out, start_gen)
    t0 = time.perf_counter()
    step = d.step.lower(state).compile()
    compile_seconds = time.perf_counter() - t0
    wall = lambda: wall_before + time.perf_counter() - t0

    try:
        with open(out / "metrics.jsonl", "a") if main else open(os.devnull, "w") as log:
            while int(state.generation) < cfg.generations:
                new_state, m = step(state)
                m = jax.device_get(m)
                gen = int(new_state.generation)
                if not m["finite"]:
                    _checkpoint(d, state, out, wall())
                    raise HadesError(
                        f"non-finite fitness at generation {gen}; last good checkpoint "
                        f"(generation {gen - 1}) kept in {out}"
                    )
                state = new_state
                row = {"generation": gen, **_scalars(m), **{f"eval_{k}": None for k in d.eval_keys}}
                if (cfg.eval_every and gen % cfg.eval_every == 0) or gen == cfg.generations:
                    row.update({f"eval_{k}": v for k, v in d.evaluate(state).items() if k in d.eval_keys})
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

    final = getattr(d, "final_evaluate", d.evaluate)(state)  # images: the test set, once
    if not main:
        return {**d.describe(state), **{f"final_{k}": v for k, v in final.items()}}
    product = d.write_product(state, out)
    summary = {
        **d.describe(state),
        "generations": cfg.generations,
        **{f"final_{k}": v for k, v in final.items()},
        "wall_seconds": round(wall(), 3),
        "compile_seconds": round(compile_seconds, 3),
        "seconds_per_generation": round(
            (wall() - wall_before - compile_seconds) / max(1, cfg.generations - start_gen), 4
        ),
        "artifact": product.name,
        "hades_version": __version__,
        "config": cfg.to_dict(),
    }
    atomic_write(out / "summary.json", json.dumps(summary, indent=2))
    from hades.plots import learning_curve  # plotting stays out of the import path of the engine

    learning_curve(rows, out / "learning_curve.png", title=d.title, eval_key=f"eval_{d.eval_keys[0]}")
    return summary
