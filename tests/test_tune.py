"""`hades tune`: optuna studies per method, the same trials and budget for each, resumable."""

import json

import pytest
from helpers import assert_one_line_error, cli

pytest.importorskip("optuna")

TINY = "--generations 2 --population 8 --depth 1 --eval-envs 2 --eval-steps 30 --eval-episodes 2 --eval-policies 2"


def tune(out, trials):
    return cli("tune", "--preset", "cartpole", "--variants", "hades-f,direct-es", "--trials", trials,
               "--out", out, "--quiet", *TINY.split())  # fmt: skip


def test_tune_runs_resumes_and_reports(tmp_path):
    out = tmp_path / "tune"
    first = tune(out, 1)
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
    # every trial ran the same budget: the preset's with the same overrides, seed 100 (not a reported seed)
    configs = [json.loads(p.read_text()) for p in (out / "trials").rglob("config.json")]
    assert len(configs) == 2 and {(c["generations"], c["es"]["population"], c["seed"]) for c in configs} == {
        (2, 8, 100)
    }
    # run again with more trials: the finished ones are kept, one more each, with new settings
    again = tune(out, 2)
    assert again.returncode == 0, again.stderr
    record = json.loads((out / "tuning.json").read_text())
    assert [len(s["trials"]) for s in record["studies"].values()] == [2, 2]
    assert len(list((out / "trials").rglob("summary.json"))) == 4
    assert "| trial | state | value |" in (out / "tuning.md").read_text() and (out / "tuning.png").stat().st_size > 0


@pytest.mark.parametrize(
    "args, says",
    [
        (["--sigma", "0.1"], "is tuned"),
        (["--variants", "hades-x"], "unknown method"),
        (["--trials", "0"], "--trials"),
        (["--strategies", "SNES,Sep_CMAES"], "unknown ES strategy 'Sep_CMAES'"),
        (["--strategies", "SNES", "--strategy", "SNES"], "drop --strategy"),
        (["--variants", ","], "no method"),
    ],
)
def test_tune_refuses_in_one_line(tmp_path, args, says):
    """Before any progress bar is drawn or the study directory made: stderr is the one line."""
    out = cli("tune", "--preset", "cartpole", "--out", tmp_path / "t", *args)
    assert_one_line_error(out, says)
    assert not (tmp_path / "t").exists()


def test_tune_over_strategies_runs_each_trial_with_its_strategy(tmp_path):
    """`--strategies`: the strategy is a tuned choice for every method alike; a trial runs the one
    drawn (with its own rule), and SNES' temperature is proposed only in SNES trials."""
    out = tmp_path / "tune"
    proc = cli("tune", "--preset", "cartpole", "--variants", "hades-f", "--trials", 2, "--strategies",
               "SNES,Sep_CMA_ES", "--out", out, "--quiet", *TINY.split())  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    [study] = json.loads((out / "tuning.json").read_text())["studies"].values()
    assert [t["state"] for t in study["trials"]] == ["COMPLETE", "COMPLETE"]
    for t in study["trials"]:
        assert t["params"]["strategy"] in ("SNES", "Sep_CMA_ES")
        assert ("es_temperature" in t["params"]) == (t["params"]["strategy"] == "SNES")
        assert "es_lr" not in t["params"]  # the preset's Open_ES knob is not tuned for other strategies
    ran = sorted(json.loads(p.read_text())["es"]["strategy"] for p in (out / "trials").rglob("config.json"))
    assert ran == sorted(t["params"]["strategy"] for t in study["trials"])
