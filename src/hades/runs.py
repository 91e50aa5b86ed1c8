"""A run directory: drive a distiller generation by generation, write everything, resume.

Works for any :class:`Driver` (``distill.Distiller`` for HaDES, ``direct.DirectES`` for the
baseline, ``supervised.ImageDistiller`` for images): drivers compute and return values, this
module writes every file.

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
- ``.hades.lock``             held (flock) while a process writes the directory: a second writer
                             is refused
Every file is replaced atomically, and every safetensors file carries a sha256 checksum over its
tensors and metadata: a changed checkpoint is refused, never resumed. A directory holding run
files but no checkpoint is refused rather than overwritten. Ctrl-C and SIGTERM write a
checkpoint of the last generation whose metrics row was written (so none is lost or repeated);
resuming a finished run returns its summary and rewrites nothing. Figures (``learning_curve.png``,
images' ``images.png``) are drawn from these files by ``hades.plots.run_figures`` (the ``hades``
command does it at the end). Progress goes to a :class:`Reporter` (the CLI draws a progress bar
with it); the library prints nothing. In a multi-host run (``devices.initialize_distributed``)
every process runs this loop and only process 0 writes; ``resume`` needs ``DIR`` on a
filesystem every host sees.
"""

from __future__ import annotations

import fcntl
import json
import os
import time
from pathlib import Path
from typing import Any, Protocol

import jax
import jax.numpy as jnp
import numpy as np

from hades import __version__, stopping
from hades.artifacts import (
    DATASET_FILE,
    INIT_FILE,
    POLICY_FILE,
    atomic_write,
    load_checkpoint,
    remove_stale_temporaries,
    save_checkpoint,
    save_policy,
    save_product,
)
from hades.config import DistillConfig, ImageDistillConfig, changed_settings, changes_said
from hades.dataset import Dataset, PolicyWeights
from hades.devices import check_memory, compiled_bytes, float32_matmuls, is_main_process, place
from hades.errors import MEMORY_ADVICE, HadesError
from hades.provenance import provenance
from hades.rundir import read_metrics  # noqa: F401 (re-exported: runs.read_metrics)

CHECKPOINT = "checkpoint.safetensors"
CONFIG_KINDS = {cls.__name__: cls for cls in (DistillConfig, ImageDistillConfig)}


class Driver(Protocol):
    """What ``run`` needs of a distiller."""

    cfg: Any  # a frozen config with generations, eval_every, checkpoint_every, to_dict()
    eval_keys: tuple[str, ...]  # the keys of evaluate() that go into every metrics row

    def init(self) -> Any:
        """The initial state: a pytree with an int32 ``generation`` counter."""

    def step(self, state: Any) -> tuple[Any, dict]:
        """One jitted generation; metrics hold ``fitness_mean/max/min`` and ``finite``."""

    def evaluate(self, state: Any) -> dict:
        """The in-run evaluation of the current product."""

    def final_evaluate(self, state: Any, in_run: dict | None = None) -> dict:
        """The final figure (images: the test set, once); ``in_run`` is the in-run evaluation of
        this same state when the loop made one (a driver whose final figure is its in-run
        evaluation returns it rather than computing it twice)."""

    def describe(self, state: Any = None) -> dict:
        """What goes into summary.json besides the final evaluation."""

    def product(self, state: Any) -> Dataset | PolicyWeights:
        """What the run produces, as a value."""

    def own_init(self, state: Any) -> Any:
        """The policy initialisation the product is tied to (HaDES-F), else None."""


def make_driver(cfg) -> Driver:
    """The driver for a config (checks it: environment, strategy, data files)."""
    if isinstance(cfg, ImageDistillConfig):
        from hades.supervised import ImageDistiller

        return ImageDistiller(cfg)
    if cfg.variant == "direct-es":
        from hades.direct import DirectES

        return DirectES(cfg)
    from hades.distill import Distiller

    return Distiller(cfg)


