"""The fault campaign's cases, one test each: corrupt or forged files and bad values end in one line
and exit 2 (or a correct result), never a traceback, a hang, a wrong result with exit 0, or a write
outside the output path. Forged artifacts are written with the checksum recomputed, as anyone can."""

import json
import random
import shutil
import time
import warnings

import numpy as np
import pytest
from helpers import DATA, cli, one_line_error
from safetensors.numpy import load as st_load
from safetensors.numpy import save as st_save

from hades.artifacts import _write_tensors, load_dataset, save_checkpoint
from hades.errors import HadesError, HadesWarning

CARTPOLE = DATA / "cartpole_hades_r.safetensors"


def parts(path):
    """(tensors, metadata) of a safetensors file."""
    from safetensors import safe_open

    raw = path.read_bytes()
    with safe_open(path, "np") as f:
        meta = dict(f.metadata())
    return st_load(raw), meta


def forge(path, out, tensors=None, meta=None, config=None, checksum=True):
    """A copy of ``path`` with tensors / metadata / config fields replaced, checksum recomputed
    (or dropped)."""
    t, m = parts(path)
    t.update(tensors or {})
    m.update(meta or {})
    if config:
        c = json.loads(m["config"])
        for dotted, value in config.items():
            node = c
            *up, last = dotted.split(".")
            for k in up:
                node = node[k]
            node[last] = value
        m["config"] = json.dumps(c)
    if checksum:
        _write_tensors(out, t, m)
    else:
        m.pop("checksum", None)
        out.write_bytes(st_save({k: np.ascontiguousarray(v) for k, v in t.items()}, metadata=m))
    return out


@pytest.mark.parametrize(
    "change, says",
    [
        (dict(tensors={"states": np.zeros((0, 4), np.float32), "actions": np.zeros(0, np.int32)}), "at least one"),
        (dict(config={"actions": "evil"}), "unknown actions"),
        (dict(config={"bc.bc_steps": 10**9}), "--bc-steps must be at most"),
        (dict(config={"seed": -1}), "--seed must be in"),
        (dict(config={"policy.width": "wide"}), "setting width must be int"),
        (dict(tensors={"states": np.full((4, 4), 3e38, np.float32)}), "input units"),
        (dict(tensors={"obs_std": np.full(4, 1e-38, np.float32)}), "input units"),
        (dict(meta={"env_spec": json.dumps({"feature_names": "x"})}), "feature_names"),
        (dict(meta={"obs_norm": "magic"}), "unknown obs_norm"),
        (dict(meta={"config": "[1, 2]"}), "JSON objects"),
        (dict(tensors={"actions": np.array([0, -1, 1, 0], np.int32)}), ">= 0"),
    ],
)
def test_forged_artifact_fields_are_refused_by_train_and_show(tmp_path, change, says):
    t, _ = parts(CARTPOLE)
    if "obs_std" in change.get("tensors", {}) and "obs_std" not in t:
        change["tensors"]["obs_mean"] = np.zeros(4, np.float32)
    bad = forge(CARTPOLE, tmp_path / "bad.safetensors", **change)
    for command in (["train", bad, "--policies", "1", "--episodes", "1"], ["show", bad, "-o", tmp_path / "x.png"]):
        assert says in one_line_error(cli(*command)), command
    assert not (tmp_path / "x.png").exists()


def test_an_artifact_without_checksum_is_read_with_a_warning(tmp_path):
    plain = forge(CARTPOLE, tmp_path / "old.safetensors", checksum=False)
    with pytest.warns(HadesWarning, match="no checksum"):
        load_dataset(plain)
    out = cli("show", plain, "-o", tmp_path / "x.png")
    assert out.returncode == 0 and "hades: warning:" in out.stderr and "no checksum" in out.stderr


def test_every_shipped_file_carries_a_checksum():
    from importlib.resources import files

    from safetensors import safe_open

    shipped = list((files("hades") / "zoo_data").rglob("*.safetensors")) if hasattr(files("hades"), "rglob") else []
    if not shipped:
        from pathlib import Path

        shipped = list(Path(str(files("hades") / "zoo_data")).rglob("*.safetensors"))
    assert any(p.name == "init.safetensors" for p in shipped)
    for p in shipped:
        with safe_open(p, "np") as f:
            assert "checksum" in f.metadata(), p
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # and every one verifies
        for p in shipped:
            if p.name == "dataset.safetensors":
                load_dataset(p)


