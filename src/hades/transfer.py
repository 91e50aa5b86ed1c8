"""Transfer sweeps (paper Fig. 4): does a dataset train policies other than the one it was evolved for?

For every architecture (width x activation x depth), ``transfer_sweep`` trains fresh policies over a
grid (or a random sample) of BC learning rates and step counts ("epochs"), several policies each, and
rolls each out. A whole architecture group trains in ONE compiled, vmapped call: the learning rate
and step count are traced values (``bc.make_bc_train``), the scan runs the group's largest step
count and each policy stops at its own.
"""

from __future__ import annotations

import itertools

import jax
import numpy as np

from hades.config import ACTIVATIONS, BCConfig, PolicyConfig, RetrainConfig
from hades.dataset import Dataset
from hades.envs import make_env
from hades.errors import HadesError
from hades.evaluation import make_trainer, run_config

DEFAULT_WIDTHS = (32, 64, 128, 256, 512, 1024)
DEFAULT_LRS = (1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2, 1e-1)  # three orders of magnitude
DEFAULT_EPOCHS = (100, 200, 300, 400, 500)


def settings(lrs, epochs, policies: int, sample: int, rng: np.random.Generator) -> list[tuple[float, int, int]]:
    """(lr, steps, seed index) per policy: the full grid x ``policies``, or ``sample`` random draws
    (log-uniform learning rate, uniform steps, over the ranges the lists span)."""
    if sample:
        lr = np.exp(rng.uniform(np.log(min(lrs)), np.log(max(lrs)), sample))
        steps = rng.integers(min(epochs), max(epochs) + 1, sample)
        return [(float(a), int(b), i) for i, (a, b) in enumerate(zip(lr, steps))]
    return [(float(a), int(b), s) for a, b, s in itertools.product(lrs, epochs, range(policies))]


def transfer_sweep(
    ds: Dataset,
    widths=DEFAULT_WIDTHS,
    lrs=DEFAULT_LRS,
    epochs=DEFAULT_EPOCHS,
    retrain: RetrainConfig | None = None,
    *,
    sample: int = 0,
    depths=None,
    activations=None,
    backend: str | None = None,
    progress=None,
) -> list[dict]:
    """One row per trained policy: width, activation, depth, lr, epochs, seed, return (mean over
    ``retrain.episodes``); ``retrain.policies`` per (lr, epochs) pair, or ``sample`` random draws.
    ``depths`` / ``activations`` default to the dataset's run's."""
    if not widths or not lrs or not epochs or min(widths) < 1 or min(epochs) < 1 or min(lrs) <= 0:
        raise HadesError("widths, learning rates and epochs must be non-empty and positive")
    check_architectures(depths, activations)
    retrain = retrain or RetrainConfig(policies=2, episodes=5)
    retrain.validate()
    if sample < 0:
        raise HadesError("--sample must be >= 0")
    base = run_config(ds)
    env = make_env(ds.env, backend or base.backend)
    rng = np.random.default_rng(retrain.seed)
    plan = settings(lrs, epochs, retrain.policies, sample, rng)
    rows = []
    groups = itertools.product(widths, activations or [base.policy.activation], depths or [base.policy.depth])
    for w, (width, activation, depth) in enumerate(groups):
        policy_cfg = PolicyConfig(width=width, depth=depth, activation=activation, precision=base.policy.precision)
        bc_cfg: BCConfig = base.bc
        run = make_trainer(
            ds,
            env,
            policy_cfg,
            bc_cfg,
            episodes=retrain.episodes,
            eval_steps=retrain.eval_steps,
            max_steps=max(s[1] for s in plan),
            actions=base.actions,
        )
        key = jax.random.fold_in(jax.random.PRNGKey(retrain.seed), w)
        k_init, k_env = jax.random.split(key)
        n = len(plan)
        inits = run.policy_init(jax.random.split(k_init, n))
        returns = np.asarray(
            run(
                inits,
                jax.random.split(k_env, n),
                np.array([p[0] for p in plan], np.float32),
                np.array([p[1] for p in plan], np.int32),
            ).returns
        )
        for (lr, steps, s), r in zip(plan, returns):
            row = {"width": width, "activation": activation, "depth": depth, "lr": lr, "epochs": steps, "seed": s}
            rows.append({**row, "return": float(r.mean())})
        if progress:
            progress(group_label((width, activation, depth)), returns.mean(axis=1))
    return rows


