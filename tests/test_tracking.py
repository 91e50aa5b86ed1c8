"""--track tensorboard / wandb mirror a run: config, every metrics row, the summary, the figures."""

import os
import struct

import pytest
from helpers import TINY_ARGS, cli, hades


def tensorboard_scalars(logdir) -> dict[str, list[tuple[int, float]]]:
    """Scalars of TensorBoard event files (TFRecord: length, crc, Event proto, crc)."""
    from tensorboardX.proto.event_pb2 import Event

    out: dict[str, list[tuple[int, float]]] = {}
    for path in logdir.iterdir():
        data = path.read_bytes()
        i = 0
        while i < len(data):
            (n,) = struct.unpack("<Q", data[i : i + 8])
            event = Event.FromString(data[i + 12 : i + 12 + n])
            i += 12 + n + 4
            for v in event.summary.value:
                if v.HasField("simple_value"):
                    out.setdefault(v.tag, []).append((event.step, v.simple_value))
    return out


def test_tensorboard_mirrors_every_row_and_the_summary(tmp_path):
    pytest.importorskip("tensorboardX")
    out = tmp_path / "run"
    proc = cli("distill", *TINY_ARGS, "--generations", 3, "--track", "tensorboard", "--out", out, "--quiet")
    assert proc.returncode == 0, proc.stderr
    scalars = tensorboard_scalars(out / "tensorboard")
    assert [step for step, _ in scalars["fitness_mean"]] == [1, 2, 3]  # every metrics row, step = generation
    assert "summary/final_return_mean" in scalars and "eval_return_mean" in scalars
    assert (out / "metrics.jsonl").read_text().count("\n") == 3  # still the source of truth


@pytest.mark.slow  # the same Tracker path as TensorBoard's; wandb's start-up is slow
def test_wandb_offline(tmp_path):
    pytest.importorskip("wandb")
    out = tmp_path / "run"
    env = {**os.environ, "WANDB_MODE": "offline", "WANDB_SILENT": "true"}
    proc = hades("distill", *TINY_ARGS, "--track", "wandb", "--out", out, "--quiet", env=env)
    assert proc.returncode == 0, proc.stderr
    log = next((out / "wandb").glob("offline-run-*/run-*.wandb")).read_bytes()
    assert b"fitness_mean" in log and b"final_return_mean" in log
    assert list((out / "wandb").glob("offline-run-*/files/media/images/learning_curve*.png"))


def test_unknown_or_missing_tracker_is_refused_before_running(tmp_path):
    proc = cli("distill", "--track", "mlflow", "--out", tmp_path / "x")
    assert proc.returncode == 2 and "unknown 'mlflow'" in proc.stderr


def test_a_tracker_that_is_not_installed_is_named(monkeypatch):
    import importlib.util

    from hades.errors import HadesError
    from hades.tracking import check

    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(HadesError, match="--track wandb needs wandb: pip install 'hades\\[track\\]'"):
        check("wandb")
