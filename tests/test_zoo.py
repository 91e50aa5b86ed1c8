"""The dataset zoo: every packaged dataset loads, matches its environment, retrains; zoo:NAME works."""

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from helpers import ROOT, TINY_ARGS, cli, hades, users_env

from hades.artifacts import load_dataset
from hades.envtable import ENV_SPECS
from hades.errors import HadesError
from hades.zoo import ZOO_DIR, cards, resolve

CARDS = cards()
RL = [n for n, c in CARDS.items() if c["variant"] != "supervised"]


def test_the_zoo_is_small_and_packaged():
    files = [p for p in ZOO_DIR.rglob("*") if p.is_file()]
    assert sum(p.stat().st_size for p in files) < 3_000_000
    assert {"CartPole-v1", "Acrobot-v1", "brax/hopper", "Breakout-MinAtar", "mnist", "fashion_mnist"} <= set(CARDS)
    patterns = re.findall(r'"zoo_data/\*/\*\.(\w+)"', (ROOT / "pyproject.toml").read_text())
    assert all(p.suffix.lstrip(".") in patterns for p in files)  # every file ships in the wheel


def test_the_documented_zoo_table_gives_every_rl_card_its_states_and_return():
    """docs/artifact.md's zoo table is written by hand: it must list every RL card with the card's
    dataset size and fresh-init return (to 3 significant figures), so it cannot go stale."""
    rows = {}
    for line in (ROOT / "docs" / "artifact.md").read_text().splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 6 and cells[0].split(" (")[0] in CARDS:
            rows[cells[0].split(" (")[0]] = cells
    assert set(RL) <= set(rows), f"cards missing from docs/artifact.md: {sorted(set(RL) - set(rows))}"
    for name in RL:
        card, cells = CARDS[name], rows[name]
        shown = float(re.match(r"-?[\d.]+", cells[3]).group())
        assert int(cells[2]) == card["dataset_size"], name
        assert shown == pytest.approx(card["fresh"]["return_mean"], rel=5e-3), name


@pytest.mark.parametrize("name", list(CARDS))
def test_every_entry_loads_and_matches_its_environment(name):
    card = CARDS[name]
    ds = load_dataset(f"zoo:{name}")
    assert ds.size == card["dataset_size"] and ds.variant == card["variant"]
    assert np.isfinite(ds.states).all()
    if card["variant"] == "supervised":
        assert ds.states.shape == (10, 28, 28, 1) and sorted(ds.actions.tolist()) == list(range(10))
        assert card["class_mean_accuracy"] < card["accuracy_mean"] <= 1
        return
    shape, space, count, _ = ENV_SPECS[ds.env]
    assert ds.states.shape[1:] == shape and ds.action_space == space
    assert ds.env_spec["obs_shape"] == list(shape)
    assert card["fresh"]["return_mean"] > card["random_return_mean"]  # every zoo dataset beats random
    if card.get("random_return_ci95") is not None:  # cards since tools/zoo_add.py compared intervals
        low = card["fresh"]["return_mean"] - card["fresh"]["return_ci95"]
        assert low > card["random_return_mean"] + card["random_return_ci95"]
    assert card["fresh"]["command"] == f"hades train zoo:{name} --policies 5 --episodes 10 --seed 1000"


# one entry per environment family in the default suite (gymnax classic, MinAtar, Brax), all with -m slow
BRIEF = ("CartPole-v1", "Breakout-MinAtar", "brax/hopper")


@pytest.mark.parametrize("name", [n if n in BRIEF else pytest.param(n, marks=pytest.mark.slow) for n in RL])
def test_every_rl_entry_retrains_briefly(name):
    from hades.config import RetrainConfig
    from hades.evaluation import run_config, train_and_evaluate

    ds = load_dataset(f"zoo:{name}")
    cfg = run_config(ds)
    r = train_and_evaluate(ds, cfg.policy, cfg.bc, RetrainConfig(1, 1, eval_steps=20), backend=cfg.backend)
    assert np.isfinite(r.returns).all() and int(r.lengths.max()) <= 20


