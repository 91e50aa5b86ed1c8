"""`hades tune`: optuna studies per method, the same trials and budget for each, resumable."""

import json
import shlex
from pathlib import Path

import pytest
from helpers import assert_one_line_error, cli

from hades.cli import build_parser
from hades.cli.options import _given
from hades.config import DIRECT_ES_IGNORES, DistillConfig, flatten
from hades.errors import HadesError, HadesWarning
from hades.presets import make_config

pytest.importorskip("optuna")

TINY = "--generations 2 --population 8 --depth 1 --eval-envs 2 --eval-steps 30 --eval-episodes 2 --eval-policies 2"


def tune(out, trials, *extra):
    return cli("tune", "--preset", "cartpole", "--variants", "hades-f,direct-es", "--trials", trials,
               "--out", out, *extra, *TINY.split())  # fmt: skip


def test_tune_runs_resumes_and_reports(tmp_path):
    out = tmp_path / "tune"
    first = tune(out, 1, "--quiet")
    assert first.returncode == 0, first.stderr
    record = json.loads((out / "tuning.json").read_text())
    studies = record["studies"]
    assert set(studies) == {"CartPole-v1_hades-f", "CartPole-v1_direct-es"}
    for s in studies.values():
        assert len(s["trials"]) == 1 and all(t["state"] == "COMPLETE" for t in s["trials"])
        assert s["best_value"] == max(t["value"] for t in s["trials"])
    assert set(studies["CartPole-v1_hades-f"]["trials"][0]["params"]) == {
        "sigma",
        "bc_steps",
        "bc_lr",
        "dataset_size",
        "es_lr",
    }
    assert set(studies["CartPole-v1_direct-es"]["trials"][0]["params"]) == {"sigma", "width", "es_lr"}
    assert studies["CartPole-v1_hades-f"]["objective"] == "final_own_init_return_mean"
    # trial 0 of a new study is the preset's own setting (Open_ES's Adam at its default 0.05)
    for method, study in (("hades-f", studies["CartPole-v1_hades-f"]), ("direct-es", studies["CartPole-v1_direct-es"])):
        cfg = flatten(make_config("cartpole", variant=method).to_dict())
        assert cfg["es_lr"] == 0 and cfg["es_optimizer"] == "auto" and cfg["strategy"] == "Open_ES"
        expected = {k: (0.05 if k == "es_lr" else cfg[k]) for k in study["trials"][0]["params"]}
        assert study["trials"][0]["params"] == expected and study["trials"][0]["preset"]
        assert study["preset_trial"] == 0 and study["preset_value"] == study["trials"][0]["value"]
    # every trial ran the same budget: the preset's with the same overrides, seed 100 (not a reported seed)
    configs = [json.loads(p.read_text()) for p in (out / "trials").rglob("config.json")]
    assert len(configs) == 2 and {(c["generations"], c["es"]["population"], c["seed"]) for c in configs} == {
        (2, 8, 100)
    }
    # run again with more trials: the finished ones are kept, one more each, with new settings
    again = tune(out, 2)  # with the trials bar: it counts the two trials the first run finished
    assert again.returncode == 0, again.stderr
    assert "4/4" in again.stderr, again.stderr[-2000:]
    record = json.loads((out / "tuning.json").read_text())
    assert [len(s["trials"]) for s in record["studies"].values()] == [2, 2]
    assert len(list((out / "trials").rglob("summary.json"))) == 4
    md = (out / "tuning.md").read_text()
    assert "| trial | state | value |" in md and "| 0 (preset) | complete |" in md and "| 1 | complete |" in md
    assert (out / "tuning.png").stat().st_size > 0
    again_trials = json.loads((out / "tuning.json").read_text())["studies"]["CartPole-v1_hades-f"]["trials"]
    assert again_trials[1]["params"] != again_trials[0]["params"] and "preset" not in again_trials[1]


def test_every_presets_setting_is_a_point_of_its_study():
    """The declared ranges stretch to hold the preset's value (the Brax presets' 400 BC steps lie
    above HaDES' declared 8-128, acrobot's 6 states are no declared choice); a strategy outside
    --strategies, or SNES' own weights (temperature 0: no point of a log range), give no preset trial."""
    from hades.tune import preset_point, space_for, startup_trials

    walker = space_for("walker2d", None, "hades-r")
    assert walker["bc_steps"].high == 400 and walker["bc_steps"].low == 8
    assert preset_point("walker2d", None, "hades-r")["bc_steps"] == 400
    assert 6 in space_for("acrobot", None, "hades-f")["dataset_size"].choices
    assert space_for("breakout", None, "hades-f")["bc_steps"].high == 128  # declared range kept where it holds
    assert preset_point("breakout", None, "direct-es") == {"sigma": 0.1, "width": 64, "es_temperature": 20.0}
    assert preset_point("breakout", None, "hades-f", strategies=("SNES", "Sep_CMA_ES"))["strategy"] == "SNES"
    assert preset_point("cartpole", None, "hades-f", strategies=("SNES", "Sep_CMA_ES")) is None
    assert preset_point("breakout", None, "hades-f", {"es_temperature": 0.0}) is None
    # TPE models the study after half its trials (optuna's default would make 10 or fewer random search)
    assert [startup_trials(n) for n in (1, 2, 8, 20, 40)] == [1, 1, 4, 10, 10]


