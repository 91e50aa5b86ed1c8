"""hades table: seeds of one setting aggregated, different settings kept apart."""

import json

import pytest

from hades.report import markdown, number, pm, table


def fake_run(path, seed, ret, evolve=False, own=None):
    path.mkdir()
    summary = {
        "env": "CartPole-v1",
        "variant": "hades-f",
        "final_return_mean": ret,
        "final_episodes": 8,
        "final_distinct_episodes": 8,
        "random_return_mean": 22.0,
        "actions": "sample",
        "generations": 5,
        "wall_seconds": 3.0,
        "config": {"seed": seed, "evolve_bc": evolve, "es": {"population": 8}},
    }
    if own is not None:
        summary["final_own_init_return_mean"] = own
    (path / "summary.json").write_text(json.dumps(summary))
    return path


def test_seeds_are_aggregated_with_a_95_percent_interval(tmp_path):
    runs = [fake_run(tmp_path / f"r{i}", i, r, own=r + 1) for i, r in enumerate([10.0, 20.0, 30.0])]
    (row,) = table(runs)
    assert row["seeds"] == 3 and row["return_mean"] == 20.0
    assert row["return_ci95"] == pytest.approx(4.303 * 10.0 / 3**0.5, rel=1e-3)
    assert row["own_init_return_mean"] == 21.0
    assert "20 ± 25" in markdown([row])


def test_per_seed_figures_are_listed_in_seed_order(tmp_path):
    runs = [fake_run(tmp_path / f"r{seed}", seed, ret, own=ret + 1) for seed, ret in ((2, 30.0), (0, 10.0), (1, 20.0))]
    (row,) = table(runs)
    assert row["seed_ids"] == [0, 1, 2] and row["per_seed"] == [10.0, 20.0, 30.0]
    assert row["per_seed_own_init"] == [11.0, 21.0, 31.0]
    assert "| 20 ± 25 | 10, 20, 30 | 21 ± 25 |" in markdown([row])


def test_different_settings_are_not_pooled(tmp_path):
    runs = [
        fake_run(tmp_path / "a", 0, 10.0),
        fake_run(tmp_path / "b", 1, 12.0),
        fake_run(tmp_path / "c", 0, 50.0, evolve=True),
    ]
    rows = {r["method"]: r for r in table(runs)}
    assert set(rows) == {"hades-f evolve_bc=False", "hades-f evolve_bc=True"}
    assert rows["hades-f evolve_bc=False"]["seeds"] == 2 and rows["hades-f evolve_bc=True"]["return_mean"] == 50.0


def test_a_run_older_than_a_setting_pools_with_runs_at_its_default(tmp_path):
    """A run written before ``fixed_length`` existed ran without it: one group with newer runs
    that record its default, apart from runs that changed it."""
    old = fake_run(tmp_path / "old", 0, 10.0)
    new = fake_run(tmp_path / "new", 1, 20.0)
    changed = fake_run(tmp_path / "changed", 2, 30.0)
    for path, value in ((new, False), (changed, True)):
        s = json.loads((path / "summary.json").read_text())
        s["config"]["fixed_length"] = value
        (path / "summary.json").write_text(json.dumps(s))
    rows = {r["method"]: r for r in table([old, new, changed])}
    assert set(rows) == {"hades-f fixed_length=False", "hades-f fixed_length=True"}
    assert rows["hades-f fixed_length=False"]["seeds"] == 2


@pytest.mark.parametrize(
    ("x", "digits", "text"),
    [
        (11626.0, 3, "11600"),
        (3210.0, 2, "3200"),
        (-813.4, 3, "-813"),
        (0.9612, 3, "0.961"),
        (500.0, 3, "500"),
        (-1207.4, 4, "-1207"),
        (0.0, 3, "0"),
        (99.6, 2, "100"),  # an interval that rounds up to the next power of ten
        (-999.7, 3, "-1000"),
        (0.09996, 3, "0.1"),
        (None, 3, "—"),
        (float("nan"), 3, "—"),
    ],
)
def test_numbers_are_plain_at_every_scale(x, digits, text):
    """A table mixing Breakout's 0.96 and humanoidstandup's 11626 prints both as numbers, not 1.16e+04."""
    assert number(x, digits) == text


def test_mean_with_interval():
    assert pm(11626.0, 3010.0) == "11600 ± 3000"
    assert pm(823.0, None) == "823" and pm(823.0, float("nan")) == "823"
    assert pm(None, 1.0) == "—"


def test_series_keep_a_method_whose_name_has_a_space_whole():
    """Supervised runs' method is "mlp images": the settings of one method are found by it, not by
    the label's first word, and each label names the option that tells the settings apart."""
    from hades.report import series

    runs = [
        {
            "variant": "supervised",
            "dataset": "mnist",
            "model": "mlp",
            "config": {"seed": s, "dataset": "mnist", "hidden": n},
        }
        for n in (64, 128)
        for s in (0, 1)
    ]
    found = series(runs)
    assert [(s.env, s.method, len(s.runs)) for s in found] == [("mnist", "mlp images", 2)] * 2
    assert [s.label(brief=True) for s in found] == ["mlp images hidden=64", "mlp images hidden=128"]
