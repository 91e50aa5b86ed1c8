"""The evaluation protocol, and training fresh policies on a dataset artifact (``hades train``).

Every return hades reports (a run's evaluations and final figure, ``hades train``, transfer,
merge) is measured the same way (docs/evaluation.md):
- keys that were never used for fitness (their own branch of the seed);
- freshly initialised policies, unless the figure is explicitly "own init" (a HaDES-F dataset
  retrained from its run's saved initialisation);
- whole episodes, up to the environment's own limit; a figure taken with a lower step cap says
  so (``step_cap`` and ``capped_episodes``);
- actions as the run chose (``sample`` unless greedy was asked for);
- with the number of distinct trajectories the episodes held (``distinct_episodes``), so an
  evaluation that saw the same few episodes again and again is visible, the episode lengths,
  and a 95% confidence interval over the policies.

``train_and_evaluate`` checks the dataset against the environment, trains ``num_policies``
policies by BC (vmapped: one compiled call) and rolls each out for ``episodes`` episodes.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from hades.bc import make_bc_train
from hades.config import BCConfig, PolicyConfig, RetrainConfig
from hades.dataset import Dataset, run_config  # noqa: F401 (run_config: re-exported)
from hades.devices import check_memory
from hades.envs import Env, make_env
from hades.errors import HadesError
from hades.normalization import ObsNorm
from hades.policies import make_policy, param_count
from hades.rollout import Rollouts, distinct_episodes, episode_cap, make_rollout, random_rollout
from hades.stats import ci95


def summarize(r: Rollouts, env: Env, max_steps: int = 0, prefix: str = "") -> dict:
    """The protocol's figures of rollouts stacked [policies, episodes]."""
    returns = np.asarray(r.returns, np.float64)
    per_policy = returns.mean(axis=1)
    cap = episode_cap(env, max_steps)
    out = {
        "return_mean": float(returns.mean()),
        "return_std": float(returns.std()),
        "return_ci95": ci95(per_policy) if len(per_policy) > 1 else ci95(returns),
        "returns_per_policy": [float(x) for x in per_policy],
        "episodes": int(returns.size),
        "episode_length_mean": float(np.mean(r.lengths)),
        "episode_length_max": int(np.max(r.lengths)),
        "distinct_episodes": distinct_episodes(r),
    }
    if cap < env.max_steps:
        out["step_cap"] = cap
        out["capped_episodes"] = int(np.sum(~np.asarray(r.ended) & (np.asarray(r.lengths) >= cap)))
    return {prefix + k: v for k, v in out.items()}


def random_policy_return(env: Env, key, episodes: int = 64) -> dict:
    """Return of uniformly random actions over ``episodes`` whole episodes (the reference figure),
    with their mean length: where episodes end early (Brax ant, hopper, humanoid), a policy can
    beat random's return by ending its episodes sooner, and the two lengths show it."""
    r = jax.jit(random_rollout(env, episodes))(key)
    returns = np.asarray(r.returns, np.float64)
    return {
        "random_return_mean": float(returns.mean()),
        "random_return_ci95": ci95(returns),
        "random_episodes": int(returns.size),
        "random_episode_length_mean": float(np.mean(r.lengths)),
    }


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


def input_norm(ds: Dataset, obs_shape) -> ObsNorm:
    """The fixed observation normalisation a policy trained on ``ds`` acts with (the identity for
    datasets without statistics, and for per-rollout normalisation, which the rollout does)."""
    if ds.normalised:
        return ObsNorm(jnp.asarray(ds.obs_mean), jnp.asarray(ds.obs_std))
    return ObsNorm.identity(obs_shape)


def evaluate_policies(
    env: Env,
    policy,
    params,
    keys,
    norm: ObsNorm,
    *,
    episodes: int,
    eval_steps: int = 0,
    actions: str = "sample",
    per_rollout_norm: bool = False,
) -> Rollouts:
    """Rollouts [P, episodes] of P trained policies (stacked ``params``, one key each), under the
    protocol: whole episodes unless ``eval_steps`` caps them, the given action mode."""
    rollout = make_rollout(env, policy, episodes, eval_steps, actions, per_rollout_norm=per_rollout_norm)
    return jax.jit(jax.vmap(lambda p, k: rollout(p, k, norm)))(params, keys)


def make_trainer(
    ds: Dataset,
    env: Env,
    policy_cfg: PolicyConfig,
    bc_cfg: BCConfig,
    *,
    episodes: int,
    eval_steps: int = 0,
    max_steps: int | None = None,
    actions: str = "sample",
):
    """A jitted ``run(inits, keys, lrs, steps) -> Rollouts [P, episodes]``: P policies trained by
    BC on ``ds`` from ``inits`` (stacked params) with their own learning rates and step counts
    (traced, so one compiled call covers a whole sweep), each rolled out for ``episodes`` episodes.
    ``policy_init`` on the result makes stacked fresh initialisations."""
    check_dataset(ds, env)
    n_params = param_count(policy_cfg, int(np.prod(env.obs_shape)), env.action_dim, gaussian=not env.discrete)
    check_memory(20 * n_params, "one policy", "lower --width or --depth", override="")  # params, grads, Adam, rollouts
    policy = make_policy(policy_cfg, env.obs_shape, env.discrete, env.action_dim)
    train = make_bc_train(policy, bc_cfg, max_steps=max_steps)
    rollout = make_rollout(env, policy, episodes, eval_steps, actions, per_rollout_norm=ds.normalisation == "rollout")
    norm = input_norm(ds, env.obs_shape)
    x, y = jnp.asarray(ds.inputs()), jnp.asarray(ds.actions)

    @jax.jit
    def run(inits, keys, lrs, steps):
        return jax.vmap(lambda p, k, lr, n: rollout(train(p, x, y, lr, n)[0], k, norm))(inits, keys, lrs, steps)

    run.policy_init = jax.jit(jax.vmap(policy.init))
    return run


def train_and_evaluate(
    ds: Dataset,
    policy_cfg: PolicyConfig,
    bc_cfg: BCConfig,
    retrain: RetrainConfig | None = None,
    *,
    env: Env | str | None = None,
    init_params=None,
    backend: str = "positional",
    actions: str = "sample",
) -> Rollouts:
    """Rollouts [retrain.policies, retrain.episodes] of BC policies trained on ``ds`` (the
    evaluation protocol's retraining: ``retrain`` says how many policies, episodes, the step cap
    and the seed). ``env``: an environment already built (and checked), an id, or None for the
    dataset's (built on ``backend``).

    ``init_params`` (one policy's params) trains every policy from that initialisation instead of
    fresh ones (HaDES-F datasets are tied to their run's init).
    """
    retrain = retrain or RetrainConfig()
    n = retrain.policies
    if not isinstance(env, Env):
        env = make_env(env or ds.env, backend)
    run = make_trainer(
        ds, env, policy_cfg, bc_cfg, episodes=retrain.episodes, eval_steps=retrain.eval_steps, actions=actions
    )
    k_init, k_env = jax.random.split(jax.random.PRNGKey(retrain.seed))
    if init_params is None:
        inits = run.policy_init(jax.random.split(k_init, n))
    else:
        inits = jax.tree.map(lambda a: jnp.broadcast_to(a, (n, *a.shape)), init_params)
    lrs = jnp.full(n, bc_cfg.bc_lr, jnp.float32)
    steps = jnp.full(n, bc_cfg.bc_steps, jnp.int32)
    return jax.device_get(run(inits, jax.random.split(k_env, n), lrs, steps))
