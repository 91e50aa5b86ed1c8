"""Add (or replace) a zoo entry from finished runs: ``python tools/zoo_add.py NAME RUN [RUN ...]``.

RL: the run with the highest final evaluated return is chosen (its evaluation used keys never
used for fitness); because that choice looks at those figures, the card's figures are measured
again afterwards with an evaluation seed no run used (1000), by the ``hades train zoo:NAME ...``
commands the card records, so a user running them gets the card's numbers. Images: the first
run is taken (no choice, since the only figure is the test set's accuracy, which must not be
selected on), and the card reports the test accuracy that run measured once.
An RL run whose fresh policies are not shown to beat the random policy (their 95% interval not
wholly above the random policy's) is refused, since every zoo dataset must: nothing is added, and
an entry it was to replace stays as it was. So is one whose fresh policies return less than the
entry it would replace (both measured by the card's command), unless ``--replace`` says to (the
current entry was made by older code or presets and is to go); image entries are never compared,
since their only figure is test accuracy.
Writes ``src/hades/zoo_data/<NAME with / as ->/{dataset,init}.safetensors, card.json``.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from hades.artifacts import INIT_FILE, atomic_write, load_dataset, save_dataset  # noqa: E402
from hades.report import pm  # noqa: E402
from hades.rundir import read_run  # noqa: E402
from hades.zoo import ZOO_DIR, slug  # noqa: E402

FRESH = ["--policies", "5", "--episodes", "10", "--seed", "1000"]
OWN = ["--own-init", "--policies", "1", "--episodes", "20", "--seed", "1000"]


def hades_train(name: str, extra: list[str]) -> dict:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    cmd = [sys.executable, "-m", "hades.cli", "train", f"zoo:{name}", *extra]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if proc.returncode:
        raise SystemExit(proc.stderr)
    return json.loads(proc.stdout)


def measure(args, out, ds, summaries, run_dir, summary, images, rule, current) -> dict:
    """Write the entry's files into ``out`` and return its card (RL figures measured afresh);
    ``current`` is the card of the entry it replaces (None for a new entry)."""
    save_dataset(out / "dataset.safetensors", ds)
    if (run_dir / INIT_FILE).is_file() and ds.variant == "hades-f":
        (out / INIT_FILE).write_bytes((run_dir / INIT_FILE).read_bytes())
    cfg = summary["config"]
    card = {
        "name": args.name,
        "env": ds.env if not images else cfg.get("dataset"),
        "variant": ds.variant,
        "dataset_size": ds.size,
        "made_by": args.command
        or summary.get("provenance", {}).get("command")
        or f"hades distill with the config in the dataset (seed {cfg.get('seed')})",
        "budget": f"population {cfg['es']['population']} x {summary['generations']} generations",
        "wall_seconds": summary.get("wall_seconds"),
        "hades_version": summary.get("hades_version"),
        "date": datetime.date.today().isoformat(),
        "source_runs": ["/".join(r.parts[-2:]) for r, _ in summaries],
        "chosen": "/".join(run_dir.parts[-2:]),
        "chosen_seed": cfg.get("seed"),
        "rule": rule,
    }
    if images:
        card |= {
            "accuracy_mean": summary["final_accuracy_mean"],
            "accuracy_std": summary.get("final_accuracy_std"),
            "class_mean_accuracy": summary.get("class_mean_accuracy_mean"),
            "figure": "test-set accuracy of fresh networks trained on the images, measured once by the run",
        }
    else:
        fresh = hades_train(args.name, FRESH)
        kept = (current or {}).get("fresh", {}).get("return_mean")
        if kept is not None and fresh["return_mean"] < kept and not args.replace:
            raise SystemExit(
                f"zoo_add: {args.name} not added: its fresh policies return "
                f"{pm(fresh['return_mean'], fresh.get('return_ci95') or 0.0, 4)}, below the current entry's "
                f"{pm(kept, current['fresh'].get('return_ci95') or 0.0, 4)} "
                "(same command; --replace to replace it anyway)"
            )
        # the zoo ships datasets shown to work: the fresh policies' 95% interval lies above the
        # random policy's (an entry whose intervals overlap random's is not shown to beat it)
        fresh_low = fresh["return_mean"] - (fresh.get("return_ci95") or 0.0)
        random_high = summary["random_return_mean"] + (summary.get("random_return_ci95") or 0.0)
        if fresh_low <= random_high:
            raise SystemExit(
                f"zoo_add: {args.name} not added: its fresh policies return "
                f"{pm(fresh['return_mean'], fresh.get('return_ci95') or 0.0, 4)}, not clearly above the random "
                f"policy's {pm(summary['random_return_mean'], summary.get('random_return_ci95') or 0.0, 4)}"
            )
        keep = ("return_mean", "return_ci95", "episodes", "distinct_episodes", "actions")
        card |= {
            "random_return_mean": summary["random_return_mean"],
            "random_return_ci95": summary.get("random_return_ci95"),
            "fresh": {k: fresh.get(k) for k in keep} | {"command": f"hades train zoo:{args.name} " + " ".join(FRESH)},
        }
        if ds.variant == "hades-f" and (out / INIT_FILE).is_file():
            own = hades_train(args.name, OWN)
            card["own_init"] = {k: own.get(k) for k in keep} | {
                "command": f"hades train zoo:{args.name} " + " ".join(OWN)
            }
    return card


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("name", help="zoo name: the environment id (CartPole-v1, brax/hopper) or mnist / fashion_mnist")
    p.add_argument("runs", nargs="+", help="finished run directories of that environment")
    p.add_argument("--command", help="the command that made the runs (default: the runs' recorded command line)")
    p.add_argument(
        "--replace",
        action="store_true",
        help="replace the current entry even when the new one's fresh policies return less (an RL entry is "
        "otherwise kept then)",
    )
    args = p.parse_args()
    summaries = [(Path(r), read_run(r, finished=True).summary) for r in args.runs]
    images = summaries[0][1].get("variant") == "supervised"
    if images:
        chosen, rule = summaries[0], "the first run given (image datasets are never chosen on test accuracy)"
    else:
        chosen = max(summaries, key=lambda rs: rs[1]["final_return_mean"])
        rule = (  # the runs given may be seeds of one method or several methods: source_runs names them
            "the only run given; figures re-measured after"
            if len(summaries) == 1
            else f"the highest final evaluated return of the {len(summaries)} runs given; figures re-measured after"
        )
    run_dir, summary = chosen
    ds = load_dataset(run_dir / "dataset.safetensors")
    if not images and not ds.env_spec:  # datasets made before hades 0.4 lack it: add it
        from hades.envs import make_env

        ds = dataclasses.replace(ds, env_spec=make_env(ds.env, summary["config"].get("backend", "positional")).spec())
    out = ZOO_DIR / slug(args.name)
    current = json.loads((out / "card.json").read_text()) if (out / "card.json").is_file() else None
    previous = out.with_name(out.name + ".previous")  # an entry being replaced, kept until the new one is measured
    if out.is_dir():
        shutil.rmtree(previous, ignore_errors=True)
        out.rename(previous)
    out.mkdir(parents=True)
    try:
        card = measure(args, out, ds, summaries, run_dir, summary, images, rule, current)
    except BaseException:  # refused or failed: the entry it replaces comes back
        shutil.rmtree(out)
        if previous.is_dir():
            previous.rename(out)
        raise
    atomic_write(out / "card.json", json.dumps(card, indent=1))
    shutil.rmtree(previous, ignore_errors=True)
    print(json.dumps(card, indent=1))


if __name__ == "__main__":
    main()
