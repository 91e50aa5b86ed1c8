"""Aggregates over environments the way the field reports them (Agarwal et al., 2021), through
rliable (the optional ``aggregate`` extra; the only module that imports it).

Each (environment, method) cell contributes its per-seed final returns, normalised per
environment so that 0 is the random policy's return and 1 the best method's mean return in the
same table: ``(R - random) / (best - random)``. An environment where no method's mean is above
random has no scale and is left out (and named). From those scores, per method:

- the interquartile mean (IQM) with a 95% stratified-bootstrap interval (runs resampled within
  each environment);
- the probability of improvement of one method over another (Mann-Whitney's P(X > Y) per
  environment, averaged), with its stratified-bootstrap interval.

rliable needs the same number of runs per environment: every method and environment uses its
first k seeds, k the fewest any cell has finished.
"""

from __future__ import annotations

import itertools
import warnings

import numpy as np

from hades.errors import HadesError

EXTRA = "pip install 'hades[aggregate]'"


def scores(rows: list[dict]) -> tuple[dict[str, np.ndarray], list[str], list[str]]:
    """Random-normalised score matrices ``{method: [runs, environments]}``, the environments used
    and those left out (no method above random, or a method missing there)."""
    rows = [r for r in rows if r.get("return_mean") is not None and r.get("per_seed")]
    methods = list(dict.fromkeys(r["method"] for r in rows))
    envs = list(dict.fromkeys(r["env"] for r in rows))
    cell = {(r["env"], r["method"]): r for r in rows}
    best: dict[str, float] = {}  # per environment used: the best method's mean return
    left_out = []
    for env in envs:
        mine = [cell.get((env, m)) for m in methods]
        if any(r is None for r in mine):
            left_out.append(f"{env} (not every method ran)")
            continue
        top, random = max(r["return_mean"] for r in mine), mine[0]["random_return_mean"]
        if random is None or not np.isfinite(random) or top <= random:
            left_out.append(f"{env} (no method above random)")
            continue
        best[env] = top
    used = list(best)
    if not used:
        return {}, [], left_out
    k = min(len(cell[(e, m)]["per_seed"]) for e in used for m in methods)
    out = {}
    for m in methods:
        columns = []
        for e in used:
            r = cell[(e, m)]
            random = r["random_return_mean"]
            columns.append((np.asarray(r["per_seed"][:k], np.float64) - random) / (best[e] - random))
        out[m] = np.stack(columns, axis=1)
    return out, used, left_out


def aggregates(rows: list[dict], reps: int = 2000, seed: int = 0) -> dict | None:
    """IQM and probability of improvement over environments (module docstring); None where fewer
    than two environments can be normalised. Raises HadesError when rliable is not installed."""
    try:
        from rliable import library as rly
        from rliable import metrics
    except ImportError:
        raise HadesError(f"cross-environment aggregates need rliable: {EXTRA}") from None
    by_method, used, left_out = scores(rows)
    if len(used) < 2 or len(by_method) < 1:
        return None
    rng = np.random.RandomState(seed)
    pairs = {f"{a} > {b}": (by_method[a], by_method[b]) for a, b in itertools.combinations(by_method, 2)}
    with warnings.catch_warnings():  # arch 7.2 deprecates the RandomState rliable 1.2 hands it
        warnings.simplefilter("ignore", FutureWarning)
        iqm, iqm_ci = rly.get_interval_estimates(
            by_method, lambda x: np.array([metrics.aggregate_iqm(x)]), reps=reps, random_state=rng
        )
        poi, poi_ci = (
            rly.get_interval_estimates(pairs, metrics.probability_of_improvement, reps=reps, random_state=rng)
            if pairs
            else ({}, {})
        )
    return {
        "normalisation": "(return - random) / (best method's mean - random), per environment",
        "envs": used,
        "left_out": left_out,
        "runs_per_env": int(next(iter(by_method.values())).shape[0]),
        "reps": reps,
        "iqm": {m: [float(np.ravel(iqm[m])[0]), *map(float, np.ravel(iqm_ci[m]))] for m in by_method},
        "probability_of_improvement": {p: [float(poi[p]), *map(float, np.ravel(poi_ci[p]))] for p in pairs},
    }


def markdown(agg: dict | None) -> str:
    """The aggregates as two small Markdown tables (empty where there is nothing to aggregate)."""
    if not agg:
        return ""
    lines = [
        f"Aggregates over {len(agg['envs'])} environments ({agg['runs_per_env']} seeds each; scores normalised "
        f"{agg['normalisation']}; 95% stratified-bootstrap intervals, {agg['reps']} resamples, rliable):",
        "",
        "| method | IQM of normalised score (95% CI) |",
        "|---|---|",
        *(f"| {m} | {v[0]:.3f} [{v[1]:.3f}, {v[2]:.3f}] |" for m, v in agg["iqm"].items()),
    ]
    poi = agg["probability_of_improvement"]
    if poi:
        lines += [
            "",
            "| comparison | probability of improvement (95% CI) |",
            "|---|---|",
            *(
                f"| P({p}) | {v[0]:.2f} [{v[1]:.2f}, {v[2]:.2f}] |"
                for p, v in agg["probability_of_improvement"].items()
            ),
        ]
    if agg["left_out"]:
        lines += ["", "Left out: " + "; ".join(agg["left_out"]) + "."]
    return "\n".join(lines) + "\n"
