"""Multi-task datasets (paper Fig. 5): the zero-padded union of two tasks' datasets.

``merge_datasets(a, b)`` lays the tasks side by side in one input and one output space:
- inputs: A's states fill the first |s_A| features and B's the last |s_B|; the other task's
  slice is zero *in the policy's input space* (after normalisation), so for a normalised task the
  raw padding value is that task's ``obs_mean``; a task without normalisation gets mean 0, std 1;
- actions: continuous labels are zero-padded the same way to |a_A| + |a_B|; discrete labels
  index one joint categorical over |A_A| + |A_B| actions (B's labels shifted by |A_A|).
The merged artifact records the layout in ``config["tasks"]``; its ``env`` is ``"A+B"``.

An agent trained on the merge acts in task i through ``task_policy``: it sees its observation in
its own slice (zeros elsewhere) and reads its slice of the output (logits or Gaussian mean).
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np

from hades.bc import make_bc_train
from hades.config import BCConfig, PolicyConfig, RetrainConfig
from hades.dataset import Dataset
from hades.envs import make_env
from hades.errors import HadesError
from hades.evaluation import evaluate_policies, input_norm, train_and_evaluate
from hades.policies import Policy, make_policy
from hades.stats import ci95


def _stats(ds: Dataset) -> tuple[np.ndarray, np.ndarray]:
    d = int(np.prod(ds.states.shape[1:]))
    if ds.normalised:
        return ds.obs_mean.reshape(-1).astype(np.float32), ds.obs_std.reshape(-1).astype(np.float32)
    return np.zeros(d, np.float32), np.ones(d, np.float32)


def _out_dim(ds: Dataset) -> int:
    if ds.action_space == "continuous":
        return int(ds.actions.shape[1])
    return make_env(ds.env).num_actions


def merge_datasets(a: Dataset, b: Dataset) -> Dataset:
    """The zero-padded union of two single-task datasets (see the module docstring)."""
    for ds in (a, b):
        if "+" in ds.env:
            raise HadesError(f"{ds.env} is already a multi-task dataset; merge single-task datasets")
        if ds.variant == "supervised":
            raise HadesError("image datasets cannot be merged with RL tasks")
    if a.action_space != b.action_space:
        raise HadesError(f"cannot merge {a.action_space} ({a.env}) with {b.action_space} ({b.env}) actions")
    xa, xb = a.states.reshape(a.size, -1), b.states.reshape(b.size, -1)
    (ma, sa), (mb, sb) = _stats(a), _stats(b)
    da, db = xa.shape[1], xb.shape[1]
    states = np.concatenate(
        [
            np.concatenate([xa, np.broadcast_to(mb, (a.size, db))], axis=1),
            np.concatenate([np.broadcast_to(ma, (b.size, da)), xb], axis=1),
        ]
    ).astype(np.float32)
    ka, kb = _out_dim(a), _out_dim(b)
    if a.action_space == "continuous":
        actions = np.concatenate(
            [
                np.concatenate([a.actions, np.zeros((a.size, kb), np.float32)], axis=1),
                np.concatenate([np.zeros((b.size, ka), np.float32), b.actions], axis=1),
            ]
        ).astype(np.float32)
    else:
        actions = np.concatenate([a.actions, b.actions + ka]).astype(np.int32)
    tasks = [
        {
            "env": ds.env,
            "obs_shape": list(ds.states.shape[1:]),
            "obs_slice": [lo, lo + d],
            "out_slice": [lo_a, lo_a + k],
            "size": ds.size,
            "variant": ds.variant,
            "backend": ds.config.get("backend", "positional"),
        }
        for ds, lo, d, lo_a, k in ((a, 0, da, 0, ka), (b, da, db, ka, kb))
    ]
    config = {**a.config, "env": f"{a.env}+{b.env}", "tasks": tasks}
    normalised = a.normalised or b.normalised
    return Dataset(
        states=states,
        actions=actions,
        env=f"{a.env}+{b.env}",
        action_space=a.action_space,
        variant="multitask",
        obs_mean=np.concatenate([ma, mb]) if normalised else None,
        obs_std=np.concatenate([sa, sb]) if normalised else None,
        config=config,
        obs_norm="constant" if normalised else "none",
    )


def tasks_of(ds: Dataset) -> list[dict]:
    tasks = ds.config.get("tasks")
    if not tasks:
        raise HadesError(f"{ds.env}: not a multi-task dataset (made by `hades merge`)")
    return tasks


def task_view(ds: Dataset, i: int) -> Dataset:
    """Task i's own rows of a merged dataset, in task i's spaces (for checks and pictures)."""
    t = tasks_of(ds)[i]
    lo, hi = t["obs_slice"]
    rows = slice(0, t["size"]) if i == 0 else slice(ds.size - t["size"], ds.size)
    a0, a1 = t["out_slice"]
    actions = ds.actions[rows, a0:a1] if ds.action_space == "continuous" else ds.actions[rows] - a0
    norm = ds.normalised
    return Dataset(
        states=ds.states[rows, lo:hi].reshape(-1, *t["obs_shape"]),
        actions=actions,
        env=t["env"],
        action_space=ds.action_space,
        variant=t["variant"],
        obs_mean=ds.obs_mean[lo:hi].reshape(t["obs_shape"]) if norm else None,
        obs_std=ds.obs_std[lo:hi].reshape(t["obs_shape"]) if norm else None,
    )


def task_policy(policy: Policy, task: dict, total_in: int) -> Policy:
    """A merged-space policy acting in one task: pad the (normalised) observation into its slice,
    read the task's slice of the output (and, for sampled continuous actions, of the log std)."""
    lo, hi = task["obs_slice"]
    a0, a1 = task["out_slice"]

    def apply(params, x):
        flat = x.reshape(x.shape[: x.ndim - len(task["obs_shape"])] + (-1,))
        pad = [(0, 0)] * (flat.ndim - 1) + [(lo, total_in - hi)]
        return policy.apply(params, jnp.pad(flat, pad))[..., a0:a1]

    def log_std(params):
        return policy.log_std(params)[a0:a1]

    return dataclasses.replace(policy, apply=apply, log_std=log_std)


