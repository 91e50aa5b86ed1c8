"""Beyond the paper: evolved inner-loop hyperparameters, sampled learners, dataset-size sweeps."""

import json
import subprocess
import sys

import jax
import numpy as np
import pytest

from hades.artifacts import load_dataset
from hades.distill import Distiller
from hades.runs import run


def test_evolved_bc_hyperparameters_are_genes_and_stored(tmp_path, tiny_config):
    cfg = tiny_config(evolve_bc=True, generations=3, sigma=0.5)
    d = Distiller(cfg)
    assert d.initial_solution(jax.random.PRNGKey(0))["bc_genes"].shape == (2,)
    summary = run(cfg, tmp_path / "r")
    evolved = summary["evolved_bc"]
    assert evolved["bc_lr"] != cfg.bc.bc_lr or evolved["bc_steps"] != cfg.bc.bc_steps  # the genes moved
    assert 1 <= evolved["bc_steps"] <= 2 * cfg.bc.bc_steps
    ds = load_dataset(tmp_path / "r" / "dataset.safetensors")
    assert ds.config["bc"]["bc_lr"] == pytest.approx(evolved["bc_lr"])
    assert ds.config["bc"]["bc_steps"] == evolved["bc_steps"]
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "hades.cli",
            "train",
            str(tmp_path / "r" / "dataset.safetensors"),
            "--seeds",
            "1",
            "--episodes",
            "1",
        ],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["bc"]["bc_steps"] == evolved["bc_steps"]  # train uses them by default


def test_evolved_genes_scale_the_learning_rate_and_steps(tiny_config):
    d = Distiller(tiny_config(evolve_bc=True, bc_steps=10))
    sol = {"bc_genes": np.array([np.log(3.0), np.log(1.5)], np.float32)}
    lr, steps = d.bc_hyperparameters(sol, np.float32(0.01), np.float32(10))
    assert float(lr) == pytest.approx(0.03, rel=1e-5) and int(steps) == 15
    _, steps = d.bc_hyperparameters({"bc_genes": np.array([0.0, 5.0], np.float32)}, np.float32(0.01), np.float32(10))
    assert int(steps) == 20  # capped at 2x bc_steps


def test_sampled_learners_vary_width_lr_and_steps(tiny_config):
    d = Distiller(tiny_config(variant="hades-r", learners="sampled", width=64, learner_min_width=8, num_inits=16))
    state = d.init()
    params, lr, steps = d.learners(jax.random.PRNGKey(3), state, 16)
    kernel = np.asarray(params["params"]["Dense_0"]["kernel"])  # [16 learners, in, 64]
    widths = (np.abs(kernel).sum(axis=1) > 0).sum(axis=1)
    assert set(widths) <= {8, 16, 32, 64} and len(set(widths)) >= 2
    lr = np.asarray(lr)
    assert lr.min() >= 0.01 / 10 - 1e-9 and lr.max() <= 0.01 * 10 + 1e-9 and lr.std() > 0
    assert np.asarray(steps).min() >= 5 and np.asarray(steps).max() <= 10
    state, m = d.step(state)
    assert bool(m["finite"])


def test_sampled_learners_need_hades_r(tiny_config):
    from hades.errors import HadesError

    with pytest.raises(HadesError, match="hades-r"):
        tiny_config(variant="hades-f", learners="sampled")


def test_size_sweep_runs_every_size_and_plots(tmp_path):
    args = [
        "--sizes",
        "2,4",
        "--generations",
        "1",
        "--population",
        "8",
        "--width",
        "16",
        "--depth",
        "1",
        "--bc-steps",
        "10",
        "--eval-envs",
        "2",
        "--eval-steps",
        "30",
        "--eval-episodes",
        "2",
        "--quiet",
        "--out",
        str(tmp_path / "sw"),
    ]
    proc = subprocess.run([sys.executable, "-m", "hades.cli", "sweep-size", *args], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    result = json.loads((tmp_path / "sw" / "size_sweep.json").read_text())
    assert [r["dataset_size"] for r in result["results"]] == [2, 4]
    for n in (2, 4):
        assert load_dataset(tmp_path / "sw" / f"size_{n}" / "dataset.safetensors").size == n
    assert (tmp_path / "sw" / "size_sweep.png").stat().st_size > 1000
    again = subprocess.run([sys.executable, "-m", "hades.cli", "sweep-size", *args], capture_output=True, text=True)
    assert again.returncode == 0 and json.loads((tmp_path / "sw" / "size_sweep.json").read_text()) == result  # kept
