"""The paper's grid (``hades reproduce``): environments x methods x seeds at a named budget tier.

Each cell is an ordinary run directory ``OUT/<env>/<variant>/seed<S>`` (resumable on its own);
the grid skips finished cells and resumes interrupted ones, so running the same command again
continues where it stopped. After every cell it rewrites ``OUT/reproduction.json`` (the tier,
the command, one row per environment and method: mean final return over seeds with its 95% CI,
the random-policy return, the budget, wall time and the paper's number) and
``OUT/reproduction.md`` (the same as a Markdown table); the CLI draws ``reproduction.png``.

Tiers:
- ``smoke``: a few seconds per cell, to check the grid runs end to end (its numbers mean nothing).
- ``cpu``: the per-environment CPU presets (``hades presets``: the paper-* presets' inner loop
  with the outer budget scaled and width 64), Brax on spring physics and fewer generations, sized
  so the whole grid runs on a 2-core machine in hours, not days.
- ``gpu``: the paper-* presets (the official code's settings) with fewer generations, sized by
  estimate for about an hour per environment on one accelerator.
- ``paper``: the paper-* presets at the paper's full budget.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np

from hades.artifacts import atomic_write
from hades.config import VARIANTS
from hades.errors import HadesError, did_you_mean
from hades.launch import Launcher, Unit, launch
from hades.presets import make_config
from hades.report import add_own_init, aggregate_section, listed, number, pm, table, with_evaluations
from hades.rundir import read_metrics, read_run
from hades.runs import CHECKPOINT, Reporter, run

MINATAR_PRESETS = {
    "Breakout-MinAtar": "breakout",
    "SpaceInvaders-MinAtar": "space-invaders",
    "Asterix-MinAtar": "asterix",
    "Freeway-MinAtar": "freeway",
}
BRAX_PAPER_NAMES = (
    "inverted_double_pendulum",
    "reacher",
    "hopper",
    "walker2d",
    "halfcheetah",
    "ant",
    "humanoid",
    "humanoidstandup",
)
# the paper's 12 environments, cheapest first (the order the grid runs them)
PAPER_ENVS = (*MINATAR_PRESETS, *(f"brax/{n}" for n in BRAX_PAPER_NAMES))

# The paper's figures, for reference beside ours (../shared/reference/HADES.md): MinAtar final
# returns (HaDES-R / HaDES-F / direct ES at width 256) and the released Brax logs' population-mean
# return at the last generation (3 seeds, D = 64, positional physics; no direct-ES figure given).
PAPER_RETURNS: dict[str, dict[str, float]] = {
    "Breakout-MinAtar": {"hades-r": 11.9, "hades-f": 15.2, "direct-es": 4.5},
    "SpaceInvaders-MinAtar": {"hades-r": 24.2, "hades-f": 39.6, "direct-es": 41.3},
    "Asterix-MinAtar": {"hades-r": 5.3, "hades-f": 7.4, "direct-es": 8.5},
    "Freeway-MinAtar": {"hades-r": 0.0, "hades-f": 0.0, "direct-es": 0.0},
    "brax/hopper": {"hades-r": 1787, "hades-f": 1836},
    "brax/walker2d": {"hades-r": 2438, "hades-f": 2722},
    "brax/halfcheetah": {"hades-r": 3318, "hades-f": 3628},
    "brax/ant": {"hades-r": 267, "hades-f": 1193},
    "brax/humanoid": {"hades-r": 1715, "hades-f": 4563},
    "brax/humanoidstandup": {"hades-r": 223e3, "hades-f": 251e3},
    "brax/inverted_double_pendulum": {"hades-r": 7715, "hades-f": 9091},
    "brax/reacher": {"hades-r": -162, "hades-f": -195},
}


@dataclasses.dataclass(frozen=True)
class Tier:
    """A budget: which preset (plus overrides) each environment runs, and the default seeds."""

    name: str
    description: str
    minatar: tuple[str | None, dict]  # (preset, overrides); None: the environment's CPU preset
    brax: tuple[str | None, dict]
    seeds: tuple[int, ...] = (0, 1, 2)

    def preset(self, env: str) -> tuple[str, dict]:
        preset, overrides = self.minatar if env in MINATAR_PRESETS else self.brax
        if preset is None:
            preset = MINATAR_PRESETS.get(env) or env.removeprefix("brax/")
        return preset, {**overrides, "env": env}


_SMOKE = dict(generations=2, population=8, width=16, eval_envs=2, eval_steps=30, eval_episodes=2, eval_policies=2)

TIERS = {
    "smoke": Tier(
        "smoke",
        "a check that the grid runs end to end (CPU presets at population 8 x 2 generations, width 16); "
        "its numbers mean nothing",
        minatar=(None, _SMOKE),
        brax=(None, {**_SMOKE, "bc_steps": 10}),
        seeds=(0,),
    ),
    "cpu": Tier(
        "cpu",
        "CPU presets (the paper-* presets' inner loop, the outer budget scaled, width 64): MinAtar "
        "population 128 x 200 generations; Brax spring physics, population 64 x 60 generations",
        minatar=(None, {}),
        brax=(None, {"generations": 60}),
    ),
    "gpu": Tier(
        "gpu",
        "paper-* presets (population 2048, width 512) with fewer generations: MinAtar 300, Brax 100",
        minatar=("paper-minatar", {"generations": 300}),
        brax=("paper-brax", {"generations": 100}),
    ),
    "paper": Tier(
        "paper",
        "paper-* presets at the paper's budget: MinAtar 5000 generations, Brax 2000",
        minatar=("paper-minatar", {}),
        brax=("paper-brax", {}),
    ),
}


@dataclasses.dataclass(frozen=True)
class Cell:
    env: str
    variant: str
    seed: int
    preset: str
    overrides: dict

    def directory(self, out: Path) -> Path:
        return out / self.env.replace("/", "-") / self.variant / f"seed{self.seed}"

    def finished(self, out: Path) -> bool:
        """Whether the cell's run under ``out`` has finished (written its summary)."""
        return (self.directory(out) / "summary.json").is_file()

    def config(self):
        return make_config(self.preset, **self.overrides, variant=self.variant, seed=self.seed)


