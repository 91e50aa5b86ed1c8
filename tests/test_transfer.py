"""Tests of hades.transfer."""

import json

from helpers import DATA, cli

from hades.config import RetrainConfig


def test_transfer_sweep_writes_every_result(tmp_path):
    ds = DATA / "cartpole_hades_r.safetensors"
    proc = cli(
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
        "--policies",
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


def test_transfer_takes_run_directories_and_labels_them_by_name(tmp_path):
    """A run directory stands for the dataset in it, and its name is the default label (as a
    dataset file's directory is)."""
    import shutil

    for name in ("f-run", "r-run"):
        (tmp_path / name).mkdir()
        shutil.copy(DATA / "cartpole_hades_r.safetensors", tmp_path / name / "dataset.safetensors")
    args = "--widths 8 --lrs 1e-2 --epochs 5 --policies 1 --episodes 1 --quiet".split()
    proc = cli("transfer", tmp_path / "f-run", tmp_path / "r-run" / "dataset.safetensors", *args, "-o", tmp_path / "t")
    assert proc.returncode == 0, proc.stderr
    rows = json.loads((tmp_path / "t" / "transfer.json").read_text())["results"]
    assert {r["dataset"] for r in rows} == {"f-run", "r-run"}


def test_transfer_breakout_random_sample(tmp_path):
    proc = cli(
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
    assert cli("transfer", DATA / "breakout_hades_f.safetensors", "--widths", "a,b").returncode == 2


def test_transfer_sweeps_activations_and_depths(tmp_path, monkeypatch):
    """Every (width, activation, depth) group is trained as that architecture (the trainer is
    built with it) and reported under it."""
    from hades import transfer
    from hades.artifacts import load_dataset

    built = []
    real = transfer.make_trainer
    monkeypatch.setattr(
        transfer, "make_trainer", lambda ds, env, p, *a, **k: built.append(p) or real(ds, env, p, *a, **k)
    )
    ds = load_dataset(DATA / "cartpole_hades_r.safetensors")
    rows = transfer.transfer_sweep(
        ds, [8], [1e-2], [100], RetrainConfig(policies=2, episodes=2), depths=[1, 3], activations=["relu", "gelu"]
    )
    assert [(p.width, p.activation, p.depth) for p in built] == [
        (8, "relu", 1),
        (8, "relu", 3),
        (8, "gelu", 1),
        (8, "gelu", 3),
    ]
    assert {(r["activation"], r["depth"]) for r in rows} == {("relu", 1), ("relu", 3), ("gelu", 1), ("gelu", 3)}
    summary = transfer.summarize_groups(rows)
    assert list(summary) == ["8 gelu x1", "8 relu x1", "8 gelu x3", "8 relu x3"]
    assert all(v["count"] == 2 for v in summary.values())
    proc = cli(
        "transfer",
        DATA / "cartpole_hades_r.safetensors",
        "--widths",
        "8",
        "--lrs",
        "1e-2",
        "--epochs",
        "10",
        "--policies",
        "1",
        "--episodes",
        "1",
        "--activations",
        "relu,swish",
        "-o",
        tmp_path / "t",
    )
    assert proc.returncode == 2 and "swish" in proc.stderr and "Traceback" not in proc.stderr
