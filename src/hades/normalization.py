"""Observation normalisation: none, constant, per-rollout running, or pooled running statistics.

- ``constant`` (the released MinAtar code's "virtual batch normalisation"): the mean and std of
  observations are computed once from a reference set of states (here: random-action episodes)
  and kept fixed. ``std`` is floored (``std_floor``) so inputs that are almost never set are not
  blown up (the original code had variances of ~1e-11).
- ``official``: the constant statistics the official code loads from its ``normalize_params/``
  (shipped in ``hades/official_stats`` with their Apache-2.0 licence), applied as the official
  code does: ``(obs - mean) / sqrt(var + 1e-8)``, no floor. The released MinAtar datasets live
  in these units; some variances are ~1e-11, so a rarely set feature becomes ~1e4 when it is.
- ``rollout`` (the paper's Brax setting, ``RolloutStats``): every rollout starts fresh running
  statistics (count 1e-4, mean 0, variance 1) and, before each action, merges the observations
  its live envs see into them and normalises with them: purejaxrl's NormalizeVecObservation, the
  wrapper the official Brax code evaluates every candidate with. Nothing is carried between
  candidates or generations, so datasets live in the policy's input space and an artifact of
  this mode stores its states as policy inputs (no statistics).
- ``running`` (pooled, ``RunningStats``): starts from the identity and, after every generation,
  merges the mean/variance of every observation the whole population's evaluation envs saw
  (until their episodes ended) into one set of statistics; the next generation's policies see
  observations normalised with them. Not the paper's setting; datasets live in the normalised
  space and the artifact stores the final statistics.

A policy sees ``(obs - mean) / std``; with ``ObsNorm.identity`` that is the raw observation.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import struct

from hades.envs import Env
from hades.errors import HadesError

OFFICIAL_EPS = 1e-8  # the official code's: (x - mean) / sqrt(var + 1e-8)


@struct.dataclass
class ObsNorm:
    mean: jax.Array
    std: jax.Array

    def __call__(self, obs):
        return (obs - self.mean) / self.std

    def inverse(self, x):
        return x * self.std + self.mean

    @classmethod
    def identity(cls, obs_shape) -> ObsNorm:
        return cls(jnp.zeros(obs_shape, jnp.float32), jnp.ones(obs_shape, jnp.float32))


def reference_statistics(env: Env, key, std_floor: float, num_envs: int = 16, num_steps: int = 500) -> ObsNorm:
    """Mean/std of observations visited by uniformly random actions (with resets)."""
    seen = random_observations(env, key, num_envs, num_steps)
    return ObsNorm(seen.mean(0), jnp.maximum(seen.std(0), std_floor))


def principal_axes(seen, k: int) -> tuple[jax.Array, jax.Array]:
    """The mean of ``seen`` (``[N, *obs_shape]``) and its ``k`` leading principal axes as a
    ``[k, features]`` matrix, each row scaled to the std of the data along it: ``mean + z @ axes``
    (reshaped) with ``z ~ N(0, I)`` has the data's covariance within those axes. Computed on the
    host (numpy's SVD), once per run."""
    import numpy as np

    flat = np.asarray(seen, np.float64).reshape(len(seen), -1)
    if not 1 <= k <= flat.shape[1]:
        raise HadesError(f"--state-components must be 1 to the {flat.shape[1]} observation features; got {k}")
    mean = flat.mean(0)
    _, s, vt = np.linalg.svd(flat - mean, full_matrices=False)
    axes = vt[:k] * (s[:k, None] / np.sqrt(len(flat)))
    return (
        jnp.asarray(mean.reshape(np.shape(seen)[1:]), jnp.float32),
        jnp.asarray(axes, jnp.float32),
    )


def random_observations(env: Env, key, num_envs: int = 16, num_steps: int = 500) -> jax.Array:
    """``[num_envs * num_steps, *obs_shape]`` observations visited by uniformly random actions
    (finished episodes reset)."""

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
            pick = lambda a, b: jax.tree.map(lambda x, y: jnp.where(done, x, y), a, b)
            return (pick(robs, nobs), pick(rstate, nstate)), obs

        _, seen = jax.lax.scan(body, (obs, state), jnp.arange(num_steps))
        return seen

    seen = jax.vmap(one_env)(jax.random.split(key, num_envs))
    return seen.reshape((-1,) + env.obs_shape)


def official_statistics(env_name: str, obs_shape) -> ObsNorm:
    """The official code's stored statistics for ``env_name`` (``Breakout-MinAtar``, ``brax/hopper``)."""
    import hashlib
    import io
    from importlib.resources import files

    import numpy as np

    stem = env_name.removeprefix("brax/")
    folder = files("hades") / "official_stats"
    sums = dict(line.split()[::-1] for line in (folder / "SHA256SUMS").read_text().splitlines() if line.strip())
    try:
        raw = {}
        for kind in ("mean", "var"):
            name = f"{kind}_{stem}.npy"
            raw[kind] = (folder / name).read_bytes()
            if hashlib.sha256(raw[kind]).hexdigest() != sums.get(name):
                raise HadesError(f"hades/official_stats/{name} does not match its SHA256SUMS entry: reinstall hades")
        mean = np.load(io.BytesIO(raw["mean"]), allow_pickle=False)
        var = np.load(io.BytesIO(raw["var"]), allow_pickle=False)
    except FileNotFoundError:
        known = sorted(p.name[5:-4] for p in folder.iterdir() if p.name.startswith("mean_"))
        raise HadesError(
            f"--obs-norm official: the official code stored no statistics for {env_name}; "
            f"it has them for {', '.join(known)}"
        ) from None
    size = int(np.prod(obs_shape))
    if mean.size != size or var.size != size:
        raise HadesError(f"--obs-norm official: stored statistics of {env_name} have {mean.size} values, not {size}")
    mean = jnp.asarray(mean, jnp.float32).reshape(obs_shape)
    std = jnp.sqrt(jnp.asarray(var, jnp.float32).reshape(obs_shape) + OFFICIAL_EPS)
    return ObsNorm(mean, std)


@struct.dataclass
class RunningStats:
    """Count, mean and sum of squared deviations (Chan et al.'s parallel merge), per feature."""

    count: jax.Array
    mean: jax.Array
    m2: jax.Array

    @classmethod
    def empty(cls, obs_shape) -> RunningStats:
        z = jnp.zeros(obs_shape, jnp.float32)
        return cls(jnp.float32(0.0), z, z)

    @classmethod
    def from_sums(cls, count, total, total_sq) -> RunningStats:
        """Stats of a batch given its count, sum and sum of squares."""
        n = jnp.maximum(count, 1.0)
        mean = total / n
        return cls(count, mean, jnp.maximum(total_sq - n * mean**2, 0.0))

    def merge(self, other: RunningStats) -> RunningStats:
        n = self.count + other.count
        safe = jnp.maximum(n, 1.0)
        delta = other.mean - self.mean
        mean = self.mean + delta * other.count / safe
        m2 = self.m2 + other.m2 + delta**2 * self.count * other.count / safe
        return RunningStats(n, mean, m2)

    def norm(self, std_floor: float) -> ObsNorm:
        std = jnp.sqrt(self.m2 / jnp.maximum(self.count, 1.0))
        return ObsNorm(self.mean, jnp.where(self.count > 0, jnp.maximum(std, std_floor), 1.0))


ROLLOUT_EPS = 1e-8


@struct.dataclass
class RolloutStats:
    """Per-rollout running mean/variance of observations (purejaxrl's NormalizeVecObservation)."""

    count: jax.Array
    mean: jax.Array
    var: jax.Array

    @classmethod
    def fresh(cls, obs_shape) -> RolloutStats:
        return cls(jnp.float32(1e-4), jnp.zeros(obs_shape, jnp.float32), jnp.ones(obs_shape, jnp.float32))

    def update(self, batch, live) -> RolloutStats:
        """Merge the observations ``batch`` [n, *obs_shape] of the ``live`` [n] envs."""
        w = live.astype(jnp.float32).reshape((-1,) + (1,) * (batch.ndim - 1))
        n = w.sum()
        safe = jnp.maximum(n, 1.0)
        batch_mean = (w * batch).sum(0) / safe
        batch_var = (w * (batch - batch_mean) ** 2).sum(0) / safe
        total = self.count + n
        delta = batch_mean - self.mean
        mean = self.mean + delta * n / total
        m2 = self.var * self.count + batch_var * n + delta**2 * self.count * n / total
        return RolloutStats(total, mean, m2 / total)

    def __call__(self, obs):
        return (obs - self.mean) / jnp.sqrt(self.var + ROLLOUT_EPS)
