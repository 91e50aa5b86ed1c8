"""Commands on datasets: train, transfer, merge, render, show."""

from __future__ import annotations

import dataclasses
import json
import sys
import time
from pathlib import Path

import numpy as np

from hades.cli.options import (
    _add_options,
    _add_retrain_options,
    _check_output,
    _floats,
    _given,
    _resolved,
    _retrain,
    _rounded,
    _say,
    _zoo_name,
)
from hades.cli.progress import _Bars, _Stages
from hades.config import (
    ACTION_MODES,
    ACTIVATIONS,
    BACKENDS,
    BCConfig,
    PolicyConfig,
    replace_flat,
)
from hades.errors import HadesError
from hades.presets import PRESETS, make_config


def preset_inner_loop(base, preset: str, env: str, variant: str):
    """``base`` with a preset's policy and BC settings (e.g. paper-brax's), resolved for the
    dataset's environment and variant (a preset may give HaDES-R its own inner loop)."""
    cfg = make_config(preset, env=env, variant=variant)
    return dataclasses.replace(base, policy=cfg.policy, bc=cfg.bc)


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
    if args.preset:
        base = preset_inner_loop(base, args.preset, args.env or ds.env, ds.variant)
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
        else [p if _zoo_name(p) else (_resolved(p).parent.name or Path(p).stem) for p in args.datasets]
    )
    if len(labels) != len(args.datasets):
        raise HadesError(f"--labels names {len(labels)} datasets, {len(args.datasets)} given")
    loaded = [load_dataset(path) for path in args.datasets]  # every artifact read before any progress
    for path, ds in zip(args.datasets, loaded):
        if ds.variant in ("supervised", "multitask"):
            raise HadesError(f"{path} is a {ds.variant} dataset; transfer sweeps retrain single-task RL policies")
    out = Path(args.out)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise HadesError(f"cannot write to {out}: {e.strerror or e}") from None
    results, first_env = {}, None
    archs = len(widths) * len(depths or [0]) * len(activations or [0])
    stages = _Stages(archs * len(args.datasets), args.quiet, unit="architecture")
    for label, ds in zip(labels, loaded):
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


def add_parsers(sub, rl_defaults, image_defaults, shown) -> None:
    """This module's commands on the ``hades`` parser (defaults: a preset's, for --help)."""
    t = sub.add_parser(
        "train",
        help="train fresh policies on a dataset artifact and evaluate them",
        description="Train policies by BC on DATASET and print a JSON result. Policy and BC "
        "options default to the settings the dataset was evolved with.",
    )
    t.add_argument("dataset", help="a dataset.safetensors, the run directory holding it, or zoo:NAME (see `hades zoo`)")
    _add_retrain_options(t, policies=5, episodes=10)
    t.add_argument("--env", help="evaluate in this environment (default: the dataset's)")
    t.add_argument("--backend", choices=BACKENDS, help="Brax physics pipeline (default: the dataset's run's)")
    t.add_argument(
        "--preset",
        choices=list(PRESETS),
        metavar="NAME",
        help="take the policy and BC settings of this preset (e.g. paper-brax; see `hades presets`) "
        "for the dataset's variant, instead of the run's",
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
        "datasets",
        nargs="+",
        help="dataset.safetensors files (or run directories) or zoo:NAME (e.g. a HaDES-F and a HaDES-R one)",
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
    mg.add_argument("a", help="first dataset.safetensors (or its run directory, or zoo:NAME)")
    mg.add_argument("b", help="second dataset.safetensors (or its run directory, or zoo:NAME)")
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
    rd.add_argument("dataset", help="a dataset.safetensors, the run directory holding it, or zoo:NAME")
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
    sh.add_argument("dataset", help="a dataset.safetensors, the run directory holding it, or zoo:NAME")
    sh.add_argument("-o", "--output", help="PNG to write (default: next to the dataset)")


COMMANDS = {
    "train": _cmd_train,
    "transfer": _cmd_transfer,
    "merge": _cmd_merge,
    "render": _cmd_render,
    "show": _cmd_show,
}