class Reporter:
    """Receives a run's progress; subclass and override what you need."""

    def start(self, cfg: DistillConfig, out: Path, start_generation: int) -> None:
        """Called once the config and output directory are checked, before compiling."""

    def evaluating(self, generation: int) -> None:
        """Called before the mean is evaluated (the first time also compiles the evaluation)."""

    def generation(self, row: dict) -> None:
        """Called after every generation with its metrics row."""

    def finish(self, out: Path, summary: dict) -> None:
        """Called once the run directory is complete."""


def _require_checkpoint(out: Path) -> None:
    if not (out / CHECKPOINT).is_file():
        raise HadesError(f"{out} has no {CHECKPOINT} (no generation was saved); start it again without --resume")


def load_run_config(out_dir):
    """The config of the run checkpointed in ``out_dir``."""
    path = Path(out_dir) / CHECKPOINT
    _require_checkpoint(Path(out_dir))
    _, meta = load_checkpoint(path)
    try:
        cls = CONFIG_KINDS[meta.get("config_kind", "DistillConfig")]
        return cls.from_dict(json.loads(meta["config"]))
    except (KeyError, json.JSONDecodeError) as e:
        raise HadesError(f"{path}: checkpoint has no readable config ({e})") from None


class Interrupted(KeyboardInterrupt):
    """A run stopped by Ctrl-C or SIGTERM; ``generation`` is what its checkpoint holds."""

    def __init__(self, out: Path, generation: int):
        super().__init__(f"checkpoint at generation {generation} kept in {out}")
        self.out, self.generation = out, generation

    def __reduce__(self):  # a worker process' run stopped: the command gets it back whole
        return type(self), (self.out, self.generation)


# what a run directory may hold; any of them without a checkpoint is another tool's or a broken run
RUN_FILES = ("config.json", "metrics.jsonl", "summary.json", DATASET_FILE, POLICY_FILE, INIT_FILE)
LOCK = ".hades.lock"


def _lock(out: Path):
    """Hold ``out``'s run lock (an flock on ``out/.hades.lock``) or refuse: one writer per run."""
    try:  # never through a symlink: a planted link would create or lock a file outside the run
        fd = os.open(out / LOCK, os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_NOFOLLOW, 0o644)
    except OSError:
        if (out / LOCK).is_symlink():
            raise HadesError(
                f"{out / LOCK} is a symbolic link; hades locks only its own file (remove the link)"
            ) from None
        raise
    handle = os.fdopen(fd, "a")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        handle.close()
        raise HadesError(f"another hades process is writing {out}; wait for it or choose another --out") from None
    return handle


def _same_unfinished_run(out: Path, cfg) -> bool:
    """``out`` holds a hades run of this very config that saved no checkpoint (killed early)."""
    try:
        return json.loads((out / "config.json").read_text()) == cfg.to_dict()
    except (OSError, ValueError):
        return False


def _prepare(out: Path, resume: bool, cfg):
    """Check and lock the run directory; returns the held lock."""
    if not resume and out.is_dir():  # before anything is created in it
        ours = {*RUN_FILES, CHECKPOINT, LOCK, "tensorboard", "wandb"}
        strangers = sorted(
            p.name for p in out.iterdir() if p.name not in ours and p.suffix != ".png" and not p.name.startswith(".")
        )  # dotfiles (.DS_Store, .git, a user's notes) do not make a directory someone else's
        if strangers:
            raise HadesError(
                f"{out} holds files that are not a hades run's ({', '.join(strangers[:3])}"
                f"{', ...' if len(strangers) > 3 else ''}); choose an empty or new --out (nothing was written)"
            )
    try:
        out.mkdir(parents=True, exist_ok=True)
        lock = _lock(out)
    except OSError as e:
        raise HadesError(f"cannot write to output directory {out}: {e.strerror or e}") from None
    try:
        if resume:
            _require_checkpoint(out)
        if not resume and (out / CHECKPOINT).is_file():
            raise HadesError(f"{out} already holds a run; pass --resume {out} to continue it, or choose another --out")
        odd = [name for name in (*RUN_FILES, CHECKPOINT) if (out / name).exists() and not (out / name).is_file()]
        if odd:
            raise HadesError(f"{out / odd[0]} is not a regular file; a run directory holds only hades' files")
        foreign = [name for name in RUN_FILES if (out / name).exists()]
        if not resume and foreign and not _same_unfinished_run(out, cfg):
            raise HadesError(
                f"{out} holds {', '.join(foreign)} but is not a hades run that can be continued; "
                "choose another --out (nothing was overwritten)"
            )
        remove_stale_temporaries(out)
    except BaseException:
        lock.close()
        raise
    return lock