def test_the_space_holds_no_dataset_size_the_labels_refuse():
    """The official labels give each action dataset_size // actions states: a study on Asterix (5
    actions) proposes no 4-state dataset, which the distiller would refuse (session 15's study
    lost a trial to it); Breakout (3 actions) keeps 4; the interleaved layout labels every state."""
    from hades.tune import space_for

    assert space_for("asterix", None, "hades-f")["dataset_size"].choices == (8, 16, 32, 64)
    assert space_for("breakout", None, "hades-r")["dataset_size"].choices == (4, 8, 16, 32, 64)
    assert 4 in space_for("asterix", None, "hades-f", {"label_layout": "interleaved"})["dataset_size"].choices


def test_a_study_keeps_the_dataset_sizes_it_began_with():
    """optuna refuses another set of choices for a parameter: an Asterix study begun when 4 states
    was a choice keeps it (a 4-state proposal is then refused in one line, not a crash)."""
    import optuna

    from hades.tune import kept_choices, space_for

    space = space_for("asterix", None, "hades-f")
    study = optuna.create_study()
    assert kept_choices(study, space) == space
    study.optimize(lambda t: t.suggest_categorical("dataset_size", [4, 8, 16, 32, 64]), n_trials=1)
    assert kept_choices(study, space)["dataset_size"].choices == (4, 8, 16, 32, 64)
    assert kept_choices(study, space)["sigma"] == space["sigma"]


def best_is_trial_1(study_summary):
    """``study_summary`` with trial 1 made the study's best once it finished (so a held-out check
    runs whatever the tiny trials score)."""

    def summary(optuna, study, method):
        s = study_summary(optuna, study, method)
        t1 = [t for t in s["trials"] if t["number"] == 1 and t["state"] == "COMPLETE"]
        return {**s, "best_trial": 1, "best_params": t1[0]["params"], "best_value": t1[0]["value"]} if t1 else s

    return summary


def test_holdout_check_runs_both_settings_on_held_out_seeds_and_pairs_them(tmp_path):
    """The study's best against the preset's on seeds the study did not use: both run on every
    seed, the paired difference's 95% interval decides (best only when it lies above zero)."""
    from hades.stats import ci95
    from hades.tune import holdout_check, preset_point

    small = dict(generations=2, population=8, depth=1, eval_envs=2, eval_steps=30, eval_episodes=2, eval_policies=2)
    preset = preset_point("cartpole", None, "hades-f", small)
    best = {**preset, "sigma": 0.5, "bc_steps": 20}
    h = holdout_check("cartpole", None, "hades-f", small, preset, best, (101, 102), tmp_path)
    on_disk = {
        label: [json.loads((tmp_path / label / f"seed{s}" / "summary.json").read_text()) for s in (101, 102)]
        for label in ("preset", "best")
    }
    assert [r["config"]["seed"] for r in on_disk["best"]] == [101, 102]
    assert [r["config"]["es"]["sigma"] for r in on_disk["best"]] == [0.5, 0.5]
    assert h["preset"] == [r["final_own_init_return_mean"] for r in on_disk["preset"]]
    assert h["best"] == [r["final_own_init_return_mean"] for r in on_disk["best"]]
    diff = [b - p for b, p in zip(h["best"], h["preset"])]
    assert h["difference_mean"] == pytest.approx(sum(diff) / 2)
    assert h["difference_ci95"] == pytest.approx(ci95(diff), nan_ok=True)
    assert h["verdict"] == ("best" if h["difference_mean"] - h["difference_ci95"] > 0 else "preset")
    # HaDES-F's score is the own init; the same runs' fresh inits are recorded beside it
    assert h["fresh"]["preset"] == [r["final_return_mean"] for r in on_disk["preset"]]
    assert h["fresh"]["best"] == [r["final_return_mean"] for r in on_disk["best"]]
    fresh_diff = [b - p for b, p in zip(h["fresh"]["best"], h["fresh"]["preset"])]
    assert h["fresh"]["difference_mean"] == pytest.approx(sum(fresh_diff) / 2)
    again = holdout_check("cartpole", None, "hades-f", small, preset, best, (101, 102), tmp_path)
    assert again == h  # finished runs are read back, not redone


