"""Commands that read what runs left: plot, table, zoo, envs, presets; and data (fetch the image
datasets)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from hades.cli.options import _check_output, _floats
from hades.cli.progress import _Bars
from hades.errors import HadesError, did_you_mean
from hades.presets import IMAGE_PRESETS, PRESETS


def _cmd_plot(args) -> int:
    import os

    from hades.plots import curve_panels
    from hades.report import add_own_init, series, with_evaluations
    from hades.rundir import read_run

    at = _floats(args.at, "at", positive=True) if args.at else None
    panels: dict[str, dict[str, list[list[dict]]]] = {}
    randoms: dict[str, list[float]] = {}  # per panel, each finished run's random-policy return
    keys: set[str] = set()
    runs: list[dict] = []
    for run_dir in map(read_run, args.runs):
        cfg = run_dir.config
        rows = with_evaluations(run_dir.metrics(), cfg)
        runs.append(
            {
                "env": cfg.get("env"),
                "variant": run_dir.variant,
                "dataset": cfg.get("dataset"),
                "model": cfg.get("model"),
                "config": cfg,
                "rows": rows,
            }
            | ({} if args.common_length else {"length": len(rows)})
        )
        keys.update(k for r in rows for k, v in r.items() if v is not None)
        if run_dir.finished and "random_return_mean" in run_dir.summary:
            randoms.setdefault(run_dir.panel, []).append(run_dir.summary["random_return_mean"])
    groups = series(runs)
    # the random policy's line: the mean over the panel's runs (each seed measures its own)
    reference = {panel: {"random policy": sum(v) / len(v)} for panel, v in randoms.items()}
    by_method: dict[tuple[str, str], list] = {}
    for s in groups:  # legends name only the options that tell series apart
        panels.setdefault(s.env, {})[s.label(brief=True)] = [r["rows"] for r in s.runs]
        by_method.setdefault((s.env, s.method), []).append(s)
    for (panel, method), split in by_method.items():  # say why runs of one method were not pooled as seeds
        if len(split) > 1:
            differ = sorted({k for s in split for k in s.differ})
            named = sorted({k for s in split for k in s.named})
            print(
                f"hades: plot: {panel} {method}: {len(split)} series, not pooled as seeds "
                f"(the runs differ in {', '.join(differ)}"
                + ("; --common-length pools them up to the shortest" if differ == ["length"] else "")
                + (f"; labelled by {', '.join(named)}" if named != differ else "")
                + ")",
                file=sys.stderr,
            )
    if args.own_init:  # HaDES-F: the dataset's own init, beside its fresh inits
        panels = {panel: add_own_init(series) for panel, series in panels.items()}
    key = args.key or ("eval_return_mean" if "eval_return_mean" in keys else "eval_accuracy_mean")
    if key not in keys:
        raise HadesError(f"no run has metric {key!r}; available: {', '.join(sorted(keys))}")
    if args.own_init and key != "eval_return_mean":
        raise HadesError("--own-init draws HaDES-F's own-init return beside eval_return_mean; drop --key")
    if args.x not in keys:
        raise HadesError(f"the runs have no {args.x!r} column (runs made before hades 0.4 lack env_steps)")
    out = _check_output(
        args.output or Path(os.path.commonpath([str(Path(r).resolve()) for r in args.runs])) / "runs.png"
    )
    drawn = curve_panels(
        panels, out, key=key, x=args.x, reference=reference if key == "eval_return_mean" else None, log_x=args.log_x
    )
    print(f"wrote {out}", file=sys.stderr)
    if at:
        from hades.plots import X_AXES
        from hades.report import curve_markdown, curve_points

        print(curve_markdown(curve_points(drawn, at), X_AXES.get(args.x, args.x)), end="")
    return 0


def _cmd_table(args) -> int:
    from hades.artifacts import atomic_write
    from hades.report import aggregate_section, markdown, table

    rows = table(args.runs)
    print(markdown(rows), end="")
    _, aggregates = aggregate_section(rows)
    if aggregates:
        print("\n" + aggregates, end="")
    if args.json:
        atomic_write(args.json, json.dumps(rows, indent=1))
        print(f"wrote {args.json}", file=sys.stderr)
    return 0


def _cmd_envs(args) -> int:
    from hades.envtable import ENV_SPECS

    for name, (shape, space, count, limit) in ENV_SPECS.items():
        kind = "actions" if space == "discrete" else "dims"
        print(f"{name:30s} obs {str(shape):12s} {space:10s} {kind}={count}  episode<={limit}")
    if args.all:
        from hades.envs import gymnax_ids

        others = [n for n in gymnax_ids() if n not in ENV_SPECS]
        print("other ids in gymnax's registry: " + ", ".join(others))
    else:
        print(
            "also: every id in gymnax's registry (`hades envs --all`), bare Brax names (hopper), and "
            "--env package.module:function for your own environment"
        )
    return 0


def _cmd_zoo(args) -> int:
    from hades.report import number, pm
    from hades.zoo import cards

    entries = cards()
    if args.json:
        print(json.dumps(entries, indent=1))
        return 0
    w = max([24, *map(len, entries)])  # the longest name (brax/inverted_double_pendulum) sets the column
    print(
        f"{'name':{w}s} {'variant':10s} {'size':>4s}  {'fresh-init return (95% CI)':28s} "
        f"{'own init':>10s} {'random':>9s}"
    )
    for name, c in entries.items():
        fresh = c.get("fresh") or {}
        if "accuracy_mean" in c:
            figure = f"{100 * c['accuracy_mean']:.1f}% test accuracy"
            own, rnd = "", f"{100 * c['class_mean_accuracy']:.1f}%"
        else:
            ci = fresh.get("return_ci95")
            figure = pm(fresh["return_mean"], ci, 4)
            own = number(c["own_init"]["return_mean"], 4) if c.get("own_init") else ""
            rnd = number(c["random_return_mean"], 4)
        print(f"{name:{w}s} {c['variant']:10s} {c['dataset_size']:>4d}  {figure:28s} {own:>10s} {rnd:>9s}")
    print("use one as zoo:NAME, e.g. `hades train zoo:CartPole-v1`; cards: `hades zoo --json`", file=sys.stderr)
    return 0


def _cmd_presets(args) -> int:
    from hades.presets import PRESET_DESCRIPTIONS, VARIANT_OVERRIDES, PerEnv

    every = {**PRESETS, **IMAGE_PRESETS}
    if args.name:
        if args.name not in every:
            hint = did_you_mean(args.name, every)
            raise HadesError(f"unknown preset {args.name!r}{hint} (`hades presets` lists them)")
        print(f"{args.name}: {PRESET_DESCRIPTIONS.get(args.name, '')}")
        overrides = every[args.name]
        env = overrides.get("env")

        def value(v):  # a per-environment value: the one this preset's environment runs with
            if isinstance(v, PerEnv) and env:
                return f"{v.get(env, v.default)}  (for {env}; another --env picks from {v!r})"
            return v

        for k, v in overrides.items():
            if k not in VARIANT_OVERRIDES:
                print(f"  --{k.replace('_', '-'):24s} {value(v)}")
        for key, variant in VARIANT_OVERRIDES.items():
            for k, v in overrides.get(key, {}).items():
                print(f"  --{k.replace('_', '-'):24s} {value(v)}  (variant {variant} only)")
        if args.name in IMAGE_PRESETS:
            print("  (hades distill-images; every other setting is its default)")
        return 0
    width = max(map(len, every))  # the descriptions in one column, however long a name
    for name in every:
        kind = " (distill-images)" if name in IMAGE_PRESETS else ""
        print(f"{name:{width}s}  {PRESET_DESCRIPTIONS.get(name, '')}{kind}")
    print("hades presets NAME shows every setting of one preset", file=sys.stderr)
    return 0


def _cmd_data(args) -> int:
    from hades.data import cache_dir, download

    bars = _Bars(args.quiet, unit="B", unit_scale=True)
    try:
        where = download(args.dataset, args.dir or None, progress=bars)
    finally:
        bars.close()
    print(
        json.dumps({"dataset": args.dataset, "dir": str(where), "default": str(where) == str(cache_dir(args.dataset))})
    )
    return 0


def add_parsers(sub, rl_defaults, image_defaults, shown) -> None:
    """This module's commands on the ``hades`` parser (defaults: a preset's, for --help)."""
    da = sub.add_parser("data", help="get the image datasets distill-images uses")
    dsub = da.add_subparsers(dest="action", required=True)
    dl = dsub.add_parser(
        "download",
        help="fetch MNIST or FashionMNIST (the four IDX files), checked against their published MD5s",
        description="Fetch the standard IDX files from the usual public mirrors into --dir (default: "
        "$XDG_CACHE_HOME/hades/data/<dataset>, which distill-images finds without --data-dir). "
        "Files are checked against their publishers' MD5s; an interrupted download resumes.",
    )
    dl.add_argument("dataset", choices=("mnist", "fashion-mnist"))
    dl.add_argument("--dir", help="directory to fill (default: the cache directory distill-images looks in)")
    dl.add_argument("--quiet", action="store_true", help="no progress bars")
    pl = sub.add_parser(
        "plot",
        help="overlay the learning curves of several runs",
        description="Learning curves, one panel per environment, with the random policy's return "
        "dotted. Runs of one setting (only the seed differs, or options such as --checkpoint-every "
        "that change how a run is kept, not what it computes) are pooled as seeds: a mean line "
        "with its 95% confidence band. Settings of one method that differ are drawn apart, each "
        "named in the legend by the fewest options that tell them apart (stderr lists every "
        "option that differs).",
    )
    pl.add_argument("runs", nargs="+", help="run directories")
    pl.add_argument("-o", "--output", help="PNG to write (default: runs.png in the runs' common directory)")
    pl.add_argument(
        "--x",
        choices=("generation", "evaluations", "wall_seconds", "env_steps"),
        default="generation",
        help="x axis (default: generation; evaluations: candidates evaluated, population x generations, "
        "the budget on which methods compare)",
    )
    pl.add_argument("--log-x", action="store_true", help="logarithmic x axis (budget curves over decades)")
    pl.add_argument(
        "--at",
        help="also print a Markdown table of each curve at these x values (comma-separated; the last "
        "point at or below each), e.g. --x evaluations --at 2560,12800,25600",
    )
    pl.add_argument(
        "--own-init",
        action="store_true",
        help="also draw HaDES-F's own-init return (the figure the paper reports) beside its fresh-init return",
    )
    pl.add_argument(
        "--common-length",
        action="store_true",
        help="pool the seeds of one setting even when their metrics differ in length (runs still going, "
        "or stopped early), each curve cut to its shortest seed (default: such runs are drawn apart)",
    )
    pl.add_argument("--key", help="metric to plot (default: eval_return_mean, or eval_accuracy_mean)")
    tb = sub.add_parser(
        "table",
        help="a Markdown table of finished runs, seeds aggregated (mean, 95%% CI)",
        description="Group finished run directories by environment and method; print each group's "
        "mean final return over seeds with its 95% confidence interval (Student t), the "
        "HaDES-F own-init figure, the random-policy return, the distinct evaluation "
        "episodes and the budget (images: test accuracy and the class-mean baseline).",
    )
    tb.add_argument("runs", nargs="+", help="finished run directories (each with summary.json)")
    tb.add_argument("--json", help="also write the rows to this JSON file")
    zo = sub.add_parser(
        "zoo",
        help="list the datasets shipped with hades (use them as zoo:NAME)",
        description="The dataset zoo: one distilled dataset per environment, with its card (the run "
        "that made it, budget, version, date, and its returns under the evaluation protocol, "
        "re-measured by the command the card names). Every command that takes a dataset "
        "path takes zoo:NAME.",
    )
    zo.add_argument("--json", action="store_true", help="print every card as JSON")
    ev = sub.add_parser("envs", help="list the supported environments")
    ev.add_argument("--all", action="store_true", help="also list every other id in gymnax's registry (imports it)")
    pr = sub.add_parser("presets", help="list the named presets, or show one's settings")
    pr.add_argument("name", nargs="?", help="a preset to show setting by setting")


COMMANDS = {
    "data": _cmd_data,
    "plot": _cmd_plot,
    "table": _cmd_table,
    "envs": _cmd_envs,
    "zoo": _cmd_zoo,
    "presets": _cmd_presets,
}
