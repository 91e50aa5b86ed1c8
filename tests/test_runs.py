import json

import numpy as np
import pytest
from helpers import TINY_ARGS, cli
from safetensors.numpy import load_file

from hades.artifacts import load_dataset
from hades.errors import HadesError
from hades.runs import run


def files(out):
    return sorted(p.name for p in out.iterdir())


def test_run_directory_contents(tmp_path, tiny_config):
    out = tmp_path / "run"
    summary = run(tiny_config(), out)
    assert files(out) == [
        ".hades.lock",  # one writer at a time
        "checkpoint.safetensors",
        "config.json",
        "dataset.safetensors",
        "metrics.jsonl",
        "summary.json",
    ]  # the run writes data; figures are drawn from it (hades.plots.run_figures)
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["generation"] for r in rows] == [1, 2]
    assert {"fitness_mean", "fitness_max", "fitness_min", "eval_return_mean", "bc_loss", "wall_seconds"} <= set(rows[0])
    # each generation counts its work: BC sample-steps = candidates x learners x BC steps x states;
    # environment steps lie between one per episode and the cap (candidates x learners x envs x 30)
    cfg = tiny_config()
    assert rows[0]["bc_sample_steps"] == 8 * cfg.num_inits * 10 * cfg.dataset_size
    assert 8 * cfg.num_inits * 2 <= rows[0]["env_steps"] <= 8 * cfg.num_inits * 2 * 30
    saved = json.loads((out / "summary.json").read_text())
    for key in ("env", "variant", "generations", "final_return_mean", "final_return_std", "wall_seconds"):
        assert key in saved
    assert saved["final_return_mean"] == summary["final_return_mean"]


@pytest.mark.slow  # determinism is also what test_resume_equals_uninterrupted checks
def test_same_seed_same_dataset(tmp_path, tiny_config):
    run(tiny_config(seed=7), tmp_path / "a")
    run(tiny_config(seed=7), tmp_path / "b")
    run(tiny_config(seed=8), tmp_path / "c")
    a, b, c = (load_file(tmp_path / x / "dataset.safetensors")["states"] for x in "abc")
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


# the other variants resume through the same code: kept for `-m slow`
@pytest.mark.parametrize(
    "variant",
    ["hades-f", pytest.param("hades-r", marks=pytest.mark.slow), pytest.param("direct-es", marks=pytest.mark.slow)],
)
def test_resume_equals_uninterrupted(tmp_path, tiny_config, variant):
    product = "policy.safetensors" if variant == "direct-es" else "dataset.safetensors"
    run(tiny_config(variant=variant, generations=4, checkpoint_every=2), tmp_path / "full")
    run(tiny_config(variant=variant, generations=2, checkpoint_every=2), tmp_path / "part")
    run(tiny_config(variant=variant, generations=4, checkpoint_every=2), tmp_path / "part", resume=True)
    full, part = load_file(tmp_path / "full" / product), load_file(tmp_path / "part" / product)
    assert full.keys() == part.keys()
    for k in full:
        np.testing.assert_array_equal(full[k], part[k])
    rows = [json.loads(x) for x in (tmp_path / "part" / "metrics.jsonl").read_text().splitlines()]
    assert [r["generation"] for r in rows] == [1, 2, 3, 4]


def test_a_checkpoint_resumes_only_under_its_own_settings(tmp_path, tiny_config):
    """What a grid, sweep or study does when its command changed: another BC learning rate would
    finish an old run under a new config.json; refused, the run untouched. More generations (a
    run continued further) and another chunking resume."""
    run(tiny_config(generations=2, checkpoint_every=1), tmp_path / "r")
    before = (tmp_path / "r" / "config.json").read_text()
    with pytest.raises(HadesError, match=r"made with other settings \(bc_lr 0.01 -> 0.02\)"):
        run(tiny_config(generations=2, checkpoint_every=1, bc_lr=0.02), tmp_path / "r", resume=True)
    assert (tmp_path / "r" / "config.json").read_text() == before
    summary = run(tiny_config(generations=3, checkpoint_every=2, chunk=2), tmp_path / "r", resume=True)
    assert summary["generations"] == 3


