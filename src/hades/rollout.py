"""Evaluate a policy: one episode per parallel environment, returns summed explicitly.

Fitness definition (the same for every domain): each of ``num_envs`` environments runs ONE
episode from its own reset, for at most ``max_steps`` steps; the episode's return is the sum of
its rewards until it ends (terminated or truncated) or until the step cap, whichever comes
first. A cap shorter than the episode therefore gives the *partial* return, never 0 (the
original code averaged completed episodes only, so Freeway's 2500-step episodes scored 0 in a
1024-step rollout). The cap can only lower the environment's own episode limit
(``Env.max_steps``: gymnax's ``max_steps_in_episode``, 1000 for Brax), so an episode never runs
past it. The loop stops as soon as every episode in the batch has ended.

``make_rollout(...)(params, key, norm)`` returns one pytree, :class:`Rollouts`: returns, episode
lengths, whether each episode ended by itself (not by the cap), a fingerprint of each
trajectory (equal trajectories give equal fingerprints, so counting distinct ones shows how
many different episodes an evaluation really saw), and the count / sum / sum of squares of the
raw observations the policy acted on (pooled running normalisation, ``normalization.py``).

With ``fixed_length`` (``--fixed-length``: the released code's rollouts, for runs that must do
the same work) every environment runs exactly the cap's steps, resetting an episode that ends
and going on. An environment's return is then, by ``fixed_fitness``: ``env-mean``, the mean return
of the episodes it completed, or its first episode's partial return when none completed (never 0
for a long episode); ``last``, the return of the last episode it completed, 0 when none (the
official MinAtar fitness); ``pooled`` leaves the per-env figure as ``env-mean`` and the driver
pools ``completed_return`` / ``completed`` over every env and learner of a candidate (the official
Brax fitness: short episodes count more often). Its length counts every step it took; per-rollout
normalisation statistics take in every observation of every episode (as the official wrapper
does); fingerprints and pooled observation statistics cover the first episode.

Actions are sampled from the policy (``sample``, the paper's setting) or greedy (argmax /
Gaussian mean). With ``per_rollout_norm`` the observations are normalised by statistics that
start afresh in every call and take in each step's observations before acting (the paper's Brax
setting); otherwise by the fixed ``norm`` passed in.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import struct

from hades.envs import Env
from hades.normalization import ObsNorm, RolloutStats
from hades.policies import Policy


@struct.dataclass
class Rollouts:
    returns: jax.Array  # [num_envs] float32
    lengths: jax.Array  # [num_envs] int32: steps taken in each episode
    ended: jax.Array  # [num_envs] bool: the episode ended by itself (False: cut by the cap)
    fingerprint: jax.Array  # [num_envs] float32: equal trajectories, equal values
    obs_count: jax.Array  # float32: observations acted on (all envs)
    obs_sum: jax.Array  # [*obs_shape]
    obs_sum_sq: jax.Array  # [*obs_shape]
    steps: jax.Array  # int32: loop iterations (the longest episode in the batch)
    # fixed_length: sum of the returns of the episodes each env completed, and how many it did
    # (without fixed_length: the episode's return, and 1)
    completed_return: jax.Array  # [num_envs] float32
    completed: jax.Array  # [num_envs] int32


@struct.dataclass
class _Episodes:
    """A fixed-length rollout's episode bookkeeping per env: the running episode's return, the
    returns and count of completed episodes, and the last completed one's return."""

    running: jax.Array
    completed_sum: jax.Array
    completed_n: jax.Array
    last: jax.Array


@struct.dataclass
class _Loop:
    """The rollout's while-loop state: the step, the envs, the per-rollout statistics, and per env
    the return and length so far, whether it is done (and ended inside the cap), its trajectory
    fingerprint; the observation sums for running normalisation; ``episodes`` with fixed_length."""

    t: jax.Array
    obs: jax.Array
    state: object
    stats: object
    ret: jax.Array
    length: jax.Array
    done: jax.Array
    ended: jax.Array
    fp: jax.Array
    obs_n: jax.Array
    obs_sum: jax.Array
    obs_sq: jax.Array
    episodes: _Episodes | None = None


