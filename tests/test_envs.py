import jax
import jax.numpy as jnp
import numpy as np
import pytest

from hades.config import PolicyConfig
from hades.distill import Distiller
from hades.envs import make_env
from hades.envtable import BRAX_NAMES, ENV_SPECS
from hades.errors import HadesError
from hades.normalization import ObsNorm, reference_statistics
from hades.policies import make_policy
from hades.presets import make_config
from hades.rollout import make_rollout


def _gymnax_ids():
    import gymnax

    return list(gymnax.registered_envs)  # gymnax's own registry, not a copy of it


# every id in gymnax's registry runs one generation or is refused with its reason; a few in the
# default suite (one per adapter path: classic control, MinAtar, bsuite, one-hot observations),
# the rest with -m slow. Brax below.
DEFAULT_IDS = ("CartPole-v1", "Pendulum-v1", "Breakout-MinAtar", "Catch-bsuite", "FrozenLake-misc")
REFUSED = {"MNISTBandit-bsuite": "gymnax cannot build 'MNISTBandit-bsuite' here"}  # downloads MNIST when made


@pytest.mark.parametrize(
    "name", [n if n in DEFAULT_IDS else pytest.param(n, marks=pytest.mark.slow) for n in _gymnax_ids()]
)
def test_every_gymnax_id_runs_one_generation(name, tiny_config, monkeypatch):
    if name in REFUSED:
        monkeypatch.setattr("urllib.request.urlopen", lambda *a, **k: (_ for _ in ()).throw(OSError("offline")))
        with pytest.raises(HadesError, match=REFUSED[name]):
            Distiller(tiny_config(env=name, generations=1))
        return
    d = Distiller(tiny_config(env=name, generations=1))
    state, metrics = d.step(d.init())
    assert int(state.generation) == 1
    assert bool(metrics["finite"])
    ds = d.dataset(state)
    assert ds["states"].shape == (d.cfg.dataset_size, *d.env.obs_shape)
    assert np.isfinite(ds["states"]).all()


def test_unknown_environment():
    with pytest.raises(HadesError, match="unknown environment 'CartPole-v0'; did you mean CartPole-v1"):
        make_env("CartPole-v0")


def test_bare_brax_names_resolve():
    assert make_config(None, env="hopper").env == "brax/hopper"
    with pytest.raises(HadesError, match="did you mean hopper"):
        make_config(None, env="hoper")
    with pytest.raises(HadesError, match="did you mean Catch-bsuite"):  # gymnax ids are suggested too
        make_config(None, env="Catch-bsuit")


def test_one_hot_observations():
    env = make_env("FrozenLake-misc")
    obs, _ = env.reset(jax.random.PRNGKey(0))
    assert env.obs_shape == (16,) and obs.shape == (16,) and float(obs.sum()) == 1.0


@pytest.mark.parametrize("name", [n for n in ENV_SPECS if not n.startswith("brax/")])
def test_the_static_table_matches_the_environment(name):
    """`hades envs` answers from ENV_SPECS without building anything: it must say what is built."""
    env = make_env(name)
    assert (env.obs_shape, env.action_space, env.num_actions, env.max_steps) == ENV_SPECS[name]


def test_hades_envs_builds_nothing_and_leaves_nothing(tmp_path, monkeypatch):
    import subprocess
    import sys
    import time

    t0 = time.time()
    proc = subprocess.run([sys.executable, "-m", "hades.cli", "envs"], capture_output=True, text=True, cwd=tmp_path)
    assert proc.returncode == 0 and len(proc.stdout.splitlines()) == len(ENV_SPECS) + 1  # + the gymnax note
    assert time.time() - t0 < 15  # the import of the CLI, no environment built
    monkeypatch.chdir(tmp_path)
    make_env("brax/inverted_pendulum", "spring")  # mujoco logs a compiler warning into the working directory
    assert not list(tmp_path.iterdir())


def test_partial_episodes_count():
    """A step cap shorter than the episode gives the partial return, not 0."""
    env = make_env("CartPole-v1")
    policy = make_policy(PolicyConfig(width=8, depth=1), env.obs_shape, True, env.num_actions)
    params = policy.init(jax.random.PRNGKey(0))
    r = make_rollout(env, policy, num_envs=3, max_steps=5)(params, jax.random.PRNGKey(1), ObsNorm.identity((4,)))
    np.testing.assert_array_equal(np.asarray(r.returns), [5.0, 5.0, 5.0])  # CartPole pays 1 per step
    assert not np.asarray(r.ended).any()  # cut by the cap, not ended


