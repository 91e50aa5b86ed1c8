"""Tests of hades.plots."""

import json

from helpers import DATA, cli


def test_show_vector_dataset_names_features(tmp_path):
    proc = cli("show", DATA / "cartpole_hades_r.safetensors", "-o", tmp_path / "d.png")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.strip().splitlines()
    assert "pole angle" in lines[0] and lines[0].endswith("action")
    assert len(lines) == 1 + 4  # header + the 4 states
    assert (tmp_path / "d.png").stat().st_size > 1000


def test_show_minatar_dataset(tmp_path):
    proc = cli("show", DATA / "breakout_hades_f.safetensors", "-o", tmp_path / "b.png")
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
    proc = cli("plot", tmp_path / "r0", tmp_path / "r1", "-o", tmp_path / "p.png")
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "p.png").stat().st_size > 1000
    proc = cli("plot", tmp_path / "nope", "-o", tmp_path / "q.png")
    assert proc.returncode == 2 and "no such run directory" in proc.stderr


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
    proc = cli("plot", run, cwd=tmp_path.parent)
    assert proc.returncode == 0, proc.stderr
    assert (run / "runs.png").is_file() and not (tmp_path.parent / "runs.png").exists()
    proc = cli("plot", run, "--x", "env_steps")
    assert proc.returncode == 2 and "env_steps" in proc.stderr