def fitness_of(r: Rollouts, pooled: bool = False) -> jax.Array:
    """Fitness of rollouts stacked [candidates, learners, envs]: the mean return, or (``pooled``,
    the official Brax fitness) the mean over every episode completed by any env and learner (0 where
    none completed)."""
    if pooled:
        return r.completed_return.sum(axis=(1, 2)) / jnp.maximum(r.completed.sum(axis=(1, 2)), 1)
    return r.returns.mean(axis=(1, 2))


def episode_cap(env: Env, max_steps: int = 0) -> int:
    """Steps an episode may run: the environment's limit, or ``max_steps`` if that is lower."""
    return min(max_steps, env.max_steps) if max_steps > 0 else env.max_steps


def make_rollout(
    env: Env,
    policy: Policy | None,
    num_envs: int,
    max_steps: int = 0,
    actions: str = "sample",
    per_rollout_norm: bool = False,
    act=None,
    fixed_length: bool = False,
    fixed_fitness: str = "env-mean",
):
    """Returns ``rollout(params, key, norm) -> Rollouts`` (pure, jittable, vmappable).
    ``act(params, inputs, key) -> action`` replaces the policy's own (the random policy)."""
    # a fixed-length rollout runs max_steps (the episode limit when 0) through episode boundaries
    cap = (max_steps or env.max_steps) if fixed_length else episode_cap(env, max_steps)
    if act is None:
        stochastic = actions == "sample"
        act = lambda p, x, k: policy.act(p, x, k, stochastic)
    zeros = jnp.zeros(env.obs_shape, jnp.float32)
    # a fixed random projection of observations and actions for the trajectory fingerprints
    k_obs, k_act = jax.random.split(jax.random.PRNGKey(12345))
    project_obs = jax.random.normal(k_obs, env.obs_shape)
    project_act = 1.0 + jax.random.uniform(k_act, (1 if env.discrete else env.action_dim,))
    obs_axes = tuple(range(1, 1 + len(env.obs_shape)))

    def rollout(params, key, norm: ObsNorm) -> Rollouts:
        reset_keys = jax.random.split(jax.random.fold_in(key, 0), num_envs)
        obs, state = jax.vmap(env.reset)(reset_keys)
        step_key = jax.random.fold_in(key, 1)

        def cond(c: _Loop):
            if fixed_length:
                return c.t < cap
            return jnp.logical_and(c.t < cap, ~jnp.all(c.done))

        def restart(c: _Loop, nobs, nstate, reward, now_done):
            """fixed_length: bank each finished episode's return and reset its environment."""
            e = c.episodes
            ep_ret = e.running + reward
            reset_keys = jax.random.split(jax.random.fold_in(jax.random.fold_in(key, 2), c.t), num_envs)
            robs, rstate = jax.vmap(env.reset)(reset_keys)
            pick = lambda a, b: jnp.where(now_done.reshape(now_done.shape + (1,) * (a.ndim - 1)), a, b)
            episodes = _Episodes(
                running=jnp.where(now_done, 0.0, ep_ret),
                completed_sum=e.completed_sum + jnp.where(now_done, ep_ret, 0.0),
                completed_n=e.completed_n + now_done.astype(jnp.int32),
                last=jnp.where(now_done, ep_ret, e.last),
            )
            return pick(robs, nobs), jax.tree.map(pick, rstate, nstate), episodes

        def body(c: _Loop) -> _Loop:
            live = ~c.done
            w = live.astype(jnp.float32).reshape((num_envs,) + (1,) * len(env.obs_shape))
            obs = c.obs
            # fixed_length: every env runs all the time, and the statistics see all of it
            seen = jnp.ones_like(live) if fixed_length else live
            stats = c.stats.update(obs, seen) if per_rollout_norm else c.stats
            inputs = jax.vmap(stats)(obs) if per_rollout_norm else jax.vmap(norm)(obs)
            k_act, k_env = jax.random.split(jax.random.fold_in(step_key, c.t))
            act_keys = jax.random.split(k_act, num_envs)
            env_keys = jax.random.split(k_env, num_envs)
            action = jax.vmap(lambda x, k: act(params, x, k))(inputs, act_keys)
            nobs, nstate, reward, now_done = jax.vmap(env.step)(env_keys, c.state, action)
            act_code = action.astype(jnp.float32).reshape(num_envs, -1) @ project_act
            code = (obs * project_obs).sum(obs_axes) + 0.5 * act_code + reward
            episodes = c.episodes
            if fixed_length:
                nobs, nstate, episodes = restart(c, nobs, nstate, reward, now_done)
            return _Loop(
                t=c.t + 1,
                obs=nobs,
                state=nstate,
                stats=stats,
                ret=c.ret + jnp.where(live, reward, 0.0),
                length=c.length + live.astype(jnp.int32),
                done=c.done | now_done,
                ended=c.ended | (live & now_done),
                fp=jnp.where(live, c.fp * 1.0001 + code, c.fp),
                obs_n=c.obs_n + live.sum(),
                obs_sum=c.obs_sum + (w * obs).sum(0),
                obs_sq=c.obs_sq + (w * obs**2).sum(0),
                episodes=episodes,
            )

        init = _Loop(
            t=jnp.int32(0),
            obs=obs,
            state=state,
            stats=RolloutStats.fresh(env.obs_shape) if per_rollout_norm else (),
            ret=jnp.zeros(num_envs),
            length=jnp.zeros(num_envs, jnp.int32),
            done=jnp.zeros(num_envs, bool),
            ended=jnp.zeros(num_envs, bool),
            fp=jnp.zeros(num_envs),
            obs_n=jnp.float32(0.0),
            obs_sum=zeros,
            obs_sq=zeros,
            episodes=_Episodes(
                running=jnp.zeros(num_envs),
                completed_sum=jnp.zeros(num_envs),
                completed_n=jnp.zeros(num_envs, jnp.int32),
                last=jnp.zeros(num_envs),
            )
            if fixed_length
            else None,
        )
        c = jax.lax.while_loop(cond, body, init)
        returns, lengths = c.ret, c.length
        completed_return, completed = c.ret, jnp.ones(num_envs, jnp.int32)
        if fixed_length:
            e = c.episodes
            if fixed_fitness == "last":
                returns = e.last
            else:
                returns = jnp.where(e.completed_n > 0, e.completed_sum / jnp.maximum(e.completed_n, 1), c.ret)
            lengths = jnp.full(num_envs, c.t, jnp.int32)
            completed_return, completed = e.completed_sum, e.completed_n
        return Rollouts(
            returns=returns,
            lengths=lengths,
            ended=c.ended,
            fingerprint=c.fp,
            obs_count=c.obs_n,
            obs_sum=c.obs_sum,
            obs_sum_sq=c.obs_sq,
            steps=c.t,
            completed_return=completed_return,
            completed=completed,
        )

    return rollout


def random_rollout(env: Env, num_envs: int, max_steps: int = 0):
    """``rollout(key) -> Rollouts`` of uniformly random actions (the random-policy reference)."""

    def act(_params, _x, key):
        if env.discrete:
            return jax.random.randint(key, (), 0, env.num_actions)
        return jax.random.uniform(key, (env.action_dim,), minval=env.action_low, maxval=env.action_high)

    run = make_rollout(env, None, num_envs, max_steps, act=act)
    return lambda key: run({}, key, ObsNorm.identity(env.obs_shape))


def distinct_episodes(r: Rollouts) -> int:
    """How many different trajectories a (stacked) batch of rollouts holds."""
    import numpy as np

    keys = np.stack(
        [
            np.asarray(r.fingerprint).ravel(),
            np.asarray(r.lengths).ravel().astype(np.float64),
            np.asarray(r.returns).ravel(),
        ],
        axis=1,
    )
    return int(len(np.unique(keys, axis=0)))
