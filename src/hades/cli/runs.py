"""Commands that start runs: distill, baseline, distill-images, sweep-size, tune, reproduce. Each
command's options sit beside its handler; a handler parses, calls the library, and reports."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from hades.cli.options import (
    _add_launcher,
    _add_options,
    _add_track,
    _floats,
    _given,
    _launcher,
    _rounded,
    _seed_list,
)
from hades.cli.progress import _bar, _ClusterBar, _Progress, _progress
from hades.config import (
    DIRECT_ES_IGNORES,
    DistillConfig,
    ImageDistillConfig,
    flatten,
    replace_flat,
)
from hades.errors import HadesError
from hades.presets import IMAGE_PRESETS, PRESETS, make_config, make_image_config


def _run_command(args, cls, make, run_name, fixed=None, resumable=("generations",)) -> int:
    """distill / baseline / distill-images: build the config, run it, print the summary as JSON."""
    from hades.runs import load_run_config, run

    given = _given(args, cls)
    if args.resume:
        if getattr(args, "config", None):
            raise HadesError("--resume DIR keeps the run's own config; drop --config")
        if not Path(args.resume).is_dir():
            raise HadesError(f"--resume {args.resume}: no such run directory")
        if args.out and Path(args.out).resolve() != Path(args.resume).resolve():
            raise HadesError("--resume DIR continues the run in DIR; drop --out (or give the same directory)")
        cfg = load_run_config(args.resume)
        if not isinstance(cfg, cls):
            raise HadesError(f"{args.resume} holds a run of another kind; resume it with its own command")
        baseline = (fixed or {}).get("variant") == "direct-es"
        # hades distill starts direct-es runs too (--variant direct-es), so it resumes them as well
        if cls is DistillConfig and baseline and cfg.variant != "direct-es":
            raise HadesError(f"{args.resume} holds a {cfg.variant} run; resume it with hades distill --resume")
        stored = flatten(cfg.to_dict())
        changed = {k for k, v in given.items() if k not in resumable and stored[k] != v}
        if args.preset or changed:
            raise HadesError(
                "a resumed run keeps its config; only "
                + ", ".join("--" + k.replace("_", "-") for k in resumable)
                + " may be given with --resume"
            )
        cfg = replace_flat(cfg, given).validate()
        out = Path(args.resume)
    elif getattr(args, "config", None):
        if args.preset:
            raise HadesError("--config FILE is a whole config; drop --preset (options given still override it)")
        from hades.rundir import json_object

        saved = json_object(args.config)
        cfg = replace_flat(cls.from_dict(saved), {**given, **(fixed or {})}).validate()
        out = Path(args.out or f"runs/{run_name(cfg)}_seed{cfg.seed}_{time.strftime('%Y%m%d-%H%M%S')}")
    else:
        cfg = make(args.preset, **given, **(fixed or {}))
        out = Path(args.out or f"runs/{run_name(cfg)}_seed{cfg.seed}_{time.strftime('%Y%m%d-%H%M%S')}")
    if args.dry_run:  # the config the run would write as config.json (a --config FILE), and nothing run
        print(json.dumps(cfg.to_dict(), indent=2, sort_keys=True))
        return 0
    summary = run(
        cfg,
        out,
        resume=bool(args.resume),
        reporter=_progress(args),
    )
    if summary.pop("already_finished", False):
        print(f"hades: {out} already finished all {cfg.generations} generations; nothing was redone", file=sys.stderr)
    print(
        json.dumps(
            _rounded(
                {k: v for k, v in summary.items() if k not in ("config", "provenance") and not isinstance(v, list)}
            )
            | {"out": str(out)}
        )
    )
    return 0


def _cmd_distill(args, fixed=None) -> int:
    if args.coordinator and not args.dry_run:
        from hades.devices import initialize_distributed

        if not 0 <= args.process_id < args.num_processes:
            raise HadesError(f"--process-id must be in [0, {args.num_processes})")
        initialize_distributed(args.coordinator, args.num_processes, args.process_id)
        args.quiet = args.quiet or args.process_id != 0
    return _run_command(args, DistillConfig, make_config, lambda c: f"{c.env.replace('/', '-')}_{c.variant}", fixed)


def _sweepable(configs: list) -> list:
    if configs[0].variant == "direct-es":
        raise HadesError("sweep-size varies the size of a HaDES dataset; direct ES evolves weights and has none")
    return configs


def _cmd_sweep_size(args) -> int:
    """One distillation per dataset size (the other options shared), then return against size."""
    from hades.plots import size_sweep_figure
    from hades.sweeps import size_sweep, size_sweep_seeds

    sizes = _floats(args.sizes, "sizes", int)
    if min(sizes) < 1:
        raise HadesError("--sizes must be >= 1")
    given = {k: v for k, v in _given(args, DistillConfig).items() if k != "dataset_size"}
    report = dict(
        reporter=_progress(args),
        on_row=lambda r: print(json.dumps(r), flush=True),
    )
    if args.seeds is not None:
        if "seed" in given:
            raise HadesError("give --seed or --seeds, not both")
        seeds = _seed_list(args.seeds)
        by_seed = {s: [make_config(args.preset, **given, seed=s, dataset_size=n) for n in sizes] for s in seeds}
        configs = _sweepable(by_seed[seeds[0]])  # all checked before any runs
        out = Path(args.out or f"runs/{configs[0].env.replace('/', '-')}_size-sweep")
        launcher = _launcher(args, out)
        status = None if args.quiet or not launcher.remote else _ClusterBar(len(sizes) * len(seeds), "run")
        rows = size_sweep_seeds(by_seed, out, **report, launcher=launcher, on_status=status)
        if status is not None:
            status.close()
    else:
        if args.launcher != "local" or args.jobs > 1:
            raise HadesError("--launcher and --jobs spread the seeds of a sweep: give --seeds")
        configs = _sweepable([make_config(args.preset, **given, dataset_size=n) for n in sizes])  # checked first
        out = Path(args.out or f"runs/{configs[0].env.replace('/', '-')}_size-sweep_seed{configs[0].seed}")
        rows = size_sweep(configs, out, **report)
    size_sweep_figure(
        rows, out / "size_sweep.png", title=f"{configs[0].env} {configs[0].variant}: return vs dataset size"
    )
    print(f"wrote {out / 'size_sweep.json'} and size_sweep.png", file=sys.stderr)
    return 0


def _cmd_distill_images(args) -> int:
    from hades.supervised import resolve_data_dir

    if not args.resume or getattr(args, "data_dir", None):
        # store the resolved directory, so a resumed run needs no environment variable
        dataset = getattr(args, "dataset", None) or ImageDistillConfig().dataset
        if args.preset and not getattr(args, "dataset", None):
            dataset = IMAGE_PRESETS[args.preset].get("dataset", dataset)
        try:
            args.data_dir = str(resolve_data_dir(getattr(args, "data_dir", None), dataset).resolve())
        except HadesError:
            if not args.dry_run:  # a dry run shows the config without the data ('' or the --data-dir given)
                raise
    return _run_command(
        args,
        ImageDistillConfig,
        make_image_config,
        lambda c: f"{c.dataset}_{c.model}",
        resumable=("generations", "data_dir"),
    )


def _cmd_tune(args) -> int:
    from hades.artifacts import atomic_write
    from hades.plots import tuning_figure
    from hades.report import number
    from hades.tune import check_continuation, check_import, check_request, load_record, report_markdown, tune

    methods = [m.strip() for m in args.variants.split(",") if m.strip()]
    seeds = tuple(_seed_list(args.seeds))
    out = Path(args.out or f"runs/tune-{args.preset or 'default'}")
    overrides = _given(args, DistillConfig, skip=("variant", "seed", "env"))
    strategies = tuple(x.strip() for x in args.strategies.split(",") if x.strip())
    holdout = tuple(_seed_list(args.holdout_seeds, "holdout-seeds")) if args.holdout_seeds else ()
    check_request(args.preset, getattr(args, "env", None), methods, overrides, strategies, args.trials, seeds, holdout)
    check_continuation(args.preset, getattr(args, "env", None), methods, overrides, strategies, out)
    imported = None
    if args.import_record:
        if args.report:
            raise HadesError("--import adds trials; --report runs and adds nothing: give one of them")
        imported = load_record(args.import_record)
        check_import(imported, args.preset, getattr(args, "env", None), methods, overrides, strategies, seeds, out)
    total = args.trials * len(methods)
    launcher = None if args.report else _launcher(args, out)
    bar = None if args.quiet or args.report else _bar(total, "trials")
    # each trial's generations under the trials bar when they run here (a cluster's workers: the bar's count)
    nested = bar is not None and not launcher.remote

    def on_trial(study, n, value, state):
        if bar is not None:
            bar.set_postfix_str(f"{study} #{n} {state.lower()} {number(value) if value is not None else ''}")
            bar.update(1)

    held_out = {}  # the held-out runs' bar, when a launcher runs them (drawn once they start)

    def on_holdout_status(done, running, failed, total):
        if not args.quiet:
            if "bar" not in held_out:
                held_out["bar"] = _ClusterBar(total, "held-out run")
            held_out["bar"](done, running, failed, total)

    record = tune(
        args.preset,
        methods,
        out,
        trials=args.trials,
        env=getattr(args, "env", None),
        seeds=seeds,
        overrides=overrides,
        on_trial=on_trial,
        on_resume=(lambda n: bar.update(n)) if bar is not None else None,
        reporter_factory=lambda: _Progress(not nested, nested=nested),
        launcher=launcher,
        strategies=strategies,
        holdout_seeds=holdout,
        on_holdout_status=on_holdout_status,
        report_only=args.report,
        imported=imported,
    )
    for b in (bar, held_out.get("bar")):
        if b is not None:
            b.close()
    atomic_write(out / "tuning.md", report_markdown(record))
    tuning_figure(record, out / "tuning.png")
    best = {name: {"value": s["best_value"], "params": s["best_params"]} for name, s in record["studies"].items()}
    print(json.dumps({"out": str(out), "best": best}, default=str))
    refused = {name: sum(1 for t in s["trials"] if t.get("refused")) for name, s in record["studies"].items()}
    short = {  # studies left short of --trials because the runs refused settings: not a finished study
        name: n for name, n in refused.items() if n and record["studies"][name]["finished"] < args.trials
    }
    if short and not args.report:
        raise HadesError(
            "; ".join(
                f"{name}: {n} refused trial(s), fewer than --trials {args.trials} finished" for name, n in short.items()
            )
            + f" (the reasons: {out / 'tuning.md'}); run the same command again to propose other settings"
        )
    return 0


def _cmd_reproduce(args) -> int:
    """The paper's grid at a budget tier; resumable cell by cell."""
    from hades.plots import curve_panels
    from hades.report import number
    from hades.reproduce import TIERS, curves, plan, reproduce, rewrite_results

    out = Path(args.out or f"runs/reproduce-{args.tier}")

    def figure():  # from the rows reproduce() has just written
        rows = json.loads((out / "reproduction.json").read_text())["rows"]
        random = {
            r["env"]: {"random policy": r["random_return_mean"]} for r in rows if r["random_return_mean"] is not None
        }
        curve_panels(curves(out), out / "reproduction.png", reference=random)

    def finish(verb: str, tier: str) -> int:  # the figure, then the table on stdout
        figure()
        print((out / "reproduction.md").read_text(), end="")
        print(
            f"{verb} {out / 'reproduction.json'}, reproduction.md and reproduction.png ({tier} tier)", file=sys.stderr
        )
        return 0

    if args.report:
        if args.envs or args.variants or args.seeds or args.plan:
            raise HadesError(
                "--report rewrites the whole grid's table; it takes no --envs, --variants, --seeds or --plan"
            )
        return finish("rewrote", rewrite_results(out)["tier"])
    envs = args.envs.split(",") if args.envs else None
    variants = args.variants.split(",") if args.variants else None
    seeds = _seed_list(args.seeds) if args.seeds else None
    cells = plan(args.tier, envs, variants, seeds)  # refuses bad input before anything runs
    if args.plan:
        for c in cells:
            extra = " ".join(f"--{k.replace('_', '-')} {v}" for k, v in c.overrides.items() if k != "env")
            done = "done" if c.finished(out) else "to run"
            print(f"{c.env:30s} {c.variant:10s} seed {c.seed}  --preset {c.preset} {extra}  [{done}]")
        return 0
    started = time.perf_counter()
    # cells an earlier invocation finished (every other one runs now, here or on a launcher's
    # workers, which announce no start)
    earlier = {i for i, c in enumerate(cells) if c.finished(out)}

    def on_cell(i, total, cell, summary):
        if summary is not None and i not in earlier:
            figure()  # the figure follows the table, cell by cell
        if args.quiet and summary is None:
            return
        tag = f"[{i + 1}/{total}] {cell.env} {cell.variant} seed {cell.seed}"
        if summary is None:
            print(f"hades: {tag}", file=sys.stderr)
        else:
            when = (
                "finished by an earlier invocation" if i in earlier else f"{time.perf_counter() - started:.0f} s so far"
            )
            print(
                f"hades: {tag}: final return {number(summary['final_return_mean'], 4)} "
                f"(random {number(summary['random_return_mean'])}); {when}",
                file=sys.stderr,
            )

    launcher = _launcher(args, out)
    status = None if args.quiet or not launcher.remote else _ClusterBar(len(cells))
    reproduce(
        args.tier,
        out,
        envs=envs,
        variants=variants,
        seeds=seeds,
        reporter=_progress(args),
        on_cell=on_cell,
        launcher=launcher,
        on_status=status,
    )
    if status is not None:
        status.close()
    return finish("wrote", TIERS[args.tier].name)