def check_architectures(depths, activations) -> None:
    """Raise HadesError for depths or activations a sweep cannot build (None: the dataset's run's)."""
    if depths is not None and (not depths or min(depths) < 1):
        raise HadesError("depths must be non-empty and >= 1")
    if activations is not None and not activations:
        raise HadesError("activations must be non-empty")
    unknown = [a for a in activations or () if a not in ACTIVATIONS]
    if unknown:
        raise HadesError(f"unknown activation {unknown[0]!r}; choose from {', '.join(ACTIVATIONS)}")


def own_group(ds: Dataset) -> tuple | None:
    """The architecture a dataset was evolved for (its run's policy), or None if it records none."""
    if not ds.config.get("policy"):
        return None
    policy = run_config(ds).policy  # settings the artifact predates take their defaults
    return (policy.width, policy.activation, policy.depth)


def group_of(row: dict) -> tuple:
    """A row's architecture: (width, activation, depth); rows of older sweeps lack the last two."""
    return (row["width"], row.get("activation", ""), row.get("depth", 0))


def group_label(group: tuple, full: bool = True) -> str:
    width, activation, depth = group
    return f"{width} {activation} x{depth}" if full and activation else str(width)


def summarize_groups(rows: list[dict]) -> dict[str, dict]:
    """Per architecture (labelled "WIDTH ACTIVATION xDEPTH"): what ``summarize_widths`` gives per width."""
    out = {}
    for group in sorted({group_of(r) for r in rows}, key=lambda g: (g[2], g[1], g[0])):
        out[group_label(group)] = summarize_widths([r for r in rows if group_of(r) == group])[group[0]]
    return out


def summarize_widths(rows: list[dict]) -> dict[int, dict]:
    """Per width: mean, lower quartile, median, mean of the top half (the paper highlights it), max, count."""
    out = {}
    for width in sorted({r["width"] for r in rows}):
        r = np.sort([x["return"] for x in rows if x["width"] == width])
        top = r[len(r) // 2 :]
        out[width] = {
            "mean": float(r.mean()),
            "q25": float(np.percentile(r, 25)),
            "median": float(np.median(r)),
            "top_half_mean": float(top.mean()),
            "max": float(r.max()),
            "count": int(len(r)),
        }
    return out


def save_transfer(out_dir, results: dict[str, tuple[list[dict], int | None]], paths) -> dict:
    """Write ``transfer.json`` (a per-width summary per dataset and every result) and
    ``transfer.csv`` into ``out_dir``; ``results`` maps a label to (rows, the run's own
    architecture: (width, activation, depth), or None).
    Returns the summary."""
    import csv
    import io
    import json
    from pathlib import Path

    from hades.artifacts import atomic_write

    out = Path(out_dir)
    summary = {
        label: {
            "dataset": str(p),
            "own_width": own[0] if own else None,
            "own_architecture": group_label(own) if own else None,
            "per_width": summarize_widths(rows),
            "per_architecture": summarize_groups(rows),
        }
        for (label, (rows, own)), p in zip(results.items(), paths)
    }
    rows_all = [{"dataset": label, **r} for label, (rows, _) in results.items() for r in rows]
    atomic_write(out / "transfer.json", json.dumps({"summary": summary, "results": rows_all}, indent=1))
    buf = io.StringIO()
    writer = csv.DictWriter(
        buf, fieldnames=["dataset", "width", "activation", "depth", "lr", "epochs", "seed", "return"]
    )
    writer.writeheader()
    writer.writerows(rows_all)
    atomic_write(out / "transfer.csv", buf.getvalue())
    return summary
