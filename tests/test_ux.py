"""The command line as a researcher meets it: help in sections with a preset's values, one-line
errors that suggest the right name, --version, --config FILE, presets one by one, wandb names."""

import json

import pytest
from helpers import assert_one_line_error, cli

from hades import __version__
from hades.errors import did_you_mean


def test_help_is_in_sections_and_shows_the_presets_values():
    plain = cli("distill", "--help").stdout
    for section in ("run:", "environment:", "policy:", "inner loop (behaviour cloning):",
                    "outer loop (evolution strategy):", "learners (HaDES-R):", "evaluation:", "devices:"):  # fmt: skip
        assert f"\n{section}\n" in plain, section
    assert "BC full-batch gradient steps (the paper's 'epochs') (default: 100)" in " ".join(plain.split())
    breakout = " ".join(cli("distill", "--preset", "breakout", "--help").stdout.split())
    assert "(default: 64)" in breakout.split("--bc-steps INT BC full-batch")[1][:80] and "preset breakout" in breakout


@pytest.mark.parametrize(
    "args, says",
    [
        (["distill", "--preset", "brekout"], "did you mean breakout"),
        (["distill", "--strategy", "CMAES", "--generations", "1"], "did you mean CMA_ES"),
        (["reproduce", "--envs", "breakot", "--plan"], "did you mean breakout"),
        (["presets", "paper-minatr"], "did you mean paper-minatar"),
    ],
)
def test_mistyped_names_get_a_suggestion_in_one_line(args, says):
    out = cli(*args)
    assert out.returncode == 2 and says in out.stderr, out.stderr
    assert len(out.stderr.strip().splitlines()) == 1 and "usage:" not in out.stderr


def test_suggestions_ignore_case_and_separators_and_skip_unrelated_names():
    from hades.envs import BRAX_NAMES, ENV_SPECS

    envs = [*ENV_SPECS, *BRAX_NAMES]
    assert did_you_mean("breakout", envs) == "; did you mean Breakout-MinAtar?"  # the whole name, any case
    assert did_you_mean("cmaes", ["CMA_ES", "Sep_CMA_ES", "SNES"]) == "; did you mean CMA_ES or Sep_CMA_ES?"
    assert did_you_mean("hoppr", envs) == "; did you mean hopper?"
    assert did_you_mean("nope", envs) == ""  # difflib at 0.6 said hopper
    assert did_you_mean("ab", ["abcdef"]) == "" and did_you_mean("abc", ["abcdef"]) == "; did you mean abcdef?"
    out = cli("distill", "--env", "nope", "--generations", "1")
    assert_one_line_error(out, "unknown environment 'nope' (`hades envs` lists them)")


def test_an_option_a_command_does_not_take_is_named_with_the_command():
    out = cli("baseline", "--bc-steps", "3")  # direct ES has no inner loop
    assert_one_line_error(
        out, "hades: error: baseline: unrecognized arguments: --bc-steps 3 (see hades baseline --help)"
    )
    assert "hades: error: hades" not in cli("nope").stderr  # the top level does not name itself twice


def test_a_study_with_no_trials_is_refused_before_its_progress_bar(tmp_path):
    out = cli("tune", "--preset", "cartpole", "--trials", "0", "--out", tmp_path / "t")
    assert_one_line_error(out, "--trials must be >= 1")  # one line: no empty bar drawn first
    assert not (tmp_path / "t").exists()


def test_missing_inputs_are_named_before_any_progress_or_output(tmp_path):
    out = cli("transfer", "zoo:CartPole-v1", tmp_path / "nope.safetensors", "--out", tmp_path / "t")
    assert_one_line_error(out, "nope.safetensors: no such file")  # no progress bar drawn first
    assert not (tmp_path / "t").exists()  # and no output directory made for a sweep that cannot run
    assert_one_line_error(cli("distill", "--config", tmp_path / "c.json"), "c.json: no such file")
    (tmp_path / "empty").mkdir()
    assert_one_line_error(cli("plot", tmp_path / "empty"), "empty: not a hades run directory (no config.json)")


def test_reproduce_takes_preset_names_for_environments(tmp_path):
    out = cli("reproduce", "--tier", "smoke", "--envs", "breakout,hopper", "--plan", "--out", tmp_path / "g")
    assert out.returncode == 0, out.stderr
    assert "Breakout-MinAtar" in out.stdout and "brax/hopper" in out.stdout


def test_version_and_presets():
    out = cli("--version")
    assert out.returncode == 0 and out.stdout.strip() == f"hades {__version__}"
    listing = cli("presets").stdout.splitlines()
    assert all(len(line) < 140 for line in listing) and any(line.startswith("paper-minatar ") for line in listing)
    starts = {len(line) - len(line.split(maxsplit=1)[1]) for line in listing}
    assert len(starts) == 1  # every description starts in one column, after the longest name
    one = cli("presets", "paper-minatar").stdout
    assert "--bc-steps" in one and "64" in one and "(variant direct-es only)" in one
    # a per-environment value shows the one the preset's own environment runs with first
    humanoid = [line.split() for line in cli("presets", "humanoid").stdout.splitlines()]
    assert ["--bc-steps", "400", "(for", "brax/humanoid;"] == next(w for w in humanoid if w[0] == "--bc-steps")[:4]
    hopper = [line.split() for line in cli("presets", "hopper").stdout.splitlines()]
    assert next(w for w in hopper if w[0] == "--bc-steps")[1] == "200"


