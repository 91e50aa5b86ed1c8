"""Observation normalisation: none, or constant statistics of reference states.

The released HaDES code calls this "virtual batch normalisation": the mean and std of
observations are computed once from a reference set of states (here: random-action episodes)
and kept fixed. ``std`` is floored (``std_floor``) so inputs that are almost never set are not
blown up (the original code had variances of ~1e-11).

A policy sees ``(obs - mean) / std``; with ``ObsNorm.identity`` that is the raw observation.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import struct

from hades.envs import Env


@struct.dataclass
class ObsNorm:
    mean: jax.Array
    std: jax.Array

    def __call__(self, obs):
        return (obs - self.mean) / self.std

    def inverse(self, x):
        return x * self.std + self.mean

    @classmethod
    def identity(cls, obs_shape) -> "ObsNorm":
        return cls(jnp.zeros(obs_shape, jnp.float32), jnp.ones(obs_shape, jnp.float32))


def reference_statistics(env: Env, key, std_floor: float, num_envs: int = 16, num_steps: int = 500) -> ObsNorm:
    """Mean/std of observations visited by uniformly random actions (with resets)."""

    def random_action(k):
        if env.discrete:
            return jax.random.randint(k, (), 0, env.num_actions)
        return jax.random.uniform(k, (env.num_actions,), minval=env.action_low, maxval=env.action_high)

    def one_env(k):
        k_reset, k_run = jax.random.split(k)
        obs, state = env.reset(k_reset)

        def body(carry, t):
            obs, state = carry
            k_a, k_s, k_r = jax.random.split(jax.random.fold_in(k_run, t), 3)
            nobs, nstate, _, done = env.step(k_s, state, random_action(k_a))
            robs, rstate = env.reset(k_r)
            pick = lambda a, b: jax.tree.map(lambda x, y: jnp.where(done, x, y), a, b)  # noqa: E731
            return (pick(robs, nobs), pick(rstate, nstate)), obs

        _, seen = jax.lax.scan(body, (obs, state), jnp.arange(num_steps))
        return seen

    seen = jax.vmap(one_env)(jax.random.split(key, num_envs))
    seen = seen.reshape((-1,) + env.obs_shape)
    return ObsNorm(seen.mean(0), jnp.maximum(seen.std(0), std_floor))
