"""Rollouts and the evaluation protocol: caps, distinct episodes, actions, per-rollout normalisation."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from hades.config import PolicyConfig
from hades.envs import Env, make_env
from hades.evaluation import random_policy_return, summarize
from hades.normalization import ObsNorm, RolloutStats
from hades.policies import make_policy
from hades.rollout import distinct_episodes, episode_cap, make_rollout, random_rollout
from hades.stats import ci95


def endless_env(limit: int) -> Env:
    """An environment that never ends by itself (as Brax), with the given episode limit."""

    def reset(key):
        return jax.random.normal(key, (3,)), jnp.float32(0.0)

    def step(key, state, action):
        return jax.random.normal(key, (3,)), state + 1, jnp.float32(1.0), jnp.bool_(False)

    return Env(name="endless", obs_shape=(3,), discrete=True, num_actions=2, max_steps=limit, reset=reset, step=step)


def policy_for(env, width=8):
    return make_policy(PolicyConfig(width=width, depth=1), env.obs_shape, env.discrete, env.action_dim)


def test_a_cap_can_only_lower_the_episode_limit():
    env = endless_env(1000)
    assert episode_cap(env, 1024) == 1000 and episode_cap(env, 0) == 1000 and episode_cap(env, 30) == 30
    policy = policy_for(env)
    params = policy.init(jax.random.PRNGKey(0))
    r = jax.jit(make_rollout(env, policy, 2, max_steps=1024))(params, jax.random.PRNGKey(1), ObsNorm.identity((3,)))
    np.testing.assert_array_equal(r.lengths, [1000, 1000])  # the paper's 1024-step setting ends at 1000
    np.testing.assert_array_equal(r.returns, [1000.0, 1000.0])


def test_capped_evaluation_says_so():
    env = endless_env(1000)
    policy = policy_for(env)
    params = jax.vmap(policy.init)(jax.random.split(jax.random.PRNGKey(0), 2))
    run = jax.jit(jax.vmap(make_rollout(env, policy, 3, max_steps=40), in_axes=(0, None, None)))
    out = summarize(run(params, jax.random.PRNGKey(1), ObsNorm.identity((3,))), env, max_steps=40)
    assert out["step_cap"] == 40 and out["capped_episodes"] == 6 and out["episode_length_max"] == 40
    whole = summarize(
        jax.vmap(make_rollout(env, policy, 3), in_axes=(0, None, None))(
            params, jax.random.PRNGKey(1), ObsNorm.identity((3,))
        ),
        env,
    )
    assert "step_cap" not in whole and whole["episode_length_mean"] == 1000


def test_greedy_breakout_plays_at_most_two_episodes_and_sampling_many():
    """gymnax Breakout has 2 reset states and deterministic dynamics (the trap the protocol exposes)."""
    env = make_env("Breakout-MinAtar")
    policy = policy_for(env, width=16)
    params = policy.init(jax.random.PRNGKey(0))
    norm = ObsNorm.identity(env.obs_shape)
    greedy = jax.jit(make_rollout(env, policy, 16, max_steps=200, actions="greedy"))(
        params, jax.random.PRNGKey(1), norm
    )
    sampled = jax.jit(make_rollout(env, policy, 16, max_steps=200, actions="sample"))(
        params, jax.random.PRNGKey(1), norm
    )
    assert distinct_episodes(greedy) <= 2
    assert distinct_episodes(sampled) > 8


def test_equal_trajectories_have_equal_fingerprints():
    env = make_env("CartPole-v1")
    policy = policy_for(env)
    params = policy.init(jax.random.PRNGKey(0))
    run = jax.jit(make_rollout(env, policy, 4, actions="greedy"))
    a = run(params, jax.random.PRNGKey(3), ObsNorm.identity((4,)))
    b = run(params, jax.random.PRNGKey(3), ObsNorm.identity((4,)))
    np.testing.assert_array_equal(a.fingerprint, b.fingerprint)
    assert distinct_episodes(a) == 4  # four different resets


def test_rollout_stats_match_numpy_and_start_afresh():
    rng = np.random.default_rng(0)
    batches = [rng.normal(2.0, 3.0, (4, 5)).astype(np.float32) for _ in range(6)]
    live = [np.array([1, 1, 1, 1], bool)] * 3 + [np.array([1, 0, 1, 0], bool)] * 3
    stats = RolloutStats.fresh((5,))
    for b, m in zip(batches, live):
        stats = stats.update(jnp.asarray(b), jnp.asarray(m))
    seen = np.concatenate([b[m] for b, m in zip(batches, live)])
    np.testing.assert_allclose(stats.mean, seen.mean(0), rtol=1e-4)
    np.testing.assert_allclose(stats.var, seen.var(0), rtol=1e-3)
    assert float(stats.count) == pytest.approx(len(seen), abs=1e-3)


def test_per_rollout_normalisation_ignores_the_fixed_norm_and_history():
    """Each call normalises by statistics of its own episode only (the paper's Brax setting)."""
    env = make_env("Pendulum-v1")
    policy = policy_for(env)
    params = policy.init(jax.random.PRNGKey(0))
    run = jax.jit(make_rollout(env, policy, 2, max_steps=50, actions="greedy", per_rollout_norm=True))
    a = run(params, jax.random.PRNGKey(1), ObsNorm.identity((3,)))
    far = ObsNorm(jnp.full((3,), 100.0), jnp.full((3,), 0.01))
    b = run(params, jax.random.PRNGKey(1), far)
    np.testing.assert_array_equal(a.returns, b.returns)
    fixed = jax.jit(make_rollout(env, policy, 2, max_steps=50, actions="greedy"))(params, jax.random.PRNGKey(1), far)
    assert not np.array_equal(fixed.returns, a.returns)


def test_random_policy_reference():
    env = make_env("CartPole-v1")
    r = jax.jit(random_rollout(env, 32))(jax.random.PRNGKey(0))
    assert 10 < float(np.mean(r.returns)) < 40  # random CartPole lasts ~22 steps
    ref = random_policy_return(env, jax.random.PRNGKey(0), 32)
    assert ref["random_return_mean"] == pytest.approx(float(np.mean(r.returns)))
    # one reward per step: the mean length is the mean return
    assert (
        ref["random_episode_length_mean"] == pytest.approx(ref["random_return_mean"]) and ref["random_episodes"] == 32
    )


def test_ci95_of_known_values():
    assert ci95([1.0, 2.0, 3.0]) == pytest.approx(4.303 * 1.0 / np.sqrt(3), rel=1e-4)
    assert np.isnan(ci95([5.0]))


def seven_step_env() -> Env:
    """Episodes of exactly 7 steps, reward 1 per step (return 7), no episode limit of note."""

    def reset(key):
        return jnp.zeros(3), jnp.int32(0)

    def step(key, t, action):
        return jnp.zeros(3), t + 1, jnp.float32(1.0), t + 1 >= 7

    return Env(name="seven", obs_shape=(3,), discrete=True, num_actions=2, max_steps=1000, reset=reset, step=step)


def test_fixed_length_rollouts_run_through_episode_boundaries():
    env = seven_step_env()
    policy = policy_for(env)
    params = policy.init(jax.random.PRNGKey(0))
    norm = ObsNorm.identity((3,))
    stops = jax.jit(make_rollout(env, policy, 2, max_steps=30))(params, jax.random.PRNGKey(1), norm)
    assert int(stops.steps) == 7 and stops.returns.tolist() == [7.0, 7.0]  # one episode each, then stop
    fixed = jax.jit(make_rollout(env, policy, 2, max_steps=30, fixed_length=True))(params, jax.random.PRNGKey(1), norm)
    assert int(fixed.steps) == 30 and fixed.lengths.tolist() == [30, 30]  # the released code's work
    assert fixed.returns.tolist() == [7.0, 7.0]  # the mean of the 4 completed episodes, not their sum
    short = jax.jit(make_rollout(env, policy, 2, max_steps=5, fixed_length=True))(params, jax.random.PRNGKey(1), norm)
    assert short.returns.tolist() == [5.0, 5.0]  # none completed: the partial return, never 0


def test_ci95_uses_student_t_at_every_sample_size():
    # the t quantile at 63 degrees of freedom is 1.998, not the normal 1.96 (2% wider)
    v = np.arange(64.0)
    assert ci95(v) == pytest.approx(1.99834 * v.std(ddof=1) / 8, rel=1e-4)
