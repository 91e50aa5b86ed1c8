"""Commands that work on artifacts and run directories: show, plot, and use without hades."""

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

DATA = Path(__file__).parent / "data"
ROOT = Path(__file__).resolve().parents[1]


def hades(*args):
    return subprocess.run([sys.executable, "-m", "hades.cli", *map(str, args)], capture_output=True, text=True)


def test_show_vector_dataset_names_features(tmp_path):
    proc = hades("show", DATA / "cartpole_hades_r.safetensors", "-o", tmp_path / "d.png")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.strip().splitlines()
    assert "pole angle" in lines[0] and lines[0].endswith("action")
    assert len(lines) == 1 + 4  # header + the 4 states
    assert (tmp_path / "d.png").stat().st_size > 1000


def test_show_minatar_dataset(tmp_path):
    proc = hades("show", DATA / "breakout_hades_f.safetensors", "-o", tmp_path / "b.png")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == ""  # image states are not printed as text
    assert (tmp_path / "b.png").stat().st_size > 1000


def test_plot_groups_seeds(tmp_path):
    for seed in (0, 1):
        run = tmp_path / f"r{seed}"
        run.mkdir()
        (run / "config.json").write_text(json.dumps({"env": "CartPole-v1", "variant": "hades-r", "seed": seed}))
        rows = [{"generation": g, "eval_return_mean": g * (seed + 1.0)} for g in (1, 2, 3)]
        (run / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    proc = hades("plot", tmp_path / "r0", tmp_path / "r1", "-o", tmp_path / "p.png")
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "p.png").stat().st_size > 1000
    proc = hades("plot", tmp_path / "nope", "-o", tmp_path / "q.png")
    assert proc.returncode == 2 and "not a readable run directory" in proc.stderr