def _paper_env(name: str) -> str:
    """A paper environment by its id, its bare Brax name or the CPU preset named after it
    (``breakout`` -> ``Breakout-MinAtar``, ``hopper`` -> ``brax/hopper``)."""
    from hades.presets import PRESETS

    if name in PAPER_ENVS:
        return name
    for candidate in (f"brax/{name}", PRESETS.get(name, {}).get("env")):
        if candidate in PAPER_ENVS:
            return candidate
    hint = did_you_mean(name, [*PAPER_ENVS, *PRESETS])
    raise HadesError(f"{name!r} is not one of the paper's environments{hint} ({', '.join(PAPER_ENVS)})")


def plan(tier: str, envs=None, variants=None, seeds=None) -> list[Cell]:
    """The grid's cells in the order they run: environment by environment (cheapest first), each
    one's seeds in turn with every method at that seed. Every config is built (and so checked)."""
    if tier not in TIERS:
        raise HadesError(f"unknown tier {tier!r}; choose one of {', '.join(TIERS)}")
    t = TIERS[tier]
    envs = [_paper_env(e) for e in (PAPER_ENVS if not envs else envs)]
    variants = list(VARIANTS if not variants else variants)
    for v in variants:
        if v not in VARIANTS:
            raise HadesError(f"unknown variant {v!r}; choose from {', '.join(VARIANTS)}")
    seeds = list(t.seeds if seeds is None else seeds)
    if not seeds or min(seeds) < 0:
        raise HadesError("--seeds must be non-negative integers")
    cells = []
    for env in sorted(envs, key=PAPER_ENVS.index):
        preset, overrides = t.preset(env)
        for seed in seeds:
            for variant in sorted(variants, key=VARIANTS.index):
                cell = Cell(env, variant, seed, preset, overrides)
                cell.config()  # a bad combination is refused before anything runs
                cells.append(cell)
    return cells


GRID_FILE = "grid.json"


def _stored_tier(out: Path) -> str | None:
    """The tier ``OUT/grid.json`` records; None where there is no grid.json."""
    path = out / GRID_FILE
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text())["tier"]
    except (OSError, json.JSONDecodeError, KeyError, TypeError):
        raise HadesError(f"{path}: unreadable; is {out} a reproduce grid?") from None


def _claim(out: Path, tier: str) -> None:
    """Record the tier in ``OUT/grid.json``; a directory holding another tier's grid is refused."""
    stored = _stored_tier(out)
    if stored is None:
        out.mkdir(parents=True, exist_ok=True)
        atomic_write(out / GRID_FILE, json.dumps({"tier": tier}, indent=1))
    elif stored != tier:
        raise HadesError(f"{out} holds a {stored} grid; give another --out for the {tier} tier")