@pytest.mark.slow
@pytest.mark.parametrize("name", RL)
def test_every_card_is_what_its_command_measures(name):
    for key in ("fresh", "own_init"):
        if key not in CARDS[name]:
            continue
        card = CARDS[name][key]
        proc = hades(*card["command"].split()[1:], env=users_env())  # as the card was measured
        assert proc.returncode == 0, proc.stderr
        assert json.loads(proc.stdout)["return_mean"] == pytest.approx(card["return_mean"], rel=1e-3, abs=1e-3)


def test_zoo_names_on_the_command_line(tmp_path):
    listing = cli("zoo")
    assert listing.returncode == 0 and all(name in listing.stdout for name in CARDS)
    train = cli("train", "zoo:CartPole-v1", "--policies", 1, "--episodes", 1)
    assert train.returncode == 0, train.stderr
    assert json.loads(train.stdout)["env"] == "CartPole-v1"
    show = cli("show", "zoo:CartPole-v1", cwd=tmp_path)
    assert show.returncode == 0 and (tmp_path / "CartPole-v1.png").is_file()  # never inside the package
    bad = cli("train", "zoo:CartPole-v2")
    assert bad.returncode == 2 and "did you mean CartPole-v1" in bad.stderr
    assert len(bad.stderr.strip().splitlines()) == 1


def test_resolve_bare_brax_names_and_plain_paths():
    assert resolve("zoo:hopper") == ZOO_DIR / "brax-hopper" / "dataset.safetensors"
    assert resolve("runs/x/dataset.safetensors") == Path("runs/x/dataset.safetensors")
    with pytest.raises(HadesError, match="no zoo dataset"):
        resolve("zoo:nothing-like-it")


def test_zoo_add_keeps_an_entry_a_new_run_does_not_beat(tmp_path):
    """tools/zoo_add.py, on a copy of the source tree: a run whose fresh policies return less than
    the current entry's (CartPole's 500, by the card's own command) is refused and the entry stays
    byte for byte; with --replace that check is skipped (the random-policy rule still applies)."""
    repo = tmp_path / "repo"
    shutil.copytree(ROOT / "src", repo / "src", ignore=shutil.ignore_patterns("__pycache__"))
    (repo / "tools").mkdir()
    shutil.copy(ROOT / "tools" / "zoo_add.py", repo / "tools")
    run = tmp_path / "run"
    made = cli("distill", "--env", "CartPole-v1", "--dataset-size", 4, *TINY_ARGS, "--quiet", "--out", run)
    assert made.returncode == 0, made.stderr[-2000:]
    entry = repo / "src" / "hades" / "zoo_data" / "CartPole-v1"
    before = {p.name: p.read_bytes() for p in entry.iterdir()}

    def zoo_add(*extra):
        cmd = [sys.executable, str(repo / "tools" / "zoo_add.py"), "CartPole-v1", str(run), *extra]
        return subprocess.run(cmd, capture_output=True, text=True, cwd=tmp_path)

    refused = zoo_add()
    assert refused.returncode != 0 and "below the current entry's 500" in refused.stderr, refused.stderr[-2000:]
    assert {p.name: p.read_bytes() for p in entry.iterdir()} == before and not list(entry.parent.glob("*.previous"))
    forced = zoo_add("--replace")
    assert "below the current entry" not in forced.stderr, forced.stderr[-2000:]
    if forced.returncode == 0:  # the tiny run beat random: it replaced the entry
        assert json.loads((entry / "card.json").read_text())["fresh"]["return_mean"] < 500
    else:
        assert "not clearly above the random" in forced.stderr, forced.stderr[-2000:]
        assert {p.name: p.read_bytes() for p in entry.iterdir()} == before