def _restore(d, out: Path):
    template = d.init()
    leaves, meta = load_checkpoint(out / CHECKPOINT)
    ref, treedef = jax.tree.flatten(template)
    if len(leaves) != len(ref) or any(a.shape != b.shape or a.dtype != b.dtype for a, b in zip(leaves, ref)):
        raise HadesError(f"{out / CHECKPOINT} does not match this run's config or hades version")
    state = jax.tree.unflatten(treedef, [jnp.asarray(x) for x in leaves])
    if hasattr(template, "fixed_init"):  # a function of the seed: a checkpoint of another seed differs
        # up to rounding: another device or process may compute the same init a few ulps apart (an
        # H200 run resumed on a CPU differed by 7e-7 at most); another seed's init differs everywhere
        same = all(
            np.allclose(a, b, rtol=1e-5, atol=1e-6 * max(1.0, float(np.max(np.abs(a), initial=0.0))))
            for a, b in zip(jax.tree.leaves(template.fixed_init), jax.tree.leaves(state.fixed_init))
        )
        if not same:
            raise HadesError(f"{out / CHECKPOINT} was not made with seed {d.cfg.seed}; it belongs to another run")
    _check_same_run(d.cfg, meta, out)
    try:
        wall = float(meta.get("wall_seconds", 0.0))
    except ValueError:
        raise HadesError(f"{out / CHECKPOINT}: wall_seconds is not a number") from None
    return place(state, getattr(d, "mesh", None)), wall


def _check_same_run(cfg, meta: dict, out: Path) -> None:
    """A checkpoint resumes only under the settings it was made with, but for the generation count
    (a run may be continued further) and where the work is placed: a grid, sweep or study resumed
    by a changed command would otherwise finish an old run under a new config.json."""
    try:
        stored = type(cfg).from_dict(json.loads(meta["config"])).to_dict()
    except (KeyError, TypeError, ValueError, HadesError):
        return  # no readable config (an old checkpoint): the shape check above is all there is
    changed = changed_settings(stored, cfg.to_dict(), free=("generations",))
    if changed:
        raise HadesError(
            f"{out} holds a run made with other settings ({changes_said(changed)}); resume it with its own "
            "settings (hades distill --resume DIR) or choose another --out"
        )


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
    save_product(out, d.product(state))


def _scalars(metrics: dict) -> dict:
    return {k: float(v) for k, v in metrics.items() if k != "finite" and np.ndim(v) == 0}


def _resumed_metrics(out: Path, generation: int) -> list[dict]:
    """The metrics rows of generations 1..``generation``, exactly, or a one-line error."""
    rows = read_metrics(out, generation)
    if [r["generation"] for r in rows] != list(range(1, generation + 1)):
        raise HadesError(
            f"{out / 'metrics.jsonl'} does not hold one row per generation 1..{generation} "
            "(the checkpoint's); it was changed or truncated"
        )
    return rows


def run(cfg, out_dir, *, resume: bool = False, reporter: Reporter | None = None) -> dict:
    """Run (or resume) a distillation described by ``cfg`` into ``out_dir``; returns the summary."""
    with float32_matmuls():  # float32 means float32 on a GPU too (not TF32)
        out = Path(out_dir)
        reporter = reporter or Reporter()
        d = make_driver(cfg)  # checks the config before touching the disk
        main = is_main_process()  # in a multi-host run every process computes, process 0 writes
        lock = _prepare(out, resume, cfg) if main else None
        try:
            return _run_locked(d, cfg, out, resume, reporter if main else Reporter(), main)
        finally:
            if lock is not None:
                lock.close()


