"""The HaDES driver (HaDES-F, HaDES-R) and the direct-ES baseline, as pure jitted pieces.

One generation (``Distiller.step``):
1. the ES proposes a population of candidate solutions (antithetic where the strategy allows);
2. every candidate is scored with *common random numbers*: the same policy initialisations, the
   same environment reset/step keys and action keys for the whole generation, so fitness
   differences come from the candidates alone;
   - HaDES: a candidate is a dataset; each policy init is trained on it by BC (``bc.py``) and
     rolled out (``rollout.py``); fitness = mean episode return over inits and episodes.
     HaDES-F uses one initialisation fixed for the whole run; HaDES-R draws ``num_inits`` fresh
     ones every generation.
   - direct ES: a candidate is the policy's weights; fitness = mean episode return.
3. the ES is told the fitness (higher is better; ``es.py`` flips the sign for evosax).

Datasets are evolved in *normalised* observation units (the policy's input space), so one ES
sigma suits every feature; ``dataset()`` maps them back to raw observation units.
Keys derive from ``(seed, generation)`` alone, so a resumed run repeats an uninterrupted one.
Evaluations of the mean (``evaluate``) follow the protocol of ``evaluation.py``: keys of their
own branch of the seed, never used for fitness; freshly initialised policies (HaDES-F also
reports its own init, labelled ``own_init_*``); whole episodes; the run's action mode.
The driver never prints: ``runs.py`` (or any caller) loops over ``step`` and reports.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from hades.artifacts import Dataset, save_dataset, save_policy
from hades.bc import make_bc_train, uniform_labels
from hades.config import DistillConfig
from hades.devices import auto_chunk, map_population, place, population_mesh, replicate
from hades.envs import make_env
from hades.errors import HadesError
from hades.es import Strategy
from hades.evaluation import random_policy_return, summarize
from hades.normalization import ObsNorm, RunningStats, reference_statistics
from hades.policies import make_policy, narrow
from hades.rollout import make_rollout


@struct.dataclass
class RunState:
    es_state: Any
    generation: jax.Array  # int32 scalar: generations completed
    fixed_init: Any  # policy params: HaDES-F's one initialisation (unused by the others)
    norm: ObsNorm  # what this generation's policies see
    obs_stats: RunningStats  # running normalisation's statistics (empty otherwise)


class Distiller:
    def __init__(self, cfg: DistillConfig):
        self.cfg = cfg.validate()
        self.env = env = make_env(cfg.env, cfg.backend)
        self.mesh = population_mesh(cfg.devices, cfg.es.population)
        self.chunk = auto_chunk(cfg.chunk, cfg.es.population, self.mesh)
        if self.mesh is not None and self.chunk % self.mesh.devices.size:
            raise HadesError(f"--chunk ({cfg.chunk}) must be a multiple of the device count ({self.mesh.devices.size})")
        self.policy = make_policy(cfg.policy, env.obs_shape, env.discrete, env.action_dim)
        self.max_bc_steps = cfg.bc.bc_steps * (2 if cfg.evolve_bc else 1)
        self.bc_train = make_bc_train(self.policy, cfg.bc, max_steps=self.max_bc_steps)
        self.running_norm = cfg.obs_norm == "running"
        per_rollout = cfg.obs_norm == "rollout"
        self.rollout = make_rollout(env, self.policy, cfg.eval_envs, cfg.eval_steps, cfg.actions, per_rollout)
        # the protocol's evaluation: whole episodes, whatever cap the fitness rollouts use
        self.eval_rollout = make_rollout(env, self.policy, cfg.eval_episodes, 0, cfg.actions, per_rollout)
        self.labels = uniform_labels(cfg.dataset_size, env.num_actions) if env.discrete else None
        self.direct = cfg.variant == "direct-es"
        root = jax.random.PRNGKey(cfg.seed)
        self._setup_key, self._gen_key, self._eval_key = (jax.random.fold_in(root, i) for i in range(3))
        self.es = Strategy(cfg.es, self.initial_solution(jax.random.PRNGKey(0)))
        self.step = jax.jit(self._generation)
        self._evaluate = jax.jit(self._evaluate_mean, static_argnums=(2, 3))
        self._random = None

    # -- setup -----------------------------------------------------------------------------
    def initial_solution(self, key):
        if self.direct:
            return self.policy.init(key)
        n, shape = self.cfg.dataset_size, self.env.obs_shape
        sol = {"states": self.cfg.init_scale * jax.random.normal(key, (n, *shape))}
        if not self.env.discrete:
            sol["actions"] = jnp.zeros((n, self.env.action_dim))
        if self.cfg.evolve_bc:
            sol["bc_genes"] = jnp.zeros(2)  # log learning-rate factor, log step-count factor
        return sol

    def setup_keys(self):
        """(normalisation, fixed init, initial dataset, ES init) keys of this seed."""
        return jax.random.split(self._setup_key, 4)

    def fixed_init(self):
        """HaDES-F's one initialisation of this seed (saved in the run directory as
        ``init.safetensors``, which ``hades train --own-init`` retrains from)."""
        return self.policy.init(self.setup_keys()[1])

    def own_init(self, state: RunState):
        """The initialisation a HaDES-F dataset is tied to (None for the other variants)."""
        return state.fixed_init if self.cfg.variant == "hades-f" else None

    def init(self) -> RunState:
        k_norm, k_fixed, k_data, k_es = self.setup_keys()
        if self.cfg.obs_norm == "constant":
            norm = reference_statistics(self.env, k_norm, self.cfg.obs_std_floor)
        else:
            norm = ObsNorm.identity(self.env.obs_shape)
        es_state = self.es.init(k_es, self.initial_solution(k_data))
        stats = RunningStats.empty(self.env.obs_shape)
        return place(RunState(es_state, jnp.int32(0), self.fixed_init(), norm, stats), self.mesh)

    # -- scoring ---------------------------------------------------------------------------
    def bc_data(self, solution):
        """(inputs, labels) of a dataset candidate, inputs in the policy's (normalised) units."""
        y = self.labels if self.env.discrete else solution["actions"]
        return solution["states"], y

    def _inits(self, key, state: RunState, count: int, sampled: bool = False, fresh: bool = False):
        """The learners a candidate is scored with: stacked (initial params, BC lr, BC steps).
        HaDES-F: its one fixed init (``fresh``: ``count`` fresh ones instead); HaDES-R: ``count``
        fresh ones, with ``sampled`` (``--learners sampled``) each of a random width, learning rate
        and step count."""
        cfg = self.cfg
        if cfg.variant == "hades-f" and not fresh:
            params = jax.tree.map(lambda x: x[None], state.fixed_init)
            count = 1
        else:
            params = jax.vmap(self.policy.init)(jax.random.split(key, count))
        lr = jnp.full(count, cfg.bc.bc_lr, jnp.float32)
        steps = jnp.full(count, cfg.bc.bc_steps, jnp.float32)
        if sampled:
            k_w, k_lr, k_n = jax.random.split(jax.random.fold_in(key, 1), 3)
            powers = 2 ** np.arange(int(np.ceil(np.log2(cfg.learner_min_width))), int(np.log2(cfg.policy.width)) + 1)
            widths = np.unique(np.append(powers[powers < cfg.policy.width], cfg.policy.width))
            width = jax.random.choice(k_w, jnp.asarray(widths), (count,))
            params = jax.vmap(lambda p, w: narrow(p, w, cfg.policy.depth, cfg.policy.width))(params, width)
            r = np.log(cfg.learner_lr_range)
            lr = lr * jnp.exp(jax.random.uniform(k_lr, (count,), minval=-r, maxval=r))
            steps = steps * jax.random.uniform(k_n, (count,), minval=cfg.learner_min_steps, maxval=1.0)
        return params, lr, steps

    def bc_hyperparameters(self, solution, lr, steps):
        """A candidate's BC learning rate and step count: the learner's, times the evolved factors."""
        if self.cfg.evolve_bc:
            lr = lr * jnp.exp(solution["bc_genes"][0])
            steps = steps * jnp.exp(solution["bc_genes"][1])
        return lr, jnp.clip(jnp.round(steps), 1, self.max_bc_steps).astype(jnp.int32)

    def _score(self, rollout, solution, inits, env_key, norm):
        """Rollouts [num_inits, episodes] of one candidate and its mean BC loss."""
        if self.direct:
            return jax.tree.map(lambda a: a[None], rollout(solution, env_key, norm)), jnp.float32(0.0)
        x, y = self.bc_data(solution)

        def one(init, lr, steps):
            params, loss = self.bc_train(init, x, y, *self.bc_hyperparameters(solution, lr, steps))
            return rollout(params, env_key, norm), loss

        rollouts, losses = jax.vmap(one)(*inits)
        return rollouts, losses.mean()

    def _generation(self, state: RunState):
        key = jax.random.fold_in(self._gen_key, state.generation)
        k_ask, k_init, k_env, k_tell = jax.random.split(key, 4)
        population, es_state = self.es.ask(k_ask, state.es_state)
        inits = self._inits(k_init, state, self.cfg.num_inits, sampled=self.cfg.learners == "sampled")
        score = lambda sol: self._score(self.rollout, sol, inits, k_env, state.norm)
        rollouts, losses = replicate(map_population(score, population, self.mesh, self.chunk), self.mesh)
        population = replicate(population, self.mesh)
        fitness = rollouts.returns.mean(axis=(1, 2))
        es_state = self.es.tell(k_tell, population, fitness, es_state)
        metrics = {
            "fitness_mean": fitness.mean(),
            "fitness_max": fitness.max(),
            "fitness_min": fitness.min(),
            "bc_loss": losses.mean(),
            "finite": jnp.all(jnp.isfinite(fitness)),
        }
        state = state.replace(es_state=es_state, generation=state.generation + 1)
        if self.running_norm:
            count, total, total_sq = (
                a.sum(axis=(0, 1)) for a in (rollouts.obs_count, rollouts.obs_sum, rollouts.obs_sum_sq)
            )
            stats = state.obs_stats.merge(RunningStats.from_sums(count, total, total_sq))
            state = state.replace(obs_stats=stats, norm=stats.norm(self.cfg.obs_std_floor))
        return state, metrics

    # -- evaluation of the current mean ----------------------------------------------------
    def _evaluate_mean(self, state: RunState, key, num_policies: int, own: bool):
        k_init, k_env = jax.random.split(key)
        inits = self._inits(k_init, state, num_policies, fresh=not own)
        rollouts, _ = self._score(self.eval_rollout, self.es.mean(state.es_state), inits, k_env, state.norm)
        return rollouts

    def evaluation_rollouts(self, state: RunState, own_init: bool = False):
        """Rollouts [policies, episodes] of the current mean dataset (or weights, direct ES), with
        keys never used for fitness: ``eval_policies`` fresh initialisations, or (``own_init``,
        HaDES-F) the run's own one."""
        key = jax.random.fold_in(jax.random.fold_in(self._eval_key, state.generation), int(own_init))
        return jax.device_get(self._evaluate(state, key, 1 if own_init else self.cfg.eval_policies, own_init))

    @property
    def eval_keys(self) -> tuple[str, ...]:
        keys = ("return_mean", "return_std", "return_ci95", "episode_length_mean", "distinct_episodes")
        return keys + (("own_init_return_mean", "own_init_return_std") if self.cfg.variant == "hades-f" else ())

    def evaluate(self, state: RunState) -> dict:
        out = summarize(self.evaluation_rollouts(state), self.env)
        if self.cfg.variant == "hades-f":
            own = summarize(self.evaluation_rollouts(state, own_init=True), self.env, prefix="own_init_")
            out.update(
                {
                    k: v
                    for k, v in own.items()
                    if k in ("own_init_return_mean", "own_init_return_std", "own_init_distinct_episodes")
                }
            )
        return out

    def random_reference(self) -> dict:
        """The random-policy return under the same protocol (computed once)."""
        if self._random is None:
            key = jax.random.fold_in(self._eval_key, 2**31 - 1)  # no generation reaches it
            self._random = random_policy_return(self.env, key, self.cfg.eval_episodes * self.cfg.eval_policies)
        return self._random

    def evolved_bc(self, state: RunState) -> dict:
        """The mean solution's BC learning rate and steps (``--evolve-bc``)."""
        lr, steps = self.bc_hyperparameters(
            self.solution(state), jnp.float32(self.cfg.bc.bc_lr), jnp.float32(self.cfg.bc.bc_steps)
        )
        return {"bc_lr": float(lr), "bc_steps": int(steps)}

    def describe(self, state: RunState | None = None) -> dict:
        out = {
            "env": self.cfg.env,
            "variant": self.cfg.variant,
            "devices": 1 if self.mesh is None else int(self.mesh.devices.size),
            "chunk": self.chunk or self.cfg.es.population,
            "actions": self.cfg.actions,
            "env_episode_limit": self.env.max_steps,
            **self.random_reference(),
        }
        if self.cfg.evolve_bc and state is not None:
            out["evolved_bc"] = self.evolved_bc(state)
        return out

    @property
    def title(self) -> str:
        return f"{self.cfg.env} {self.cfg.variant}"

    # -- the product -----------------------------------------------------------------------
    def solution(self, state: RunState):
        return self.es.mean(state.es_state)

    def dataset(self, state: RunState) -> dict[str, np.ndarray]:
        """The distilled dataset in raw observation units (plus normalisation stats if used)."""
        sol = self.solution(state)
        x, y = self.bc_data(sol)
        out = {
            "states": np.asarray(state.norm.inverse(x), np.float32),
            "actions": np.asarray(y, np.int32 if self.env.discrete else np.float32),
        }
        if self.cfg.obs_norm in ("constant", "running"):  # rollout: states are the policy's inputs
            out["obs_mean"] = np.asarray(state.norm.mean, np.float32)
            out["obs_std"] = np.asarray(state.norm.std, np.float32)
        return out

    def write_product(self, state: RunState, out: Path) -> Path:
        """Write the dataset artifact (HaDES) or the policy's weights (direct ES) into ``out``."""
        cfg = self.cfg
        if self.direct:
            fixed = cfg.obs_norm in ("constant", "running")
            stats = (np.asarray(state.norm.mean), np.asarray(state.norm.std)) if fixed else (None, None)
            path = out / "policy.safetensors"
            save_policy(path, jax.device_get(self.solution(state)), cfg.env, cfg.to_dict(), *stats)
            return path
        arrays = self.dataset(state)
        config = cfg.to_dict()
        if cfg.evolve_bc:  # `hades train` retrains with the evolved inner loop by default
            config["bc"].update(self.evolved_bc(state))
        path = out / "dataset.safetensors"
        save_dataset(
            path,
            Dataset(
                states=arrays["states"],
                actions=arrays["actions"],
                env=cfg.env,
                action_space=self.env.action_space,
                variant=cfg.variant,
                obs_mean=arrays.get("obs_mean"),
                obs_std=arrays.get("obs_std"),
                config=config,
                obs_norm=cfg.obs_norm,
            ),
        )
        return path
