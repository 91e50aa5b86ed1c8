"""Shared option helpers of the command line: options generated from the config dataclasses
(a knob is written once, in config.py), --help sections, the retraining options, list parsing,
output checks, and the argparse subclass whose errors are one line with a suggestion."""

from __future__ import annotations

import argparse
import dataclasses
import sys
import warnings
from pathlib import Path

import numpy as np

from hades.config import (
    RetrainConfig,
    fields_of,
    flatten,
)
from hades.errors import HadesError, HadesWarning, did_you_mean

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


def _seed_list(text: str, name: str = "seeds") -> list[int]:
    """``--seeds``: the run seeds a grid, sweep or study runs, comma-separated, distinct, >= 0
    (the one meaning of --seeds; retraining commands count fresh policies with --policies);
    ``name``: the option the error names (``holdout-seeds``)."""
    seeds = _floats(text, name, int)
    if len(set(seeds)) != len(seeds) or min(seeds) < 0:
        raise HadesError(f"--{name} takes distinct comma-separated seeds >= 0 (got {text!r})")
    return seeds


def _add_launcher(p) -> None:
    """Where the command's independent units (grid cells, trials) run: --launcher and its options."""
    g = p.add_argument_group("launcher (where the cells run; docs/guide.md, 'Grids on a cluster')")
    g.add_argument(
        "--launcher",
        choices=("local", "ray", "slurm"),
        default="local",
        help="local: here, one after another (default), or --jobs at a time; ray: tasks on a Ray cluster; "
        "slurm: a SLURM job array through submitit (both: pip install 'hades[cluster]')",
    )
    g.add_argument(
        "--jobs",
        type=int,
        default=1,
        metavar="N",
        help="local: run N units at a time, each in a worker process pinned to its own --task-cpus cores "
        "(default: 1, in this process; on an accelerator the jobs share it; on a CPU each run has fewer "
        "devices than in this process, so a run with float physics can round differently from the plain "
        "loop's: docs/guide.md)",
    )
    g.add_argument(
        "--address", help="ray: the cluster's address (e.g. auto, ray://head:10001; default: start one here)"
    )
    g.add_argument(
        "--task-cpus",
        type=float,
        default=None,
        help="CPUs per task (default: 1; local --jobs: the cores divided among the jobs; one host device per CPU)",
    )
    g.add_argument("--task-gpus", type=float, default=0.0, help="ray, slurm: GPUs per task (default: 0)")
    g.add_argument("--slurm-folder", help="slurm: submitit's log folder (default: OUT/submitit)")
    g.add_argument("--slurm-partition", help="slurm: the partition to submit to")
    g.add_argument("--slurm-time", type=int, default=24 * 60, help="slurm: minutes per task (default: 1440)")
    g.add_argument("--slurm-local", action="store_true", help=argparse.SUPPRESS)  # submitit's local executor (tests)


def _launcher(args, out: Path):
    """The Launcher the flags describe; --address and the --slurm-* flags only with their launcher."""
    from hades.launch import Launcher

    kind = args.launcher
    if args.address and kind != "ray":
        raise HadesError("--address is for --launcher ray")
    slurm_given = args.slurm_folder or args.slurm_partition or args.slurm_local
    if slurm_given and kind != "slurm":
        raise HadesError("--slurm-* options are for --launcher slurm")
    slurm = {"timeout_min": args.slurm_time}
    if args.slurm_partition:
        slurm["partition"] = args.slurm_partition
    if args.slurm_local:
        slurm["cluster"] = "local"
    return Launcher(
        kind,
        address=args.address,
        cpus=args.task_cpus,
        gpus=args.task_gpus,
        folder=args.slurm_folder or str(out / "submitit"),
        slurm=slurm,
        jobs=args.jobs,
    )


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
    """A dataset argument as a file (``hades.artifacts.dataset_file``: zoo:NAME, a run directory)."""
    from hades.artifacts import dataset_file

    return dataset_file(path)


def _zoo_name(path) -> str | None:
    """NAME of a ``zoo:NAME`` dataset argument, else None."""
    from hades.zoo import PREFIX

    return str(path)[len(PREFIX) :] if str(path).startswith(PREFIX) else None


def _rounded(obj, digits: int = 4):
    """Floats rounded to ``digits`` significant digits for the terminal (files keep full precision)."""
    if isinstance(obj, float):
        return float(f"{obj:.{digits}g}") if np.isfinite(obj) else obj
    if isinstance(obj, dict):
        return {k: _rounded(v, digits) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_rounded(v, digits) for v in obj]
    return obj


def _say(text: str) -> None:
    """A progress line on stderr (stdout carries the JSON result)."""
    print(f"hades: {text}", file=sys.stderr, flush=True)


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors: no usage block, and the closest names for a mistyped choice
    (``--preset brekout``: did you mean breakout?)."""

    def error(self, message):
        import re

        bad = re.search(r"invalid choice: '([^']*)' \(choose from (.*)\)", message)
        if bad:
            choices = re.findall(r"'([^']*)'", bad.group(2)) or [c.strip() for c in bad.group(2).split(",")]
            head = message.split(":")[0]
            hint = did_you_mean(bad.group(1), choices) or f" (choose from {', '.join(choices)})"
            message = f"{head}: unknown {bad.group(1)!r}{hint}"
        command = self.prog.removeprefix("hades").strip()
        self.exit(2, f"hades: error: {command + ': ' if command else ''}{message} (see {self.prog} --help)\n")

    def parse_args(self, args=None, namespace=None):
        # options a subcommand does not take surface at the top level; name the subcommand
        parsed, extras = self.parse_known_args(args, namespace)
        if extras:
            command = getattr(parsed, "command", None) if self.prog == "hades" else None
            prog = f"hades {command}" if command else self.prog
            _Parser(prog=prog, add_help=False).error(f"unrecognized arguments: {' '.join(extras)}")
        return parsed
