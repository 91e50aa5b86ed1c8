"""Tests of hades.plots."""

import json

from helpers import DATA, hades


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
