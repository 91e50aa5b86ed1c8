"""The ``hades`` command line. Options are generated from the config dataclasses (config.py),
so every knob is written once. User mistakes end in one line on stderr and exit code 2."""

from __future__ import annotations

import argparse
import dataclasses
import json
import signal
import sys
import time
import warnings
from pathlib import Path

import numpy as np

from hades.config import (
    ACTION_MODES,
    ACTIVATIONS,
    BACKENDS,
    BCConfig,
    DistillConfig,
    ImageDistillConfig,
    LearnerConfig,
    PolicyConfig,
    RetrainConfig,
    fields_of,
    flatten,
    replace_flat,
)
from hades.errors import HadesError, HadesWarning
from hades.presets import IMAGE_PRESETS, PRESETS, make_config, make_image_config

# options of `hades distill` that the direct-ES baseline has no use for: it evolves the weights of
# one policy, so there is no dataset, no inner loop (BC) and one evaluated policy
BASELINE_IGNORES = (
    "variant",
    "dataset_size",
    "num_inits",
    *(f.name for f in fields_of(LearnerConfig)),
    "evolve_bc",
    "evolve_label_temperature",
    "init_scale",
    "eval_policies",
    *(f.name for f in fields_of(BCConfig)),
)


# --help sections: a nested config class is a section of its own; top-level fields by name
SECTIONS = {
    "PolicyConfig": "policy",
    "BCConfig": "inner loop (behaviour cloning)",
    "ESConfig": "outer loop (evolution strategy)",
    "LearnerConfig": "learners (HaDES-R)",
}
TOP_SECTIONS = {
    "environment": ("env", "backend", "dataset", "data_dir"),
    "evaluation": (
        "eval_envs", "eval_steps", "fixed_length", "fixed_fitness", "actions", "obs_norm", "obs_std_floor",
        "eval_every", "eval_episodes", "eval_policies", "eval_classifiers", "holdout", "fitness_batch",
    ),
    "devices": ("memory_check", "devices", "chunk"),
}  # fmt: skip


def _section_of(name: str) -> str:
    for section, names in TOP_SECTIONS.items():
        if name in names:
            return section
    return "run"


def _add_options(parser: argparse.ArgumentParser, defaults, skip=(), default_text: str | None = None) -> None:
    """One option per leaf field of the config instance ``defaults`` (its values shown as defaults,
    or ``default_text`` where the default comes from elsewhere, e.g. the dataset's run), in --help
    sections: run, environment, policy, inner loop, outer loop, learners, evaluation, devices."""
    values = flatten(dataclasses.asdict(defaults))
    owner = {}
    for f in dataclasses.fields(defaults):
        sub = getattr(defaults, f.name)
        if dataclasses.is_dataclass(sub):
            owner.update({g.name: SECTIONS.get(type(sub).__name__, "run") for g in fields_of(type(sub))})
    groups: dict[str, argparse._ArgumentGroup] = {}
    for f in fields_of(type(defaults)):
        if f.name in skip:
            continue
        section = owner.get(f.name) or _section_of(f.name)
        if section not in groups:
            groups[section] = parser.add_argument_group(section)
        add = groups[section].add_argument
        flag = "--" + f.name.replace("_", "-")
        default = values[f.name]
        help_ = f"{f.metadata.get('help', '')} (default: {default_text or repr(default)})"
        kind = type(default)
        if kind is bool:
            add(flag, dest=f.name, action=argparse.BooleanOptionalAction, default=argparse.SUPPRESS, help=help_)
        else:
            choices = f.metadata.get("choices")
            add(
                flag,
                dest=f.name,
                type=kind,
                default=argparse.SUPPRESS,
                choices=choices,
                help=help_,
                metavar=None if choices else kind.__name__.upper(),
            )


def _add_track(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--track",
        choices=("wandb", "tensorboard"),
        help="also log the config, every metrics row, the summary and the figures to wandb (its mode "
        "from the environment, e.g. WANDB_MODE=offline) or TensorBoard (RUN/tensorboard); optional "
        "extra: pip install 'hades[track]' (default: off; metrics.jsonl is always written)",
    )
    parser.add_argument("--wandb-project", help="--track wandb: the project (default: $WANDB_PROJECT, else hades)")
    parser.add_argument("--wandb-entity", help="--track wandb: the entity (default: $WANDB_ENTITY, else yours)")


def _add_retrain_options(parser: argparse.ArgumentParser, **defaults) -> None:
    """The options of ``RetrainConfig`` (policies, episodes, step cap, seed), with this command's defaults."""
    cfg = RetrainConfig(**defaults)
    for f in fields_of(RetrainConfig):
        default = getattr(cfg, f.name)
        help_ = f"{f.metadata['help']} (default: {default})"
        parser.add_argument("--" + f.name.replace("_", "-"), type=int, default=default, help=help_)
    # hades < 0.4 spelled --policies as --seeds; --seeds now always names run seeds (reproduce,
    # sweep-size, tune), so the old spelling is read as a count with a one-line note
    parser.add_argument("--seeds", dest="legacy_seeds", help=argparse.SUPPRESS)


def _retrain(args) -> RetrainConfig:
    """The retraining settings of a train / transfer / merge command, validated."""
    if args.legacy_seeds is not None:
        if not args.legacy_seeds.strip().isdigit():
            raise HadesError(
                f"{args.command}: the number of fresh policies is --policies N (--seeds names run seeds, "
                f"in reproduce, sweep-size and tune; got --seeds {args.legacy_seeds!r})"
            )
        warnings.warn(
            f"{args.command} --seeds N is now --policies N (the number of fresh policies)", HadesWarning, stacklevel=1
        )
        args.policies = int(args.legacy_seeds)
    return RetrainConfig(**{f.name: getattr(args, f.name) for f in fields_of(RetrainConfig)}).validate()


