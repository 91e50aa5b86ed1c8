"""Brax environments, running observation normalisation, paper presets, population sharding."""

import json
import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from hades.config import BRAX_NAMES, make_config
from hades.distill import Distiller
from hades.envs import make_env
from hades.errors import HadesError
from hades.normalization import RunningStats
from hades.runs import make_driver


# hopper and inverted_pendulum in the default suite; the others compile for ~20 s each: `-m slow`
@pytest.mark.parametrize(
    "name", [n if n in ("hopper", "inverted_pendulum") else pytest.param(n, marks=pytest.mark.slow) for n in BRAX_NAMES]
)
def test_every_brax_environment_runs_one_generation(name, tiny_config):
    d = Distiller(tiny_config(env=f"brax/{name}", backend="spring", obs_norm="running", eval_steps=10))
    state, metrics = d.step(d.init())
    assert bool(metrics["finite"])
    ds = d.dataset(state)
    assert ds["states"].shape == (d.cfg.dataset_size, *d.env.obs_shape)
    assert ds["actions"].shape == (d.cfg.dataset_size, d.env.action_dim)
    assert float(state.obs_stats.count) > 0  # running statistics took the rollouts' observations


def test_brax_actions_are_clipped_by_the_environment():
    env = make_env("brax/hopper", "spring")
    obs, state = env.reset(jax.random.PRNGKey(0))
    a = jnp.array([5.0, -7.0, 0.5])
    obs_big, *_ = jax.jit(env.step)(jax.random.PRNGKey(1), state, a)
    obs_clip, *_ = jax.jit(env.step)(jax.random.PRNGKey(1), state, jnp.clip(a, -1, 1))
    np.testing.assert_array_equal(obs_big, obs_clip)
    assert env.max_steps == 1000 and env.action_space == "continuous"


def test_unknown_backend():
    with pytest.raises(HadesError, match="backend"):
        make_config(None, env="brax/hopper", backend="bullet")


def test_running_stats_merge_matches_numpy():
    rng = np.random.default_rng(0)
    a, b = rng.normal(3, 2, (500, 4)), rng.normal(-1, 0.5, (300, 4))
    sa = RunningStats.from_sums(jnp.float32(500), a.sum(0), (a**2).sum(0))
    sb = RunningStats.from_sums(jnp.float32(300), b.sum(0), (b**2).sum(0))
    merged = RunningStats.empty((4,)).merge(sa).merge(sb)
    both = np.concatenate([a, b])
    np.testing.assert_allclose(merged.mean, both.mean(0), rtol=1e-4)
    np.testing.assert_allclose(merged.norm(0.0).std, both.std(0), rtol=1e-3)
    assert float(merged.norm(10.0).std.min()) == 10.0  # the floor applies
    np.testing.assert_array_equal(RunningStats.empty((4,)).norm(0.1).std, np.ones(4))  # empty: identity


def test_running_normalisation_is_recorded_in_the_artifact(tmp_path, tiny_config):
    from hades.artifacts import load_dataset
    from hades.runs import run

    run(tiny_config(env="Pendulum-v1", obs_norm="running"), tmp_path / "r")
    ds = load_dataset(tmp_path / "r" / "dataset.safetensors")
    assert ds.obs_norm == "running" and ds.normalised
    assert not np.allclose(ds.obs_std, 1.0)  # the final running statistics, not the identity


def test_paper_brax_preset_sets_bc_epochs_per_environment():
    assert make_config("paper-brax", env="brax/hopper").bc.bc_steps == 200
    assert make_config("paper-brax", env="brax/inverted_double_pendulum").bc.bc_steps == 200
    for env in ("brax/ant", "brax/walker2d", "brax/humanoid"):
        cfg = make_config("paper-brax", env=env)
        assert cfg.bc.bc_steps == 400
        assert (cfg.es.population, cfg.dataset_size, cfg.policy.width, cfg.bc.bc_lr) == (2048, 64, 512, 0.005)
    assert make_config("paper-brax", env="brax/ant", bc_steps=7).bc.bc_steps == 7  # options still win


