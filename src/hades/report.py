"""Tables of finished runs, seeds aggregated the protocol's way (``hades table``).

Runs are grouped by (environment or image dataset, method); a group's figure is the mean over
its seeds of each run's final evaluation, with the 95% confidence interval of that mean
(Student t over seeds), beside the random-policy return (RL) or the class-mean images'
accuracy (images), the distinct evaluation episodes and the budget.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np

from hades.errors import HadesError
from hades.rundir import read_run
from hades.stats import mean_ci


def read_summary(run_dir) -> dict:
    """A finished run's summary.json (one-line errors for an unfinished or corrupt run)."""
    return read_run(run_dir, finished=True).summary


def _group_key(s: dict) -> tuple[str, str]:
    if s.get("variant") == "supervised":
        return s.get("dataset", "?"), f"{s.get('model', '?')} images"
    return s.get("env", "?"), s.get("variant", "?")


# settings that change how a run is kept or computed, not what it computes: runs differing only in
# these (and the seed) are seeds of one setting
OUTPUT_ONLY = ("seed", "data_dir", "checkpoint_every", "memory_check", "chunk", "devices", "bc_unroll")


def _setting(s: dict) -> dict:
    """A run's flat config without its seed and output-only fields (runs of one setting differ
    only in those), read through its config class so a run written before a setting existed
    counts as having its default (an older run and a newer one of the same setting are one
    group); with ``length`` (the generations a run's metrics hold), runs of other lengths differ."""
    from hades.config import DistillConfig, ImageDistillConfig, flatten

    config = s.get("config", {})
    cls = ImageDistillConfig if s.get("variant") == "supervised" else DistillConfig
    try:
        config = cls.from_dict(config).to_dict()
    except HadesError:  # settings this version does not know: compared as written
        pass
    flat = {k: v for k, v in flatten(config).items() if k not in OUTPUT_ONLY}
    if "length" in s:
        flat["length"] = s["length"]
    return flat


@dataclass(frozen=True)
class Series:
    """One setting's runs (its seeds), and the options that tell it from the other settings of its
    environment and method: ``differ`` every option in which they differ, ``named`` the fewest of
    those that still tell them apart (a legend's: ``strategy=PGPE``, not also the learning rate and
    rank weights that came with the strategy)."""

    env: str
    method: str
    setting: dict
    differ: tuple[str, ...]
    named: tuple[str, ...]
    runs: list[dict]

    def label(self, brief: bool = False) -> str:
        """``hades-f dataset_size=8``: the method and the options that tell the setting apart."""
        return " ".join([self.method, *(f"{k}={self.setting[k]}" for k in (self.named if brief else self.differ))])


def series(summaries: list[dict]) -> list[Series]:
    """The one grouping rule of ``table``, ``plot`` and ``reproduce``: runs are pooled as seeds
    only when every setting but the seed and output-only fields agrees (and, where given, their
    ``length``)."""
    by_setting: dict[str, tuple[dict, list[dict]]] = {}  # each setting read once, with its runs
    for s in summaries:
        setting = _setting(s)
        by_setting.setdefault(json.dumps(setting, sort_keys=True, default=str), (setting, []))[1].append(s)
    groups = [(_group_key(runs[0]), setting, runs) for setting, runs in by_setting.values()]
    out = []
    for (env, method), mine, runs in groups:
        rivals = [setting for key, setting, _ in groups if key == (env, method)]
        differ = sorted(k for k in mine if any(r.get(k) != mine[k] for r in rivals)) if len(rivals) > 1 else []
        named = telling_keys(rivals, differ) if differ else []
        out.append(Series(env, method, mine, tuple(differ), tuple(named), runs))
    return out


def group_runs(summaries: list[dict]) -> dict[tuple[str, str], list[dict]]:
    """``series`` keyed by (environment, label), e.g. ``("breakout", "hades-f dataset_size=8")``."""
    return {(s.env, s.label()): s.runs for s in series(summaries)}


# options that, where they differ, usually explain the others that differ with them (a strategy
# brings its own update rule, rank weights and ties: es.switch_strategy): named first on a tie
HEADLINE_KEYS = ("strategy",)


def telling_keys(settings: list[dict], keys: list[str]) -> list[str]:
    """The fewest of ``keys`` (chosen greedily: at each step the key that tells the most settings
    apart; on a tie one of ``HEADLINE_KEYS``, else the first in ``keys``) whose values tell every
    one of ``settings`` apart, in ``keys``' order. ``keys`` must tell them apart."""
    chosen: list[str] = []
    distinct = lambda ks: len({json.dumps([s.get(k) for k in ks], default=str) for s in settings})
    rank = {k: (k not in HEADLINE_KEYS, i) for i, k in enumerate(keys)}
    while distinct(chosen) < distinct(keys):
        left = [k for k in keys if k not in chosen]
        best = max(distinct([*chosen, k]) for k in left)
        chosen.append(min((k for k in left if distinct([*chosen, k]) == best), key=rank.get))
    return [k for k in keys if k in chosen]


