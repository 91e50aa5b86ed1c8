"""Fault injection: kills, signals, concurrent writers, corrupted files and impossible settings.
Every case ends in one line on stderr and a non-zero exit, or recovers; none prints a traceback,
and no wrong dataset is ever written."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from helpers import SUITE_LEVEL, TINY_ARGS, cli, hades, one_line_error, users_level_env
from safetensors.numpy import load_file

from hades.artifacts import load_checkpoint, load_dataset
from hades.errors import HadesError

# the shared tiny run without its generation count (each test sets its own), checkpointing every generation
TINY = [a for k, v in zip(TINY_ARGS[::2], TINY_ARGS[1::2]) if k != "--generations" for a in (k, v)]
TINY += ["--quiet", "--checkpoint-every", "1"]


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """An uninterrupted 6-generation run: the dataset every recovered run must reproduce."""
    out = tmp_path_factory.mktemp("ref") / "run"
    proc = cli("distill", *TINY, "--generations", "6", "--out", out)
    assert proc.returncode == 0, proc.stderr
    return out


def _copy(run_dir, tmp_path):
    import shutil

    return Path(shutil.copytree(run_dir, tmp_path / "run", ignore=shutil.ignore_patterns(".hades.lock")))


def _start(out, generations=6):
    return subprocess.Popen(
        [sys.executable, "-m", "hades.cli", "distill", *TINY, "--generations", str(generations), "--out", str(out)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _wait_for_generation(out, generation, proc, timeout=240):
    end = time.time() + timeout
    while time.time() < end:
        rows = (out / "metrics.jsonl").read_text().splitlines() if (out / "metrics.jsonl").is_file() else []
        if len(rows) >= generation:
            return
        if proc.poll() is not None:
            pytest.fail(f"run ended early: {proc.stderr.read()[-1000:]}")
        time.sleep(0.05)
    pytest.fail("run did not reach the generation in time")


@pytest.mark.parametrize(
    "sig,code",
    [
        (signal.SIGTERM, 143),
        pytest.param(signal.SIGKILL, -9, marks=pytest.mark.slow),
        pytest.param(signal.SIGINT, 130, marks=pytest.mark.slow),
    ],
)
def test_a_killed_run_resumes_to_the_identical_dataset(tmp_path, reference, sig, code):
    out = tmp_path / "run"
    proc = _start(out)
    _wait_for_generation(out, 2, proc)
    proc.send_signal(sig)
    proc.wait(timeout=120)
    assert proc.returncode == code, proc.stderr.read()[-2000:]
    if sig != signal.SIGKILL:
        assert "Traceback" not in proc.stderr.read()
    resumed = cli("distill", "--resume", out, "--quiet")
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    rows = [json.loads(r) for r in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["generation"] for r in rows] == list(range(1, 7))  # no row lost, none repeated
    np.testing.assert_array_equal(
        load_file(out / "dataset.safetensors")["states"], load_file(reference / "dataset.safetensors")["states"]
    )
    assert not list(out.glob(".*.tmp"))  # stale temporary files are cleaned


def test_the_suites_compiler_level_computes_what_users_get(tmp_path, reference):
    """conftest.py compiles at LLVM -O1 to save time; the run a user makes at XLA's default level
    must give the same dataset and evaluation, bit for bit."""
    assert SUITE_LEVEL in os.environ["XLA_FLAGS"]  # the reference's level
    env = users_level_env()
    out = tmp_path / "default-level"
    assert hades("distill", *TINY, "--generations", "6", "--out", out, env=env).returncode == 0
    for name in ("states", "actions"):
        ours, theirs = (load_file(d / "dataset.safetensors")[name] for d in (out, reference))
        np.testing.assert_array_equal(ours, theirs)
    summaries = [json.loads((d / "summary.json").read_text()) for d in (out, reference)]
    assert summaries[0]["final_return_mean"] == summaries[1]["final_return_mean"]


def test_a_second_writer_is_refused(tmp_path):
    out = tmp_path / "run"
    first = _start(out, generations=100_000)  # still running when the others start
    try:
        _wait_for_generation(out, 1, first)
        second = cli("distill", *TINY, "--generations", "2", "--out", out)
        assert "another hades process" in one_line_error(second)
        third = cli("distill", "--resume", out, "--quiet")
        assert "another hades process" in one_line_error(third)
    finally:
        first.kill()
        first.wait()


def test_a_finished_run_is_not_redone(tmp_path, reference):
    before = {p.name: p.stat().st_mtime_ns for p in reference.iterdir()}
    proc = cli("distill", "--resume", reference, "--quiet")
    assert proc.returncode == 0 and "already finished" in proc.stderr
    assert {p.name: p.stat().st_mtime_ns for p in reference.iterdir()} == before


def test_resume_without_a_checkpoint_says_start_again(tmp_path):
    (tmp_path / "run").mkdir()
    assert "without --resume" in one_line_error(cli("distill", "--resume", tmp_path / "run"))


def test_a_foreign_directory_is_not_overwritten(tmp_path):
    out = tmp_path / "other"
    out.mkdir()
    (out / "metrics.jsonl").write_text("precious\n")
    assert "not a hades run" in one_line_error(cli("distill", *TINY, "--generations", "1", "--out", out))
    assert (out / "metrics.jsonl").read_text() == "precious\n"


def test_conflicting_resume_options_are_refused(tmp_path, reference):
    assert "--out" in one_line_error(cli("distill", "--resume", reference, "--out", tmp_path / "x"))
    assert "hades distill" in one_line_error(cli("baseline", "--resume", reference))


def test_distill_resumes_the_direct_es_runs_it_starts(tmp_path):
    out = tmp_path / "des"
    assert cli("distill", *TINY, "--variant", "direct-es", "--generations", "1", "--out", out).returncode == 0
    proc = cli("distill", "--resume", out, "--generations", "2")
    assert proc.returncode == 0, proc.stderr
    assert json.loads((out / "summary.json").read_text())["generations"] == 2


@pytest.mark.parametrize(
    "edit",
    [
        lambda leaves, meta: ([leaves[0] + 1e-3, *leaves[1:]], meta),  # one value of the state
        lambda leaves, meta: (leaves, {**meta, "generation": "1"}),  # the generation counter
        lambda leaves, meta: (leaves, {**meta, "config": meta["config"].replace('"seed": 0', '"seed": 5')}),
    ],
)
def test_a_tampered_checkpoint_is_refused(tmp_path, reference, edit):
    out = _copy(reference, tmp_path)
    leaves, meta = load_checkpoint(out / "checkpoint.safetensors")
    new_leaves, new_meta = edit(leaves, dict(meta))
    from safetensors.numpy import save_file

    tensors = {f"leaf_{i:05d}": np.asarray(x) for i, x in enumerate(new_leaves)}
    save_file(tensors, out / "checkpoint.safetensors", metadata=new_meta)  # keeps the old checksum
    assert "checksum" in one_line_error(cli("distill", "--resume", out, "--generations", "7"))


def test_a_flipped_byte_in_a_dataset_is_refused(tmp_path, reference):
    data = bytearray((reference / "dataset.safetensors").read_bytes())
    data[-3] ^= 0x10
    (tmp_path / "d.safetensors").write_bytes(bytes(data))
    with pytest.raises(HadesError, match="checksum"):
        load_dataset(tmp_path / "d.safetensors")
    assert "checksum" in one_line_error(cli("train", tmp_path / "d.safetensors"))


@pytest.mark.parametrize(
    "text",
    ['{"generation": 1, "fitness_mean"', "not json\n", '{"generation": "one"}\n', "[1, 2]\n"],
)
def test_a_corrupt_metrics_file_is_refused_on_resume(tmp_path, reference, text):
    out = _copy(reference, tmp_path)
    (out / "metrics.jsonl").write_text(text)
    assert "metrics.jsonl" in one_line_error(cli("distill", "--resume", out, "--generations", "7"))


@pytest.mark.parametrize(
    "args,message",
    [
        (["--sigma", "inf"], "sigma"),
        (["--sigma", "nan"], "sigma"),
        (["--bc-lr", "1e30"], "bc-lr"),
        (["--sigma", "1e30"], "sigma"),
        (["--width", "1000000000"], "at most 16,384"),
        (["--dataset-size", "1000000000"], "at most 100,000"),
        (["--population", "1000000000"], "at most 10,000,000"),
        (["--width", "16384", "--depth", "64"], "memory"),
        (["--population", "10000000", "--dataset-size", "100000"], "memory"),
        (["--seed", "-1"], "--seed must be in"),
        (["--seed", str(2**64)], "--seed must be in"),
        (["--init-scale", "inf"], "init-scale"),
    ],
)
def test_impossible_settings_are_refused_before_anything_starts(tmp_path, args, message):
    t0 = time.time()
    proc = cli("distill", *TINY, "--generations", "1", *args, "--out", tmp_path / "run")
    assert message in one_line_error(proc)
    assert time.time() - t0 < 60
    assert not (tmp_path / "run" / "dataset.safetensors").exists()


@pytest.mark.parametrize("field,value", [("obs_std", 0.0), ("obs_std", np.nan), ("obs_mean", np.inf)])
def test_train_refuses_broken_normalisation(tmp_path, field, value):
    from hades.artifacts import save_dataset

    ds = load_dataset("tests/data/cartpole_hades_r.safetensors")
    stats = {"obs_mean": np.zeros(4, np.float32), "obs_std": np.ones(4, np.float32)}
    stats[field] = np.full(4, value, np.float32)
    import dataclasses

    save_dataset(tmp_path / "d.safetensors", dataclasses.replace(ds, **stats))
    assert field in one_line_error(cli("train", tmp_path / "d.safetensors", "--policies", "1", "--episodes", "1"))


def test_a_non_finite_state_stops_the_run_and_keeps_the_last_good_checkpoint(tmp_path, tiny_config, monkeypatch):
    """A search distribution that turns NaN at generation 3 (fitness stays finite: discrete
    environments always return finite rewards) stops the run there; what is on disk is finite."""
    import jax.numpy as jnp

    from hades.es import Strategy
    from hades.runs import run

    tell = Strategy.tell

    def poisoned(self, key, population, fitness, state):
        state = tell(self, key, population, fitness, state)
        bad = jnp.where(state.generation_counter >= 3, jnp.nan, state.mean)  # after the third update
        return state.replace(mean=bad)

    monkeypatch.setattr(Strategy, "tell", poisoned)
    out = tmp_path / "run"
    with pytest.raises(HadesError, match="non-finite.*generation 3.*generation 2"):
        run(tiny_config(generations=6, strategy="SNES"), out)
    leaves, meta = load_checkpoint(out / "checkpoint.safetensors")
    assert meta["generation"] == "2"
    assert all(np.all(np.isfinite(x)) for x in leaves if np.issubdtype(x.dtype, np.floating))
    assert np.all(np.isfinite(load_file(out / "dataset.safetensors")["states"]))


def test_a_stop_request_whose_interrupt_was_swallowed_still_stops_the_run(tmp_path, tiny_config):
    """The signal handler raises KeyboardInterrupt; raised inside a garbage-collector callback
    (JAX registers one) Python prints "Exception ignored" and carries on. The request it recorded
    must still stop the run after that generation, checkpoint kept, summary not written."""
    from hades import stopping
    from hades.runs import Interrupted, Reporter, run

    class SwallowedAtGeneration2(Reporter):
        def generation(self, row):
            if row["generation"] == 2:
                stopping.request(signal.SIGTERM)  # what the handler records; its exception is lost

    out = tmp_path / "run"
    try:
        with pytest.raises(Interrupted) as stopped:
            run(tiny_config(generations=6), out, reporter=SwallowedAtGeneration2())
    finally:
        stopping.clear()
    assert stopped.value.generation == 2
    assert load_checkpoint(out / "checkpoint.safetensors")[1]["generation"] == "2"
    assert not (out / "summary.json").exists()
    assert len((out / "metrics.jsonl").read_text().splitlines()) == 2


def test_a_dropped_interrupt_of_a_stop_request_prints_no_traceback(capsys):
    """Python reports an exception it drops (in a gc callback or a finaliser: "Exception ignored
    in ... Traceback"); the command line keeps that report for everything but the interrupt of a
    stop request it has recorded, which the run loop acts on."""
    from hades import stopping
    from hades.cli import _unraisable

    class DroppedAtOnce:  # its finaliser raises: Python drops that exception and reports it
        def __init__(self, exc):
            self.exc = exc

        def __del__(self):
            raise self.exc

    def drop(exc):
        hook, sys.unraisablehook = sys.unraisablehook, _unraisable
        try:
            DroppedAtOnce(exc)
        finally:
            sys.unraisablehook = hook
        return capsys.readouterr().err

    try:
        stopping.request(signal.SIGTERM)
        assert drop(KeyboardInterrupt()) == ""
        assert "ValueError: a real fault" in drop(ValueError("a real fault"))  # not ours: Python's report stands
        stopping.clear()
        assert "KeyboardInterrupt" in drop(KeyboardInterrupt())  # no stop recorded: reported as Python would
    finally:
        stopping.clear()


def test_the_command_line_leaves_no_stop_request_and_gives_back_the_signal_handlers(capsys):
    """In-process callers (notebooks, tests) get their SIGINT and SIGTERM handlers back after
    `hades ...`, and no stop request stands to stop their next run."""
    from hades import stopping
    from hades.cli import main

    before = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM), sys.unraisablehook
    stopping.request(signal.SIGTERM)  # left from an earlier interrupted command
    assert main(["presets"]) == 0
    assert sys.unraisablehook is before[2]
    assert (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)) == before[:2]
    assert stopping.requested() is None


def test_an_artifact_is_size_checked_before_it_is_read(tmp_path):
    path = tmp_path / "big.safetensors"
    header = json.dumps({"x": {"dtype": "F32", "shape": [1 << 40], "data_offsets": [0, 4 << 40]}}).encode()
    path.write_bytes(len(header).to_bytes(8, "little") + header + b"\0" * 64)
    with pytest.raises(HadesError, match="size"):
        load_dataset(path)


def test_temporary_files_get_no_fixed_name(tmp_path):
    from hades.artifacts import atomic_write

    target = tmp_path / "x.json"
    os.symlink(tmp_path / "elsewhere", tmp_path / ".x.json.tmp")
    atomic_write(target, "{}")
    assert target.read_text() == "{}" and not (tmp_path / "elsewhere").exists()


def test_a_run_killed_before_its_first_checkpoint_starts_again_in_place(tmp_path, tiny_config):
    """What a kill -9 during compilation leaves (config, an empty metrics file, a stale temporary)
    is the same run unfinished: running it again without --resume is allowed; another config is not."""
    import json as _json

    from hades.runs import run

    cfg = tiny_config(generations=1)
    out = tmp_path / "run"
    out.mkdir()
    (out / "config.json").write_text(_json.dumps(cfg.to_dict()))
    (out / "metrics.jsonl").write_text("")
    (out / ".hades-dataset.safetensors.abc12345.tmp").write_bytes(b"half")
    (out / ".my_notes.tmp").write_text("the user's own")
    run(cfg, out)
    assert (out / "summary.json").is_file() and not list(out.glob(".hades-*.tmp"))
    assert (out / ".my_notes.tmp").read_text() == "the user's own"  # only hades' own temporaries go
    other = tmp_path / "other"
    other.mkdir()
    (other / "config.json").write_text(_json.dumps(tiny_config(seed=3).to_dict()))
    with pytest.raises(HadesError, match="not a hades run"):
        run(cfg, other)