def test_budget_curves_put_methods_on_candidate_evaluations_with_the_own_init_dashed(tmp_path, monkeypatch):
    """``--x evaluations`` is population x generation (a population-128 run and a population-64 run
    meet at equal evaluations, not at equal generations); ``--own-init`` adds HaDES-F's own-init
    series, dashed, in HaDES-F's colour; ``--log-x`` a log axis."""
    import numpy as np
    from matplotlib.axes import Axes

    from hades.cli import main

    def write(name, variant, population, own=None):
        run = tmp_path / name
        run.mkdir()
        cfg = {"env": "Breakout-MinAtar", "variant": variant, "seed": 0, "es": {"population": population}}
        (run / "config.json").write_text(json.dumps(cfg))
        rows = [
            {"generation": g, "eval_return_mean": float(g), "eval_own_init_return_mean": own and own * g}
            for g in (10, 20)
        ]
        (run / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
        return run

    f, d = write("f", "hades-f", 128, own=3.0), write("d", "direct-es", 64)
    calls = _recording(monkeypatch)
    scales = []
    monkeypatch.setattr(Axes, "set_xscale", lambda self, v, **k: scales.append(v))
    assert (
        main(["plot", str(f), str(d), "--x", "evaluations", "--own-init", "--log-x", "-o", str(tmp_path / "p.png")])
        == 0
    )
    lines = {kw["label"]: (args, kw) for name, args, kw, _ in calls if name == "plot"}
    assert set(lines) == {"hades-f (n=1)", "hades-f own init (n=1)", "direct-es (n=1)"}
    assert np.allclose(lines["hades-f (n=1)"][0][0], [1280, 2560])
    assert np.allclose(lines["direct-es (n=1)"][0][0], [640, 1280])
    own_x, own_y = lines["hades-f own init (n=1)"][0]
    assert np.allclose(own_x, [1280, 2560]) and np.allclose(own_y, [30, 60])
    assert lines["hades-f own init (n=1)"][1]["ls"] == "--" and lines["hades-f (n=1)"][1]["ls"] == "-"
    assert lines["hades-f own init (n=1)"][1]["color"] == lines["hades-f (n=1)"][1]["color"]
    assert scales == ["log"]
    proc = cli("plot", f, "--own-init", "--key", "eval_own_init_return_mean", "-o", tmp_path / "q.png")
    assert proc.returncode == 2 and "--own-init" in proc.stderr


def _recording(monkeypatch):
    """Record every Axes.plot / axhline call (kwargs and data) while a figure is drawn."""
    from matplotlib.axes import Axes

    calls = []
    for name in ("plot", "axhline"):
        original = getattr(Axes, name)

        def record(self, *args, _name=name, _original=original, **kwargs):
            calls.append((_name, args, kwargs, self))
            return _original(self, *args, **kwargs)

        monkeypatch.setattr(Axes, name, record)
    return calls


def test_large_tick_numbers_are_written_compactly():
    from hades.plots import compact_number

    assert [compact_number(v) for v in (0, 500, 2500, 10000, 12800, 89600, 2.56e6)] == [
        "0", "500", "2500", "10k", "12.8k", "89.6k", "2.56M",
    ]  # fmt: skip


def test_a_one_point_series_is_drawn_with_a_marker(tmp_path, monkeypatch):
    from hades.plots import curve_panels

    calls = _recording(monkeypatch)
    curve_panels({"Breakout": {"hades-f": [[{"generation": 200, "eval_return_mean": 1.5}]]}}, tmp_path / "p.png")
    (line,) = [kw for name, _, kw, _ in calls if name == "plot"]
    assert line.get("marker") == "o"


def test_plot_pools_only_runs_of_one_setting_and_length(tmp_path):
    def write(name, generations, **config):
        run = tmp_path / name
        run.mkdir()
        cfg = {"env": "CartPole-v1", "variant": "hades-r", "seed": 0, "generations": generations, **config}
        (run / "config.json").write_text(json.dumps(cfg))
        rows = [{"generation": g, "eval_return_mean": float(g)} for g in range(1, generations + 1)]
        (run / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
        return run

    a, b = write("a", 50), write("b", 12)
    c = write("c", 50, dataset_size=8, seed=1)
    d = write("d", 50, seed=2, checkpoint_every=3)  # output-only: a seed of a
    proc = cli("plot", a, b, c, d, "-o", tmp_path / "p.png")
    assert proc.returncode == 0, proc.stderr
    note = [line for line in proc.stderr.splitlines() if "not pooled" in line]
    assert len(note) == 1 and "3 series" in note[0] and "dataset_size" in note[0] and "length" in note[0]
    assert "checkpoint_every" not in note[0]


def test_legends_name_only_the_options_that_tell_series_apart(tmp_path, monkeypatch, capsys):
    """Three strategies, each with the settings that come with it (learning rate, rank weights):
    the legend says strategy=..., the note on stderr still lists every option that differs; a
    second option that alone separates two of four series is named beside it."""
    from hades.cli import main

    calls = _recording(monkeypatch)
    settings = {
        "snes": {"strategy": "SNES", "es_temperature": 20.0, "es_lr": 0.0},
        "pgpe": {"strategy": "PGPE", "es_temperature": 0.0, "es_lr": 0.05},
        "ars": {"strategy": "ARS", "es_temperature": 0.0, "es_lr": 0.05},
        "ars-s8": {"strategy": "ARS", "es_temperature": 0.0, "es_lr": 0.05, "sigma": 0.8},
    }
    for name, es in settings.items():
        run = tmp_path / name
        run.mkdir()
        cfg = {"env": "CartPole-v1", "variant": "hades-r", "seed": 0, "generations": 3, "es": es}
        (run / "config.json").write_text(json.dumps(cfg))
        (run / "metrics.jsonl").write_text(
            "".join(json.dumps({"generation": g, "eval_return_mean": g}) + "\n" for g in (1, 2, 3))
        )
    assert main(["plot", *(str(tmp_path / n) for n in settings), "-o", str(tmp_path / "p.png")]) == 0
    labels = sorted(kw["label"] for name, _, kw, _ in calls if name == "plot")
    assert labels == [
        "hades-r sigma=0.1 strategy=ARS (n=1)",
        "hades-r sigma=0.1 strategy=PGPE (n=1)",
        "hades-r sigma=0.1 strategy=SNES (n=1)",
        "hades-r sigma=0.8 strategy=ARS (n=1)",
    ]
    note = "differ in es_lr, es_temperature, sigma, strategy; labelled by sigma, strategy)"
    assert note in capsys.readouterr().err


def test_two_strategies_are_told_apart_by_the_strategy_not_by_what_came_with_it():
    from hades.report import telling_keys

    snes = {"es_rank_ties": "position", "es_temperature": 20.0, "strategy": "SNES"}
    lm = {"es_rank_ties": "average", "es_temperature": 0.0, "strategy": "LM_MA_ES"}
    assert telling_keys([snes, lm], sorted(snes)) == ["strategy"]
    assert telling_keys([snes, {**snes, "es_temperature": 5.0}], ["es_temperature"]) == ["es_temperature"]


def test_common_length_pools_seeds_of_unequal_length_cut_to_the_shortest(tmp_path, monkeypatch):
    from hades.cli import main

    calls = _recording(monkeypatch)
    for name, seed, generations in (("a", 0, 50), ("b", 1, 12)):
        run = tmp_path / name
        run.mkdir()
        cfg = {"env": "CartPole-v1", "variant": "hades-r", "seed": seed, "generations": 50}
        (run / "config.json").write_text(json.dumps(cfg))
        rows = [{"generation": g, "eval_return_mean": float(g + seed)} for g in range(1, generations + 1)]
        (run / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert (
        main(["plot", str(tmp_path / "a"), str(tmp_path / "b"), "--common-length", "-o", str(tmp_path / "p.png")]) == 0
    )
    (line,) = [(args, kw) for name, args, kw, _ in calls if name == "plot"]
    assert line[1]["label"] == "hades-r (n=2)"
    assert list(line[0][0]) == list(range(1, 13)) and list(line[0][1]) == [g + 0.5 for g in range(1, 13)]


def test_learning_curve_shows_the_random_policy(tmp_path, monkeypatch):
    from hades.plots import run_figures

    run = tmp_path / "run"
    run.mkdir()
    (run / "config.json").write_text(json.dumps({"env": "CartPole-v1", "variant": "hades-r"}))
    rows = [{"generation": 1, "fitness_mean": 1.0, "fitness_min": 0.0, "fitness_max": 2.0, "eval_return_mean": 3.0}]
    (run / "metrics.jsonl").write_text(json.dumps(rows[0]) + "\n")
    (run / "summary.json").write_text(json.dumps({"random_return_mean": 22.5}))
    calls = _recording(monkeypatch)
    run_figures(run)
    assert [args[0] for name, args, kw, _ in calls if name == "axhline"] == [22.5]


def test_transfer_star_sits_inside_the_axes_and_in_the_legend(tmp_path, monkeypatch):
    from hades.plots import transfer_figure

    rows = [{"width": w, "activation": "tanh", "depth": 2, "return": float(r)} for w in (16, 64) for r in range(4)]
    calls = _recording(monkeypatch)
    transfer_figure({"F": (rows, (64, "tanh", 2))}, tmp_path / "t.png")
    (star,) = [(args, kw, ax) for name, args, kw, ax in calls if name == "plot" and kw.get("marker") == "*"]
    (args, kw, ax) = star
    lo, hi = ax.get_ylim()
    assert lo < args[1][0] < hi and "evolved for" in kw["label"]


def test_budget_points_are_read_at_or_below_the_asked_budget(tmp_path):
    """``hades plot --at``: each series' last point at or below each asked x; none before its first."""
    import numpy as np

    from hades.report import curve_markdown, curve_points

    drawn = {"Breakout": {"direct-es": (np.array([1280.0, 2560.0]), np.array([1.0, 2.0]), np.array([0.5, 0.25]))}}
    rows = curve_points(drawn, [1000, 1280, 2000, 5000])
    assert [(r["x"], r["mean"], r["ci95"]) for r in rows] == [
        (None, None, None),
        (1280.0, 1.0, 0.5),
        (1280.0, 1.0, 0.5),
        (2560.0, 2.0, 0.25),
    ]
    table = curve_markdown(rows, "candidate evaluations")
    assert "| Breakout | direct-es | 2000 | 1280 | 1 ± 0.5 |" in table and "| 1000 | — | — |" in table


def test_the_random_policy_line_is_the_mean_over_the_panels_runs(tmp_path, monkeypatch):
    """Each seed measures its own random-policy return; the dotted line is their mean, not the
    last run's."""
    from hades.cli import main

    calls = _recording(monkeypatch)
    for seed, random in ((0, 0.0), (1, 10.0)):
        run = tmp_path / f"s{seed}"
        run.mkdir()
        cfg = {"env": "CartPole-v1", "variant": "hades-r", "seed": seed, "generations": 2}
        (run / "config.json").write_text(json.dumps(cfg))
        (run / "metrics.jsonl").write_text(
            "".join(json.dumps({"generation": g, "eval_return_mean": g}) + "\n" for g in (1, 2))
        )
        (run / "summary.json").write_text(json.dumps({"random_return_mean": random, "final_return_mean": 2.0}))
    assert main(["plot", str(tmp_path / "s0"), str(tmp_path / "s1"), "-o", str(tmp_path / "p.png")]) == 0
    assert [args[0] for name, args, _, _ in calls if name == "axhline"] == [5.0]


def test_the_tuning_figure_shows_pruned_trials_and_pairs_the_held_out_seeds(tmp_path, monkeypatch):
    """Pruned trials appear at their last in-run value; the held-out check draws one preset-to-best
    line per seed and names the paired difference and its verdict; a study without one says so."""
    from matplotlib.axes import Axes

    from hades.plots import tuning_figure

    def trial(n, state, value):
        return {"number": n, "state": state, "value": value, "params": {}}

    study = {
        "objective": "final_return_mean", "preset_value": 5.0, "importance": {"sigma": 1.0},
        "trials": [trial(0, "COMPLETE", 5.0), trial(1, "PRUNED", 2.0), trial(2, "COMPLETE", 7.0)],
        "holdout": {"seeds": [101, 102], "preset": [4.0, 6.0], "best": [8.0, 9.0], "difference_mean": 3.5,
                    "difference_ci95": 6.4, "verdict": "preset"},
    }  # fmt: skip
    calls = _recording(monkeypatch)
    titles = []
    monkeypatch.setattr(Axes, "set_title", lambda self, t, **k: titles.append(t))
    texts = []
    monkeypatch.setattr(Axes, "text", lambda self, x, y, t, **k: texts.append(t))
    tuning_figure({"studies": {"a": study, "b": {**study, "holdout": None}}}, tmp_path / "t.png")
    plotted = [(list(a[0]), list(a[1]), a[2] if len(a) > 2 else None) for name, a, _, _ in calls if name == "plot"]
    assert ([1], [2.0], "x") in plotted  # the pruned trial, at its in-run value
    assert ([0, 1], [4.0, 8.0], "o-") in plotted and ([0, 1], [6.0, 9.0], "o-") in plotted
    assert sum(p[0] == [0, 1] for p in plotted) == 2  # study b had no held-out check: no lines
    assert "held-out: best - preset +3.5 ± 6.4: the preset stays" in titles
    assert any("no held-out check" in t for t in texts)
    assert (tmp_path / "t.png").stat().st_size > 0
