import json

import pytest
from helpers import TINY_ARGS, assert_one_line_error, cli

from hades.cli import main

TINY = [*TINY_ARGS, "--quiet"]


@pytest.mark.parametrize(
    "cmd",
    [
        [],
        ["distill"],
        ["baseline"],
        ["distill-images"],
        ["train"],
        ["envs"],
        ["presets"],
        ["transfer"],
        ["merge"],
        ["render"],
        ["show"],
        ["plot"],
        ["sweep-size"],
        ["reproduce"],
        ["table"],
        ["zoo"],
    ],
)
def test_help_everywhere(cmd, capsys):
    with pytest.raises(SystemExit) as e:
        main([*cmd, "--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    assert "usage: hades" in out and "%%" not in out  # descriptions are printed as written, not %-formatted


def test_the_command_line_starts_without_jax():
    """`hades --help` and argument refusals stay fast: importing the CLI must not import JAX (a
    module-level `from hades.report import number` once did, through hades.evaluation)."""
    import subprocess
    import sys

    code = "import sys, hades.cli; sys.exit('jax' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0


def test_unknown_environment_and_strategy(tmp_path):
    assert_one_line_error(cli("distill", "--env", "Nope-v0", "--out", tmp_path / "a"), "unknown environment")
    assert_one_line_error(cli("distill", "--strategy", "Nope", "--out", tmp_path / "b"), "unknown ES strategy")
    assert not (tmp_path / "a").exists()


def test_bad_option_values(tmp_path):
    assert_one_line_error(cli("distill", "--population", "7", "--out", tmp_path / "a"), "even")
    assert_one_line_error(cli("distill", "--devices", "64", "--out", tmp_path / "a"), "device")
    assert_one_line_error(cli("distill", "--population", "8", "--chunk", "3"), "chunk")
    assert_one_line_error(cli("distill", "--variant", "hades-f", "--learners", "sampled"), "hades-r")
    assert_one_line_error(cli("distill", "--variant", "hades-r", "--num-inits", "1"), "num-inits")


def test_distill_train_and_errors_on_artifacts(tmp_path):
    out = tmp_path / "run"
    proc = cli("distill", *TINY, "--out", out)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["out"] == str(out)
    ds = out / "dataset.safetensors"

    proc = cli("train", ds, "--policies", 2, "--episodes", 2, "--eval-steps", 20, "--width", 8)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert len(result["returns_per_policy"]) == 2 and result["episodes"] == 4 and result["init"] == "fresh"
    assert 0 < result["return_mean"] <= 20 and result["step_cap"] == 20  # a capped evaluation says so
    assert result["episode_length_max"] <= 20 and 1 <= result["distinct_episodes"] <= 4
    assert result["policy"]["width"] == 8 and result["bc"]["bc_steps"] == 10  # bc from the dataset's config

    proc = cli(
        "train", ds, "--preset", "paper-brax", "--bc-steps", 3, "--policies", 1, "--episodes", 1, "--eval-steps", 20
    )
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)  # the paper's Brax inner loop on any artifact (options still win)
    assert result["policy"] == {
        "width": 512,
        "depth": 2,
        "activation": "tanh",
        "precision": "float32",
        "policy_init": "orthogonal",
    }
    assert (result["bc"]["bc_lr"], result["bc"]["bc_steps"], result["bc"]["bc_max_grad_norm"]) == (0.005, 3, 0.5)
    assert result["bc"]["bc_adam_eps"] == 1e-5

    assert_one_line_error(cli("train", ds, "--own-init"), "hades-r dataset")  # no own init to speak of
    assert_one_line_error(cli("train", tmp_path), "directory without a dataset.safetensors")
    assert_one_line_error(cli("train", ds, "--env", "Acrobot-v1"), "does not fit")
    assert_one_line_error(cli("train", out / "checkpoint.safetensors"), "not a hades.dataset")
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"garbage!" * 4)
    assert_one_line_error(cli("train", bad), "not a safetensors file")
    assert_one_line_error(cli("distill", *TINY, "--out", out), "already holds a run")
    # resume past the end with more generations
    proc = cli("distill", "--resume", out, "--generations", 3, "--quiet")
    assert proc.returncode == 0, proc.stderr
    assert len((out / "metrics.jsonl").read_text().splitlines()) == 3
    assert_one_line_error(cli("distill", "--resume", out, "--width", 99), "keeps its config")