def test_finished_episodes_stop_accumulating():
    env = make_env("CartPole-v1")
    policy = make_policy(PolicyConfig(width=8, depth=1), env.obs_shape, True, env.num_actions)
    # a constant policy (always push one way) falls within ~10 steps and must not keep scoring
    params = jax.tree.map(lambda x: x * 0, policy.init(jax.random.PRNGKey(0)))
    r = make_rollout(env, policy, 4, actions="greedy")(params, jax.random.PRNGKey(2), ObsNorm.identity((4,)))
    returns = np.asarray(r.returns)
    assert (returns > 5).all() and (returns < 50).all()
    np.testing.assert_array_equal(returns, np.asarray(r.lengths))  # 1 per step while alive, nothing after


def test_reference_statistics_floor_the_std():
    env = make_env("Breakout-MinAtar")
    norm = reference_statistics(env, jax.random.PRNGKey(0), std_floor=0.1, num_envs=2, num_steps=50)
    assert norm.mean.shape == env.obs_shape
    assert float(norm.std.min()) >= 0.1


@pytest.mark.parametrize("name", [n if n == "hopper" else pytest.param(n, marks=pytest.mark.slow) for n in BRAX_NAMES])
def test_every_brax_environment_runs_one_generation(name, tiny_config):
    d = Distiller(tiny_config(env=f"brax/{name}", backend="spring", obs_norm="running", eval_steps=10))
    state, metrics = d.step(d.init())
    assert bool(metrics["finite"])
    ds = d.dataset(state)
    assert ds["states"].shape == (d.cfg.dataset_size, *d.env.obs_shape)
    assert ds["actions"].shape == (d.cfg.dataset_size, d.env.action_dim)
    assert float(state.obs_stats.count) > 0  # running statistics took the rollouts' observations
    env = d.env
    assert (env.obs_shape, env.action_space, env.num_actions, env.max_steps) == ENV_SPECS[f"brax/{name}"]


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


@pytest.mark.slow  # an optional suite; the Python-object path itself: test_custom_env (default suite)
def test_xland_minigrid_through_the_python_path(tiny_config):
    """XLand-MiniGrid has its own TimeStep API: its adapter sits beside gymnax's and Brax's."""
    xminigrid = pytest.importorskip("xminigrid")
    env, params = xminigrid.make("MiniGrid-Empty-5x5")
    cfg = tiny_config(env=(env, params), generations=1)
    assert cfg.env.startswith("python/")
    d = Distiller(cfg)
    assert d.env.spec() == {"obs_shape": [7, 7, 2], "action_space": "discrete", "action_count": 6, "episode_limit": 100}
    state, metrics = d.step(d.init())
    assert bool(metrics["finite"]) and int(state.generation) == 1


@pytest.mark.slow  # world generation at reset takes a while on CPU
def test_craftax_is_a_gymnax_style_environment():
    craftax_env = pytest.importorskip("craftax.craftax_env")
    env = make_env(craftax_env.make_craftax_env_from_name("Craftax-Classic-Symbolic-v1", auto_reset=False))
    assert env.obs_shape == (1345,) and env.num_actions == 17 and env.max_steps == 10000
    obs, state = env.reset(jax.random.PRNGKey(0))
    obs, state, reward, done = env.step(jax.random.PRNGKey(1), state, jnp.int32(0))
    assert obs.shape == (1345,) and reward.shape == () and not bool(done)


def test_jumanji_observations_are_flattened():
    jumanji = pytest.importorskip("jumanji")
    env = make_env(jumanji.make("Snake-v1"))
    assert env.obs_shape == (12 * 12 * 5 + 1 + 4,) and env.num_actions == 4 and env.max_steps == 4000
    obs, state = env.reset(jax.random.PRNGKey(0))
    obs, state, reward, done = env.step(jax.random.PRNGKey(1), state, jnp.int32(0))
    assert obs.shape == env.obs_shape and obs.dtype == jnp.float32 and reward.shape == ()