def table(run_dirs) -> list[dict]:
    """One row per (environment, method): seeds, mean and 95% CI of the final figures."""
    groups = group_runs([read_summary(run_dir) for run_dir in run_dirs])
    rows = []
    for (env, method), runs in groups.items():
        runs = sorted(runs, key=lambda r: r.get("config", {}).get("seed", 0))  # per-seed lists in seed order
        cfg = runs[0].get("config", {})
        es = cfg.get("es", {})
        row = {
            "env": env,
            "method": method,
            "seeds": len(runs),
            "population": es.get("population"),
            "generations": runs[0].get("generations"),
            "wall_seconds_mean": float(np.mean([r.get("wall_seconds", np.nan) for r in runs])),
        }
        if method.endswith("images"):
            row["accuracy_mean"], row["accuracy_ci95"] = mean_ci([r.get("final_accuracy_mean") for r in runs])
            row["class_mean_accuracy"] = float(np.mean([r.get("class_mean_accuracy_mean", np.nan) for r in runs]))
        else:
            row["return_mean"], row["return_ci95"] = mean_ci([r.get("final_return_mean") for r in runs])
            if method.startswith("hades-f"):
                row["own_init_return_mean"], row["own_init_return_ci95"] = mean_ci(
                    [r.get("final_own_init_return_mean") for r in runs]
                )
                row["per_seed_own_init"] = [r.get("final_own_init_return_mean") for r in runs]
            row["random_return_mean"] = float(np.mean([r.get("random_return_mean", np.nan) for r in runs]))
            row["episodes_per_seed"] = runs[0].get("final_episodes")
            row["distinct_episodes_min"] = min(r.get("final_distinct_episodes", 0) for r in runs)
            row["actions"] = runs[0].get("actions", cfg.get("actions", "?"))
        row["per_seed"] = [r.get("final_accuracy_mean", r.get("final_return_mean")) for r in runs]
        row["seed_ids"] = [r.get("config", {}).get("seed") for r in runs]
        rows.append(row)
    return rows


def own_init_rows(rows: list[dict]) -> list[dict]:
    """HaDES-F's own-init figures as rows of their own (method ``<method> own init``, the name its
    learning curve has), so aggregates count the quantity the paper reports for HaDES-F beside the
    fresh-init one. A method gets them only where every one of its rows has an own-init figure
    for every seed (runs older than hades 0.4.8 have none), so no environment drops out of the
    aggregate for a missing one."""

    def own(r):
        v = r.get("per_seed_own_init")
        return v if v and all(x is not None and np.isfinite(x) for x in v) else None

    figures = [(r, own(r)) for r in rows]
    whole = {r["method"] for r, v in figures if v} - {r["method"] for r, v in figures if not v}
    return [
        {**r, "method": f"{r['method']} own init", "per_seed": list(v), "return_mean": float(np.mean(v))}
        for r, v in figures
        if r["method"] in whole
    ]


def aggregate_section(rows: list[dict], reps: int = 2000) -> tuple[dict | None, str]:
    """Cross-environment aggregates of RL rows (``hades.aggregate``: IQM and probability of
    improvement with ``reps`` stratified-bootstrap resamples), HaDES-F's own init counted as its
    own method (``own_init_rows``), and their Markdown; where rows span one
    environment, nothing; where rliable is not installed, a one-line note saying how to get it."""
    rl = [r for r in rows if r.get("return_mean") is not None and np.isfinite(r["return_mean"])]
    rl += own_init_rows(rl)
    if len({r["env"] for r in rl}) < 2:
        return None, ""
    from hades.aggregate import aggregates
    from hades.aggregate import markdown as aggregate_markdown

    try:
        agg = aggregates(rl, reps=reps)
    except HadesError as e:
        return None, f"(no cross-environment aggregates: {e})\n"
    return agg, aggregate_markdown(agg)


def number(x, digits: int = 3) -> str:
    """``x`` to ``digits`` significant digits as a plain number: 11626 -> "11600", not "1.16e+04"
    (returns span 0.4 to 12000 in one table); "—" for a missing figure."""
    if x is None or not np.isfinite(x):
        return "—"
    x = float(f"{x:.{digits}g}")  # rounded first: 99.6 to 2 digits is 100, which must print as such
    if x != 0 and abs(x) >= 10**digits:
        return f"{x:.0f}"
    return f"{x:.{digits}g}"