def test_dry_run_prints_the_resolved_config_and_runs_nothing(tmp_path, monkeypatch):
    """--dry-run prints what config.json would hold (the preset's variant overrides applied,
    options over them) as JSON that --config reads back, and writes nothing."""
    from hades.config import DistillConfig
    from hades.presets import make_config

    monkeypatch.chdir(tmp_path)
    out = cli("distill", "--preset", "humanoid", "--variant", "hades-r", "--seed", "7", "--dry-run")
    assert out.returncode == 0, out.stderr
    printed = json.loads(out.stdout)
    assert printed == make_config("humanoid", variant="hades-r", seed=7).to_dict()
    assert printed["bc"]["bc_steps"] == 61 and printed["seed"] == 7  # humanoid's HaDES-R entry, then --seed
    assert DistillConfig.from_dict(printed).to_dict() == printed
    baseline = json.loads(cli("baseline", "--preset", "reacher", "--dry-run").stdout)
    assert baseline["variant"] == "direct-es" and baseline["policy"]["width"] == 32
    assert list(tmp_path.iterdir()) == []  # no runs/ directory, no run


def test_a_saved_config_runs_again_with_overrides(tmp_path):
    small = "--population 8 --generations 1 --width 8 --depth 1 --bc-steps 5 --eval-envs 2 --eval-steps 20".split()
    first = cli("distill", *small, "--eval-episodes", "2", "--eval-policies", "2", "--quiet", "--out", tmp_path / "a")
    assert first.returncode == 0, first.stderr
    again = cli(
        "distill", "--config", tmp_path / "a" / "config.json", "--seed", "3", "--quiet", "--out", tmp_path / "b"
    )
    assert again.returncode == 0, again.stderr
    a, b = (json.loads((tmp_path / d / "config.json").read_text()) for d in "ab")
    assert b.pop("seed") == 3 and a.pop("seed") == 0 and a == b
    both = cli("distill", "--config", tmp_path / "a" / "config.json", "--preset", "breakout", "--out", tmp_path / "c")
    assert both.returncode == 2 and "drop --preset" in both.stderr


def test_wandb_project_comes_from_the_flag_or_the_environment(monkeypatch, tmp_path):
    import sys
    import types

    seen = {}
    fake = types.SimpleNamespace(init=lambda **kw: seen.update(kw) or types.SimpleNamespace())
    monkeypatch.setitem(sys.modules, "wandb", fake)
    import hades.tracking

    monkeypatch.setattr(hades.tracking, "check", lambda kind: None)
    hades.tracking.Tracker("wandb", tmp_path, {}, "run", project="mine", entity="lab")
    assert (seen["project"], seen["entity"]) == ("mine", "lab")
    monkeypatch.setenv("WANDB_PROJECT", "from-env")
    hades.tracking.Tracker("wandb", tmp_path, {}, "run")
    assert seen["project"] == "from-env"


def test_seeds_always_names_run_seeds_and_policies_counts_fresh_policies():
    # --seeds is a list of run seeds wherever it is accepted; the number of fresh policies that
    # train / transfer / merge retrain is --policies, and the old spelling says so in one line
    train_help = " ".join(cli("train", "--help").stdout.split())
    assert "--policies POLICIES fresh policies trained per setting" in train_help and "--seeds" not in train_help
    for command in ("reproduce", "sweep-size", "tune"):
        assert "comma-separated" in " ".join(cli(command, "--help").stdout.split()).split("--seeds SEEDS ")[-1][:60], (
            command
        )
    listed = cli("train", "zoo:CartPole-v1", "--seeds", "0,1,2")
    assert listed.returncode == 2 and "--policies N" in listed.stderr and len(listed.stderr.strip().splitlines()) == 1
    old = cli("train", "zoo:CartPole-v1", "--seeds", "1", "--episodes", "1", "--eval-steps", "10")
    assert old.returncode == 0 and "is now --policies N" in old.stderr
    assert "1/1 [" in old.stderr and "policies by BC" in old.stderr  # the progress bar over its stage
    assert len(json.loads(old.stdout)["returns_per_policy"]) == 1


def test_transfer_shows_progress_and_quiet_hides_it(tmp_path):
    args = ("--policies", "1", "--episodes", "1", "--eval-steps", "10")
    sweep = cli("transfer", "zoo:CartPole-v1", "--widths", "8,16", "--lrs", "1e-2", "--epochs", "5", *args, "-o",
                tmp_path / "t")  # fmt: skip
    assert sweep.returncode == 0 and "2/2 [" in sweep.stderr and "architecture 2 of 2" in sweep.stderr
    quiet = cli("transfer", "zoo:CartPole-v1", "--widths", "8", "--lrs", "1e-2", "--epochs", "5", *args, "-o",
                tmp_path / "q", "--quiet")  # fmt: skip
    assert quiet.returncode == 0 and "architecture" not in quiet.stderr
