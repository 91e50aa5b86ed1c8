"""Loading a file never runs code it names: an artifact, checkpoint or config that records a
``package.module:function`` environment is refused with one line unless the user passes the same
reference with ``--env`` (or ``hades.envs.trust`` in Python). Hostile artifacts are written the way
anyone can write them: with ``save_dataset``, which recomputes the checksum."""

import socket

import numpy as np
import pytest
from helpers import cli

from hades.artifacts import save_dataset
from hades.dataset import Dataset
from hades.errors import HadesError

EVIL = """
import pathlib
pathlib.Path({marker!r}).write_text("imported")

def make():
    pathlib.Path({marker!r}).write_text("called")
    raise SystemExit(0)
"""


def one_error(stderr: str) -> bool:
    """One error line and no traceback (progress lines before it are fine)."""
    return "Traceback" not in stderr and sum(line.startswith("hades: error:") for line in stderr.splitlines()) == 1


def hostile(tmp_path, env):
    path = tmp_path / "it.safetensors"
    states = np.zeros((4, 4), np.float32)
    save_dataset(path, Dataset(states=states, actions=np.array([0, 1, 0, 1]), env=env, action_space="discrete"))
    return path


@pytest.fixture
def evil_module(tmp_path, monkeypatch):
    """A module in the current directory (and on sys.path) that leaves a marker when imported."""
    marker = tmp_path / "MARKER"
    (tmp_path / "evilmod.py").write_text(EVIL.format(marker=str(marker)))
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    return marker


@pytest.mark.parametrize(
    "command",
    [
        ["train", "{ds}"],
        ["render", "{ds}", "-o", "{tmp}/x.gif"],
        ["transfer", "{ds}", "-o", "{tmp}/t.png", "--widths", "8"],
        ["merge", "{ds}", "{ds}", "-o", "{tmp}/m.safetensors", "--evaluate"],
    ],
)
def test_an_artifact_naming_a_module_runs_nothing(tmp_path, evil_module, command):
    ds = hostile(tmp_path, "evilmod:make")
    out = cli(*[a.format(ds=ds, tmp=tmp_path) for a in command])
    assert out.returncode == 2, (out.stdout, out.stderr)
    assert "pass --env evilmod:make" in out.stderr and one_error(out.stderr), out.stderr
    assert not evil_module.exists()


@pytest.mark.parametrize("ref", ["http.server:test", "sys:exit", "os:abort", "this:x"])
def test_an_artifact_naming_the_standard_library_runs_nothing(tmp_path, ref, monkeypatch):
    opened = []
    monkeypatch.setattr(socket.socket, "bind", lambda *a, **k: opened.append(a))
    out = cli("train", hostile(tmp_path, ref))
    assert out.returncode == 2 and f"pass --env {ref}" in out.stderr, (out.returncode, out.stderr)
    assert not opened and out.stdout == ""


def test_a_forged_run_config_runs_nothing(evil_module):
    """What `distill --resume` builds from a checkpoint's config: the driver refuses before importing."""
    from hades.config import DistillConfig
    from hades.distill import Distiller

    cfg = DistillConfig.from_dict({"env": "evilmod:make", "population": 4})
    with pytest.raises(HadesError, match="never imports code named in a file"):
        Distiller(cfg)
    assert not evil_module.exists()


def test_factories_the_user_gave_fail_in_one_line(tmp_path, evil_module):
    """A trusted factory that exits, raises or returns something else: one line, exit 2, never 0."""
    (tmp_path / "factories.py").write_text(
        "def raises():\n    raise RuntimeError('boom')\n\ndef number():\n    return 3\n"
    )
    for ref, says in (
        ("evilmod:make", "exited SystemExit"),
        ("factories:raises", "raised RuntimeError: boom"),
        ("factories:number", "returned int"),
        ("hades.cli:main", "environment factory hades.cli:main"),
    ):
        out = cli("distill", "--env", ref, "--out", tmp_path / "run")
        assert out.returncode == 2 and says in out.stderr, (ref, out.stderr)
        assert "Traceback" not in out.stderr and out.stderr.strip().splitlines()[-1].startswith("hades: error:")


def test_no_command_overwrites_its_input_or_a_device(tmp_path):
    import os
    import stat

    from hades.artifacts import load_dataset

    ds = tmp_path / "mydata.png"  # a dataset with a picture's name: show's default output is itself
    save_dataset(
        ds,
        Dataset(
            states=np.zeros((4, 4), np.float32), actions=np.arange(4) % 2, env="CartPole-v1", action_space="discrete"
        ),
    )
    before = ds.read_bytes()
    for args in (["show", ds], ["show", ds, "-o", ds], ["render", ds, "-o", ds], ["merge", ds, ds, "-o", ds]):
        out = cli(*args)
        assert out.returncode == 2 and "also an input" in out.stderr and one_error(out.stderr), (args, out.stderr)
    assert ds.read_bytes() == before and load_dataset(ds).size == 4
    out = cli("show", ds, "-o", "/dev/null")
    assert out.returncode == 2 and "not a regular file" in out.stderr
    assert stat.S_ISCHR(os.stat("/dev/null").st_mode)
    out = cli("show", ds, "-o", tmp_path)
    assert out.returncode == 2 and "not a regular file" in out.stderr


def test_a_symlinked_lock_is_not_followed(tmp_path, tiny_config):
    import os

    from hades.runs import run

    out = tmp_path / "run"
    out.mkdir()
    os.symlink(tmp_path / "outside", out / ".hades.lock")
    with pytest.raises(HadesError, match="symbolic link"):
        run(tiny_config(generations=1), out)
    assert not (tmp_path / "outside").exists()