def _given(args, cls, skip=()) -> dict:
    return {f.name: getattr(args, f.name) for f in fields_of(cls) if f.name not in skip and hasattr(args, f.name)}


def _progress(args) -> _Progress:
    """The progress reporter a run command's flags ask for (--quiet, --track, --wandb-*)."""
    return _Progress(args.quiet, args.track, (args.wandb_project, args.wandb_entity))


class _Progress:
    """A tqdm bar over generations: fitness, best candidate, last evaluated return, elapsed time."""

    def __init__(self, quiet: bool, track: str | None = None, wandb: tuple = (None, None)):
        self.quiet, self.bar, self.eval, self.evaluated = quiet, None, None, False
        self.wandb = wandb  # (project, entity)
        self.eval_key = "eval_return_mean"
        self.track, self.tracker = track, None
        if track:
            from hades.tracking import check

            check(track)  # before anything runs

    def start(self, cfg, out, start_generation):
        if self.track:
            from hades.tracking import Tracker

            name = f"{Path(out).parent.name}/{Path(out).name}"
            self.tracker = Tracker(self.track, out, cfg.to_dict(), name, *self.wandb)
        self.eval, self.evaluated = None, False
        if self.quiet:
            return
        from tqdm import tqdm

        if isinstance(cfg, DistillConfig):
            what = f"{cfg.variant} on {cfg.env}"
        else:
            what, self.eval_key = f"{cfg.model} on {cfg.dataset}", "eval_accuracy_mean"
        print(f"hades: {what}, population {cfg.es.population}, {cfg.generations} generations -> {out}", file=sys.stderr)
        self.bar = tqdm(
            total=cfg.generations,
            initial=start_generation,
            unit="gen",
            dynamic_ncols=True,
            file=sys.stderr,
            desc="compiling",
        )

    def evaluating(self, generation):
        if self.bar is not None and not self.bar.disable:
            self.bar.set_description("evaluating" if self.evaluated else "compiling evaluation", refresh=True)
        elif self.bar is not None:  # the bar closed with the last generation: the final evaluation
            print("hades: final evaluation", file=sys.stderr)
        self.evaluated = True

    def generation(self, row):
        if self.tracker is not None:
            self.tracker.row(row)
        if self.bar is None:
            return
        from hades.report import number  # deferred: hades.report imports JAX

        if row.get(self.eval_key) is not None:
            self.eval = row[self.eval_key]
        post = {"fit": number(row["fitness_mean"]), "max": number(row["fitness_max"])}
        if self.eval is not None:
            post["eval"] = number(self.eval)
        self.bar.set_description("gen", refresh=False)
        self.bar.set_postfix(post, refresh=False)
        self.bar.update(1)
        if self.bar.n >= self.bar.total:
            self.bar.close()

    def finish(self, out, summary):
        from hades.plots import run_figures

        pictures = run_figures(out)
        if self.tracker is not None:
            self.tracker.finish(summary, pictures)
            self.tracker = None


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
        if cls is DistillConfig and (cfg.variant == "direct-es") != baseline:
            command = "hades baseline" if cfg.variant == "direct-es" else "hades distill"
            raise HadesError(f"{args.resume} holds a {cfg.variant} run; resume it with {command} --resume")
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
    if args.coordinator:
        from hades.devices import initialize_distributed

        if not 0 <= args.process_id < args.num_processes:
            raise HadesError(f"--process-id must be in [0, {args.num_processes})")
        initialize_distributed(args.coordinator, args.num_processes, args.process_id)
        args.quiet = args.quiet or args.process_id != 0
    return _run_command(args, DistillConfig, make_config, lambda c: f"{c.env.replace('/', '-')}_{c.variant}", fixed)


def _cmd_sweep_size(args) -> int:
    """One distillation per dataset size (the other options shared), then return against size."""
    from hades.plots import size_sweep_figure
    from hades.runs import size_sweep, size_sweep_seeds

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
        configs = by_seed[seeds[0]]  # all checked before any runs
        out = Path(args.out or f"runs/{configs[0].env.replace('/', '-')}_size-sweep")
        rows = size_sweep_seeds(by_seed, out, **report)
    else:
        configs = [make_config(args.preset, **given, dataset_size=n) for n in sizes]  # all checked before any runs
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
        args.data_dir = str(resolve_data_dir(getattr(args, "data_dir", None), dataset).resolve())
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
    from hades.tune import report_markdown, tune

    methods = [m.strip() for m in args.variants.split(",") if m.strip()]
    seeds = tuple(_seed_list(args.seeds))
    out = Path(args.out or f"runs/tune-{args.preset or 'default'}")
    overrides = _given(args, DistillConfig, skip=("variant", "seed", "env"))
    total = args.trials * len(methods)
    bar = None if args.quiet else _bar(total, "trials")

    def on_trial(study, n, value, state):
        if bar is not None:
            bar.set_postfix_str(f"{study} #{n} {state.lower()} {number(value) if value is not None else ''}")
            bar.update(1)

    record = tune(
        args.preset,
        methods,
        out,
        trials=args.trials,
        env=getattr(args, "env", None),
        seeds=seeds,
        overrides=overrides,
        on_trial=on_trial,
        reporter_factory=lambda: _Progress(True),
    )
    if bar is not None:
        bar.close()
    atomic_write(out / "tuning.md", report_markdown(record))
    tuning_figure(record, out / "tuning.png")
    best = {name: {"value": s["best_value"], "params": s["best_params"]} for name, s in record["studies"].items()}
    print(json.dumps({"out": str(out), "best": best}, default=str))
    return 0