@pytest.mark.parametrize(
    "args, says",
    [
        (["render", CARTPOLE, "-o", "{tmp}/a.gif", "--max-frames", "0"], "--max-frames"),
        (["render", CARTPOLE, "-o", "{tmp}/a.gif", "--fps", "0"], "--fps"),
        (["render", CARTPOLE, "-o", "{tmp}/a.gif", "--fps", "-5"], "--fps"),
        (["transfer", CARTPOLE, "-o", "{tmp}/t", "--lrs", "nan"], "--lrs"),
        (["transfer", CARTPOLE, "-o", "{tmp}/t", "--lrs", "inf"], "--lrs"),
        (["train", CARTPOLE, "--seed", "-1"], "--seed"),
        (["train", CARTPOLE, "--seed", str(2**70)], "--seed"),
        (["show", CARTPOLE, "-o", "{tmp}/no/such/dir/x.png"], "No such file or directory"),
    ],
)
def test_bad_values_are_one_line(tmp_path, args, says):
    assert says in one_line_error(cli(*[str(a).format(tmp=tmp_path) for a in args]))


def test_show_refuses_a_dataset_too_wide_to_draw(tmp_path):
    wide = tmp_path / "wide.safetensors"
    _write_tensors(
        wide,
        {"states": np.zeros((4, 100_000), np.float32), "actions": np.zeros(4, np.int32)},
        {"format": "hades.dataset", "schema_version": "1", "env": "wide", "action_space": "discrete"},
    )
    t0 = time.time()
    assert "too large to draw" in one_line_error(cli("show", wide, "-o", tmp_path / "w.png"))
    assert time.time() - t0 < 30