def add_parsers(sub, rl_defaults, image_defaults, shown) -> None:
    """This module's commands on the ``hades`` parser (defaults: a preset's, for --help)."""
    for name, help_, defaults, presets in (
        ("distill", "evolve a dataset (default: CartPole-v1, HaDES-R)", rl_defaults, PRESETS),
        ("baseline", "the direct-ES baseline: evolve the policy weights themselves", rl_defaults, PRESETS),
        (
            "distill-images",
            "supervised distillation: one synthetic image per class (MNIST, FashionMNIST)",
            image_defaults,
            IMAGE_PRESETS,
        ),
    ):
        described = help_ + (f" (defaults below: preset {shown})" if shown and presets.get(shown) is not None else "")
        c = sub.add_parser(name, help=help_, description=described)
        c.add_argument(
            "--preset",
            choices=list(presets),
            metavar="NAME",
            help="named config (see `hades presets`); options override it",
        )
        c.add_argument(
            "--config",
            metavar="FILE",
            help="start from a saved run config (a run directory's config.json); options given override it",
        )
        c.add_argument("--out", help="run directory (default: runs/<name>_seed<seed>_<time>)")
        c.add_argument("--resume", metavar="DIR", help="continue the interrupted run in DIR")
        c.add_argument("--quiet", action="store_true", help="no progress bar")
        c.add_argument(
            "--dry-run",
            action="store_true",
            help="print the full config this command would run (presets, variant and options resolved; "
            "what config.json would hold, usable as --config FILE) and exit without running",
        )
        _add_track(c)
        if name != "distill-images":
            c.add_argument(
                "--coordinator",
                metavar="HOST:PORT",
                help="multi-host run: the coordinator's address (process 0's host); run the same command "
                "on every host with its own --process-id",
            )
            c.add_argument(
                "--num-processes", type=int, default=1, help="multi-host run: number of processes (hosts) (default: 1)"
            )
            c.add_argument(
                "--process-id", type=int, default=0, help="multi-host run: this process' index, 0-based (default: 0)"
            )
        _add_options(c, defaults, skip=DIRECT_ES_IGNORES if name == "baseline" else ())
    sw = sub.add_parser(
        "sweep-size",
        help="distil at several dataset sizes and plot final return against size",
        description="Run `hades distill` once per --sizes value (every other option shared) into "
        "OUT/size_N (with --seeds: OUT/seed<S>/size_N), then write OUT/size_sweep.json and "
        "size_sweep.png (with --seeds: the mean final return over seeds with its 95% CI per "
        "size). Finished sizes are kept and interrupted ones resumed when the command is run again.",
    )
    sw.add_argument("--sizes", default="1,2,4,8,16,32", help="dataset sizes (comma-separated) (default: 1,2,4,8,16,32)")
    sw.add_argument(
        "--seeds",
        help="comma-separated seeds: one sweep per seed, aggregated with a 95%% CI (default: the one --seed)",
    )
    sw.add_argument("--preset", choices=list(PRESETS), metavar="NAME", help="named config (see `hades presets`)")
    sw.add_argument(
        "--out", help="sweep directory (default: runs/<env>_size-sweep_seed<seed>; with --seeds runs/<env>_size-sweep)"
    )
    sw.add_argument("--quiet", action="store_true", help="no progress bars")
    _add_track(sw)
    _add_launcher(sw)
    _add_options(sw, DistillConfig(), skip=("dataset_size",))
    tn = sub.add_parser(
        "tune",
        help="tune a preset's settings per method with optuna (the same trials and budget for each)",
        description="One optuna study per method (hades-f, hades-r, direct-es) on the preset's environment: "
        "TPE proposes settings from each method's declared space (HaDES: sigma, BC steps, BC lr, dataset "
        "size, the ES's temperature or lr; direct ES: sigma, the ES knob, width; with --strategies also the "
        "ES strategy, for every method alike; each range stretched to hold the preset's value), each trial "
        "is an ordinary run with the tuning seeds and the preset's outer budget, scored by its final "
        "evaluation (HaDES-F: own init). Trial 0 of a new study is the preset's own setting; TPE models the "
        "study after half its trials. Trials, the best setting and each parameter's importance go to "
        "OUT/tuning.json (rewritten after every trial), .md and .png; OUT/study.db is optuna's storage: run "
        "the command again to continue, or from several processes at once to share the study; elsewhere, "
        "--import OUT/tuning.json continues it from the record alone.",
    )
    tn.add_argument(
        "--preset",
        choices=list(PRESETS),
        metavar="NAME",
        help="the preset whose settings are tuned (see `hades presets`)",
    )
    tn.add_argument("--variants", default="hades-f,hades-r,direct-es", help="methods to tune (default: all three)")
    tn.add_argument("--trials", type=int, default=20, help="finished trials per method (default: 20)")
    tn.add_argument(
        "--strategies",
        default="",
        help="comma-separated evosax strategies to tune among, for every method alike (e.g. SNES,Sep_CMA_ES): "
        "each trial runs one with its own update rule and weights, and its knob (SNES: rank temperature, "
        "Open_ES: learning rate) is tuned when it is drawn (default: the preset's strategy only)",
    )
    tn.add_argument(
        "--seeds", default="100", help="comma-separated tuning seeds, kept apart from reported ones (default: 100)"
    )
    tn.add_argument(
        "--holdout-seeds",
        help="after the trials, run each study's best setting and the preset's on these tuning seeds (2 or "
        "more, none of --seeds, none you report with: e.g. 101,102,103,104) and say whether the best holds "
        "(paired difference, 95%% CI above zero) or the preset stays (default: not run)",
    )
    tn.add_argument("--out", help="study directory (default: runs/tune-<preset>)")
    tn.add_argument(
        "--report",
        action="store_true",
        help="write OUT/tuning.json, .md and .png from the trials finished so far (and the held-out check "
        "where all its runs finished), with the options the study began with; nothing runs",
    )
    tn.add_argument(
        "--import",
        dest="import_record",
        metavar="TUNING_JSON",
        help="start OUT's studies from another study directory's tuning.json (written at the end or by "
        "--report), e.g. one whose machine is gone: its trials are added as they finished, the one that "
        "was running runs again, and the study continues to --trials; the held-out check's finished runs "
        "are taken too; it must have run with these options",
    )
    tn.add_argument("--quiet", action="store_true", help="no progress bars")
    _add_launcher(tn)
    _add_options(tn, DistillConfig(), skip=("variant", "seed"))
    rp = sub.add_parser(
        "reproduce",
        help="run the paper's grid (12 environments x 3 methods x seeds) at a budget tier",
        description="Run every (environment, method, seed) cell of the paper's table into "
        "OUT/<env>/<method>/seed<S> (ordinary run directories), then write OUT/reproduction.json, "
        "reproduction.md (mean final return with its 95% CI over seeds, the random policy, the "
        "paper's figure) and reproduction.png (learning curves per environment). Run the same "
        "command again to continue an interrupted grid. Tiers: cpu (CPU presets, hours on 2 "
        "cores), gpu (paper settings, fewer generations: about an hour per environment on one "
        "accelerator), paper (the paper's budget); smoke checks the grid runs end to end in minutes.",
    )
    rp.add_argument(
        "--tier", choices=("smoke", "cpu", "gpu", "paper"), default="cpu", help="budget tier (default: cpu)"
    )
    rp.add_argument("--envs", help="comma-separated subset of the 12 environments (default: all)")
    rp.add_argument("--variants", help="comma-separated subset of hades-f,hades-r,direct-es (default: all)")
    rp.add_argument("--seeds", help="comma-separated seeds (default: 0,1,2; smoke: 0)")
    rp.add_argument("--out", help="grid directory (default: runs/reproduce-<tier>)")
    rp.add_argument("--plan", action="store_true", help="list the cells, their settings and status; run nothing")
    rp.add_argument(
        "--report",
        action="store_true",
        help="rewrite OUT's reproduction.json, .md and .png from its finished cells at the tier OUT "
        "was run at; run nothing (e.g. while the grid still runs, or after upgrading hades)",
    )
    rp.add_argument("--quiet", action="store_true", help="no progress bars")
    _add_track(rp)
    _add_launcher(rp)


COMMANDS = {
    "distill": _cmd_distill,
    "baseline": lambda a: _cmd_distill(a, {"variant": "direct-es"}),
    "distill-images": _cmd_distill_images,
    "sweep-size": _cmd_sweep_size,
    "reproduce": _cmd_reproduce,
    "tune": _cmd_tune,
}