def merged_returns(
    merged: Dataset,
    policy_cfg: PolicyConfig,
    bc_cfg: BCConfig,
    retrain: RetrainConfig | None = None,
    *,
    train: bool = True,
    actions: str = "sample",
) -> list[np.ndarray]:
    """Per task: [retrain.policies, retrain.episodes] returns of agents trained on the merged dataset (or, with
    ``train=False``, of the untrained initialisations: the random-policy reference)."""
    retrain = retrain or RetrainConfig()
    tasks = tasks_of(merged)
    total_in = int(merged.states.shape[1])
    out_dim = int(merged.actions.shape[1]) if merged.action_space == "continuous" else tasks[-1]["out_slice"][1]
    discrete = merged.action_space == "discrete"
    policy = make_policy(policy_cfg, (total_in,), discrete, out_dim)
    bc = make_bc_train(policy, bc_cfg)
    x, y = jnp.asarray(merged.inputs()), jnp.asarray(merged.actions)
    k_init, k_env = jax.random.split(jax.random.PRNGKey(retrain.seed))
    inits = jax.vmap(policy.init)(jax.random.split(k_init, retrain.policies))
    params = jax.jit(jax.vmap(lambda p: bc(p, x, y)[0]))(inits) if train else inits
    out = []
    for i, task in enumerate(tasks):
        env = make_env(task["env"], task.get("backend", "positional"))
        view = task_view(merged, i)
        norm = input_norm(view, env.obs_shape)
        keys = jax.random.split(jax.random.fold_in(k_env, i), retrain.policies)
        rollouts = evaluate_policies(
            env,
            task_policy(policy, task, total_in),
            params,
            keys,
            norm,
            episodes=retrain.episodes,
            eval_steps=retrain.eval_steps,
            actions=actions,
        )
        out.append(np.asarray(rollouts.returns))
    return out


def evaluate_merge(
    a: Dataset,
    b: Dataset,
    merged: Dataset,
    policy_cfg: PolicyConfig,
    bc_cfg: BCConfig,
    retrain: RetrainConfig | None = None,
    *,
    actions: str = "sample",
    progress=None,
) -> dict:
    """Agents trained on A, on B and on the merge, each scored on its environment(s);
    ``progress(text)`` is told each stage as it starts.

    Normalised return on task i = (R - R_random) / (R_single - R_random), where R_single is the
    return of agents trained on task i's own dataset and R_random that of untrained policies
    (the merged architecture's initialisations) in task i; 1 means no loss from merging.
    """
    say = progress or (lambda text: None)
    retrain = retrain or RetrainConfig()
    n = retrain.policies
    say(f"training {n} agents on the merged dataset, {retrain.episodes} episodes per environment")
    merged_r = merged_returns(merged, policy_cfg, bc_cfg, retrain, actions=actions)
    say("untrained agents (the random reference)")
    random_r = merged_returns(merged, policy_cfg, bc_cfg, retrain, train=False, actions=actions)
    result = {"tasks": []}
    for i, (ds, task) in enumerate(zip((a, b), tasks_of(merged))):
        say(f"training {n} agents on {task['env']}'s own dataset")
        single = train_and_evaluate(
            ds, policy_cfg, bc_cfg, retrain, backend=task.get("backend", "positional"), actions=actions
        ).returns
        r_single, r_merged, r_random = float(single.mean()), float(merged_r[i].mean()), float(random_r[i].mean())
        gap = r_single - r_random
        per = {"single_task": np.asarray(single), "multi_task": merged_r[i], "random": random_r[i]}
        result["tasks"].append(
            {
                "env": task["env"],
                "single_task_return": r_single,
                "multi_task_return": r_merged,
                "random_return": r_random,
                "normalised_return": (r_merged - r_random) / gap if abs(gap) > 1e-8 else None,
                # 95% t intervals over the policies' mean returns (None with one policy)
                **{f"{k}_ci95": ci95(np.asarray(v).mean(1)) if n > 1 else None for k, v in per.items()},
                **{f"{k}_per_seed": [float(x) for x in np.asarray(v).mean(1)] for k, v in per.items()},
            }
        )
    return result