def _bar(total: int, unit: str):
    from tqdm import tqdm

    return tqdm(total=total, unit=unit, file=sys.stderr, dynamic_ncols=True)


class _Stages:
    """A progress bar over the stages of work done in single compiled calls (train, merge
    --evaluate, transfer): ``stages(text)`` ends the previous stage and starts ``text``; the
    elapsed time ticks every second while a stage runs (nothing inside a compiled call can report
    finer progress). Quiet: nothing is drawn."""

    def __init__(self, total: int, quiet: bool = False, unit: str = "stage"):
        self.bar, self.stop = None, None
        if quiet:
            return
        import threading

        from tqdm import tqdm

        self.bar = tqdm(total=total, unit=unit, file=sys.stderr, dynamic_ncols=True, desc="hades")
        self.stop = threading.Event()
        self.started = False

        def tick():
            while not self.stop.wait(1.0):
                self.bar.refresh()

        threading.Thread(target=tick, daemon=True).start()

    def __call__(self, text: str) -> None:
        if self.bar is None:
            return
        if self.started:
            self.bar.update(1)
        self.started = True
        self.bar.set_description_str(text)

    def write(self, line: str) -> None:
        """A line above the bar (none when quiet)."""
        if self.bar is not None:
            self.bar.write(line, file=sys.stderr)

    def close(self) -> None:
        if self.bar is not None:
            self.stop.set()
            if self.started:
                self.bar.update(1)
            self.bar.close()


class _Bars:
    """Progress bars made on first report, one per key (a file, a stage): ``bars(key, done, total)``
    moves ``key``'s bar to ``done``; ``close()`` ends them all. Quiet: nothing is drawn."""

    def __init__(self, quiet: bool = False, **tqdm_options):
        self.quiet, self.options, self.bars = quiet, tqdm_options, {}

    def __call__(self, key: str, done: int, total: int | None) -> None:
        if self.quiet:
            return
        if key not in self.bars:
            from tqdm import tqdm

            self.bars[key] = tqdm(total=total, desc=key, file=sys.stderr, **self.options)
        self.bars[key].update(done - self.bars[key].n)

    def close(self) -> None:
        for bar in self.bars.values():
            bar.close()


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
            done = "done" if (c.directory(out) / "summary.json").is_file() else "to run"
            print(f"{c.env:30s} {c.variant:10s} seed {c.seed}  --preset {c.preset} {extra}  [{done}]")
        return 0
    started = time.perf_counter()
    ran = set()

    def on_cell(i, total, cell, summary):
        if summary is None:
            ran.add(i)
        elif i in ran:
            figure()  # the figure follows the table, cell by cell
        if args.quiet and summary is None:
            return
        tag = f"[{i + 1}/{total}] {cell.env} {cell.variant} seed {cell.seed}"
        if summary is None:
            print(f"hades: {tag}", file=sys.stderr)
        else:
            print(
                f"hades: {tag}: final return {number(summary['final_return_mean'], 4)} "
                f"(random {number(summary['random_return_mean'])}); {time.perf_counter() - started:.0f} s so far",
                file=sys.stderr,
            )

    reproduce(
        args.tier,
        out,
        envs=envs,
        variants=variants,
        seeds=seeds,
        reporter=_progress(args),
        on_cell=on_cell,
    )
    return finish("wrote", TIERS[args.tier].name)


def _cmd_train(args) -> int:
    from hades.artifacts import load_dataset, own_init_params
    from hades.envs import make_env
    from hades.evaluation import check_dataset, run_config, summarize, train_and_evaluate

    ds = load_dataset(args.dataset)
    if ds.variant == "supervised":
        raise HadesError(f"{args.dataset} is an image dataset; `hades train` retrains RL policies")
    if ds.variant == "multitask":
        raise HadesError(f"{args.dataset} is a multi-task dataset; evaluate it with `hades merge A B -o M --evaluate`")
    base = run_config(ds)
    if args.preset:  # a preset's inner loop (e.g. paper-brax), resolved for this dataset's environment
        preset = make_config(args.preset, env=args.env or ds.env)
        base = dataclasses.replace(base, policy=preset.policy, bc=preset.bc)
    policy_cfg = replace_flat(base.policy, _given(args, PolicyConfig))
    bc_cfg = replace_flat(base.bc, _given(args, BCConfig))
    make_config(None, **dataclasses.asdict(policy_cfg), **dataclasses.asdict(bc_cfg))  # validates ranges
    retrain = _retrain(args)
    init = own_init_params(_resolved(args.dataset), ds, policy_cfg) if args.own_init else None
    actions = args.actions or base.actions
    backend = args.backend or base.backend
    env = make_env(args.env or ds.env, backend)
    check_dataset(ds, env)  # a dataset that does not fit is refused before any work
    t0 = time.perf_counter()
    stages = _Stages(1, args.quiet)
    stages(
        f"training {retrain.policies} {'own-init' if args.own_init else 'fresh'} policies by BC, "
        f"{retrain.episodes} episodes each"
    )
    rollouts = train_and_evaluate(
        ds, policy_cfg, bc_cfg, retrain, env=env, init_params=init, backend=backend, actions=actions
    )
    stages.close()
    if not args.quiet:
        _say(f"done in {time.perf_counter() - t0:.1f} s")
    result = {
        "dataset": str(args.dataset),
        "env": env.name,
        "init": "own" if args.own_init else "fresh",
        "actions": actions,
        **summarize(rollouts, env, args.eval_steps),
        "policy": dataclasses.asdict(policy_cfg),
        "bc": dataclasses.asdict(bc_cfg),
    }
    print(json.dumps(_rounded(result)))
    return 0


