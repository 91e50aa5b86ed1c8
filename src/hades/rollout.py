"""Evaluate a policy: one episode per parallel environment, returns summed explicitly.

Fitness definition (the same for every domain): each of ``num_envs`` environments runs ONE
episode from its own reset, for at most ``max_steps`` steps; the episode's return is the sum of
its rewards until it ends (terminated or truncated) or until the step cap, whichever comes
first. A cap shorter than the episode therefore gives the *partial* return, never 0 (the
original code averaged completed episodes only, so Freeway's 2500-step episodes scored 0 in a
1024-step rollout). With ``max_steps`` >= the episode limit this is the true episode return.
The loop stops as soon as every episode in the batch has ended.

With ``collect_obs`` the rollout also returns ``(count, sum, sum of squares)`` of the raw
observations its policies acted on (running observation normalisation, ``normalization.py``).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from hades.envs import Env
from hades.normalization import ObsNorm
from hades.policies import Policy


def make_rollout(env: Env, policy: Policy, num_envs: int, max_steps: int = 0, stochastic: bool = False,
                 collect_obs: bool = False, count_steps: bool = False):
    """Returns ``rollout(params, key, norm) -> returns [num_envs]`` (pure, jittable, vmappable),
    or ``(returns, (count, sum, sum_sq))`` with ``collect_obs``; ``count_steps`` (benchmarks)
    returns ``(returns, loop iterations)`` instead."""
    cap = max_steps or env.max_steps
    zeros = jnp.zeros(env.obs_shape, jnp.float32)

    def rollout(params, key, norm: ObsNorm):
        reset_keys = jax.random.split(jax.random.fold_in(key, 0), num_envs)
        obs, state = jax.vmap(env.reset)(reset_keys)
        step_key = jax.random.fold_in(key, 1)

        def cond(carry):
            t, _, _, _, done, _ = carry
            return jnp.logical_and(t < cap, ~jnp.all(done))

        def body(carry):
            t, obs, state, ret, done, seen = carry
            if collect_obs:
                live = (~done).astype(jnp.float32).reshape((num_envs,) + (1,) * len(env.obs_shape))
                seen = (seen[0] + jnp.sum(~done), seen[1] + (live * obs).sum(0), seen[2] + (live * obs**2).sum(0))
            k_act, k_env = jax.random.split(jax.random.fold_in(step_key, t))
            act_keys = jax.random.split(k_act, num_envs)
            env_keys = jax.random.split(k_env, num_envs)
            action = jax.vmap(lambda o, k: policy.act(params, norm(o), k, stochastic))(obs, act_keys)
            obs, state, reward, now_done = jax.vmap(env.step)(env_keys, state, action)
            ret = ret + jnp.where(done, 0.0, reward)
            return t + 1, obs, state, ret, done | now_done, seen

        seen = (jnp.float32(0.0), zeros, zeros) if collect_obs else ()
        init = (jnp.int32(0), obs, state, jnp.zeros(num_envs), jnp.zeros(num_envs, bool), seen)
        t, _, _, returns, _, seen = jax.lax.while_loop(cond, body, init)
        if count_steps:
            return returns, t
        return (returns, seen) if collect_obs else returns

    return rollout
