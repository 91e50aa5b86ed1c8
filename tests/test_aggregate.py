"""Cross-environment aggregates (rliable): random-normalised scores, IQM and probability of
improvement with stratified-bootstrap intervals, checked on small tables with known answers."""

import json
import sys
from pathlib import Path

import numpy as np
import pytest
from helpers import cli
from scipy import stats

from hades.aggregate import aggregates, scores
from hades.errors import HadesError


def row(env, method, per_seed, random):
    return {"env": env, "method": method, "per_seed": per_seed, "return_mean": float(np.mean(per_seed)),
            "random_return_mean": random}  # fmt: skip


ROWS = [
    row("A", "hades-f", [10.0, 12.0, 14.0], 2.0),  # best mean 12: scores (x - 2) / 10
    row("A", "direct-es", [4.0, 6.0, 8.0], 2.0),
    row("B", "hades-f", [100.0, 110.0, 120.0], 100.0),
    row("B", "direct-es", [120.0, 130.0, 140.0], 100.0),  # best mean 130: scores (x - 100) / 30
    row("C", "hades-f", [0.0, 0.1, 0.2], 1.0),  # nobody above random: no scale
    row("C", "direct-es", [0.3, 0.2, 0.1], 1.0),
]


def test_scores_are_normalised_between_random_and_the_best_method():
    by_method, used, left_out = scores(ROWS)
    assert used == ["A", "B"] and left_out == ["C (no method above random)"]
    np.testing.assert_allclose(by_method["hades-f"], [[0.8, 0.0], [1.0, 1 / 3], [1.2, 2 / 3]])
    np.testing.assert_allclose(by_method["direct-es"], [[0.2, 2 / 3], [0.4, 1.0], [0.6, 4 / 3]])


def test_iqm_and_probability_of_improvement_match_their_definitions():
    agg = aggregates(ROWS, reps=500)
    by_method, _, _ = scores(ROWS)
    for m in ("hades-f", "direct-es"):
        point, lo, hi = agg["iqm"][m]
        assert point == pytest.approx(stats.trim_mean(by_method[m].ravel(), 0.25))
        assert lo <= point <= hi and hi > lo
    # P(hades-f > direct-es): 1 on A (every run above); on B only the tie 120 = 120, counted half
    # (Mann-Whitney U = 0.5 of 9 pairs); averaged over the two environments
    point, lo, hi = agg["probability_of_improvement"]["hades-f > direct-es"]
    assert point == pytest.approx((1 + 0.5 / 9) / 2)
    assert lo <= point <= hi
    assert agg["runs_per_env"] == 3 and agg["envs"] == ["A", "B"]


def test_one_environment_has_nothing_to_aggregate_and_a_missing_rliable_says_how_to_get_it(monkeypatch):
    assert aggregates(ROWS[:2]) is None
    monkeypatch.setitem(sys.modules, "rliable", None)
    with pytest.raises(HadesError, match=r"hades\[aggregate\]"):
        aggregates(ROWS)


def test_table_prints_the_aggregates_over_environments(tmp_path):
    runs = []
    for r in ROWS[:4]:
        for seed, ret in enumerate(r["per_seed"]):
            d = tmp_path / f"{r['env']}-{r['method']}-{seed}"
            d.mkdir()
            (d / "summary.json").write_text(json.dumps({
                "env": r["env"], "variant": r["method"], "final_return_mean": ret, "final_episodes": 8,
                "final_distinct_episodes": 8, "random_return_mean": r["random_return_mean"], "generations": 5,
                "wall_seconds": 1.0,
                "config": {"env": r["env"], "variant": r["method"], "seed": seed, "es": {"population": 8}},
            }))  # fmt: skip
            runs.append(d)
    out = cli("table", *runs)
    assert out.returncode == 0, out.stderr
    assert "IQM of normalised score" in out.stdout and "P(hades-f > direct-es) | 0.53" in out.stdout