def _say(text: str) -> None:
    """A progress line on stderr (stdout carries the JSON result)."""
    print(f"hades: {text}", file=sys.stderr, flush=True)


def _zoo_name(path) -> str | None:
    """NAME of a ``zoo:NAME`` dataset argument, else None."""
    from hades.zoo import PREFIX

    return str(path)[len(PREFIX) :] if str(path).startswith(PREFIX) else None


def _check_output(out, *inputs) -> Path:
    """Refuse an output path that is one of the command's inputs, or that exists and is not a regular
    file (a directory, a device node): a command never overwrites what it reads."""
    out = Path(out)
    if out.exists() and not out.is_file():
        raise HadesError(f"{out} exists and is not a regular file; give a file path to write (nothing was written)")
    for given in inputs:
        try:
            same = out.resolve() == _resolved(given).resolve()
        except (OSError, HadesError):
            same = False
        if same:
            raise HadesError(
                f"{out} is also an input of this command; choose another output path (nothing was written)"
            )
    return out


def _resolved(path) -> Path:
    """A dataset argument as a file: ``zoo:NAME`` is the packaged dataset (``hades.zoo``)."""
    from hades.zoo import resolve

    return resolve(path)


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


def _rounded(obj, digits: int = 4):
    """Floats rounded to ``digits`` significant digits for the terminal (files keep full precision)."""
    if isinstance(obj, float):
        return float(f"{obj:.{digits}g}") if np.isfinite(obj) else obj
    if isinstance(obj, dict):
        return {k: _rounded(v, digits) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_rounded(v, digits) for v in obj]
    return obj