def run_cell(cell: Cell, out_dir: str, reporter: Reporter | None = None) -> dict:
    """One grid cell into its run directory (resumed from its checkpoint, never rerun once
    finished); returns its summary. What every launcher runs, here or on a worker."""
    out = Path(out_dir)
    d = cell.directory(out)
    if not cell.finished(out):
        run(cell.config(), d, resume=(d / CHECKPOINT).is_file(), reporter=reporter)
    return read_run(d, finished=True).summary


def reproduce(
    tier: str,
    out_dir,
    *,
    envs=None,
    variants=None,
    seeds=None,
    reporter: Reporter | None = None,
    on_cell=None,
    launcher: Launcher | None = None,
    on_status=None,
) -> dict:
    """Run (or continue) the grid into ``out_dir``; returns the ``reproduction.json`` content.
    ``on_cell(index, total, cell, summary_or_None)`` is called before a cell runs here (None) and
    with its summary once it is finished (also for cells finished earlier); the results files are
    rewritten after every cell that ran, by this process alone. With a ``launcher`` other than
    local the unfinished cells run as its tasks (``on_status(done, running, failed, total)``)."""
    cells = plan(tier, envs, variants, seeds)
    out = Path(out_dir)
    _claim(out, tier)
    todo = [i for i, c in enumerate(cells) if not c.finished(out)]
    for i, cell in enumerate(cells):
        if i not in todo and on_cell:
            on_cell(i, len(cells), cell, read_run(cell.directory(out), finished=True).summary)
    remote = launcher is not None and launcher.remote
    units = [
        Unit(f"{cells[i].env} {cells[i].variant} seed {cells[i].seed}", run_cell, (cells[i], str(out))) for i in todo
    ]
    index = {u.name: i for u, i in zip(units, todo)}

    def done(unit: Unit, summary: dict) -> None:
        write_results(out, tier)  # the results follow the grid cell by cell
        if on_cell:
            on_cell(index[unit.name], len(cells), cells[index[unit.name]], summary)

    if remote:
        launch(units, launcher, on_done=done, on_status=on_status)
    else:
        for unit, i in zip(units, todo):
            if on_cell:
                on_cell(i, len(cells), cells[i], None)
            done(unit, run_cell(cells[i], str(out), reporter))
    return write_results(out, tier)


def collect(out_dir) -> list[dict]:
    """Every cell under ``out_dir`` that has a run directory: its env, variant, seed, directory,
    config and whether it finished (has its summary)."""
    found = []
    for cfg_path in sorted(Path(out_dir).glob("*/*/seed*/config.json")):
        r = read_run(cfg_path.parent)
        cfg = r.config
        found.append(
            {
                "env": cfg["env"],
                "variant": cfg["variant"],
                "seed": cfg["seed"],
                "dir": r.path,
                "config": cfg,
                "finished": r.finished,
            }
        )
    return found


# the keys of a row whose cells have all started but none finished
_UNFINISHED = ("return_mean", "return_ci95", "random_return_mean", "distinct_episodes_min", "episodes_per_seed")
_UNFINISHED += ("population", "generations", "wall_seconds_mean")


def results(out_dir, tier: str, cells: list[dict] | None = None) -> list[dict]:
    """One row per (environment, method) found under ``out_dir``: the finished seeds aggregated as
    ``hades table`` does (``report.table``: mean final return and its 95% CI, own init, the
    random-policy return, distinct episodes, budget, wall time), plus the seeds started and the
    paper's figure. A CI that one seed cannot give is None. ``cells``: ``collect(out_dir)``, where
    the caller has already read it."""
    rows = []
    cells = collect(out_dir) if cells is None else cells
    for env in [e for e in PAPER_ENVS if any(c["env"] == e for c in cells)]:
        for variant in VARIANTS:
            mine = [c for c in cells if c["env"] == env and c["variant"] == variant]
            if not mine:
                continue
            row = {"env": env, "method": variant, "seeds": 0, "per_seed": [], **dict.fromkeys(_UNFINISHED)}
            done = [c["dir"] for c in mine if c["finished"]]
            if done:
                aggregated = table(done)
                if len(aggregated) != 1:
                    raise HadesError(f"{out_dir}: the {env} {variant} cells hold runs of different settings")
                row |= {k: v for k, v in aggregated[0].items() if k != "method"}
            row = {k: (None if isinstance(v, float) and not np.isfinite(v) else v) for k, v in row.items()}
            row["seeds_finished"], row["seeds_started"] = row.pop("seeds"), len(mine)
            row |= {"paper_return": PAPER_RETURNS.get(env, {}).get(variant), "tier": tier}
            rows.append(row)
    return rows