def test_a_launcher_runs_the_held_out_check_as_units_of_its_own(tmp_path, monkeypatch):
    """With a launcher (here `--jobs 2`'s, its units run in this process by a stand-in launch),
    every held-out run is a unit of its own, and the check then reads them back: one unit per
    (setting, seed), the figures the runs on disk hold. The study's best is made trial 1 so the
    check runs whatever the tiny trials score."""
    import hades.tune as tune_module
    from hades.launch import Launcher

    launched = []

    def in_process(units, launcher, on_done=None, on_status=None):
        launched.append([u.name for u in units])
        results = [u.fn(*u.args) for u in units]
        for u, r in zip(units, results):
            (on_done or (lambda *a: None))(u, r)
        return results

    monkeypatch.setattr(tune_module, "launch", in_process)
    monkeypatch.setattr(tune_module, "study_summary", best_is_trial_1(tune_module.study_summary))
    small = dict(generations=2, population=8, depth=1, eval_envs=2, eval_steps=30, eval_episodes=2, eval_policies=2)
    record = tune_module.tune("cartpole", ["hades-f"], tmp_path, trials=2, overrides=small,
                              launcher=Launcher(jobs=2), holdout_seeds=(101, 102))  # fmt: skip
    trials, held_out = launched
    assert trials == ["CartPole-v1_hades-f trial 0", "CartPole-v1_hades-f trial 1"]
    assert held_out == [
        f"CartPole-v1_hades-f held-out {label} seed {s}" for label in ("preset", "best") for s in (101, 102)
    ]
    h = record["studies"]["CartPole-v1_hades-f"]["holdout"]
    folder = tmp_path / "holdout" / "CartPole-v1_hades-f"
    for label in ("preset", "best"):
        runs = [json.loads((folder / label / f"seed{s}" / "summary.json").read_text()) for s in (101, 102)]
        assert h[label] == [r["final_own_init_return_mean"] for r in runs]
    assert h["verdict"] in ("best", "preset") and h["seeds"] == [101, 102]


def test_holdout_is_skipped_when_the_preset_wins_its_own_study(tmp_path):
    out = tmp_path / "tune"
    proc = cli("tune", "--preset", "cartpole", "--variants", "hades-f", "--trials", "1", "--holdout-seeds", "101,102",
               "--out", out, "--quiet", *TINY.split())  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    [study] = json.loads((out / "tuning.json").read_text())["studies"].values()
    assert study["best_trial"] == study["preset_trial"] == 0
    assert study["holdout"] == {"seeds": [101, 102], "verdict": "preset"} and not (out / "holdout").exists()
    assert "Held-out seeds: not run (the preset's own setting won the study)" in (out / "tuning.md").read_text()


def test_a_refused_setting_is_one_line_and_recorded(tmp_path, monkeypatch, capsys):
    """A trial whose setting the run refuses fails in one line (no traceback), is not counted as
    finished, and the report names it refused."""
    from hades import runs
    from hades.cli import main
    from hades.errors import HadesError

    def refuse(cfg, out, **kw):
        raise HadesError("16 states leave none for 17 actions")

    monkeypatch.setattr(runs, "run", refuse)
    out = tmp_path / "tune"
    argv = ["tune", "--preset", "cartpole", "--variants", "hades-f", "--trials", "1", "--out", str(out), "--quiet"]
    assert main(argv + TINY.split()) == 2  # the study did not finish its trials: not a result
    err = capsys.readouterr().err
    assert "trial 0 refused: 16 states leave none for 17 actions" in err and "Traceback" not in err
    assert "CartPole-v1_hades-f: 1 refused trial(s), fewer than --trials 1 finished" in err
    [study] = json.loads((out / "tuning.json").read_text())["studies"].values()
    assert [(t["state"], t["refused"]) for t in study["trials"]] == [("FAIL", "16 states leave none for 17 actions")]
    report = (out / "tuning.md").read_text()
    assert "| 0 (preset) | refused |" in report and "Trial 0 refused: 16 states leave none for 17 actions" in report


@pytest.mark.parametrize(
    "args, says",
    [
        (["--sigma", "0.1"], "is tuned"),
        (["--variants", "hades-x"], "unknown method"),
        (["--trials", "0"], "--trials"),
        (["--strategies", "SNES,Sep_CMAES"], "unknown ES strategy 'Sep_CMAES'"),
        (["--strategies", "SNES", "--strategy", "SNES"], "drop --strategy"),
        (["--variants", ","], "no method"),
        (["--holdout-seeds", "100,101"], "none of them a tuning seed"),
        (["--holdout-seeds", "101"], "2 or more distinct seeds"),
        (["--holdout-seeds", "a,b"], "--holdout-seeds takes comma-separated numbers"),
        (["--holdout-seeds", "101,101"], "--holdout-seeds takes distinct"),
    ],
)
def test_tune_refuses_in_one_line(tmp_path, args, says):
    """Before any progress bar is drawn or the study directory made: stderr is the one line."""
    out = cli("tune", "--preset", "cartpole", "--out", tmp_path / "t", *args)
    assert_one_line_error(out, says)
    assert not (tmp_path / "t").exists()


