"""Experiment tracking (``--track wandb`` / ``--track tensorboard``): the one module that imports
wandb or tensorboardX, and only when asked.

A tracker mirrors a run directory: the config when the run starts, every metrics row (step = the
generation) as it is written, and at the end the summary's figures and the run's pictures.
``metrics.jsonl`` stays the source of truth; a tracker that fails to import is refused before the
run starts. TensorBoard event files go to ``RUN/tensorboard``; wandb runs in the mode its
environment says (``WANDB_MODE=offline`` works without a network) with its files under ``RUN/wandb``.
"""

from __future__ import annotations

import json
import numbers
from pathlib import Path

from hades.errors import HadesError

TRACKERS = ("wandb", "tensorboard")
_PACKAGES = {"wandb": "wandb", "tensorboard": "tensorboardX"}


def check(kind: str) -> None:
    """Refuse an unknown tracker, or one whose package is not installed, before anything runs."""
    if kind not in TRACKERS:
        raise HadesError(f"unknown tracker {kind!r}; choose one of {', '.join(TRACKERS)}")
    import importlib.util

    if importlib.util.find_spec(_PACKAGES[kind]) is None:
        raise HadesError(f"--track {kind} needs {_PACKAGES[kind]}: pip install 'hades[track]'")


def _numbers(d: dict, prefix: str = "") -> dict[str, float]:
    return {prefix + k: float(v) for k, v in d.items() if isinstance(v, numbers.Real) and not isinstance(v, bool)}


class Tracker:
    """One run's mirror in wandb or TensorBoard."""

    def __init__(self, kind: str, out, config: dict, name: str, project: str | None = None, entity: str | None = None):
        check(kind)
        self.kind, self.out = kind, Path(out)
        if kind == "tensorboard":
            from tensorboardX import SummaryWriter

            self._writer = SummaryWriter(logdir=str(self.out / "tensorboard"))
            self._writer.add_text("config", "```\n" + json.dumps(config, indent=1, sort_keys=True) + "\n```")
        else:
            import wandb

            (self.out / "wandb").mkdir(parents=True, exist_ok=True)
            import os

            # --wandb-project / --wandb-entity, else wandb's own WANDB_PROJECT / WANDB_ENTITY, else "hades"
            self._run = wandb.init(
                project=project or os.environ.get("WANDB_PROJECT") or "hades",
                entity=entity or os.environ.get("WANDB_ENTITY") or None,
                name=name,
                dir=str(self.out),
                config=config,
                reinit="finish_previous",
            )

    def row(self, row: dict) -> None:
        step = int(row["generation"])
        values = {k: v for k, v in _numbers(row).items() if k != "generation"}
        if self.kind == "tensorboard":
            for k, v in values.items():
                self._writer.add_scalar(k, v, global_step=step)
        else:
            self._run.log(values, step=step)

    def finish(self, summary: dict, pictures=()) -> None:
        final = _numbers(summary)
        if self.kind == "tensorboard":
            import matplotlib.image

            for k, v in final.items():
                self._writer.add_scalar(f"summary/{k}", v)
            for p in pictures:
                self._writer.add_image(Path(p).stem, matplotlib.image.imread(p)[..., :3], dataformats="HWC")
            self._writer.close()
        else:
            import wandb

            self._run.summary.update(final)
            if pictures:
                self._run.log({Path(p).stem: wandb.Image(str(p)) for p in pictures})
            self._run.finish()