def _floats(text: str, name: str, kind=float, positive: bool = False) -> list:
    try:
        values = [kind(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise HadesError(f"--{name} takes comma-separated numbers (got {text!r})") from None
    if not values:
        raise HadesError(f"--{name} is empty")
    import math

    if positive and not all(math.isfinite(v) and v > 0 for v in values):
        raise HadesError(f"--{name} takes finite numbers > 0 (got {text!r})")
    return values


def _seed_list(text: str) -> list[int]:
    """``--seeds``: the run seeds a grid, sweep or study runs, comma-separated, distinct, >= 0
    (the one meaning of --seeds; retraining commands count fresh policies with --policies)."""
    seeds = _floats(text, "seeds", int)
    if len(set(seeds)) != len(seeds) or min(seeds) < 0:
        raise HadesError(f"--seeds takes distinct comma-separated seeds >= 0 (got {text!r})")
    return seeds


def _cmd_transfer(args) -> int:
    from hades.artifacts import load_dataset
    from hades.plots import transfer_figure
    from hades.report import number
    from hades.transfer import check_architectures, own_group, save_transfer, transfer_sweep

    widths, lrs = _floats(args.widths, "widths", int, positive=True), _floats(args.lrs, "lrs", positive=True)
    epochs = _floats(args.epochs, "epochs", int)
    depths = _floats(args.depths, "depths", int) if args.depths else None
    activations = [a.strip() for a in args.activations.split(",") if a.strip()] if args.activations else None
    check_architectures(depths, activations)  # before any progress line
    retrain = _retrain(args)
    labels = (
        args.labels.split(",")
        if args.labels
        else [p if _zoo_name(p) else (Path(p).parent.name or Path(p).stem) for p in args.datasets]
    )
    if len(labels) != len(args.datasets):
        raise HadesError(f"--labels names {len(labels)} datasets, {len(args.datasets)} given")
    out = Path(args.out)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise HadesError(f"cannot write to {out}: {e.strerror or e}") from None
    results, first_env = {}, None
    archs = len(widths) * len(depths or [0]) * len(activations or [0])
    stages = _Stages(archs * len(args.datasets), args.quiet, unit="architecture")
    for label, path in zip(labels, args.datasets):
        ds = load_dataset(path)
        if ds.variant in ("supervised", "multitask"):
            raise HadesError(f"{path} is a {ds.variant} dataset; transfer sweeps retrain single-task RL policies")
        first_env = first_env or ds.env
        settings = args.sample or len(lrs) * len(epochs)
        stages.write(
            f"hades: {label}: {archs} architectures x {settings} (lr, steps) settings x {retrain.policies} "
            "policies (each architecture compiles once)"
        )
        stages(f"{label}: architecture 1 of {archs}")
        done = [0]  # architectures of this dataset finished

        def progress(group, returns, label=label, done=done):
            top = np.sort(returns)[len(returns) // 2 :].mean()
            stages.write(
                f"hades: {label}: {group}: median return {number(np.median(returns), 4)} "
                f"(top half {number(top, 4)}) over {len(returns)} policies"
            )
            done[0] += 1
            if done[0] < archs:
                stages(f"{label}: architecture {done[0] + 1} of {archs}")

        rows = transfer_sweep(
            ds,
            widths,
            lrs,
            epochs,
            retrain,
            sample=args.sample,
            depths=depths,
            activations=activations,
            progress=progress,
        )
        results[label] = (rows, own_group(ds))
    stages.close()
    summary = save_transfer(out, results, args.datasets)
    transfer_figure(results, out / "transfer.png", title=f"{first_env}: policies trained on the dataset(s)")
    per = "per_architecture" if depths or activations else "per_width"
    print(json.dumps({"out": str(out), **{k: v[per] for k, v in summary.items()}}))
    return 0


def _cmd_merge(args) -> int:
    from hades.artifacts import load_dataset, save_dataset
    from hades.evaluation import run_config
    from hades.multitask import evaluate_merge, merge_datasets

    a, b = load_dataset(args.a), load_dataset(args.b)
    merged = merge_datasets(a, b)
    out = _check_output(args.output, args.a, args.b)
    for sibling in (out.with_suffix(".json"), out.with_suffix(".png")) if args.evaluate else ():
        _check_output(sibling, args.a, args.b)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        save_dataset(out, merged)
    except OSError as e:
        raise HadesError(f"cannot write {out}: {e.strerror or e}") from None
    print(f"wrote {out}: {merged.size} states of {merged.states.shape[1]} features ({merged.env})", file=sys.stderr)
    if not args.evaluate:
        return 0
    retrain = _retrain(args)
    stages = _Stages(4, args.quiet)  # evaluate_merge reports 4 stages: merged, untrained, A alone, B alone
    base = run_config(a)
    policy_cfg = replace_flat(base.policy, _given(args, PolicyConfig))
    bc_cfg = replace_flat(base.bc, _given(args, BCConfig))
    result = evaluate_merge(
        a,
        b,
        merged,
        policy_cfg,
        bc_cfg,
        retrain,
        actions=base.actions,
        progress=stages,
    )
    stages.close()
    result |= {"merged": str(out), "policy": dataclasses.asdict(policy_cfg), "bc": dataclasses.asdict(bc_cfg)}
    from hades.artifacts import atomic_write
    from hades.plots import merge_figure

    atomic_write(out.with_suffix(".json"), json.dumps(result, indent=1))
    merge_figure(result, out.with_suffix(".png"), title=f"agents trained on {merged.env}")
    print(json.dumps(result))
    return 0


def _cmd_render(args) -> int:
    from hades.artifacts import load_dataset
    from hades.render import render_dataset

    if args.fps < 1 or args.max_frames < 1:
        raise HadesError(f"--fps and --max-frames must be >= 1 (got {args.fps}, {args.max_frames})")
    ds = load_dataset(args.dataset)
    bars = _Bars(unit="frame", leave=False)  # the drawing stage takes longest: a bar over its frames
    info = render_dataset(
        ds,
        _check_output(args.output, args.dataset),
        dataset_path=_resolved(args.dataset),
        env_name=args.env,
        backend=args.backend,
        own_init=args.own_init,
        actions=args.actions,
        seed=args.seed,
        eval_steps=args.eval_steps,
        fps=args.fps,
        max_frames=args.max_frames,
        progress=_say,
        on_frame=lambda done, total: bars("drawing", done, total),
    )
    bars.close()
    print(json.dumps(info))
    return 0


def _cmd_show(args) -> int:
    from hades.artifacts import load_dataset
    from hades.envs import CHANNEL_NAMES, FEATURE_NAMES
    from hades.plots import dataset_figure

    ds = load_dataset(args.dataset)
    from hades.zoo import slug

    name = _zoo_name(args.dataset)  # a zoo dataset's picture goes to the working directory, not the package
    out = _check_output(
        args.output or (f"{slug(name)}.png" if name else Path(args.dataset).with_suffix(".png")), args.dataset
    )
    names = ds.env_spec.get("feature_names") or FEATURE_NAMES.get(ds.env)
    dataset_figure(
        ds.states,
        ds.actions,
        out,
        feature_names=names,
        channel_names=ds.env_spec.get("channel_names") or CHANNEL_NAMES.get(ds.env),
        title=f"{ds.env} {ds.variant}: {ds.size} states",
    )
    if ds.states.ndim == 2 and ds.size <= 64 and ds.states.shape[1] <= 16:  # small enough to read as text
        cols = list(names) if names else [f"x{j}" for j in range(ds.states.shape[1])]
        width = max(10, *(len(c) for c in cols))
        print(" ".join(f"{c:>{width}s}" for c in cols) + "  action")
        for x, a in zip(ds.states, ds.actions):
            act = str(int(a)) if np.ndim(a) == 0 else " ".join(f"{v:+.3f}" for v in np.atleast_1d(a))
            print(" ".join(f"{v:>+{width}.4f}" for v in x) + f"  {act}")
    if ds.variant != "supervised":
        print(f"hades: evolved for: {ds.learner()}", file=sys.stderr)
    print(f"wrote {out}", file=sys.stderr)
    return 0


def _cmd_plot(args) -> int:
    import os

    from hades.plots import curve_panels
    from hades.report import group_runs
    from hades.rundir import read_run

    panels: dict[str, dict[str, list[list[dict]]]] = {}
    reference: dict[str, dict[str, float]] = {}
    keys: set[str] = set()
    runs: list[dict] = []
    for run_dir in map(read_run, args.runs):
        rows = run_dir.metrics()
        cfg = run_dir.config
        runs.append(
            {
                "env": cfg.get("env"),
                "variant": run_dir.variant,
                "dataset": cfg.get("dataset"),
                "model": cfg.get("model"),
                "config": cfg,
                "length": len(rows),
                "rows": rows,
            }
        )
        keys.update(k for r in rows for k, v in r.items() if v is not None)
        if run_dir.finished and "random_return_mean" in run_dir.summary:
            reference.setdefault(run_dir.panel, {})["random policy"] = run_dir.summary["random_return_mean"]
    for (panel, label), group in group_runs(runs).items():
        panels.setdefault(panel, {})[label] = [r["rows"] for r in group]
    for panel, labels in panels.items():  # say why runs of one method were not pooled as seeds
        by_method: dict[str, list[str]] = {}
        for label in labels:
            by_method.setdefault(label.split(" ")[0], []).append(label)
        for method, split in by_method.items():
            if len(split) > 1:
                differ = sorted({kv.split("=")[0] for lab in split for kv in lab.split(" ")[1:]})
                print(
                    f"hades: plot: {panel} {method}: {len(split)} series, not pooled as seeds "
                    f"(the runs differ in {', '.join(differ)})",
                    file=sys.stderr,
                )
    key = args.key or ("eval_return_mean" if "eval_return_mean" in keys else "eval_accuracy_mean")
    if key not in keys:
        raise HadesError(f"no run has metric {key!r}; available: {', '.join(sorted(keys))}")
    if args.x not in keys:
        raise HadesError(f"the runs have no {args.x!r} column (runs made before hades 0.4 lack env_steps)")
    out = _check_output(
        args.output or Path(os.path.commonpath([str(Path(r).resolve()) for r in args.runs])) / "runs.png"
    )
    curve_panels(panels, out, key=key, x=args.x, reference=reference if key == "eval_return_mean" else None)
    print(f"wrote {out}", file=sys.stderr)
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


def _cmd_presets(args) -> int:
    from hades.presets import PRESET_DESCRIPTIONS

    every = {**PRESETS, **IMAGE_PRESETS}
    if args.name:
        if args.name not in every:
            import difflib

            close = difflib.get_close_matches(args.name, list(every), n=2, cutoff=0.5)
            hint = f"; did you mean {' or '.join(close)}?" if close else ""
            raise HadesError(f"unknown preset {args.name!r}{hint} (`hades presets` lists them)")
        print(f"{args.name}: {PRESET_DESCRIPTIONS.get(args.name, '')}")
        overrides = every[args.name]
        for k, v in overrides.items():
            if k == "direct_es":
                continue
            print(f"  --{k.replace('_', '-'):24s} {v}")
        for k, v in overrides.get("direct_es", {}).items():
            print(f"  --{k.replace('_', '-'):24s} {v}  (hades baseline only)")
        if args.name in IMAGE_PRESETS:
            print("  (hades distill-images; every other setting is its default)")
        return 0
    for name in every:
        kind = " (distill-images)" if name in IMAGE_PRESETS else ""
        print(f"{name:24s} {PRESET_DESCRIPTIONS.get(name, '')}{kind}")
    print("hades presets NAME shows every setting of one preset", file=sys.stderr)
    return 0


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors: no usage block, and the closest names for a mistyped choice
    (``--preset brekout``: did you mean breakout?)."""

    def error(self, message):
        import difflib
        import re

        bad = re.search(r"invalid choice: '([^']*)' \(choose from (.*)\)", message)
        if bad:
            choices = re.findall(r"'([^']*)'", bad.group(2)) or [c.strip() for c in bad.group(2).split(",")]
            close = difflib.get_close_matches(bad.group(1), choices, n=2, cutoff=0.5)
            head = message.split(":")[0]
            message = f"{head}: unknown {bad.group(1)!r}" + (
                f"; did you mean {' or '.join(close)}?" if close else f" (choose from {', '.join(choices)})"
            )
        self.exit(2, f"hades: error: {self.prog.removeprefix('hades ')}: {message} (see {self.prog} --help)\n")


def build_parser(preset: str | None = None) -> argparse.ArgumentParser:
    """The command line; with ``preset``, the run commands' --help shows that preset's values."""
    from hades import __version__
    from hades.presets import make_config, make_image_config

    rl_defaults, image_defaults, shown = DistillConfig(), ImageDistillConfig(), ""
    try:
        if preset in PRESETS:
            rl_defaults, shown = make_config(preset), preset
        elif preset in IMAGE_PRESETS:
            image_defaults, shown = make_image_config(preset), preset
    except HadesError:
        pass

    p = _Parser(prog="hades", description="Behaviour distillation with evolution strategies (HaDES).")
    p.add_argument("--version", action="version", version=f"hades {__version__}")
    sub = p.add_subparsers(dest="command", required=True)
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
            "--preset", choices=list(presets), help="named config (see `hades presets`); options override it"
        )
        c.add_argument(
            "--config",
            metavar="FILE",
            help="start from a saved run config (a run directory's config.json); options given override it",
        )
        c.add_argument("--out", help="run directory (default: runs/<name>_seed<seed>_<time>)")
        c.add_argument("--resume", metavar="DIR", help="continue the interrupted run in DIR")
        c.add_argument("--quiet", action="store_true", help="no progress bar")
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
        _add_options(c, defaults, skip=BASELINE_IGNORES if name == "baseline" else ())
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
    sw.add_argument("--preset", choices=list(PRESETS), help="named config (see `hades presets`)")
    sw.add_argument(
        "--out", help="sweep directory (default: runs/<env>_size-sweep_seed<seed>; with --seeds runs/<env>_size-sweep)"
    )
    sw.add_argument("--quiet", action="store_true", help="no progress bars")
    _add_track(sw)
    _add_options(sw, DistillConfig(), skip=("dataset_size",))
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
    tn = sub.add_parser(
        "tune",
        help="tune a preset's settings per method with optuna (the same trials and budget for each)",
        description="One optuna study per method (hades-f, hades-r, direct-es) on the preset's environment: "
        "TPE proposes settings from each method's declared space (HaDES: sigma, BC steps, BC lr, dataset "
        "size, the ES's temperature or lr; direct ES: sigma, the ES knob, width), each trial is an ordinary "
        "run with the tuning seeds and the preset's outer budget, scored by its final evaluation (HaDES-F: "
        "own init). Trials, the best setting and each parameter's importance go to OUT/tuning.json, .md and "
        ".png; OUT/study.db is optuna's storage: run the command again to continue, or from several "
        "processes at once to share the study.",
    )
    tn.add_argument("--preset", choices=list(PRESETS), help="the preset whose settings are tuned (see `hades presets`)")
    tn.add_argument("--variants", default="hades-f,hades-r,direct-es", help="methods to tune (default: all three)")
    tn.add_argument("--trials", type=int, default=20, help="finished trials per method (default: 20)")
    tn.add_argument(
        "--seeds", default="100", help="comma-separated tuning seeds, kept apart from reported ones (default: 100)"
    )
    tn.add_argument("--out", help="study directory (default: runs/tune-<preset>)")
    tn.add_argument("--quiet", action="store_true", help="no progress bars")
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
    t = sub.add_parser(
        "train",
        help="train fresh policies on a dataset artifact and evaluate them",
        description="Train policies by BC on DATASET and print a JSON result. Policy and BC "
        "options default to the settings the dataset was evolved with.",
    )
    t.add_argument("dataset", help="path to a dataset.safetensors, or zoo:NAME (see `hades zoo`)")
    _add_retrain_options(t, policies=5, episodes=10)
    t.add_argument("--env", help="evaluate in this environment (default: the dataset's)")
    t.add_argument("--backend", choices=BACKENDS, help="Brax physics pipeline (default: the dataset's run's)")
    t.add_argument(
        "--preset",
        choices=list(PRESETS),
        help="take the policy and BC settings of this preset (e.g. paper-brax) instead of the run's",
    )
    t.add_argument(
        "--own-init",
        action="store_true",
        help="train every policy from the run's saved initialisation (HaDES-F datasets: reads "
        "init.safetensors beside the dataset); the result is labelled init=own",
    )
    t.add_argument(
        "--actions",
        choices=ACTION_MODES,
        help="sample from the policies or act greedily (default: the dataset's run's setting)",
    )
    t.add_argument("--quiet", action="store_true", help="no progress bar")
    _add_options(t, PolicyConfig(), default_text="the dataset's run's setting")
    _add_options(t, BCConfig(), default_text="the dataset's run's setting")
    tr = sub.add_parser(
        "transfer",
        help="train many fresh policies per width (activation, depth), learning rate and epochs on datasets",
        description="Transfer sweep (paper Fig. 4): for every width (x activation x depth), train policies "
        "over a grid (or --sample random draws) of BC learning rates and epochs, --policies each, in one "
        "compiled call per architecture; write transfer.json, transfer.csv and transfer.png "
        "into --out. Several datasets are compared side by side.",
    )
    tr.add_argument(
        "datasets", nargs="+", help="dataset.safetensors files or zoo:NAME (e.g. a HaDES-F and a HaDES-R one)"
    )
    tr.add_argument("--labels", help="comma-separated names for the datasets (default: their folder names)")
    tr.add_argument(
        "--widths",
        default="32,64,128,256,512,1024",
        help="policy widths (comma-separated) (default: 32,64,128,256,512,1024)",
    )
    tr.add_argument(
        "--lrs",
        default="1e-4,3e-4,1e-3,3e-3,1e-2,3e-2,1e-1",
        help="BC learning rates (default: 1e-4,3e-4,1e-3,3e-3,1e-2,3e-2,1e-1)",
    )
    tr.add_argument("--epochs", default="100,200,300,400,500", help="BC steps (epochs) (default: 100,200,300,400,500)")
    tr.add_argument(
        "--activations",
        help=f"hidden activations, comma-separated from {', '.join(ACTIVATIONS)} (default: the dataset's run's)",
    )
    tr.add_argument("--depths", help="numbers of hidden layers, comma-separated (default: the dataset's run's)")
    tr.add_argument(
        "--sample",
        type=int,
        default=0,
        help="instead of the grid, this many random (log-uniform lr, uniform epochs) draws per width "
        "(default: 0, the grid)",
    )
    _add_retrain_options(tr, policies=2, episodes=5)  # policies per (learning rate, epochs) pair
    tr.add_argument("-o", "--out", default="transfer", help="output directory (default: transfer)")
    tr.add_argument("--quiet", action="store_true", help="no progress bar or per-architecture lines")
    mg = sub.add_parser(
        "merge",
        help="merge two tasks' datasets into one zero-padded multi-task dataset",
        description="Build the zero-padded union of datasets A and B (states and actions side by "
        "side, see hades.multitask); with --evaluate, train agents on A, on B and on the "
        "merge and report each environment's normalised return (writes MERGED's .json "
        "and .png beside it).",
    )
    mg.add_argument("a", help="first dataset.safetensors (or zoo:NAME)")
    mg.add_argument("b", help="second dataset.safetensors (or zoo:NAME)")
    mg.add_argument("-o", "--output", required=True, help="merged dataset file to write")
    mg.add_argument("--evaluate", action="store_true", help="train and score single- and multi-task agents")
    _add_retrain_options(mg, policies=5, episodes=10)
    mg.add_argument("--quiet", action="store_true", help="no progress bar")
    _add_options(mg, PolicyConfig(), default_text="the first dataset's run's setting")
    _add_options(mg, BCConfig(), default_text="the first dataset's run's setting")
    rd = sub.add_parser(
        "render",
        help="train a policy on a dataset and record an episode (gif, mp4, html)",
        description="Train one policy by BC on DATASET (the run's own settings) and draw one "
        "episode with matplotlib, offline: .gif, .mp4 (needs ffmpeg) or a "
        "self-contained .html.",
    )
    rd.add_argument("dataset", help="path to a dataset.safetensors, or zoo:NAME")
    rd.add_argument("-o", "--output", required=True, help="out.gif, out.mp4 or out.html")
    rd.add_argument("--env", help="environment (default: the dataset's)")
    rd.add_argument("--backend", choices=BACKENDS, help="Brax physics pipeline (default: the dataset's run's)")
    rd.add_argument(
        "--own-init",
        action="store_true",
        help="train from the run's saved initialisation (HaDES-F; init.safetensors beside the dataset)",
    )
    rd.add_argument("--actions", choices=ACTION_MODES, help="sample or greedy (default: the dataset's run's setting)")
    rd.add_argument("--seed", type=int, default=0, help="random seed (policy init and episode) (default: 0)")
    rd.add_argument("--eval-steps", type=int, default=0, help="step cap (0: the episode limit) (default: 0)")
    rd.add_argument("--fps", type=int, default=30, help="frames per second (default: 30)")
    rd.add_argument(
        "--max-frames",
        type=int,
        default=300,
        help="draw at most this many frames (steps are skipped evenly; default: 300)",
    )
    sh = sub.add_parser(
        "show",
        help="draw a dataset (and print it, when small) so it can be read",
        description="Draw a dataset artifact: a feature heatmap with action labels (vector "
        "states, named features where known), state channels as small images "
        "(MinAtar), or the image grid (image datasets).",
    )
    sh.add_argument("dataset", help="path to a dataset.safetensors, or zoo:NAME")
    sh.add_argument("-o", "--output", help="PNG to write (default: next to the dataset)")
    pl = sub.add_parser(
        "plot",
        help="overlay the learning curves of several runs",
        description="Learning curves, one panel per environment; runs with the same environment "
        "and variant are grouped as seeds (mean line, 95% confidence band), with the random "
        "policy's return dotted.",
    )
    pl.add_argument("runs", nargs="+", help="run directories")
    pl.add_argument("-o", "--output", help="PNG to write (default: runs.png in the runs' common directory)")
    pl.add_argument(
        "--x",
        choices=("generation", "wall_seconds", "env_steps"),
        default="generation",
        help="x axis (default: generation)",
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
    return p


def _close_bars() -> None:
    """End any progress bar's line, so the error that follows starts a line of its own."""
    try:
        from tqdm import tqdm
    except ImportError:
        return
    for bar in list(getattr(tqdm, "_instances", ())):
        bar.close()


def _one_line_warnings() -> None:
    """hades' own warnings as one line each (``hades: warning: ...``), the rest as Python shows them."""
    show = warnings.showwarning

    def one_line(message, category, filename, lineno, file=None, line=None):
        if issubclass(category, HadesWarning):
            print(f"hades: warning: {message}", file=sys.stderr)
        else:
            show(message, category, filename, lineno, file, line)

    warnings.showwarning = one_line


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    wanted = next((argv[i + 1] for i, a in enumerate(argv[:-1]) if a == "--preset"), None)
    wanted = wanted or next((a.split("=", 1)[1] for a in argv if a.startswith("--preset=")), None)
    help_asked = any(a in ("-h", "--help") for a in argv)
    args = build_parser(wanted if help_asked else None).parse_args(argv)
    from hades.devices import use_host_cores

    use_host_cores()  # before JAX starts: split populations over the CPU cores
    commands = {
        "distill": _cmd_distill,
        "baseline": lambda a: _cmd_distill(a, {"variant": "direct-es"}),
        "distill-images": _cmd_distill_images,
        "sweep-size": _cmd_sweep_size,
        "reproduce": _cmd_reproduce,
        "tune": _cmd_tune,
        "data": _cmd_data,
        "train": _cmd_train,
        "transfer": _cmd_transfer,
        "merge": _cmd_merge,
        "render": _cmd_render,
        "show": _cmd_show,
        "plot": _cmd_plot,
        "table": _cmd_table,
        "envs": _cmd_envs,
        "zoo": _cmd_zoo,
        "presets": _cmd_presets,
    }
    signal.signal(signal.SIGTERM, _terminate)  # schedulers stop jobs with SIGTERM: save, then exit 143
    _one_line_warnings()
    try:
        given_env = getattr(args, "env", None)
        if isinstance(given_env, str) and ":" in given_env:  # the user's own word: this code may run
            from hades.envs import trust

            trust(given_env)
        return commands[args.command](args)
    except HadesError as e:
        _close_bars()
        print(f"hades: error: {e}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # the reader went away (`hades ... | head`): stop quietly
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except OSError as e:  # a full disk, a read-only or missing directory, no permission: one line
        _close_bars()
        where = f"{e.filename}: " if e.filename else ""
        print(f"hades: error: {where}{e.strerror or e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as e:
        from hades.runs import Interrupted

        code = 128 + _received.get("signal", signal.SIGINT)
        if isinstance(e, Interrupted) and args.command in ("reproduce", "sweep-size"):
            print(f"hades: interrupted; {e} (run the same command again to continue)", file=sys.stderr)
        elif isinstance(e, Interrupted):
            print(f"hades: interrupted; {e} (continue with --resume {e.out})", file=sys.stderr)
        else:
            print("hades: interrupted before anything was saved", file=sys.stderr)
        return code


_received: dict = {}


def _terminate(signum, frame):
    _received["signal"] = signum
    raise KeyboardInterrupt


if __name__ == "__main__":
    sys.exit(main())
