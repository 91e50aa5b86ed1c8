"""Dataset-size sweeps (``hades sweep-size``, paper Fig. 6): one ordinary run per size (and per
seed), resumable size by size, then final return against size with 95% intervals over seeds."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from hades.artifacts import atomic_write, load_dataset
from hades.launch import Launcher, Unit, launch
from hades.rundir import json_object
from hades.runs import CHECKPOINT, Reporter, run
from hades.stats import ci95


def run_size(cfg, run_dir: str, reporter: Reporter | None = None) -> dict:
    """One size's run: read back when finished, resumed when interrupted; its summary."""
    d = Path(run_dir)
    if (d / "summary.json").is_file():
        return json_object(d / "summary.json")
    return run(cfg, d, resume=(d / CHECKPOINT).is_file(), reporter=reporter)


def trained_states(run_dir) -> int | None:
    """The state-action pairs a finished run's dataset holds, i.e. those BC trains on: the asked
    ``--dataset-size`` except under ``--label-layout official``, which keeps dataset_size // A
    per action (16 asked, 15 trained for Breakout's 3 actions). None without a dataset file."""
    path = Path(run_dir) / "dataset.safetensors"
    return len(load_dataset(path).states) if path.is_file() else None


def size_sweep(configs, out_dir, *, reporter: Reporter | None = None, on_row=None) -> list[dict]:
    """One run per config (``hades sweep-size``: the same run at several dataset sizes) into
    ``out_dir/size_N``; finished sizes are read back, interrupted ones resumed. Writes
    ``size_sweep.json`` and returns its rows (final return per size)."""
    out = Path(out_dir)
    rows = []
    for cfg in configs:
        run_dir = out / f"size_{cfg.dataset_size}"
        summary = run_size(cfg, str(run_dir), reporter)
        rows.append(
            {
                "dataset_size": cfg.dataset_size,
                "states": trained_states(run_dir),
                "final_return_mean": summary["final_return_mean"],
                "final_return_std": summary["final_return_std"],
                "final_return_ci95": summary.get("final_return_ci95"),
                "own_init_return_mean": summary.get("final_own_init_return_mean"),
                "random_return_mean": summary.get("random_return_mean"),
                "wall_seconds": summary["wall_seconds"],
                "run": str(run_dir),
            }
        )
        if on_row is not None:
            on_row(rows[-1])
    result = {"env": configs[0].env, "variant": configs[0].variant, "results": rows}
    atomic_write(out / "size_sweep.json", json.dumps(result, indent=1))
    return rows


def size_sweep_seeds(
    configs_by_seed: dict[int, list],
    out_dir,
    *,
    reporter: Reporter | None = None,
    on_row=None,
    launcher: Launcher | None = None,
    on_status=None,
):
    """``hades sweep-size --seeds``: one size sweep per seed into ``out_dir/seed<S>`` (each as
    :func:`size_sweep`), then per size the mean over seeds of the final return with its 95%
    t interval over seeds (and of HaDES-F's own-init return and the random policy's), written to
    ``out_dir/size_sweep.json``. Returns the aggregated rows. With a ``launcher`` other than
    local, every (seed, size) run is a task of its own, and the sweeps are read back after."""

    out = Path(out_dir)
    if launcher is not None and launcher.remote:
        units = [
            Unit(f"seed {s} size {c.dataset_size}", run_size, (c, str(out / f"seed{s}" / f"size_{c.dataset_size}")))
            for s, cfgs in configs_by_seed.items()
            for c in cfgs
        ]
        launch(units, launcher, on_status=on_status)
    per_seed = {
        s: size_sweep(cfgs, out / f"seed{s}", reporter=reporter, on_row=on_row) for s, cfgs in configs_by_seed.items()
    }
    seeds = list(per_seed)
    rows = []
    for i, size in enumerate(r["dataset_size"] for r in per_seed[seeds[0]]):
        runs_ = [per_seed[s][i] for s in seeds]

        def agg(key, runs_=runs_):
            v = [r[key] for r in runs_ if r.get(key) is not None]
            return (float(np.mean(v)), ci95(v), v) if v else (None, None, [])

        mean, ci, values = agg("final_return_mean")
        own, own_ci, own_values = agg("own_init_return_mean")
        rows.append(
            {
                "dataset_size": size,
                "states": runs_[0]["states"],
                "seeds": seeds,
                "final_return_mean": mean,
                "final_return_ci95": ci,
                "final_return_per_seed": values,
                "own_init_return_mean": own,
                "own_init_return_ci95": own_ci,
                "own_init_return_per_seed": own_values,
                "random_return_mean": agg("random_return_mean")[0],
                "wall_seconds": float(np.mean([r["wall_seconds"] for r in runs_])),
            }
        )
    cfg = configs_by_seed[seeds[0]][0]
    atomic_write(
        out / "size_sweep.json",
        json.dumps({"env": cfg.env, "variant": cfg.variant, "seeds": seeds, "results": rows}, indent=1),
    )
    return rows
