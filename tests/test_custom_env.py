"""Bring your own environment: one defined here (not in hades) distils, saves, retrains and
renders through the Python path (the object itself) and the command line (``--env MODULE:FUNCTION``)."""

import json
import os
from pathlib import Path

import jax
import jax.numpy as jnp
import pytest
from flax import struct
from gymnax.environments import environment, spaces
from helpers import cli, hades

from hades.errors import HadesError


@struct.dataclass
class CorridorState(environment.EnvState):
    x: jax.Array
    time: int


@struct.dataclass
class CorridorParams(environment.EnvParams):
    goal: int = 4
    max_steps_in_episode: int = 12


class Corridor(environment.Environment):
    """Walk right from 0 to the goal: +1 on arrival (the episode ends), -0.01 per step otherwise.
    Always stepping right returns 1 - 0.01 * (goal - 1) = 0.97; a random walk rarely arrives."""

    @property
    def default_params(self):
        return CorridorParams()

    def step_env(self, key, state, action, params):
        x = jnp.clip(state.x + 2 * action - 1, -params.goal, params.goal)
        state = CorridorState(x=x, time=state.time + 1)
        arrived = x >= params.goal
        reward = jnp.where(arrived, 1.0, -0.01)
        return self.get_obs(state), state, reward, arrived, {}

    def reset_env(self, key, params):
        state = CorridorState(x=jnp.int32(0), time=0)
        return self.get_obs(state), state

    def get_obs(self, state, params=None, key=None):
        return jnp.array([state.x / 4.0, 1.0], jnp.float32)

    def action_space(self, params=None):
        return spaces.Discrete(2)

    def observation_space(self, params):
        return spaces.Box(-1.0, 1.0, (2,), jnp.float32)


def make_corridor():
    """What ``--env test_custom_env:make_corridor`` calls."""
    env = Corridor()
    return env, env.default_params


SMALL = dict(population=16, generations=6, dataset_size=2, width=16, depth=1, bc_steps=20, eval_envs=2, eval_episodes=4)
SMALL_ARGS = [f"--{k.replace('_', '-')}={v}" for k, v in SMALL.items()] + ["--sigma", "0.5"]


def test_python_object_distils_saves_retrains(tmp_path):
    from hades.artifacts import load_dataset
    from hades.config import RetrainConfig
    from hades.envs import make_env, register
    from hades.evaluation import run_config, train_and_evaluate
    from hades.presets import make_config
    from hades.runs import run

    env = Corridor()
    cfg = make_config(None, env=(env, env.default_params), sigma=0.5, **SMALL)
    assert cfg.env == "python/Corridor"
    assert make_config(None, env=(env, env.default_params)).env == cfg.env  # the same object, the same name
    summary = run(cfg, tmp_path / "run")
    assert summary["final_return_mean"] > 0.9 > summary["random_return_mean"]
    ds = load_dataset(tmp_path / "run" / "dataset.safetensors")
    assert ds.env == "python/Corridor"
    assert ds.env_spec == {"obs_shape": [2], "action_space": "discrete", "action_count": 2, "episode_limit": 12}
    rollouts = train_and_evaluate(ds, run_config(ds).policy, run_config(ds).bc, RetrainConfig(2, 2))
    assert float(rollouts.returns.mean()) > 0.9
    # register() names a factory; a name is refused twice unless replaced on purpose
    assert make_env(register("corridor-6", lambda: (env, CorridorParams(goal=3)))).max_steps == 12
    with pytest.raises(HadesError, match="already known"):
        register("corridor-6", make_corridor)
    with pytest.raises(HadesError, match="cannot use a builtins.str"):
        make_config(None, env=("not", "an env"))


def test_command_line_reference_distils_and_artifacts_rebuild_it(tmp_path):
    tests_dir = str(Path(__file__).parent)
    env = {**os.environ, "PYTHONPATH": tests_dir + os.pathsep + os.environ.get("PYTHONPATH", "")}
    ref = "test_custom_env:make_corridor"
    proc = hades("distill", "--env", ref, *SMALL_ARGS, "--out", tmp_path / "run", "--quiet", env=env)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["final_return_mean"] > 0.9
    dataset = tmp_path / "run" / "dataset.safetensors"
    # the artifact names the code; only the user's own --env lets hades import it
    refused = hades("train", dataset, "--policies", 2, "--episodes", 2, env=env)
    assert refused.returncode == 2 and f"pass --env {ref}" in refused.stderr, refused.stderr
    assert len(refused.stderr.strip().splitlines()) == 1
    train = hades("train", dataset, "--env", ref, "--policies", 2, "--episodes", 2, env=env)
    assert train.returncode == 0, train.stderr
    assert json.loads(train.stdout)["env"] == ref and json.loads(train.stdout)["return_mean"] > 0.9
    render = hades("render", dataset, "--env", ref, "-o", tmp_path / "c.gif", "--max-frames", 5, env=env)
    assert render.returncode == 0, render.stderr
    assert (tmp_path / "c.gif").stat().st_size > 0
    show = cli("show", dataset, "-o", tmp_path / "d.png")  # needs only the artifact, not the module
    assert show.returncode == 0, show.stderr
    # without the module importable: a one-line error naming it
    lost = hades("train", dataset, "--env", ref, cwd=tmp_path)
    assert lost.returncode == 2 and "cannot import module 'test_custom_env'" in lost.stderr
    assert len(lost.stderr.strip().splitlines()) == 1
    bad = cli("distill", "--env", "not a module:fn", "--out", tmp_path / "x")
    assert bad.returncode == 2 and "package.module:function" in bad.stderr
    missing = cli("distill", "--env", "json:no_such_function", "--out", tmp_path / "y")
    assert missing.returncode == 2 and "has no function 'no_such_function'" in missing.stderr