def test_plot_and_table_refuse_json_that_is_not_an_object(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.json").write_text("[1, 2]")
    (run / "summary.json").write_text("[1, 2]")
    (run / "metrics.jsonl").write_text('{"generation": 1, "eval_return_mean": 1.0}\n')
    one_line_error(cli("plot", run, "-o", tmp_path / "p.png"))
    one_line_error(cli("table", run))


# -- runs: resume, seeds, signals, disks ----------------------------------------------------------


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    from hades.presets import make_config
    from hades.runs import run

    out = tmp_path_factory.mktemp("fin") / "run"
    cfg = make_config(
        None, population=8, generations=2, width=8, depth=1, bc_steps=5, eval_envs=2, eval_steps=20,
        eval_episodes=2, eval_policies=2, checkpoint_every=1,
    )  # fmt: skip
    run(cfg, out)
    return out, cfg


def _copy(src, tmp_path):
    return shutil.copytree(src, tmp_path / "run", ignore=shutil.ignore_patterns(".hades.lock"))


@pytest.mark.parametrize("what", ["corrupt", "directory"])
def test_resume_of_a_run_whose_summary_is_broken(tmp_path, finished, what):
    out = _copy(finished[0], tmp_path)
    (out / "summary.json").unlink()
    if what == "corrupt":
        (out / "summary.json").write_text("{not json")
        proc = cli("distill", "--resume", out)
        assert proc.returncode == 0, proc.stderr  # rebuilt from the checkpoint
        assert json.loads((out / "summary.json").read_text())["generations"] == 2
    else:
        (out / "summary.json").mkdir()
        assert "summary.json" in one_line_error(cli("distill", "--resume", out))


def test_a_checkpoint_of_another_seed_is_refused_on_resume(tmp_path, finished):
    out = _copy(finished[0], tmp_path)
    from hades.artifacts import load_checkpoint

    leaves, meta = load_checkpoint(out / "checkpoint.safetensors")
    c = json.loads(meta["config"])
    c["seed"] = 5
    (out / "config.json").write_text(json.dumps(c))
    save_checkpoint(out / "checkpoint.safetensors", leaves, {**meta, "config": json.dumps(c), "generation": 1})
    assert "not made with seed 5" in one_line_error(cli("distill", "--resume", out, "--generations", "3"))


def test_a_checkpoint_whose_init_differs_by_rounding_resumes(tmp_path, finished):
    """A run resumed on another device (its fixed init computed a few ulps apart) continues."""
    out = _copy(finished[0], tmp_path)
    from hades.artifacts import load_checkpoint

    leaves, meta = load_checkpoint(out / "checkpoint.safetensors")
    nudged = [x * np.float32(1 + 2e-6) if x.dtype == np.float32 else x for x in leaves]
    assert any(not np.array_equal(a, b) for a, b in zip(leaves, nudged))
    save_checkpoint(out / "checkpoint.safetensors", nudged, meta)
    proc = cli("distill", "--resume", out, "--generations", "3")
    assert proc.returncode == 0, proc.stderr
    assert json.loads((out / "summary.json").read_text())["generations"] == 3


def test_an_interruption_during_the_final_evaluation_says_what_was_kept(tmp_path, finished, monkeypatch):
    from hades.distill import Distiller
    from hades.runs import Interrupted, run

    def interrupted(self, state, in_run=None):
        raise KeyboardInterrupt

    monkeypatch.setattr(Distiller, "final_evaluate", interrupted)
    with pytest.raises(Interrupted, match="checkpoint at generation 2"):
        run(finished[1], tmp_path / "again")


def test_a_full_disk_ends_in_one_line_naming_the_path(tmp_path, monkeypatch):
    import errno

    import hades.runs

    def full(path, *a, **k):
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    monkeypatch.setattr(hades.runs, "save_checkpoint", full)
    args = "--population 8 --generations 2 --width 8 --depth 1 --bc-steps 5 --eval-envs 2 --eval-steps 20".split()
    line = one_line_error(cli("distill", *args, "--quiet", "--out", tmp_path / "run"))
    assert "No space left on device" in line and "checkpoint.safetensors" in line


# -- random mutations ----------------------------------------------------------------------------


def mutations(rng: random.Random, count: int):
    """Byte-level and field-level mutations of the CartPole artifact."""
    raw = CARTPOLE.read_bytes()
    t, m = parts(CARTPOLE)
    fields = ["env", "action_space", "variant", "obs_norm", "config", "env_spec", "schema_version", "format"]
    values = ["", "x", "-1", "1e309", "[]", "{}", "null", '"a"', "🙂", "9" * 40, "brax/hopper", "sys:exit"]
    config_keys = ["bc.bc_steps", "bc.bc_lr", "policy.width", "policy.depth", "seed", "actions", "obs_norm"]
    for _ in range(count):
        kind = rng.choice(["bytes", "truncate", "meta", "config", "tensor"])
        if kind == "bytes":
            b = bytearray(raw)
            for _ in range(rng.randint(1, 8)):
                b[rng.randrange(len(b))] = rng.randrange(256)
            yield kind, bytes(b), None
        elif kind == "truncate":
            yield kind, raw[: rng.randrange(len(raw))], None
        elif kind == "meta":
            yield kind, None, dict(meta={rng.choice(fields): rng.choice(values)})
        elif kind == "config":
            value = rng.choice([0, -5, 10**12, 1e-30, float("nan"), "evil", None, [1], {"a": 1}, True, 3.5])
            yield kind, None, dict(config={rng.choice(config_keys): value})
        else:
            name = rng.choice(sorted(t))
            a = np.array(t[name])
            if a.size:
                ints = a.dtype.kind in "iu"
                a.flat[rng.randrange(a.size)] = rng.choice(
                    [7, -3, 2**31 - 1] if ints else [np.nan, np.inf, -1e30, 7, -3]
                )
            yield kind, None, dict(tensors={name: a})


@pytest.mark.parametrize("count, seed", [(60, 0), pytest.param(500, 1, marks=pytest.mark.slow)])
def test_random_mutations_end_in_a_result_or_one_line(tmp_path, count, seed):
    """Each mutated artifact: `show` and a tiny `train` end with exit 0 (a result) or exit 2 (one
    line), never a traceback, within a time bound, writing nothing but their output."""
    rng = random.Random(seed)
    for i, (kind, raw, change) in enumerate(mutations(rng, count)):
        path = tmp_path / f"m{i}.safetensors"
        if raw is not None:
            path.write_bytes(raw)
        else:
            try:
                forge(CARTPOLE, path, **change)
            except (KeyError, TypeError, ValueError):  # the mutation itself cannot be written
                continue
        before = set(tmp_path.iterdir())
        t0 = time.time()
        for command in (
            ["show", path, "-o", tmp_path / "out.png"],
            ["train", path, "--policies", "1", "--episodes", "1", "--eval-steps", "20", "--bc-steps", "5"],
        ):
            out = cli(*command)
            assert out.returncode in (0, 2), (kind, change, out.returncode, out.stderr[-1500:])
            assert "Traceback" not in out.stderr, (kind, change, out.stderr[-1500:])
            if out.returncode == 2:
                one_line_error(out)
            elif command[0] == "train":
                assert np.isfinite(json.loads(out.stdout)["return_mean"]), (kind, change)
        assert time.time() - t0 < 120, (kind, change)
        assert set(tmp_path.iterdir()) - before <= {tmp_path / "out.png"}, (kind, change)
        (tmp_path / "out.png").unlink(missing_ok=True)
        path.unlink()


def test_hades_error_is_what_a_forged_config_raises(tmp_path):
    bad = forge(CARTPOLE, tmp_path / "b.safetensors", config={"es.population": 3})
    with pytest.raises(HadesError, match="population"):
        load_dataset(bad)


def test_out_into_a_directory_of_other_files_is_refused(tmp_path):
    (tmp_path / "thesis.tex").write_text("mine")
    args = "--population 8 --generations 1 --width 8 --depth 1 --bc-steps 5 --eval-envs 2 --eval-steps 20".split()
    line = one_line_error(cli("distill", *args, "--quiet", "--out", tmp_path))
    assert "thesis.tex" in line and "not a hades run" in line
    assert sorted(p.name for p in tmp_path.iterdir()) == ["thesis.tex"]


def test_zoo_image_entries_answer_to_the_cli_dataset_names():
    from hades.zoo import entry_dir

    assert entry_dir("fashion-mnist") == entry_dir("fashion_mnist")


def test_running_out_of_memory_is_one_line(monkeypatch):
    """XLA refusing an allocation (here: the 433 GiB a direct-ES xNES tell asked for on Breakout's
    30,019 weights, population 128) is one line naming what to lower; any other runtime error
    from JAX is a bug and keeps its traceback."""
    import jax

    import hades.cli.runs

    def refused(args, extra=None):
        raise jax.errors.JaxRuntimeError("RESOURCE_EXHAUSTED: Out of memory allocating 464988428384 bytes.")

    monkeypatch.setattr(hades.cli.runs, "_cmd_distill", refused)
    line = one_line_error(cli("baseline", "--preset", "breakout", "--strategy", "xNES"))
    assert "out of memory (433 GiB in one allocation): lower --population" in line and "SNES" in line

    def bug(args, extra=None):
        raise jax.errors.JaxRuntimeError("INTERNAL: something else")

    monkeypatch.setattr(hades.cli.runs, "_cmd_distill", bug)
    with pytest.raises(jax.errors.JaxRuntimeError, match="INTERNAL"):
        cli("baseline", "--preset", "breakout")  # baseline finds _cmd_distill when it runs


@pytest.mark.parametrize("command", [["tune", "--preset", "cartpole", "--trials", "1"], ["reproduce", "--tier", "cpu"]])
def test_an_out_that_is_a_file_is_one_line_saying_so(tmp_path, command):
    """Commands whose --out is a study or grid directory create it with mkdir; a file there is
    named as such, not with the bare 'File exists' of the OS, and is left as it was."""
    (tmp_path / "notes.txt").write_text("mine")
    line = one_line_error(cli(*command, "--quiet", "--out", tmp_path / "notes.txt"))
    assert "notes.txt" in line and "is not a directory" in line
    assert (tmp_path / "notes.txt").read_text() == "mine"