def test_tune_over_strategies_runs_each_trial_with_its_strategy(tmp_path):
    """`--strategies`: the strategy is a tuned choice for every method alike; a trial runs the one
    drawn (with its own rule), and SNES' temperature is proposed only in SNES trials. Without
    --quiet each trial's run says what it is under the trials bar (a trial can take minutes)."""
    out = tmp_path / "tune"
    proc = cli("tune", "--preset", "cartpole", "--variants", "hades-f", "--trials", 2, "--strategies",
               "SNES,Sep_CMA_ES", "--out", out, *TINY.split())  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.count("hades: hades-f on CartPole-v1, population 8, 2 generations") == 2, proc.stderr
    assert "2/2" in proc.stderr and "trials" in proc.stderr
    [study] = json.loads((out / "tuning.json").read_text())["studies"].values()
    assert [t["state"] for t in study["trials"]] == ["COMPLETE", "COMPLETE"]
    for t in study["trials"]:
        assert t["params"]["strategy"] in ("SNES", "Sep_CMA_ES")
        assert ("es_temperature" in t["params"]) == (t["params"]["strategy"] == "SNES")
        assert "es_lr" not in t["params"]  # the preset's Open_ES knob is not tuned for other strategies
    ran = sorted(json.loads(p.read_text())["es"]["strategy"] for p in (out / "trials").rglob("config.json"))
    assert ran == sorted(t["params"]["strategy"] for t in study["trials"])
    # the best trial's command runs what it ran: parsed by the command line, its config is the trial's
    best = next(t for t in study["trials"] if t["number"] == study["best_trial"])
    best_ran = json.loads((Path(best["run_dir"]) / "seed100" / "config.json").read_text())
    command = study["best_command"]
    assert command.startswith("hades distill --preset cartpole --variant hades-f ") and command.endswith(" --seed S")
    assert f"--strategy {best['params']['strategy']}" in command
    args = build_parser().parse_args(shlex.split(command.replace("--seed S", "--seed 100"))[1:])
    rebuilt = make_config(args.preset, **_given(args, DistillConfig))
    assert rebuilt.to_dict() == best_ran
    assert f"Run it: `{command}`" in (out / "tuning.md").read_text()


@pytest.mark.parametrize(
    "method, params",
    [
        ("hades-f", {"sigma": 0.2, "bc_steps": 32, "bc_lr": 0.01, "dataset_size": 8, "strategy": "Sep_CMA_ES"}),
        ("direct-es", {"sigma": 0.05, "width": 128, "es_temperature": 10.0}),
    ],
)
def test_a_trials_command_runs_what_the_trial_ran(method, params):
    """tuning.md's command for a setting, parsed by the command line, is the config the trial ran
    (`run_trials`: the preset with the study's overrides, the drawn strategy's resets, the
    setting): Breakout's SNES temperature 20 and ties by position must be reset for Sep-CMA-ES."""
    from hades.es import switch_strategy
    from hades.tune import trial_command

    overrides = {"generations": 7, "bc_anneal": True}
    base = make_config("breakout", variant=method, **overrides)
    resets = switch_strategy(base.es, params["strategy"]) if "strategy" in params else {}
    ran = make_config("breakout", variant=method, seed=100, **overrides, **{**resets, **params})
    command = trial_command("breakout", None, method, overrides, params)
    assert command.startswith("hades baseline" if method == "direct-es" else "hades distill")
    args = build_parser().parse_args(shlex.split(command.replace("--seed S", "--seed 100"))[1:])
    fixed = {"variant": "direct-es"} if method == "direct-es" else {}
    rebuilt = flatten(make_config(args.preset, **_given(args, DistillConfig), **fixed).to_dict())
    unused = DIRECT_ES_IGNORES if method == "direct-es" else ()  # `hades baseline` offers no BC option
    assert {k: v for k, v in rebuilt.items() if k not in unused} == {
        k: v for k, v in flatten(ran.to_dict()).items() if k not in unused
    }


def test_the_pruner_waits_for_the_second_half_of_a_run():
    """A trial far below three finished ones is not stopped in the first half of its generations
    (early returns are noisy), and is stopped from the second half on."""
    import optuna

    from hades.tune import make_pruner

    study = optuna.create_study(direction="maximize", pruner=make_pruner(optuna, 200))
    for _ in range(3):
        trial = study.ask()
        for gen in range(10, 201, 10):
            trial.report(9.0, gen)
        study.tell(trial, 9.0)
    low = study.ask()
    stops = []
    for gen in range(10, 201, 10):
        low.report(0.5, gen)
        stops.append((gen, low.should_prune()))
    assert [g for g, stop in stops if stop] == list(range(100, 201, 10))  # from half the run on