def test_hades_f_trains_from_its_own_init(tmp_path):
    f_out = tmp_path / "run_f"
    assert cli("distill", *TINY, "--variant", "hades-f", "--out", f_out).returncode == 0
    f_ds = f_out / "dataset.safetensors"
    assert (f_out / "init.safetensors").is_file()  # the init the dataset is tied to, saved
    # the run directory stands for its dataset, and --own-init finds the init beside it
    proc = cli("train", f_out, "--own-init", "--policies", 2, "--episodes", 2, "--eval-steps", 20)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert result["policy"]["width"] == 16 and result["init"] == "own"  # the run's own architecture and init
    assert_one_line_error(cli("train", f_ds, "--own-init", "--width", 32), "own architecture")
    (f_out / "init.safetensors").unlink()
    assert_one_line_error(cli("train", f_ds, "--own-init"), "init.safetensors")


def test_baseline_writes_a_policy(tmp_path):
    pairs = zip(TINY_ARGS[::2], TINY_ARGS[1::2])
    args = [x for flag, v in pairs if flag not in ("--bc-steps", "--eval-policies") for x in (flag, v)]
    proc = cli("baseline", *args, "--quiet", "--out", tmp_path / "es")  # baseline has no BC, one policy
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["variant"] == "direct-es"
    assert (tmp_path / "es" / "policy.safetensors").is_file()


def test_default_distill_solves_cartpole(tmp_path):
    """The README's first command: the built-in default solves CartPole-v1 (>= 475 over >= 10 episodes)."""
    proc = cli("distill", "--out", tmp_path / "default", "--quiet")
    assert proc.returncode == 0, proc.stderr
    summary = json.loads((tmp_path / "default" / "summary.json").read_text())
    assert summary["final_return_mean"] >= 475 and summary["final_episodes"] >= 10


def test_distill_images_errors(tmp_path, monkeypatch):
    monkeypatch.delenv("HADES_DATA_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "no-cache"))
    assert_one_line_error(cli("distill-images", "--out", tmp_path / "a"), "hades data download fashion-mnist")
    assert_one_line_error(cli("distill-images", "--data-dir", tmp_path / "nope"), "does not exist")
    assert_one_line_error(cli("distill-images", "--data-dir", tmp_path), "missing train-images")


def test_help_tells_the_truth(capsys):
    """baseline offers nothing it ignores; retraining options say their default is the dataset's;
    no option states two defaults."""

    def help_of(cmd):
        with pytest.raises(SystemExit):
            main([cmd, "--help"])
        return capsys.readouterr().out

    baseline = help_of("baseline")
    assert "--bc-lr" not in baseline and "--dataset-size" not in baseline and "--num-inits" not in baseline
    assert "--sigma" in baseline
    train = " ".join(help_of("train").split())
    assert "--width INT hidden units per layer (default: the dataset's run's setting)" in train
    for cmd in ("distill", "baseline", "distill-images", "train", "transfer", "merge", "render", "sweep-size"):
        text = " ".join(help_of(cmd).split())
        for option in text.split(" --")[1:]:
            assert option.count("default:") <= 1, (cmd, option)


@pytest.mark.slow  # the default suite keeps the library-level test of the same feature
def test_wide_learners_and_soft_labels_from_the_command_line(tmp_path):
    """--learners wide (linear models among the depths) and an evolved label temperature run,
    and the artifact names the soft targets its learner trains on."""
    out = tmp_path / "wide"
    proc = cli(
        "distill",
        *TINY,
        "--variant",
        "hades-r",
        "--learners",
        "wide",
        "--learner-min-width",
        "4",
        "--learner-depths",
        "0,1,2",
        "--evolve-label-temperature",
        "--bc-label-temperature",
        "0.3",
        "--out",
        out,
    )
    assert proc.returncode == 0, proc.stderr
    config = json.loads((out / "config.json").read_text())
    assert config["learner"]["learners"] == "wide" and config["evolve_label_temperature"]
    proc = cli("show", out / "dataset.safetensors")
    assert proc.returncode == 0 and "soft targets softmax(one_hot / " in proc.stderr, proc.stderr
    assert "a distribution of learners (wide)" in proc.stderr
    proc = cli("distill", *TINY, "--variant", "hades-f", "--learners", "wide", "--out", tmp_path / "f")
    assert proc.returncode == 2 and "hades-r" in proc.stderr and "Traceback" not in proc.stderr