@pytest.mark.skipif(importlib.util.find_spec("gymnasium") is None, reason="gymnasium not installed")
def test_dataset_trains_a_numpy_policy_in_gymnasium():
    """The artifact is usable without JAX or hades: NumPy BC, Gymnasium's own CartPole-v1."""
    spec = importlib.util.spec_from_file_location("numpy_cartpole", ROOT / "examples" / "numpy_cartpole.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    returns = module.main(str(DATA / "cartpole_hades_r.safetensors"), episodes=5)
    assert min(returns) >= 475


def test_transfer_sweep_writes_every_result(tmp_path):
    ds = DATA / "cartpole_hades_r.safetensors"
    proc = hades(
        "transfer",
        ds,
        ds,
        "--labels",
        "first,second",
        "--widths",
        "8,32",
        "--lrs",
        "1e-3,1e-2",
        "--epochs",
        "20,100",
        "--seeds",
        "1",
        "--episodes",
        "2",
        "-o",
        tmp_path / "t",
        "--quiet",
    )
    assert proc.returncode == 0, proc.stderr
    result = json.loads((tmp_path / "t" / "transfer.json").read_text())
    rows = result["results"]
    assert len(rows) == 2 * 2 * 2 * 2  # datasets x widths x lrs x epochs (x 1 seed)
    assert {(r["dataset"], r["width"], r["lr"], r["epochs"]) for r in rows} == {
        (d, w, lr, e) for d in ("first", "second") for w in (8, 32) for lr in (1e-3, 1e-2) for e in (20, 100)
    }
    assert all(0 <= r["return"] <= 500 for r in rows)
    # this dataset solves CartPole at its own settings (lr 1e-2, 100 steps) for other widths too
    assert all(r["return"] >= 475 for r in rows if r["lr"] == 1e-2 and r["epochs"] == 100)
    # and 20 steps at lr 1e-3 is too little training to get there
    assert min(r["return"] for r in rows if r["lr"] == 1e-3 and r["epochs"] == 20) < 475
    assert result["summary"]["first"]["per_width"]["32"]["count"] == 4
    assert len((tmp_path / "t" / "transfer.csv").read_text().splitlines()) == 1 + len(rows)
    assert (tmp_path / "t" / "transfer.png").stat().st_size > 1000


def test_transfer_breakout_random_sample(tmp_path):
    proc = hades(
        "transfer",
        DATA / "breakout_hades_f.safetensors",
        "--widths",
        "16",
        "--sample",
        "3",
        "--lrs",
        "1e-3,1e-1",
        "--epochs",
        "8,32",
        "--episodes",
        "1",
        "--eval-steps",
        "50",
        "-o",
        tmp_path / "t",
        "--quiet",
    )
    assert proc.returncode == 0, proc.stderr
    rows = json.loads((tmp_path / "t" / "transfer.json").read_text())["results"]
    assert len(rows) == 3
    assert all(1e-3 <= r["lr"] <= 1e-1 and 8 <= r["epochs"] <= 32 for r in rows)
    assert hades("transfer", DATA / "breakout_hades_f.safetensors", "--widths", "a,b").returncode == 2


def test_merge_pads_exactly_and_evaluates(tmp_path):
    from hades.artifacts import load_dataset

    a_path, b_path = DATA / "cartpole_hades_r.safetensors", DATA / "breakout_hades_f.safetensors"
    out = tmp_path / "m.safetensors"
    proc = hades(
        "merge", a_path, b_path, "-o", out, "--evaluate", "--seeds", "1", "--episodes", "2", "--eval-steps", "100"
    )
    assert proc.returncode == 0, proc.stderr
    a, b, m = load_dataset(a_path), load_dataset(b_path), load_dataset(out)
    x = m.inputs()
    da, na = 4, a.size
    assert x.shape == (a.size + b.size, 4 + 400)
    assert (x[:na, da:] == 0).all() and (x[na:, :da] == 0).all()  # zero padding in the policy's input space
    np.testing.assert_allclose(x[:na, :da], a.inputs(), rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(x[na:, da:], b.inputs().reshape(b.size, -1), rtol=1e-6, atol=1e-6)
    np.testing.assert_array_equal(m.actions, np.concatenate([a.actions, b.actions + 2]))  # joint categorical
    result = json.loads(proc.stdout)
    assert [t["env"] for t in result["tasks"]] == ["CartPole-v1", "Breakout-MinAtar"]
    cart = result["tasks"][0]
    assert cart["single_task_return"] == 100.0 and cart["multi_task_return"] == 100.0  # capped at 100 steps
    assert out.with_suffix(".png").stat().st_size > 1000 and out.with_suffix(".json").is_file()
    for cmd in (["train", out], ["transfer", out, "-o", tmp_path / "t"], ["render", out, "-o", tmp_path / "r.gif"]):
        proc = hades(*cmd)
        assert proc.returncode == 2 and "multi" in proc.stderr and "Traceback" not in proc.stderr


def test_merge_continuous_pads_actions(tmp_path):
    from hades.dataset import Dataset
    from hades.multitask import merge_datasets, task_view

    rng = np.random.default_rng(0)
    a = Dataset(
        rng.normal(size=(3, 3)).astype(np.float32),
        rng.normal(size=(3, 1)).astype(np.float32),
        "Pendulum-v1",
        "continuous",
        obs_mean=np.ones(3, np.float32),
        obs_std=np.full(3, 2.0, np.float32),
    )
    b = Dataset(
        rng.normal(size=(2, 2)).astype(np.float32),
        rng.normal(size=(2, 1)).astype(np.float32),
        "MountainCarContinuous-v0",
        "continuous",
    )
    m = merge_datasets(a, b)
    assert m.actions.shape == (5, 2)
    assert (m.actions[:3, 1] == 0).all() and (m.actions[3:, 0] == 0).all()
    x = m.inputs()
    assert (x[:3, 3:] == 0).all() and (x[3:, :3] == 0).all()
    back = task_view(m, 0)
    np.testing.assert_allclose(back.states, a.states, rtol=1e-6)
    np.testing.assert_array_equal(task_view(m, 1).actions, b.actions)
    disc = DATA / "cartpole_hades_r.safetensors"
    from hades.artifacts import save_dataset

    save_dataset(tmp_path / "a.safetensors", a)
    proc = hades("merge", tmp_path / "a.safetensors", disc, "-o", tmp_path / "x.safetensors")
    assert proc.returncode == 2 and "cannot merge continuous" in proc.stderr


@pytest.mark.parametrize(
    "dataset,suffix,extra", [("cartpole_hades_r", ".gif", []), ("breakout_hades_f", ".html", ["--own-init"])]
)
def test_render_records_an_episode(tmp_path, dataset, suffix, extra):
    out = tmp_path / f"ep{suffix}"
    path = DATA / f"{dataset}.safetensors"
    if extra:  # --own-init reads the run's saved init beside the dataset: lay out a run directory
        import shutil

        import jax

        from hades.artifacts import load_dataset, save_policy
        from hades.distill import Distiller
        from hades.evaluation import run_config

        shutil.copy(path, tmp_path / "dataset.safetensors")
        path = tmp_path / "dataset.safetensors"
        cfg = run_config(load_dataset(path))
        save_policy(tmp_path / "init.safetensors", jax.device_get(Distiller(cfg).fixed_init()), cfg.env, cfg.to_dict())
    proc = hades("render", path, "-o", out, "--max-frames", "12", "--eval-steps", "60", *extra)
    assert proc.returncode == 0, proc.stderr
    info = json.loads(proc.stdout)
    assert 1 <= info["steps"] <= 60 and 1 <= info["frames"] <= 13
    if suffix == ".gif":
        from PIL import Image

        assert Image.open(out).n_frames == info["frames"]
        assert info["return"] == info["steps"]  # CartPole pays 1 per step
    else:
        html = out.read_text()
        assert html.count("data:image/png;base64") >= 1 and "<script src=" not in html  # self-contained
    assert hades("render", DATA / f"{dataset}.safetensors", "-o", tmp_path / "x.avi").returncode == 2