def pm(mean, ci, digits: int = 3) -> str:
    """ "mean ± ci" in plain numbers (the interval to 2 significant digits); the mean alone without one."""
    if mean is None or not np.isfinite(mean):
        return "—"
    return f"{number(mean, digits)} ± {number(ci, 2)}" if ci is not None and np.isfinite(ci) else number(mean, digits)


def listed(values) -> str:
    """Per-seed figures in seed order, "4.05, 3.81, 5.28"; "—" for none."""
    return ", ".join(number(v) for v in values) if values else "—"


def markdown(rows: list[dict]) -> str:
    """The rows as a Markdown table (RL and image rows in separate tables)."""
    out = []
    rl = [r for r in rows if "return_mean" in r]
    if rl:
        out += [
            "| environment | method | seeds | return (95% CI) | per seed | own init | random policy | "
            "distinct episodes (min per seed / episodes) | actions | population x generations | wall s |",
            "|---|---|---|---|---|---|---|---|---|---|---|",
        ]
        for r in rl:
            own = (
                pm(r.get("own_init_return_mean"), r.get("own_init_return_ci95", np.nan))
                if "own_init_return_mean" in r
                else "—"
            )
            out.append(
                f"| {r['env']} | {r['method']} | {r['seeds']} | {pm(r['return_mean'], r['return_ci95'])} | "
                f"{listed(r['per_seed'])} | {own} | "
                f"{number(r['random_return_mean'])} | {r['distinct_episodes_min']} / {r['episodes_per_seed']} | "
                f"{r['actions']} | {r['population']} x {r['generations']} | {r['wall_seconds_mean']:.0f} |"
            )
    img = [r for r in rows if "accuracy_mean" in r]
    if img:
        out += [
            "" if rl else None,
            "| dataset | model | seeds | test accuracy (95% CI) | class-mean images | "
            "population x generations | wall s |",
            "|---|---|---|---|---|---|---|",
        ]
        for r in img:
            out.append(
                f"| {r['env']} | {r['method']} | {r['seeds']} | "
                f"{pm(100 * r['accuracy_mean'], 100 * r['accuracy_ci95'])}% | "
                f"{100 * r['class_mean_accuracy']:.1f}% | {r['population']} x {r['generations']} | "
                f"{r['wall_seconds_mean']:.0f} |"
            )
    return "\n".join(line for line in out if line is not None) + "\n"


OWN_INIT = " own init"  # the suffix of a curve label whose series is HaDES-F's own-init return


def with_evaluations(rows: list[dict], config: dict) -> list[dict]:
    """A run's metrics rows with ``evaluations``, the candidates evaluated up to each generation
    (its config's population x generations: the budget axis on which methods compare at equal
    cost); unchanged when the config names no population."""
    population = (config.get("es") or {}).get("population")
    if not isinstance(population, int):
        return rows
    return [
        {**r, "evaluations": r["generation"] * population} if isinstance(r.get("generation"), int) else r for r in rows
    ]


def add_own_init(series: dict[str, list[list[dict]]]) -> dict[str, list[list[dict]]]:
    """``{label: [each seed's rows]}`` with a ``LABEL own init`` series beside every label whose
    rows report HaDES-F's own-init return (as ``eval_return_mean``, so it draws like the rest)."""
    out = {}
    for label, runs in series.items():
        out[label] = runs
        if any(r.get("eval_own_init_return_mean") is not None for rows in runs for r in rows):
            out[label + OWN_INIT] = [
                [{**r, "eval_return_mean": r.get("eval_own_init_return_mean")} for r in rows] for rows in runs
            ]
    return out


def curve_points(drawn: dict[str, dict[str, tuple]], at) -> list[dict]:
    """Budget points read off drawn curves (``plots.curve_panels``' return): for each panel,
    series and requested x, the series' last point at or below it (its mean over seeds and the
    95% half-width), or None where the series starts above it."""
    rows = []
    for panel, series in drawn.items():
        for label, (xs, mean, half) in series.items():
            for want in at:
                i = int(np.searchsorted(np.asarray(xs), want, side="right")) - 1
                point = i >= 0
                rows.append(
                    {
                        "panel": panel,
                        "series": label,
                        "at": want,
                        "x": float(xs[i]) if point else None,
                        "mean": float(mean[i]) if point else None,
                        "ci95": float(half[i]) if point else None,
                    }
                )
    return rows


def curve_markdown(rows: list[dict], x_label: str) -> str:
    """``curve_points`` as a Markdown table."""
    out = [f"| environment | series | {x_label} (asked) | {x_label} (point) | mean (95% CI) |", "|---|---|---|---|---|"]
    for r in rows:
        out.append(
            f"| {r['panel']} | {r['series']} | {number(r['at'])} | {number(r['x'])} | {pm(r['mean'], r['ci95'])} |"
        )
    return "\n".join(out) + "\n"
