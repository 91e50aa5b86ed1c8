"""Tests of hades.render."""

import json

import pytest
from helpers import DATA, cli

from hades.artifacts import file_mode


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
    proc = cli("render", path, "-o", out, "--max-frames", "12", "--eval-steps", "60", *extra)
    assert proc.returncode == 0, proc.stderr
    info = json.loads(proc.stdout)
    assert out.stat().st_mode & 0o777 == file_mode()  # readable as any new file is, not mkstemp's 0600
    assert 1 <= info["steps"] <= 60 and 1 <= info["frames"] <= 13
    if suffix == ".gif":
        from PIL import Image

        assert Image.open(out).n_frames == info["frames"]
        assert info["return"] == info["steps"]  # CartPole pays 1 per step
    else:
        html = out.read_text()
        assert html.count("data:image/png;base64") >= 1 and "<script src=" not in html  # self-contained
        assert "http://" not in html and "https://" not in html  # nothing fetched (no icon font from a CDN)
        assert "&#x25B6;" in html  # the play button still has a face
    assert cli("render", DATA / f"{dataset}.safetensors", "-o", tmp_path / "x.avi").returncode == 2


def test_mp4_without_ffmpeg_is_refused_before_training(tmp_path, monkeypatch):
    import hades.bc
    import hades.render
    from hades.artifacts import load_dataset
    from hades.errors import HadesError

    monkeypatch.setattr(hades.render.shutil, "which", lambda name: None)
    monkeypatch.setattr(hades.render, "_imageio_ffmpeg", lambda: False)
    monkeypatch.setattr(hades.bc, "make_bc_train", lambda *a, **k: pytest.fail("trained before refusing"))
    ds = load_dataset(DATA / "cartpole_hades_r.safetensors")
    with pytest.raises(HadesError, match="MP4 needs ffmpeg"):
        hades.render.render_dataset(ds, tmp_path / "x.mp4")


def test_the_drawing_stage_reports_every_frame(tmp_path):
    from hades.artifacts import load_dataset
    from hades.render import render_dataset

    seen = []
    info = render_dataset(
        load_dataset("zoo:CartPole-v1"),
        tmp_path / "c.gif",
        eval_steps=40,
        max_frames=5,
        on_frame=lambda d, t: seen.append((d, t)),
    )
    assert seen[-1] == (info["frames"], info["frames"]) and {t for _, t in seen} == {info["frames"]}