def test_a_busy_study_database_neither_stops_the_heartbeat_nor_fails_a_write(tmp_path, monkeypatch):
    """Trials of one study share study.db. optuna's heartbeat thread ended at its first "database
    is locked", and another process then failed the live trial as stale (CI: "Cannot tell a FAIL
    trial"): a busy beat is skipped and the next one lands; a write waits out a lock held longer
    than SQLite's default 5 s."""
    import sqlite3
    import threading
    import time

    import optuna

    from hades import tune as tune_module

    out = tmp_path / "tune"
    out.mkdir()
    storage = tune_module._storage(optuna, out)
    study = optuna.create_study(study_name="s", storage=storage, direction="maximize")
    trial = study.ask()
    monkeypatch.setattr(tune_module, "SQLITE_BUSY_TIMEOUT", 0.2)
    impatient = tune_module._storage(optuna, out)
    lock = sqlite3.connect(out / "study.db", isolation_level=None, check_same_thread=False)
    lock.execute("BEGIN EXCLUSIVE")
    impatient.record_heartbeat(trial._trial_id)  # locked out: skipped, no exception
    threading.Timer(5.5, lock.rollback).start()
    start = time.monotonic()
    study.set_user_attr("written", True)  # the default storage waits for the lock
    assert time.monotonic() - start > 5 and study.user_attrs["written"]
    beats = "select count(*) from trial_heartbeats"
    with sqlite3.connect(out / "study.db") as db:
        assert db.execute(beats).fetchone() == (0,)  # the locked-out beat was not recorded
    impatient.record_heartbeat(trial._trial_id)  # the next beat lands
    with sqlite3.connect(out / "study.db") as db:
        assert db.execute(beats).fetchone() == (1,)


@pytest.mark.parametrize("then", ["returns", "reports"])
def test_a_trial_failed_as_stale_while_it_ran_is_run_again(tmp_path, monkeypatch, then):
    """Another process's heartbeat check fails a live trial (its beats missed) and queues its
    setting again. optuna then ends the running process's call: "Cannot tell a FAIL trial" when
    the trial next reports (CI's failure), an assertion when it returns. The process runs the
    queued setting instead, so the study still gets its finished trial."""
    import optuna

    from hades import tune as tune_module

    out = tmp_path / "tune"
    out.mkdir()
    storage = tune_module._storage(optuna, out)
    name = tune_module.study_name("CartPole-v1", "hades-f")
    optuna.create_study(study_name=name, storage=storage, direction="maximize")
    calls = []

    def score(preset, env, method, overrides, settings, seed, folder, reporter=None):
        calls.append(settings)
        trial = reporter.trial
        if len(calls) == 1:  # what fail_stale_trials does in another process
            storage.set_trial_state_values(trial._trial_id, optuna.trial.TrialState.FAIL)
            storage.get_heartbeat_stale_trial_callback()(trial.study, storage.get_trial(trial._trial_id))
            if then == "reports":
                trial.report(1.0, 1)
        return 7.0

    monkeypatch.setattr(tune_module, "score_setting", score)
    job = tune_module._Study("cartpole", None, "hades-f", str(out), (100,), {}, 1)
    with pytest.warns(HadesWarning, match="trial 0 was failed by another process's heartbeat check"):
        ran = tune_module.run_trials(job, 0, 1)
    trials = optuna.load_study(study_name=name, storage=storage).get_trials()
    assert [t.state.name for t in trials] == ["FAIL", "COMPLETE"] and trials[1].params == trials[0].params
    assert ran == [(name, 1, 7.0, "COMPLETE")] and calls[0] == calls[1]


def test_a_trial_that_fails_on_its_own_still_ends_the_study(tmp_path, monkeypatch):
    """Only a trial another process failed and queued again is run again: an error of the trial's
    own is raised, not retried."""
    import optuna

    from hades import tune as tune_module

    out = tmp_path / "tune"
    out.mkdir()
    name = tune_module.study_name("CartPole-v1", "hades-f")
    optuna.create_study(study_name=name, storage=tune_module._storage(optuna, out), direction="maximize")

    def broken(*args, **kwargs):
        raise RuntimeError("broken")

    monkeypatch.setattr(tune_module, "score_setting", broken)
    with pytest.raises(RuntimeError, match="broken"):
        tune_module.run_trials(tune_module._Study("cartpole", None, "hades-f", str(out), (100,), {}, 1), 0, 1)