def markdown(rows: list[dict], tier: str, command: str | None = None) -> str:
    t = TIERS[tier]
    lines = [
        f"Tier `{tier}`: {t.description}.",
        "",
        f"Command: `{command}`" if command else "",
        "",
        "| environment | method | seeds | final return (95% CI) | per seed | own init (95% CI) | own init per seed | "
        "random policy | paper | distinct episodes (min / per seed) | population x generations | wall s per run |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        ret = pm(r["return_mean"], r["return_ci95"])
        own = pm(r.get("own_init_return_mean"), r.get("own_init_return_ci95"))
        seeds = str(r["seeds_finished"]) + (
            f" of {r['seeds_started']}" if r["seeds_started"] > r["seeds_finished"] else ""
        )
        lines.append(
            f"| {r['env']} | {r['method']} | {seeds} | {ret} | {listed(r['per_seed'])} | {own} | "
            f"{listed(r.get('per_seed_own_init'))} | {number(r['random_return_mean'])} | {number(r['paper_return'])} | "
            f"{r['distinct_episodes_min'] if r['distinct_episodes_min'] is not None else '—'} / "
            f"{r['episodes_per_seed'] or '—'} | {r['population'] or '—'} x {r['generations'] or '—'} | "
            f"{number(r['wall_seconds_mean'], 4)} |"
        )
    return "\n".join(lines) + "\n"


def rewrite_results(out_dir) -> dict:
    """Rewrite ``reproduction.json`` and ``.md`` from the cells finished under ``out_dir``, at the
    tier its ``grid.json`` records; nothing runs (a grid still running elsewhere, or one made by
    an older hades, gets a fresh table)."""
    tier = _stored_tier(Path(out_dir))
    if tier is None:
        raise HadesError(f"{out_dir} holds no reproduce grid (no {GRID_FILE})")
    if tier not in TIERS:
        raise HadesError(f"{Path(out_dir) / GRID_FILE}: unknown tier {tier!r}")
    return write_results(out_dir, tier)


def grid_command(out_dir, tier: str, cells: list[dict]) -> str:
    """The one command that runs every one of ``cells`` (``collect(out_dir)``: the grid may have
    been run piecewise, with --envs or --variants, in several sittings): what its table was made by."""
    words = ["hades reproduce", f"--tier {tier}"]
    envs = sorted({c["env"] for c in cells}, key=PAPER_ENVS.index)
    if envs and len(envs) < len(PAPER_ENVS):
        words.append("--envs " + ",".join(envs))
    variants = sorted({c["variant"] for c in cells}, key=VARIANTS.index)
    if variants and len(variants) < len(VARIANTS):
        words.append("--variants " + ",".join(variants))
    seeds = sorted({c["seed"] for c in cells})
    if seeds and seeds != sorted(TIERS[tier].seeds):
        words.append("--seeds " + ",".join(map(str, seeds)))
    return " ".join([*words, f"--out {out_dir}"])


def write_results(out_dir, tier: str) -> dict:
    out = Path(out_dir)
    cells = collect(out)  # read once for the rows and the command
    rows = results(out, tier, cells)
    command = grid_command(out, tier, cells)
    agg, agg_text = aggregate_section(rows)
    result = {"tier": tier, "description": TIERS[tier].description, "command": command, "rows": rows}
    if agg:
        result["aggregates"] = agg
    atomic_write(out / "reproduction.json", json.dumps(result, indent=1))
    atomic_write(out / "reproduction.md", markdown(rows, tier, command) + ("\n" + agg_text if agg_text else ""))
    return result


def curves(out_dir) -> dict[str, dict[str, list[list[dict]]]]:
    """Learning curves of the grid's cells: ``{env: {variant: [metrics rows of each seed]}}``, with
    HaDES-F's own-init return as its own series (``hades-f own init``) and each row's candidate
    evaluations (``evaluations``: the budget axis)."""
    panels: dict[str, dict[str, list[list[dict]]]] = {}
    for c in collect(out_dir):
        rows = with_evaluations(read_metrics(c["dir"]), c["config"])
        if rows:
            panels.setdefault(c["env"], {}).setdefault(c["variant"], []).append(rows)
    return {e: add_own_init(panels[e]) for e in PAPER_ENVS if e in panels}