def test_hades_f_own_init_is_aggregated_as_its_own_method_only_where_every_row_has_it():
    from hades.report import aggregate_section, own_init_rows

    rows = [dict(r) for r in ROWS[:4]]
    rows[0]["per_seed_own_init"] = [20.0, 22.0, 24.0]  # A: own init best, mean 22: scores (x - 2) / 20
    rows[2]["per_seed_own_init"] = [130.0, 130.0, 130.0]  # B: best stays direct ES's 130
    own = own_init_rows(rows)
    assert [(r["env"], r["method"], r["return_mean"]) for r in own] == [
        ("A", "hades-f own init", 22.0),
        ("B", "hades-f own init", 130.0),
    ]
    agg, text = aggregate_section(rows, reps=200)  # the point estimates do not depend on the resamples
    # own init scores: A 0.9, 1.0, 1.1; B 1, 1, 1 -> IQM of the middle half is 1
    assert agg["iqm"]["hades-f own init"][0] == pytest.approx(1.0)
    # hades-f's fresh scores are now normalised by the own-init best on A: (10, 12, 14 - 2) / 20
    by_method, _, _ = scores(rows + own)
    np.testing.assert_allclose(by_method["hades-f"][:, 0], [0.4, 0.5, 0.6])
    assert "| hades-f own init |" in text
    rows[2]["per_seed_own_init"] = [130.0, None, 130.0]  # one seed without it: none for the method
    assert own_init_rows(rows) == []
    assert "own init" not in aggregate_section(rows, reps=200)[1]


def test_the_grid_verdict_counts_beats_random_and_clear_leads_by_disjoint_intervals():
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tools"))
    from verdict_cpu04 import verdict

    cells = {"hades-f": (1.5, 0.5, None), "hades-f own init": (5.0, 1.0, None), "hades-r": (3.0, 2.5, None),
             "direct-es": (2.0, 0.9, None)}  # fmt: skip
    v = verdict(0.6, cells)
    assert v["hades beats random"] == ["hades-f", "hades-f own init"]  # hades-r's 0.5 reaches below 0.6
    assert v["direct ES beats random"] and v["best HaDES"] == "hades-f own init"
    assert v["HaDES clearly ahead"] == ["hades-f own init"]  # 4.0 > 2.9; hades-r's 0.5 is not
    assert v["HaDES >= direct ES (mean)"] and not v["direct ES clearly ahead of best HaDES"]
    cells["direct-es"] = (9.0, 2.9, None)  # 6.1 > 6.0: direct ES clear of the best HaDES
    assert verdict(0.6, cells)["direct ES clearly ahead of best HaDES"]


def test_the_grid_verdict_extends_a_three_seed_summary_by_more_seeds_as_if_all_were_recorded():
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tools"))
    from verdict_cpu04 import extend

    from hades.stats import mean_ci

    first, more = [1.0, 2.0, 4.0], [5.0, 7.0]
    m, ci = mean_ci(first)
    want = mean_ci(first + more)
    assert extend((m, ci, first), more) == (*want, first + more)
    mean, half, seeds = extend((m, ci, None), more)  # only the summary was published
    assert seeds is None
    assert (mean, half) == pytest.approx(want, rel=1e-12)
    assert half < ci  # five seeds narrow this interval


def test_the_grid_verdict_keeps_a_series_without_later_seeds_at_its_grid_cell(monkeypatch):
    """A series whose later seeds ran with a preset since replaced is left out of EXTRA: its grid
    cell stands, while the other series and the random figure take the later seeds."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tools"))
    import verdict_cpu04 as v

    cell = (3.0, 1.0, [2.0, 3.0, 4.0])
    monkeypatch.setattr(v, "GRID", {"env": (1.0, {s: cell for s in v.SERIES})})
    monkeypatch.setattr(
        v, "EXTRA", {"env": {"random": [2.0, 2.0], **{s: [5.0, 5.0] for s in v.SERIES if s != "hades-r"}}}
    )
    random, cells = v.extended_grid()["env"]
    assert random == pytest.approx(1.4)  # (3 x 1.0 + 2.0 + 2.0) / 5
    assert cells["hades-r"] == cell
    assert cells["direct-es"][2] == [2.0, 3.0, 4.0, 5.0, 5.0]
