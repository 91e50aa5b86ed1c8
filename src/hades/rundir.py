"""Reading run directories (no JAX): the one reader that ``plot``, ``table``, ``reproduce``,
``plots.run_figures`` and the zoo tools use, so "is this an image run?", "is it finished?" and a
corrupt file are each decided in one place. ``runs`` writes run directories; this reads them.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from hades.errors import HadesError


def json_object(path) -> dict:
    """A JSON file that must hold an object, or a one-line error."""
    try:
        value = json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise HadesError(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise HadesError(f"{path}: not readable JSON ({e.__class__.__name__})") from None
    if not isinstance(value, dict):
        raise HadesError(f"{path}: not a JSON object (got a {type(value).__name__})")
    return value


def read_metrics(out, upto: int | None = None) -> list[dict]:
    """The rows of ``out/metrics.jsonl`` (up to generation ``upto``); [] when there is none. A
    last line cut short by a killed writer is dropped; any other unreadable line is an error."""
    path = Path(out) / "metrics.jsonl"
    if not path.is_file():
        return []
    try:
        lines = [line for line in path.read_text().splitlines() if line.strip()]
    except (OSError, UnicodeDecodeError) as e:
        raise HadesError(f"{path}: unreadable ({e.__class__.__name__})") from None
    rows = []
    for i, line in enumerate(lines):
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            if i == len(lines) - 1:
                break  # a torn last write
            raise HadesError(f"{path}: line {i + 1} is not JSON") from None
        if not (isinstance(row, dict) and isinstance(row.get("generation"), int)):
            raise HadesError(f"{path}: line {i + 1} is not a metrics row (no integer generation)")
        rows.append(row)
    return [r for r in rows if upto is None or r["generation"] <= upto]


@dataclasses.dataclass(frozen=True)
class RunDir:
    """A run directory as read: its config, its summary (None until the run has finished)."""

    path: Path
    config: dict
    summary: dict | None

    @property
    def images(self) -> bool:
        """An image-distillation run (``distill-images``), not an RL one."""
        return "env" not in self.config and "dataset" in self.config

    @property
    def finished(self) -> bool:
        return self.summary is not None

    @property
    def panel(self) -> str:
        """What its figures and tables group by: the environment, or the image dataset."""
        return self.config["dataset"] if self.images else self.config["env"]

    @property
    def variant(self) -> str:
        return "supervised" if self.images else self.config["variant"]

    def metrics(self, upto: int | None = None) -> list[dict]:
        return read_metrics(self.path, upto)


def read_run(path, finished: bool = False) -> RunDir:
    """The run directory at ``path``; one-line errors for a missing directory, a config that is not
    a hades run's, a corrupt summary, or (with ``finished``) a run without its summary."""
    path = Path(path)
    if not path.is_dir():
        raise HadesError(f"{path}: no such run directory")
    summary = json_object(path / "summary.json") if (path / "summary.json").is_file() else None
    if finished and summary is None:
        raise HadesError(f"{path}: no summary.json (is the run finished?)")
    if (path / "config.json").is_file() or summary is None or not isinstance(summary.get("config"), dict):
        if not (path / "config.json").exists():
            raise HadesError(f"{path}: not a hades run directory (no config.json)")
        config = json_object(path / "config.json")
    else:  # a finished run's summary records its config too (a copied summary is enough for tables)
        config = {"env": summary.get("env"), "variant": summary.get("variant"), **summary["config"]}
    if not ({"env", "variant"} <= config.keys() or "dataset" in config):
        raise HadesError(f"{path / 'config.json'}: not a hades run config (a JSON object with env and variant)")
    return RunDir(path, config, summary)