@pytest.mark.slow  # about a minute: two starts of a study
def test_a_stopped_study_says_run_it_again_and_continues(tmp_path):
    """SIGTERM mid-trial: exit 143, one line of advice: the same command (not --resume on the
    trial's run directory; no traceback from optuna's log of the stopped trial), and the same
    command then retries that trial's setting (the preset's) from its run's checkpoint: no
    generation run twice, none lost."""
    import signal
    import subprocess
    import sys
    import time

    out = tmp_path / "tune"
    argv = [sys.executable, "-m", "hades.cli", "tune", "--preset", "cartpole", "--variants", "hades-f", "--trials",
            "1", "--out", str(out), "--quiet", *TINY.replace("--generations 2", "--generations 400").split(),
            "--checkpoint-every", "1"]  # fmt: skip
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    end = time.time() + 300
    while time.time() < end and not any(
        len(m.read_text().splitlines()) >= 3 for m in out.glob("trials/*/*/seed100/metrics.jsonl")
    ):
        assert proc.poll() is None, proc.stderr.read()[-2000:]
        time.sleep(0.1)
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=120)
    stderr = proc.stderr.read()
    assert proc.returncode == 143, stderr[-2000:]
    assert "run the same command again to continue" in stderr and "--resume" not in stderr
    assert "Traceback" not in stderr and "failed with" not in stderr  # a stop is not a failure to report
    report = subprocess.run([*argv, "--report"], capture_output=True, text=True, timeout=300)
    assert report.returncode == 0, report.stderr[-2000:]
    assert "| 0 (preset) | stopped | — |" in (out / "tuning.md").read_text()
    again = subprocess.run(argv, capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stderr[-2000:]
    [study] = json.loads((out / "tuning.json").read_text())["studies"].values()
    assert [t["state"] for t in study["trials"]] == ["FAIL", "COMPLETE"]
    stopped, retried = study["trials"]
    assert retried["params"] == stopped["params"] and retried["run_dir"] == stopped["run_dir"]
    assert retried["preset"] and study["preset_trial"] == 1 and study["preset_value"] == retried["value"]
    rows = [json.loads(r) for r in (Path(retried["run_dir"]) / "seed100" / "metrics.jsonl").read_text().splitlines()]
    assert [r["generation"] for r in rows] == list(range(1, 401))
    assert rows[-1]["wall_seconds"] > rows[0]["wall_seconds"]


def test_a_study_continues_only_with_the_settings_it_began_with(tmp_path):
    """Continuing a study at another budget would resume or read back its trials' runs under a
    config they were not made with: refused in one line, the study untouched; the placement of
    the work (--chunk) may change, and the same options continue it."""
    out = tmp_path / "tune"
    first = tune(out, "1", "--quiet")
    assert first.returncode == 0, first.stderr
    before = (out / "tuning.json").read_text()
    other = tune(out, "2", "--obs-std-floor", "0.1")  # with progress bars: refused before any is drawn
    assert_one_line_error(other, "run with other settings (obs_std_floor 0.05 -> 0.1)")
    assert (out / "tuning.json").read_text() == before
    strategies = tune(out, "2", "--quiet", "--strategies", "SNES,Open_ES")
    assert_one_line_error(strategies, "(another --strategies?)")
    again = tune(out, "2", "--quiet", "--chunk", "4")
    assert again.returncode == 0, again.stderr
    studies = json.loads((out / "tuning.json").read_text())["studies"]
    assert all(s["finished"] == 2 for s in studies.values())


def test_a_study_outlives_a_preset_its_result_moved():
    """A preset moved by its study (reacher's) changes only tuned parameters, which every trial
    sets itself: the study still continues and reports; any other changed setting is refused."""
    import optuna

    from hades.tune import _space, check_same_study

    before = make_config("cartpole", variant="hades-r")
    study = optuna.create_study(direction="maximize")
    study.set_user_attr("base", before.to_dict())
    study.add_trial(optuna.trial.create_trial(params={}, distributions={}, value=1.0))
    space = _space(before, "hades-r", ())
    assert {"sigma", "bc_lr"} <= set(space)
    moved = make_config("cartpole", variant="hades-r", sigma=0.5, bc_lr=0.02)
    check_same_study(study, "s", moved, space, Path("out"))  # tuned values only: continues
    other = make_config("cartpole", variant="hades-r", sigma=0.5, obs_std_floor=0.1)
    with pytest.raises(HadesError, match=r"run with other settings \(obs_std_floor 0.05 -> 0.1\)"):
        check_same_study(study, "s", other, space, Path("out"))


def test_report_rewrites_the_record_from_the_study_and_runs_nothing(tmp_path):
    """`--report`: the study as it stands, with the options it began with; no trial or run added,
    and a directory without a study is refused in one line (nothing created)."""
    out = tmp_path / "tune"
    assert tune(out, "1", "--quiet").returncode == 0
    record = json.loads((out / "tuning.json").read_text())
    runs_before = sorted(p.relative_to(out) for p in out.glob("trials/*/*/seed*"))
    for name in ("tuning.json", "tuning.md", "tuning.png"):
        (out / name).unlink()
    report = tune(out, "5", "--report")  # --trials is not a target here: nothing runs
    assert report.returncode == 0, report.stderr
    again = json.loads((out / "tuning.json").read_text())
    assert again["studies"] == record["studies"] and again["trials"] is None
    assert sorted(p.relative_to(out) for p in out.glob("trials/*/*/seed*")) == runs_before
    md = (out / "tuning.md").read_text()
    assert md.count("Finished trials: 1") == 2 and "| 0 (preset) | complete |" in md
    assert (out / "tuning.png").is_file()
    assert_one_line_error(tune(out, "1", "--report", "--obs-std-floor", "0.1"), "run with other settings")
    assert_one_line_error(tune(tmp_path / "none", "1", "--report"), "holds no study (no study.db)")
    assert not (tmp_path / "none").exists()


def test_the_report_gives_hades_f_held_out_fresh_inits_beside_its_verdict():
    """tuning.md's held-out line for HaDES-F, then its runs' fresh-init figures, marked as not the
    criterion; a method without them (HaDES-R, direct ES) gets no such line."""
    from hades.tune import report_markdown

    def study(fresh):
        holdout = {"seeds": [101, 102], "preset": [4.0, 6.0], "best": [5.0, 6.5], "difference_mean": 0.75,
                   "difference_ci95": 3.2, "verdict": "preset"}  # fmt: skip
        if fresh:
            holdout["fresh"] = {
                "preset": [1.0, 2.0],
                "best": [8.0, 9.0],
                "difference_mean": 7.0,
                "difference_ci95": 0.0,
            }
        return {"trials": [], "finished": 0, "best_params": None, "holdout": holdout, "importance": {}}

    record = {
        "preset": "p",
        "seeds": [100],
        "overrides": {},
        "studies": {"E_hades-f": study(True), "E_hades-r": study(False)},
    }
    md = report_markdown(record)
    f, r = md.split("## E_hades-r")
    assert "best - preset 0.75 ± 3.2 (paired, 95% CI): not distinguishable; the preset stays" in f
    assert (
        "The same runs' fresh inits (recorded, not the criterion): the preset 1, 2; the best 8, 9; best - preset 7 ± 0"
        in f
    )
    assert "fresh inits" not in r and "the preset stays" in r


def test_a_study_continues_from_its_record_alone(tmp_path):
    """`--import`: a study whose directory is gone continues from its tuning.json elsewhere: its
    finished trials keep their numbers, settings, values and in-run evaluations, nothing of them
    runs again, the next trial is a new proposal; a trial that was running when its machine went
    runs its setting again (to the value it gives where it finished); a record from other options,
    a study that already holds trials or an unreadable file is refused in one line."""
    first = tmp_path / "first"
    assert tune(first, "2", "--quiet", "--eval-every", "1").returncode == 0
    record = json.loads((first / "tuning.json").read_text())
    old = record["studies"]["CartPole-v1_hades-f"]["trials"]
    assert [t["state"] for t in old] == ["COMPLETE", "COMPLETE"] and old[0]["intermediate"]

    moved = tmp_path / "moved"
    again = tune(moved, "3", "--quiet", "--eval-every", "1", "--import", str(first / "tuning.json"))
    assert again.returncode == 0, again.stderr
    studies = json.loads((moved / "tuning.json").read_text())["studies"]
    for name, study in studies.items():
        rows = study["trials"]
        assert [t["number"] for t in rows] == [0, 1, 2] and all(t["state"] == "COMPLETE" for t in rows)
        before = record["studies"][name]["trials"]
        keep = ("params", "value", "intermediate", "state")
        assert [{k: t[k] for k in keep} for t in rows[:2]] == [{k: t[k] for k in keep} for t in before]
        assert rows[0]["preset"] and study["preset_trial"] == 0 and "preset" not in rows[2]
        assert rows[2]["params"] not in [t["params"] for t in before]
        assert len(list((moved / "trials" / name).iterdir())) == 1  # only the new trial ran here

    # the machine went while trial 1 ran: it is recorded running, then runs again here
    lost = json.loads(json.dumps(record))
    lost["studies"] = {"CartPole-v1_hades-f": lost["studies"]["CartPole-v1_hades-f"]}
    running = lost["studies"]["CartPole-v1_hades-f"]["trials"][1]
    running.update(state="RUNNING", value=None, intermediate={})
    (tmp_path / "lost.json").write_text(json.dumps(lost))
    argv = ["tune", "--preset", "cartpole", "--variants", "hades-f", "--trials", "2", "--quiet",
            "--eval-every", "1", *TINY.split()]  # fmt: skip
    resumed = cli(*argv, "--out", tmp_path / "resumed", "--import", tmp_path / "lost.json")
    assert resumed.returncode == 0, resumed.stderr
    [study] = json.loads((tmp_path / "resumed" / "tuning.json").read_text())["studies"].values()
    assert [(t["number"], t["state"]) for t in study["trials"]] == [(0, "COMPLETE"), (1, "FAIL"), (2, "COMPLETE")]
    assert study["trials"][1]["stopped"] and study["trials"][2]["retry_of"] == 1
    assert study["trials"][2]["params"] == old[1]["params"] and study["trials"][2]["value"] == old[1]["value"]

    # the heartbeat failed trial 1 and queued its setting again (trial 2): that copy runs, once
    stale = json.loads(json.dumps(lost))
    rows = stale["studies"]["CartPole-v1_hades-f"]["trials"]
    rows[1]["state"] = "FAIL"
    rows.append({**rows[1], "number": 2, "state": "WAITING"})
    (tmp_path / "stale.json").write_text(json.dumps(stale))
    assert cli(*argv, "--out", tmp_path / "stale", "--import", tmp_path / "stale.json").returncode == 0
    [study] = json.loads((tmp_path / "stale" / "tuning.json").read_text())["studies"].values()
    assert [(t["number"], t["state"]) for t in study["trials"]] == [(0, "COMPLETE"), (1, "FAIL"), (2, "COMPLETE")]
    assert "stopped" not in study["trials"][1] and study["trials"][2]["value"] == old[1]["value"]

    assert_one_line_error(cli(*argv, "--out", tmp_path / "resumed", "--import", tmp_path / "lost.json"),
                          "already holds trials of CartPole-v1_hades-f")  # fmt: skip
    assert_one_line_error(
        cli(*argv, "--obs-std-floor", "0.1", "--out", tmp_path / "x", "--import", tmp_path / "lost.json"),
        "the record's study ran with overrides",
    )
    assert_one_line_error(cli(*argv, "--out", tmp_path / "x", "--import", tmp_path / "none.json"), "no such file")
    (tmp_path / "bad.json").write_text("{")
    assert_one_line_error(cli(*argv, "--out", tmp_path / "x", "--import", tmp_path / "bad.json"), "not a tuning.json")
    assert_one_line_error(
        cli(*argv, "--out", tmp_path / "resumed", "--report", "--import", tmp_path / "lost.json"), "give one of them"
    )
    assert not (tmp_path / "x").exists()


def test_the_record_is_rewritten_after_every_trial(tmp_path):
    """tuning.json holds every finished trial as soon as it finishes (what `--import` continues
    from when the machine goes before the study ends), not only at the end."""
    from hades.tune import tune as run_tune

    out, seen = tmp_path / "tune", []

    def on_trial(study, number, value, state):
        path = out / "tuning.json"
        seen.append(json.loads(path.read_text()) if path.exists() else None)

    tiny = dict(generations=2, population=8, depth=1, eval_envs=2, eval_steps=30, eval_episodes=2, eval_policies=2)
    final = run_tune("cartpole", ["direct-es"], out, trials=2, overrides=tiny, on_trial=on_trial)
    assert seen[0] is None and len(seen) == 2
    [mid] = seen[1]["studies"].values()
    assert [(t["number"], t["state"]) for t in mid["trials"]] == [(0, "COMPLETE")] and seen[1]["trials"] is None
    assert mid["trials"][0] == final["studies"]["CartPole-v1_direct-es"]["trials"][0]
    assert final["trials"] == 2


def test_held_out_runs_travel_with_the_record(tmp_path, monkeypatch):
    """The held-out check's finished runs are in the record (rewritten after each, and by
    `--report` while the check is part-way), and `--import` takes them: on the new machine only
    the runs the record lacks run, and the verdict is the one the whole check gives where it ran
    in one place. The study's best is made trial 1 so that the check runs."""
    import hades.tune as tune_module

    real_run = tune_module.run_setting
    ran = []

    def counted(preset, env, method, overrides, settings, seed, folder, reporter=None):
        ran.append((Path(folder).name, seed))
        return real_run(preset, env, method, overrides, settings, seed, folder, reporter)

    monkeypatch.setattr(tune_module, "study_summary", best_is_trial_1(tune_module.study_summary))
    monkeypatch.setattr(tune_module, "run_setting", counted)
    small = dict(generations=2, population=8, depth=1, eval_envs=2, eval_steps=30, eval_episodes=2, eval_policies=2)
    kw = dict(trials=2, overrides=small, holdout_seeds=(101, 102))
    whole = tune_module.tune("cartpole", ["hades-f"], tmp_path / "a", **kw)["studies"]["CartPole-v1_hades-f"]
    assert [(r["label"], r["seed"]) for r in whole["holdout_runs"]] == [
        ("preset", 101), ("preset", 102), ("best", 101), ("best", 102)
    ]  # fmt: skip
    assert [r["score"] for r in whole["holdout_runs"]] == whole["holdout"]["preset"] + whole["holdout"]["best"]

    # the check part-way (its last run not finished): --report records the three that did
    (tmp_path / "a/holdout/CartPole-v1_hades-f/best/seed102/summary.json").unlink()
    part = tune_module.tune("cartpole", ["hades-f"], tmp_path / "a", **kw, report_only=True)
    [study] = part["studies"].values()
    assert "holdout" not in study and study["holdout_runs"] == whole["holdout_runs"][:3]
    assert "Held-out check: 3 of its 4 runs finished" in tune_module.report_markdown(part)

    ran.clear()
    moved = tune_module.tune("cartpole", ["hades-f"], tmp_path / "b", **kw, imported=part)
    [study] = moved["studies"].values()
    assert ran == [("best", 102)]  # no trial, no held-out run the record holds
    assert study["holdout"] == whole["holdout"] and study["holdout_runs"] == whole["holdout_runs"]