def test_unwritable_output_directory(tmp_path, tiny_config):
    (tmp_path / "file").write_text("not a directory")
    with pytest.raises(HadesError, match="cannot write"):
        run(tiny_config(), tmp_path / "file" / "run")


def test_refuses_to_overwrite_a_run(tmp_path, tiny_config):
    run(tiny_config(generations=1), tmp_path / "r")
    with pytest.raises(HadesError, match="already holds a run"):
        run(tiny_config(generations=1), tmp_path / "r")


def test_size_sweep_runs_every_size_and_plots(tmp_path):
    """Each size is a run; under the official label layout a size that is not a multiple of the
    action count trains on fewer states (CartPole's 2 actions: 5 asked, 4 trained), and the sweep
    says so in its rows (``states``), beside the asked size. Direct ES has no dataset to size."""
    args = [
        "--sizes",
        "2,5",
        "--label-layout",
        "official",
        *TINY_ARGS,
        "--generations",
        "1",
        "--quiet",
        "--out",
        str(tmp_path / "sw"),
    ]
    proc = cli("sweep-size", *args)
    assert proc.returncode == 0, proc.stderr
    result = json.loads((tmp_path / "sw" / "size_sweep.json").read_text())
    assert [r["dataset_size"] for r in result["results"]] == [2, 5]
    assert [r["states"] for r in result["results"]] == [2, 4]
    for n, states in ((2, 2), (5, 4)):
        assert load_dataset(tmp_path / "sw" / f"size_{n}" / "dataset.safetensors").size == states
    assert (tmp_path / "sw" / "size_sweep.png").stat().st_size > 1000
    again = cli("sweep-size", *args)
    assert again.returncode == 0 and json.loads((tmp_path / "sw" / "size_sweep.json").read_text()) == result  # kept
    refused = cli("sweep-size", "--variant", "direct-es", "--out", tmp_path / "d")
    assert refused.returncode == 2 and "direct ES" in refused.stderr and not (tmp_path / "d").exists()


def test_size_sweep_over_seeds_aggregates_finished_runs(tmp_path):
    """``hades sweep-size --seeds``: per size, the mean over seeds with its 95% t interval; finished
    runs (summary.json present) are read back, not rerun."""
    from hades.plots import size_sweep_figure
    from hades.presets import make_config
    from hades.stats import ci95
    from hades.sweeps import size_sweep_seeds

    returns = {0: {4: 100.0, 8: 300.0}, 1: {4: 200.0, 8: 320.0}, 2: {4: 150.0, 8: 340.0}}
    for s, by_size in returns.items():
        for n, r in by_size.items():
            d = tmp_path / f"seed{s}" / f"size_{n}"
            d.mkdir(parents=True)
            summary = {"final_return_mean": r, "final_return_std": 1.0, "wall_seconds": 2.0, "random_return_mean": 20.0}
            (d / "summary.json").write_text(json.dumps({**summary, "final_own_init_return_mean": r + 10}))
    by_seed = {s: [make_config(None, seed=s, dataset_size=n) for n in (4, 8)] for s in returns}
    rows = size_sweep_seeds(by_seed, tmp_path)
    assert [r["dataset_size"] for r in rows] == [4, 8]
    assert rows[0]["final_return_per_seed"] == [100.0, 200.0, 150.0] and rows[0]["final_return_mean"] == 150.0
    assert rows[1]["final_return_ci95"] == pytest.approx(ci95([300.0, 320.0, 340.0]))
    assert rows[1]["own_init_return_mean"] == pytest.approx(330.0) and rows[0]["random_return_mean"] == 20.0
    saved = json.loads((tmp_path / "size_sweep.json").read_text())
    assert saved["seeds"] == [0, 1, 2] and saved["results"] == rows
    size_sweep_figure(rows, tmp_path / "s.png")
    assert (tmp_path / "s.png").stat().st_size > 1000


def test_size_sweep_refuses_seed_and_seeds_together(tmp_path):
    proc = cli("sweep-size", "--seeds", "0,1", "--seed", "2", "--out", tmp_path)
    assert proc.returncode == 2 and "not both" in proc.stderr and "Traceback" not in proc.stderr