def _run_locked(d, cfg, out: Path, resume: bool, reporter: Reporter, main: bool) -> dict:
    if resume:
        state, wall_before = _restore(d, out)
    else:
        state, wall_before = d.init(), 0.0
    start_gen = int(state.generation)
    if start_gen > cfg.generations:
        raise HadesError(f"checkpoint is at generation {start_gen}, beyond --generations {cfg.generations}")
    if resume and start_gen == cfg.generations and (out / "summary.json").is_file():
        try:
            summary = json.loads((out / "summary.json").read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError):
            summary = None  # corrupt: rebuilt below from the checkpoint (the final evaluation runs again)
        if isinstance(summary, dict):
            return {**summary, "already_finished": True}  # nothing to do: nothing is rewritten
    last_eval = None  # the in-run evaluation of the final generation, when the loop makes it
    if main:
        rows = _resumed_metrics(out, start_gen) if resume else []
        atomic_write(out / "config.json", json.dumps(cfg.to_dict(), indent=2, sort_keys=True))
        atomic_write(out / "metrics.jsonl", "".join(json.dumps(r) + "\n" for r in rows))
        own = d.own_init(state)
        if own is not None:
            save_policy(out / INIT_FILE, jax.device_get(own), cfg.env, cfg.to_dict())

    t0 = time.perf_counter()
    wall = lambda: wall_before + time.perf_counter() - t0
    try:
        reporter.start(cfg, out, start_gen)
        step = d.step.lower(state).compile()
        if getattr(cfg, "memory_check", True):  # XLA's own figure: the formula's check missed ES states
            check_memory(
                compiled_bytes(step, d.mesh), "a generation (XLA's figure for the compiled step)", MEMORY_ADVICE
            )
        compile_seconds = time.perf_counter() - t0
        with open(out / "metrics.jsonl", "a") if main else open(os.devnull, "w") as log:
            while int(state.generation) < cfg.generations:
                new_state, m = step(state)
                m = jax.device_get(m)
                gen = int(new_state.generation)
                if not m["finite"]:
                    _checkpoint(d, state, out, wall())
                    raise HadesError(
                        f"non-finite values (fitness or search distribution) at generation {gen}; "
                        f"the last good checkpoint (generation {gen - 1}) is kept in {out}"
                    )
                row = {"generation": gen, **_scalars(m), **{f"eval_{k}": None for k in d.eval_keys}}
                if (cfg.eval_every and gen % cfg.eval_every == 0) or gen == cfg.generations:
                    reporter.evaluating(gen)
                    result = d.evaluate(new_state)
                    row.update({f"eval_{k}": v for k, v in result.items() if k in d.eval_keys})
                    if gen == cfg.generations:
                        last_eval = result
                row["wall_seconds"] = round(wall(), 3)
                log.write(json.dumps(row) + "\n")
                log.flush()
                state = new_state  # only a generation whose row is written counts as done
                if gen % cfg.checkpoint_every == 0 or gen == cfg.generations:
                    if main:  # the rows a checkpoint counts are on disk before it
                        os.fsync(log.fileno())
                    _checkpoint(d, state, out, wall())
                reporter.generation(row)
                stopping.check()  # a stop request whose KeyboardInterrupt was swallowed (stopping.py)
    except KeyboardInterrupt:
        if main:
            _checkpoint(d, state, out, wall())
        raise Interrupted(out, int(state.generation)) from None

    reporter.evaluating(int(state.generation))
    try:
        final = d.final_evaluate(state, last_eval)
    except KeyboardInterrupt:  # the last generation's checkpoint is on disk: say so
        raise Interrupted(out, int(state.generation)) from None
    if not main:
        return {**d.describe(state), **{f"final_{k}": v for k, v in final.items()}}
    product = save_product(out, d.product(state))
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
        "provenance": provenance(),
        "config": cfg.to_dict(),
    }
    atomic_write(out / "summary.json", json.dumps(summary, indent=2))
    reporter.finish(out, summary)
    return summary
