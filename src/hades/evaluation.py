"""Train fresh policies on a dataset artifact and measure their returns (``hades train``).

``train_and_evaluate`` checks the dataset against the environment, trains ``num_policies``
policies by BC (vmapped: one compiled call) and rolls each out for ``episodes`` episodes with
the fitness definition of ``rollout.py``.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from hades.artifacts import Dataset
from hades.bc import make_bc_train
from hades.config import BCConfig, DistillConfig, PolicyConfig
from hades.envs import Env, make_env
from hades.errors import HadesError
from hades.normalization import ObsNorm
from hades.policies import make_policy
from hades.rollout import make_rollout


def check_dataset(ds: Dataset, env: Env) -> None:
    """Raise HadesError if the dataset cannot drive a policy in ``env``."""
    where = f"dataset for {ds.env!r} does not fit {env.name}"
    if tuple(ds.states.shape[1:]) != env.obs_shape:
        raise HadesError(f"{where}: states have shape {tuple(ds.states.shape[1:])}, observations {env.obs_shape}")
    if ds.action_space != env.action_space:
        raise HadesError(f"{where}: {ds.action_space} actions, environment is {env.action_space}")
    if env.discrete:
        if ds.actions.ndim != 1 or ds.actions.min() < 0 or ds.actions.max() >= env.num_actions:
            raise HadesError(f"{where}: action labels must be integers in [0, {env.num_actions})")
    elif ds.actions.shape[1:] != (env.action_dim,):
        raise HadesError(f"{where}: actions have shape {ds.actions.shape[1:]}, environment needs ({env.action_dim},)")
    if ds.normalised and tuple(ds.obs_mean.shape) != env.obs_shape:
        raise HadesError(f"{where}: obs_mean has shape {ds.obs_mean.shape}")
    if not (np.all(np.isfinite(ds.states)) and np.all(np.isfinite(ds.actions))):
        raise HadesError("dataset holds non-finite values")


def run_config(ds: Dataset) -> DistillConfig:
    """The run config a dataset records (defaults for an artifact that records none)."""
    return DistillConfig.from_dict(ds.config) if ds.config else DistillConfig()


def input_norm(ds: Dataset, obs_shape) -> ObsNorm:
    """The observation normalisation a policy trained on ``ds`` acts with."""
    if ds.normalised:
        return ObsNorm(jnp.asarray(ds.obs_mean), jnp.asarray(ds.obs_std))
    return ObsNorm.identity(obs_shape)


def make_trainer(ds: Dataset, env: Env, policy_cfg: PolicyConfig, bc_cfg: BCConfig, *, episodes: int,
                 eval_steps: int = 0, max_steps: int | None = None):
    """A jitted ``run(inits, keys, lrs, steps) -> returns [P, episodes]``: P policies trained by BC
    on ``ds`` from ``inits`` (stacked params) with their own learning rates and step counts (traced,
    so one compiled call covers a whole sweep), each rolled out for ``episodes`` episodes.
    ``policy_init`` on the result makes stacked fresh initialisations."""
    check_dataset(ds, env)
    policy = make_policy(policy_cfg, env.obs_shape, env.discrete, env.action_dim)
    train = make_bc_train(policy, bc_cfg, max_steps=max_steps)
    rollout = make_rollout(env, policy, episodes, eval_steps)
    norm = input_norm(ds, env.obs_shape)
    x, y = jnp.asarray(ds.inputs()), jnp.asarray(ds.actions)

    @jax.jit
    def run(inits, keys, lrs, steps):
        return jax.vmap(lambda p, k, lr, n: rollout(train(p, x, y, lr, n)[0], k, norm))(inits, keys, lrs, steps)

    run.policy_init = jax.jit(jax.vmap(policy.init))
    return run


def train_and_evaluate(
    ds: Dataset, policy_cfg: PolicyConfig, bc_cfg: BCConfig, *, num_policies: int = 5,
    episodes: int = 10, eval_steps: int = 0, seed: int = 0, env_name: str | None = None, init_params=None,
    backend: str = "positional",
) -> np.ndarray:
    """Returns [num_policies, episodes] episode returns of BC policies trained on ``ds``.

    ``init_params`` (one policy's params) trains every policy from that initialisation instead of
    fresh ones (HaDES-F datasets are tied to their run's init).
    """
    env = make_env(env_name or ds.env, backend)
    run = make_trainer(ds, env, policy_cfg, bc_cfg, episodes=episodes, eval_steps=eval_steps)
    k_init, k_env = jax.random.split(jax.random.PRNGKey(seed))
    if init_params is None:
        inits = run.policy_init(jax.random.split(k_init, num_policies))
    else:
        inits = jax.tree.map(lambda a: jnp.broadcast_to(a, (num_policies, *a.shape)), init_params)
    lrs = jnp.full(num_policies, bc_cfg.bc_lr, jnp.float32)
    steps = jnp.full(num_policies, bc_cfg.bc_steps, jnp.int32)
    return np.asarray(run(inits, jax.random.split(k_env, num_policies), lrs, steps))


def summarize(returns: np.ndarray) -> dict:
    per_policy = returns.mean(axis=1)
    return {
        "return_mean": float(returns.mean()), "return_std": float(returns.std()),
        "per_seed_returns": [float(r) for r in per_policy], "episodes_per_seed": int(returns.shape[1]),
    }