@pytest.mark.parametrize("variant", ["hades-r", "direct-es"])
def test_chunked_evaluation_matches_the_whole_population(tiny_config, variant):
    """--chunk only changes how many candidates are live at once, not the result."""
    out = []
    for chunk in (0, 2):
        d = make_driver(tiny_config(variant=variant, chunk=chunk))
        s = d.init()
        for _ in range(2):
            s, m = d.step(s)
        out.append(jax.tree.leaves(d.solution(s)))
    for a, b in zip(*out):
        np.testing.assert_array_equal(a, b)
    with pytest.raises(HadesError, match="chunk"):
        tiny_config(chunk=3)


def test_more_devices_than_visible_is_a_clear_error(tiny_config):
    with pytest.raises(HadesError, match="device"):
        Distiller(tiny_config(devices=len(jax.devices()) + 1))


_SHARDED_RUN = """
import sys, numpy as np
from hades.config import make_config
from hades.runs import make_driver
import jax
assert len(jax.devices()) == 2, jax.devices()
out = {}
for devices in (1, 2):
    d = make_driver(make_config(None, population=8, generations=3, width=16, depth=1, bc_steps=10, eval_envs=2,
                              eval_steps=30, devices=devices, variant=sys.argv[1], obs_norm=sys.argv[2]))
    s = d.init()
    for _ in range(3):
        s, _ = d.step(s)
    direct = sys.argv[1] == "direct-es"
    out[devices] = np.asarray(jax.tree.leaves(d.solution(s))[0]) if direct else d.dataset(s)["states"]
    assert (d.mesh is None) == (devices == 1)
print(np.array_equal(out[1], out[2]), float(np.abs(out[1] - out[2]).max()))
try:
    make_driver(make_config(None, population=6, devices=4))
except Exception as e:
    print(type(e).__name__)
d = make_driver(make_config(None, population=6, devices=2))
print("auto", 1 if d.mesh is None else d.mesh.devices.size)
"""


@pytest.mark.parametrize("variant,obs_norm", [("hades-r", "constant"), ("hades-f", "running"), ("direct-es", "none")])
def test_two_devices_give_the_same_dataset_as_one(variant, obs_norm):
    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=2")
    out = subprocess.run(
        [sys.executable, "-c", _SHARDED_RUN, variant, obs_norm], env=env, capture_output=True, text=True, timeout=300
    )
    assert out.returncode == 0, out.stderr[-2000:]
    lines = out.stdout.split("\n")
    if obs_norm == "running":
        # the partitioned program rounds the statistics' arithmetic in a different order (last
        # bit of the mean, ~1e-9 here): the same dataset up to float32 rounding
        assert float(lines[0].split()[1]) < 1e-6, lines[0]
    else:
        assert lines[0].startswith("True"), lines[0]  # bit for bit
    assert lines[1] == "HadesError"  # 4 devices asked for, 2 visible
    assert lines[2] == "auto 2"


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("localhost", 0))
        return s.getsockname()[1]


def test_two_process_run_on_one_host_matches_one_process(tmp_path, tiny_config):
    """The multi-host launch (one command per host) on localhost: 2 processes x 2 CPU devices."""
    from safetensors.numpy import load_file

    from hades.runs import run

    args = [
        "--population",
        "8",
        "--generations",
        "2",
        "--width",
        "16",
        "--depth",
        "1",
        "--bc-steps",
        "10",
        "--eval-envs",
        "2",
        "--eval-steps",
        "30",
        "--eval-episodes",
        "2",
        "--eval-policies",
        "2",
        "--checkpoint-every",
        "1",
        "--coordinator",
        f"localhost:{_free_port()}",
        "--num-processes",
        "2",
        "--out",
        str(tmp_path / "multi"),
        "--quiet",
    ]
    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=2")
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "hades.cli", "distill", *args, "--process-id", str(i)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in (1, 0)
    ]
    outs = [p.communicate(timeout=300) for p in procs]
    assert all(p.returncode == 0 for p in procs), [o[1][-1500:] for o in outs]
    assert json.loads(outs[1][0].strip().splitlines()[-1])["devices"] == 4  # gloo prints to stdout too
    run(tiny_config(generations=2, checkpoint_every=1, eval_every=5), tmp_path / "single")
    a = load_file(tmp_path / "multi" / "dataset.safetensors")
    b = load_file(tmp_path / "single" / "dataset.safetensors")
    np.testing.assert_array_equal(a["states"], b["states"])
