"""hades reproduce: the grid's plan, its cells as run directories, resuming, the results files."""

import pytest
from helpers import cli

from hades.errors import HadesError
from hades.report import number, pm
from hades.reproduce import PAPER_ENVS, plan, reproduce, results, rewrite_results


def test_plan_covers_the_paper_grid_in_order():
    cells = plan("cpu")
    assert len(PAPER_ENVS) == 12 and len(cells) == 12 * 3 * 3
    assert [c.env for c in cells[:9]] == ["Breakout-MinAtar"] * 9  # an environment's seeds finish first
    assert [(c.variant, c.seed) for c in cells[:3]] == [("hades-f", 0), ("hades-r", 0), ("direct-es", 0)]
    hopper = [c for c in cells if c.env == "brax/hopper"]
    cfg = hopper[0].config()
    assert cfg.backend == "spring" and cfg.generations == 60
    es = [c for c in cells if c.env == "Breakout-MinAtar" and c.variant == "direct-es"][0].config()
    assert es.variant == "direct-es" and es.es.sigma == 0.1
    paper = plan("paper", envs=["brax/ant"], variants=["hades-r"], seeds=[4])
    assert [(c.preset, c.seed, c.config().es.population) for c in paper] == [("paper-brax", 4, 2048)]


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(envs=["CartPole-v1"]), "not one of the paper's environments"),
        (dict(variants=["hades-x"]), "unknown variant"),
        (dict(seeds=[]), "--seeds"),
    ],
)
def test_plan_refuses_bad_input(kwargs, message):
    with pytest.raises(HadesError, match=message):
        plan("cpu", **kwargs)


def test_grid_runs_resumes_and_reports(tmp_path):
    out = tmp_path / "grid"
    seen = []
    kw = dict(envs=["Breakout-MinAtar"], variants=["hades-f"], seeds=[0, 1])
    result = reproduce("smoke", out, on_cell=lambda i, n, c, s: seen.append((i, n, c.seed, s is None)), **kw)
    assert [s for s in seen if s[3]] == [(0, 2, 0, True), (1, 2, 1, True)]  # each cell announced, then run
    (row,) = result["rows"]
    assert row["method"] == "hades-f" and row["seeds_finished"] == 2 and len(row["per_seed"]) == 2
    assert row["return_ci95"] is not None and row["random_return_mean"] is not None
    assert row["population"] == 8 and row["generations"] == 2 and row["paper_return"] == 15.2
    md = (out / "reproduction.md").read_text()
    assert "| Breakout-MinAtar | hades-f | 2 |" in md and "Tier `smoke`" in md
    per_seed = ", ".join(number(x) for x in row["per_seed"])  # each seed's figure beside the mean
    own = pm(row["own_init_return_mean"], row["own_init_return_ci95"])  # HaDES-F's own init with its interval
    assert f"| {per_seed} | {own} |" in md and row["own_init_return_ci95"] is not None
    # the table names the one command that runs every cell it holds
    assert (
        result["command"]
        == f"hades reproduce --tier smoke --envs Breakout-MinAtar --variants hades-f --seeds 0,1 --out {out}"
    )
    # a second call runs nothing: every cell is finished
    stamp = (out / "Breakout-MinAtar/hades-f/seed0/summary.json").stat().st_mtime_ns
    seen.clear()
    reproduce("smoke", out, on_cell=lambda i, n, c, s: seen.append(s is None), **kw)
    assert not any(seen) and (out / "Breakout-MinAtar/hades-f/seed0/summary.json").stat().st_mtime_ns == stamp
    again = cli(
        "reproduce", "--tier", "smoke", "--envs", "breakout", "--variants", "hades-f", "--seeds", "0,1", "--out", out
    )
    assert again.returncode == 0, again.stderr  # the command says a cell was done before, not "0 s so far"
    assert again.stderr.count("finished by an earlier invocation") == 2 and "so far" not in again.stderr
    # an unfinished cell (summary gone, checkpoint kept) is resumed, not restarted
    (out / "Breakout-MinAtar/hades-f/seed1/summary.json").unlink()
    reproduce("smoke", out, **kw)
    assert results(out, "smoke")[0]["seeds_finished"] == 2
    with pytest.raises(HadesError, match="holds a smoke grid"):
        reproduce("cpu", out, **kw)
    # the table is rewritten from the finished cells without running any, at the grid's own tier
    (out / "reproduction.md").unlink()
    assert rewrite_results(out)["rows"][0]["seeds_finished"] == 2 and (out / "reproduction.md").is_file()
    with pytest.raises(HadesError, match="holds no reproduce grid"):
        rewrite_results(tmp_path)


def test_cli_plan_and_refusals(tmp_path):
    proc = cli("reproduce", "--plan", "--envs", "brax/hopper", "--seeds", "0,1", "--out", tmp_path)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.strip().splitlines()
    assert len(lines) == 6 and "--preset hopper --generations 60" in lines[0] and "[to run]" in lines[0]
    bad = cli("reproduce", "--envs", "hopper-v9", "--out", tmp_path)
    assert bad.returncode == 2 and "not one of the paper's environments" in bad.stderr
    assert len(bad.stderr.strip().splitlines()) == 1
    assert not any(tmp_path.iterdir())  # refused before anything was written
    none = cli("reproduce", "--report", "--out", tmp_path)
    assert none.returncode == 2 and "holds no reproduce grid" in none.stderr
