"""Tests of hades.plots."""

import json

from helpers import DATA, cli, hades


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
    proc = cli("plot", tmp_path / "nope", "-o", tmp_path / "q.png")
    assert proc.returncode == 2 and "not a readable run directory" in proc.stderr


def test_curve_panels_one_panel_per_environment_with_t_bands(tmp_path):
    import numpy as np

    from hades.plots import curve_panels

    def rows(scale):
        return [{"generation": g, "env_steps": 10.0, "eval_return_mean": g * scale} for g in (1, 2, 3)]

    panels = {"CartPole-v1": {"hades-r": [rows(1.0), rows(2.0)]}, "Acrobot-v1": {"hades-f": [rows(-1.0)]}}
    drawn = curve_panels(panels, tmp_path / "c.png", x="env_steps")
    assert set(drawn) == {"CartPole-v1", "Acrobot-v1"}  # never two environments on one axis
    x, mean, half = drawn["CartPole-v1"]["hades-r"]
    assert np.allclose(x, [10, 20, 30])  # environment steps accumulate over generations
    assert np.allclose(mean, [1.5, 3.0, 4.5])
    assert np.allclose(half, 12.706 * np.array([1, 2, 3]) / 2, rtol=1e-3)  # Student t, 1 degree of freedom
    assert np.isnan(drawn["Acrobot-v1"]["hades-f"][2]).all()  # one seed: no band
    assert (tmp_path / "c.png").stat().st_size > 1000


def test_a_method_has_one_colour_in_every_figure():
    """A grid holding only hades-f drew it in C0, one holding every method in C1: the two published
    reproduction figures disagreed on the same method's colour."""
    from hades.plots import label_colours

    alone, together = label_colours(["hades-f"]), label_colours(["hades-r", "direct-es", "hades-f"])
    assert alone["hades-f"] == together["hades-f"] == "C1"
    assert together["direct-es"] == "C0" and together["hades-r"] == "C2"
    assert label_colours(["mlp", "hades-r"])["mlp"] == "C3"  # other labels after the methods
    assert label_colours(["a", "b"], fixed=())["b"] == "C1"


def test_plot_without_output_writes_beside_the_runs(tmp_path):
    run = tmp_path / "r0"
    run.mkdir()
    (run / "config.json").write_text(json.dumps({"env": "CartPole-v1", "variant": "hades-r", "seed": 0}))
    (run / "metrics.jsonl").write_text(json.dumps({"generation": 1, "eval_return_mean": 3.0}) + "\n")
    proc = hades("plot", run, cwd=tmp_path.parent)
    assert proc.returncode == 0, proc.stderr
    assert (run / "runs.png").is_file() and not (tmp_path.parent / "runs.png").exists()
    proc = hades("plot", run, "--x", "env_steps")
    assert proc.returncode == 2 and "env_steps" in proc.stderr
