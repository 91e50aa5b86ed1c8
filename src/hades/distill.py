"""The HaDES driver (HaDES-F, HaDES-R) on the machinery every RL driver shares (``RLDriver``).

One generation (``step``):
1. the ES proposes a population of candidate solutions (antithetic where the strategy allows);
2. every candidate is scored with *common random numbers*: the same policy initialisations, the
   same environment reset/step keys and action keys for the whole generation, so fitness
   differences come from the candidates alone. A HaDES candidate is a dataset; each of the
   generation's learners (``learners``) is trained on it by BC (``bc.py``) and rolled out
   (``rollout.py``); fitness = mean episode return over learners and episodes. HaDES-F uses one
   initialisation fixed for the whole run; HaDES-R draws ``num_inits`` fresh ones every
   generation (``--learners sampled`` / ``wide``: drawn from a distribution of learners, ``learners.py``).
   The direct-ES baseline (``direct.py``) scores a policy's weights instead.
3. the ES is told the fitness (higher is better; ``es.py`` flips the sign for evosax).

Datasets are evolved in *normalised* observation units (the policy's input space), so one ES
sigma suits every feature; ``product()`` maps them back to raw observation units.
Keys derive from ``(seed, generation)`` alone, so a resumed run repeats an uninterrupted one.
Evaluations of the mean (``evaluate``) follow the protocol of ``evaluation.py``: keys of their
own branch of the seed, never used for fitness; freshly initialised policies (HaDES-F also
reports its own init, labelled ``own_init_*``); whole episodes; the run's action mode.
Drivers compute and return values; ``runs.py`` writes them.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from hades.bc import make_bc_train, uniform_labels
from hades.chunking import Workload
from hades.config import DistillConfig
from hades.dataset import Dataset
from hades.devices import (
    auto_chunk,
    check_memory,
    place,
    population_mesh,
    replicate,
    score_population,
    vmap_batch,
    whole_on_every_device,
)
from hades.envs import make_env
from hades.errors import MEMORY_ADVICE, HadesError
from hades.es import Strategy, all_finite, generation_metrics
from hades.evaluation import check_dataset, random_policy_return, summarize
from hades.learners import LearnerSpace
from hades.normalization import (
    ObsNorm,
    RunningStats,
    official_statistics,
    principal_axes,
    random_observations,
    reference_statistics,
)
from hades.policies import Policy, make_policy, param_count
from hades.rollout import Rollouts, fitness_of, make_rollout


def setup_keys(seed: int):
    """(normalisation, fixed init, initial solution, ES init) keys of a run's seed."""
    return jax.random.split(jax.random.fold_in(jax.random.PRNGKey(seed), 0), 4)


def fixed_init(policy: Policy, seed: int):
    """HaDES-F's one initialisation of a run: a pure function of the policy and the seed (saved
    in the run directory as ``init.safetensors``, which ``hades train --own-init`` reads)."""
    return policy.init(setup_keys(seed)[1])


@struct.dataclass
class RunState:
    es_state: Any
    generation: jax.Array  # int32 scalar: generations completed
    fixed_init: Any  # policy params: HaDES-F's one initialisation (carried, unused, by the others)
    norm: ObsNorm  # what this generation's policies see
    obs_stats: RunningStats  # running normalisation's statistics (empty otherwise)


class RLDriver:
    """What every RL driver shares: environment, policy, population mesh, ES, the jitted
    generation, the evaluation protocol. Subclasses say what a candidate is
    (``initial_solution``), how it is scored (``score``) and what the run produces (``product``)."""

    def __init__(self, cfg: DistillConfig):
        self.cfg = cfg.validate()
        self.env = env = make_env(cfg.env, cfg.backend)
        self.mesh = population_mesh(cfg.devices, cfg.es.population)
        self.chunk = auto_chunk(cfg.chunk, self.workload(), self.mesh)
        if self.mesh is not None and self.chunk % self.mesh.devices.size:
            raise HadesError(f"--chunk ({cfg.chunk}) must be a multiple of the device count ({self.mesh.devices.size})")
        if cfg.memory_check:
            check_memory(self.memory_estimate(), "a generation", MEMORY_ADVICE)
        self.policy = self.make_policy()
        self.running_norm = cfg.obs_norm == "running"
        per_rollout = cfg.obs_norm == "rollout"
        self.rollout = make_rollout(
            env,
            self.policy,
            cfg.eval_envs,
            cfg.eval_steps,
            cfg.actions,
            per_rollout,
            fixed_length=cfg.fixed_length,
            fixed_fitness=cfg.fixed_fitness,
        )
        # the protocol's evaluation: whole episodes, whatever cap the fitness rollouts use
        self.eval_rollout = make_rollout(env, self.policy, cfg.eval_episodes, 0, cfg.actions, per_rollout)
        root = jax.random.PRNGKey(cfg.seed)
        self._gen_key, self._eval_key = jax.random.fold_in(root, 1), jax.random.fold_in(root, 2)
        self.es = Strategy(cfg.es, self.initial_solution(jax.random.PRNGKey(0)))
        self.step = jax.jit(self._generation)
        self._evaluate = jax.jit(self._evaluate_mean, static_argnums=(2, 3))
        self._random = None

    # -- what a subclass defines -----------------------------------------------------------
    def make_policy(self) -> Policy:
        """The policy network every rollout runs."""
        return make_policy(self.cfg.policy, self.env.obs_shape, self.env.discrete, self.env.action_dim)

    def initial_solution(self, key, norm: ObsNorm | None = None):
        """The search's starting point; ``norm`` is what generation 0's policies see (None when
        only the shapes are wanted)."""
        raise NotImplementedError

    def solution_size(self) -> int:
        """Number of values a candidate holds (the ES's search dimension)."""
        raise NotImplementedError

    def candidate_bytes(self) -> int:
        """Estimated memory one candidate needs while it is scored."""
        raise NotImplementedError

    def workload(self) -> Workload:
        """One generation's work per candidate, for the chunk cost model (``hades.chunking``)."""
        raise NotImplementedError

    def rollout_steps(self) -> int:
        """Loop iterations of a fitness rollout: its cap, else the episode limit (whole episodes)."""
        return self.cfg.eval_steps or self.env.max_steps or 1000

    def memory_estimate(self) -> int:
        """Estimated bytes of one generation: the ES's population and state, plus the candidates
        scored at once (a chunk, or the whole population), float32 throughout."""
        live = self.chunk or self.cfg.es.population
        return self.es_bytes() + live * self.candidate_bytes()

    def es_bytes(self) -> int:
        """Estimated bytes of the ES: the population of solutions and the strategy's state."""
        return 4 * self.solution_size() * (3 * self.cfg.es.population + 8)

    def n_params(self) -> int:
        in_dim = int(np.prod(self.env.obs_shape))
        return param_count(self.cfg.policy, in_dim, self.env.action_dim, gaussian=not self.env.discrete)

    def score(self, rollout, solution, learners, env_key, norm) -> tuple[Rollouts, jax.Array]:
        """Rollouts [learners, episodes] of one candidate and its mean BC loss."""
        raise NotImplementedError

    def learners(self, key, state: RunState, count: int, kind: str = "train"):
        """The learners a candidate is scored with (None where the candidate is the policy)."""
        return None

    def bc_sample_steps(self) -> int:
        """BC sample-steps one generation computes (0: no inner loop)."""
        return 0

    def product(self, state: RunState):
        raise NotImplementedError

    def own_init(self, state: RunState):
        """The initialisation the product is tied to (HaDES-F), else None."""
        return None

    # -- setup -----------------------------------------------------------------------------
    def init(self) -> RunState:
        k_norm, k_fixed, k_data, k_es = setup_keys(self.cfg.seed)
        if self.cfg.obs_norm == "constant":
            norm = reference_statistics(self.env, k_norm, self.cfg.obs_std_floor)
        elif self.cfg.obs_norm == "official":
            norm = official_statistics(self.cfg.env, self.env.obs_shape)
        else:
            norm = ObsNorm.identity(self.env.obs_shape)
        es_state = self.es.init(k_es, self.initial_solution(k_data, norm))
        stats = RunningStats.empty(self.env.obs_shape)
        fixed = fixed_init(self.policy, self.cfg.seed)
        return place(RunState(es_state, jnp.int32(0), fixed, norm, stats), self.mesh)

    def generation_keys(self, generation):
        """(ask, learners, environment, tell) keys of a generation: one set shared by every candidate."""
        return jax.random.split(jax.random.fold_in(self._gen_key, generation), 4)

    # -- one generation --------------------------------------------------------------------
    def _merge_statistics(self, stats: RunningStats, sums):
        """The running observation statistics with a generation's rollouts (their per-candidate
        counts, sums and sums of squares) added, and the normalisation they give."""
        count, total, total_sq = (a.sum(axis=(0, 1)) for a in sums)
        stats = stats.merge(RunningStats.from_sums(count, total, total_sq))
        return stats, stats.norm(self.cfg.obs_std_floor)

    def _generation(self, state: RunState):
        k_ask, k_learners, k_env, k_tell = self.generation_keys(state.generation)
        population, es_state = self.es.ask(k_ask, state.es_state)
        learners = self.learners(k_learners, state, self.cfg.num_inits)
        score = lambda sol, learners, k_env, norm: self.score(self.rollout, sol, learners, k_env, norm)
        shared = (learners, k_env, state.norm)
        rollouts, losses = score_population(score, population, self.mesh, self.chunk, shared)
        population = replicate(population, self.mesh)
        fitness = fitness_of(rollouts, pooled=self.cfg.fixed_fitness == "pooled")
        es_state = whole_on_every_device(self.es.tell, self.mesh)(k_tell, population, fitness, es_state)
        metrics = {
            **generation_metrics(fitness, losses, self.es.mean(es_state)),
            # the work this generation did: environment steps of the fitness episodes (steps taken
            # until each episode ended or hit the cap) and BC sample-steps (candidates x learners x
            # BC steps run x dataset size), so speed compares per unit of work across implementations
            "env_steps": rollouts.lengths.sum(dtype=jnp.float32),
            "bc_sample_steps": jnp.float32(self.bc_sample_steps()),
        }
        state = state.replace(es_state=es_state, generation=state.generation + 1)
        if self.running_norm:
            sums = (rollouts.obs_count, rollouts.obs_sum, rollouts.obs_sum_sq)
            stats, norm = whole_on_every_device(self._merge_statistics, self.mesh)(state.obs_stats, sums)
            state = state.replace(obs_stats=stats, norm=norm)
        return state, metrics

    # -- evaluation of the current mean ----------------------------------------------------
    def _evaluate_mean(self, state: RunState, key, num_policies: int, own: bool):
        k_learners, k_env = jax.random.split(key)
        learners = self.learners(k_learners, state, num_policies, "own" if own else "fresh")
        rollouts, _ = self.score(self.eval_rollout, self.solution(state), learners, k_env, state.norm)
        return rollouts

    def evaluation_rollouts(self, state: RunState, own_init: bool = False) -> Rollouts:
        """Rollouts [policies, episodes] of the current mean dataset (or weights, direct ES), with
        keys never used for fitness: ``eval_policies`` fresh initialisations, or (``own_init``,
        HaDES-F) the run's own one."""
        key = jax.random.fold_in(jax.random.fold_in(self._eval_key, state.generation), int(own_init))
        return jax.device_get(self._evaluate(state, key, 1 if own_init else self.cfg.eval_policies, own_init))

    eval_keys: tuple[str, ...] = (
        "return_mean",
        "return_std",
        "return_ci95",
        "episode_length_mean",
        "distinct_episodes",
    )

    def evaluate(self, state: RunState) -> dict:
        return summarize(self.evaluation_rollouts(state), self.env)

    def final_evaluate(self, state: RunState, in_run: dict | None = None) -> dict:
        """The protocol's evaluation of the final state (the same keys as in the run's last row)."""
        return self.evaluate(state) if in_run is None else in_run

    def random_reference(self) -> dict:
        """The random-policy return under the same protocol (computed once)."""
        if self._random is None:
            key = jax.random.fold_in(self._eval_key, 2**31 - 1)  # no generation reaches it
            self._random = random_policy_return(self.env, key, self.cfg.eval_episodes * self.cfg.eval_policies)
        return self._random

    def describe(self, state: RunState | None = None) -> dict:
        return {
            "env": self.cfg.env,
            "variant": self.cfg.variant,
            "devices": 1 if self.mesh is None else int(self.mesh.devices.size),
            "chunk": self.chunk or self.cfg.es.population,
            "actions": self.cfg.actions,
            "env_episode_limit": self.env.max_steps,
            **self.random_reference(),
        }

    def solution(self, state: RunState):
        """The ES mean: the current dataset (in the policy's input units) or weights."""
        return self.es.mean(state.es_state)

    def fixed_stats(self, state: RunState):
        """(obs_mean, obs_std) a product stores: the run's final statistics where they are fixed
        per policy (constant, running), None where every rollout computes its own (rollout, none)."""
        if self.cfg.obs_norm in ("constant", "official", "running"):
            return np.asarray(state.norm.mean, np.float32), np.asarray(state.norm.std, np.float32)
        return None, None


class Distiller(RLDriver):
    """HaDES: a candidate is a dataset, scored by the policies BC trains on it."""

    def __init__(self, cfg: DistillConfig):
        if cfg.variant == "direct-es":
            raise HadesError("the direct-ES baseline is hades.direct.DirectES (`hades baseline`)")
        self.max_bc_steps = cfg.bc.bc_steps * (2 if cfg.evolve_bc else 1)
        # --learners sampled / wide: every learner runs on one network that can be any of them
        self.space = LearnerSpace.from_config(cfg.validate()) if cfg.learner.learners != "fixed" else None
        self.network = self.space.network(cfg.policy.depth, cfg.policy.activation) if self.space is not None else None
        super().__init__(cfg)
        if cfg.evolve_label_temperature and not self.env.discrete:
            raise HadesError(
                "--evolve-label-temperature is for discrete actions (labels); this environment's are continuous"
            )
        self.bc_train = make_bc_train(self.policy, cfg.bc, max_steps=self.max_bc_steps)
        self.labels = None
        if self.env.discrete:
            self.labels = uniform_labels(cfg.dataset_size, self.env.num_actions, cfg.label_layout)
            if len(self.labels) == 0:
                raise HadesError(
                    f"--label-layout official labels dataset_size // actions states per action: "
                    f"{cfg.dataset_size} states leave none for {self.env.num_actions} actions"
                )
        # --clip-states observed: the per-feature range of states random actions visit (raw units);
        # --state-components K: their mean and K principal axes, on which the ES evolves the states
        self.state_range = self.basis = None
        if cfg.clip_states == "observed" or cfg.state_components:
            seen = random_observations(self.env, jax.random.fold_in(setup_keys(cfg.seed)[0], 1))
            if cfg.clip_states == "observed":
                self.state_range = (seen.min(0), seen.max(0))
            if cfg.state_components:
                self.basis = principal_axes(seen, cfg.state_components)
        # the variant is chosen here, once: which learners train a generation's candidates
        if cfg.variant == "hades-f":
            self._train_learners = self._fixed
        elif self.space is not None:
            self._train_learners = self._sampled
        else:
            self._train_learners = self._fresh

    def make_policy(self) -> Policy:
        cfg, env = self.cfg, self.env
        if self.space is None:
            return super().make_policy()
        in_dim = int(np.prod(env.obs_shape))
        if 0 in self.space.depths and in_dim > cfg.policy.width:
            raise HadesError(
                f"--learner-depths 0 (linear learners) needs observations of at most --width values; "
                f"{cfg.env}'s have {in_dim} (width {cfg.policy.width})"
            )
        return make_policy(cfg.policy, env.obs_shape, env.discrete, env.action_dim, learners=self.network)

    def initial_solution(self, key, norm: ObsNorm | None = None):
        n, shape = self.cfg.dataset_size, self.env.obs_shape
        # init_scale 0: all zeros, the official code's initial ES mean
        if self.cfg.state_components:  # coordinates on the principal axes (0: the mean observed state)
            shape = (self.cfg.state_components,)
        sol = {"states": self.cfg.init_scale * jax.random.normal(key, (n, *shape))}
        if self.cfg.init_states == "observed" and norm is not None:
            sol["states"] = sol["states"] + self.observed_states(jax.random.fold_in(key, 1), norm)
        if not self.env.discrete:
            sol["actions"] = jnp.zeros((n, self.env.action_dim))
        if self.cfg.init_dataset and norm is not None:
            states, actions = self.warm_start(norm)
            sol["states"] = sol["states"].at[: len(states)].set(states)
            if actions is not None:
                sol["actions"] = actions
        if self.cfg.evolve_bc:
            sol["bc_genes"] = jnp.zeros(2)  # log learning-rate factor, log step-count factor
        if self.cfg.evolve_label_temperature:
            sol["label_gene"] = jnp.zeros(1)  # log factor on --bc-label-temperature
        return sol

    def warm_start(self, norm: ObsNorm) -> tuple[jax.Array, jax.Array | None]:
        """``--init-dataset``: the artifact's states in this run's policy units (and its labels for
        continuous actions), checked against the run: environment (``evaluation.check_dataset``
        for shapes and actions), size, the fixed discrete labels and the normalisation. Stored
        states are raw observations unless the artifact was evolved with per-rollout statistics,
        where they are the policy's inputs."""
        from hades.artifacts import load_dataset  # read once, when the ES's mean is first set

        cfg, path = self.cfg, self.cfg.init_dataset
        ds = load_dataset(path)
        where = f"--init-dataset {path}"
        if ds.env != cfg.env:
            raise HadesError(f"{where} is a dataset for {ds.env}; this run is {cfg.env}")
        check_dataset(ds, self.env)  # observation shape, action space and dimension, finite values
        trained = len(self.labels) if self.env.discrete else cfg.dataset_size
        if ds.size != trained:
            raise HadesError(f"{where} holds {ds.size} states; this run trains on {trained} (set --dataset-size)")
        if self.env.discrete and not np.array_equal(ds.actions, np.asarray(self.labels)):
            raise HadesError(
                f"{where}: its labels are not this run's fixed labels (--label-layout {cfg.label_layout}); "
                "pass the label layout it was evolved with"
            )
        if (ds.normalisation == "rollout") != (cfg.obs_norm == "rollout"):
            raise HadesError(
                f"{where} was evolved with --obs-norm {ds.normalisation}; this run's --obs-norm {cfg.obs_norm} "
                "cannot read it (per-rollout statistics on one side only): pass its --obs-norm"
            )
        states = jnp.asarray(ds.states, jnp.float32)
        if cfg.obs_norm != "rollout":  # raw observations, seen through this run's statistics
            states = norm(states)
        actions = None if self.env.discrete else jnp.asarray(ds.actions, jnp.float32)
        return states.astype(jnp.float32), actions

    def observed_states(self, key, norm: ObsNorm) -> jax.Array:
        """``dataset_size`` distinct states that uniformly random actions visit, as generation 0's
        policies see them: normalised with ``norm``, or (per-rollout statistics, which start afresh
        in every rollout) standardised with the visited states' own statistics."""
        k_run, k_pick = jax.random.split(key)
        seen = random_observations(self.env, k_run)
        if self.cfg.obs_norm == "rollout":
            norm = ObsNorm(seen.mean(0), jnp.maximum(seen.std(0), self.cfg.obs_std_floor))
        picked = seen[jax.random.choice(k_pick, len(seen), (self.cfg.dataset_size,), replace=False)]
        return norm(picked).astype(jnp.float32)

    def solution_size(self) -> int:
        n, per_state = self.cfg.dataset_size, self.cfg.state_components or int(np.prod(self.env.obs_shape))
        return n * per_state + (0 if self.env.discrete else n * self.env.action_dim) + 3

    def candidate_bytes(self) -> int:
        cfg = self.cfg
        k = 1 if cfg.variant == "hades-f" else cfg.num_inits
        depth = cfg.policy.depth
        if self.space is not None:  # the shared network has the deepest learner's layers
            depth = self.network["depth"]
        width = cfg.policy.width * depth
        train = 5 * self.n_params() + 3 * cfg.dataset_size * width  # params, grads, Adam, activations
        act = cfg.eval_envs * (width + 2 * int(np.prod(self.env.obs_shape)))
        return 4 * k * (train + act)

    def workload(self) -> Workload:
        cfg = self.cfg
        return Workload.hades(
            cfg.es.population,
            self.n_params(),
            cfg.policy.width * cfg.policy.depth,
            1 if cfg.variant == "hades-f" else cfg.num_inits,
            cfg.dataset_size,
            self.max_bc_steps,
            cfg.eval_envs,
            self.rollout_steps(),
            int(np.prod(self.env.obs_shape)),
            self.candidate_bytes(),
            self.es_bytes(),
            self.env.step_overhead,
        )

    def bc_sample_steps(self) -> int:
        cfg = self.cfg
        k = 1 if cfg.variant == "hades-f" else cfg.num_inits
        return cfg.es.population * k * self.max_bc_steps * cfg.dataset_size

    def fixed_init(self):
        """HaDES-F's one initialisation of this run (``fixed_init`` of the policy and seed)."""
        return fixed_init(self.policy, self.cfg.seed)

    def own_init(self, state: RunState):
        return state.fixed_init if self.cfg.variant == "hades-f" else None

    # -- learners --------------------------------------------------------------------------
    def learners(self, key, state: RunState, count: int, kind: str = "train"):
        """Stacked (initial params, BC lr, BC steps) of the learners a candidate is scored with.
        ``train``: the generation's (HaDES-F: its one fixed init; HaDES-R: ``count`` fresh ones,
        with ``--learners sampled`` each of a random width, learning rate and step count);
        ``fresh``: ``count`` fresh inits of the run's learner; ``own``: HaDES-F's fixed init."""
        make = {"train": self._train_learners, "fresh": self._fresh, "own": self._fixed}[kind]
        return make(key, state, count)

    def _with_run_hyperparameters(self, params, count: int):
        lr = jnp.full(count, self.cfg.bc.bc_lr, jnp.float32)
        return params, lr, jnp.full(count, self.cfg.bc.bc_steps, jnp.float32)

    def _fixed(self, key, state: RunState, count: int):
        return self._with_run_hyperparameters(jax.tree.map(lambda x: x[None], state.fixed_init), 1)

    def _fresh(self, key, state: RunState, count: int):
        return self._with_run_hyperparameters(jax.vmap(self.policy.init)(jax.random.split(key, count)), count)

    def _sampled(self, key, state: RunState, count: int):
        return self.space.sample(key, *self._fresh(key, state, count), self.network)

    # -- scoring ---------------------------------------------------------------------------
    def bc_data(self, solution, norm: ObsNorm):
        """(inputs, labels) of a dataset candidate, inputs in the policy's (normalised) units
        (``norm``: what the policies see, for ``--clip-states`` and ``--state-components``)."""
        x = solution["states"]
        if self.basis is not None:  # coordinates -> raw states -> what the policies see
            mean, axes = self.basis
            raw = mean + (x @ axes).reshape(x.shape[:1] + mean.shape)
            if self.state_range is not None:
                raw = jnp.clip(raw, *self.state_range)
            x = norm(raw)
        elif self.state_range is not None:
            x = norm(jnp.clip(norm.inverse(x), *self.state_range))
        if not self.env.discrete:
            return x, solution["actions"]
        # --label-layout official: the states past the labelled blocks are never trained on
        return x[: len(self.labels)], self.labels

    def bc_hyperparameters(self, solution, lr, steps):
        """A candidate's BC learning rate and step count: the learner's, times the evolved factors."""
        if self.cfg.evolve_bc:
            lr = lr * jnp.exp(solution["bc_genes"][0])
            steps = steps * jnp.exp(solution["bc_genes"][1])
        return lr, jnp.clip(jnp.round(steps), 1, self.max_bc_steps).astype(jnp.int32)

    def label_temperature(self, solution):
        """The candidate's soft-label temperature (``--evolve-label-temperature``), else None (the config's)."""
        if not self.cfg.evolve_label_temperature:
            return None
        return self.cfg.bc.bc_label_temperature * jnp.exp(solution["label_gene"][0])

    def score(self, rollout, solution, learners, env_key, norm):
        x, y = self.bc_data(solution, norm)

        temperature = self.label_temperature(solution)

        def one(init, lr, steps, key):
            params, loss = self.bc_train(init, x, y, *self.bc_hyperparameters(solution, lr, steps), temperature)
            if self.space is not None:
                # a sampled learner whose training diverged (an SGD learner at the top of its step
                # size on a Gaussian NLL can) acts with its untrained weights: a failed learner
                # scores what an untrained policy scores, and the generation stays finite
                ok = all_finite(params["params"])
                params = jax.tree.map(lambda p, p0: jnp.where(ok, p, p0), params, init)
                loss = jnp.where(ok, loss, jnp.nan)
            return rollout(params, key, norm), loss

        # common random numbers across candidates; across learners too unless they have their own
        count = jnp.shape(learners[1])[0]
        if self.cfg.learner_env_keys == "own":
            keys = jax.vmap(lambda i: jax.random.fold_in(env_key, i))(jnp.arange(count))
        else:
            keys = jnp.broadcast_to(env_key, (count, *env_key.shape))
        rollouts, losses = vmap_batch(one)(*learners, keys)  # HaDES-F's one learner: unbatched
        return rollouts, jnp.nanmean(losses)

    # -- evaluation and the product --------------------------------------------------------
    @property
    def eval_keys(self) -> tuple[str, ...]:
        own = ("own_init_return_mean", "own_init_return_std") if self.cfg.variant == "hades-f" else ()
        return RLDriver.eval_keys + own

    def evaluate(self, state: RunState) -> dict:
        out = super().evaluate(state)
        if self.cfg.variant == "hades-f":
            own = summarize(self.evaluation_rollouts(state, own_init=True), self.env, prefix="own_init_")
            keep = ("own_init_return_mean", "own_init_return_std", "own_init_distinct_episodes")
            out.update({k: v for k, v in own.items() if k in keep})
        return out

    def evolved_bc(self, state: RunState) -> dict:
        """The mean solution's BC learning rate and steps (``--evolve-bc``)."""
        lr, steps = self.bc_hyperparameters(
            self.solution(state), jnp.float32(self.cfg.bc.bc_lr), jnp.float32(self.cfg.bc.bc_steps)
        )
        return {"bc_lr": float(lr), "bc_steps": int(steps)}

    def describe(self, state: RunState | None = None) -> dict:
        out = super().describe(state)
        if self.cfg.evolve_bc and state is not None:
            out["evolved_bc"] = self.evolved_bc(state)
        if self.cfg.evolve_label_temperature and state is not None:
            out["label_temperature"] = float(self.label_temperature(self.solution(state)))
        return out

    def dataset(self, state: RunState) -> dict[str, np.ndarray]:
        """The distilled dataset's arrays in raw observation units (plus normalisation stats if used)."""
        x, y = self.bc_data(self.solution(state), state.norm)
        out = {
            "states": np.asarray(state.norm.inverse(x), np.float32),
            "actions": np.asarray(y, np.int32 if self.env.discrete else np.float32),
        }
        mean, std = self.fixed_stats(state)
        if mean is not None:  # rollout / none: the states are the policy's inputs
            out["obs_mean"], out["obs_std"] = mean, std
        return out

    def product(self, state: RunState) -> Dataset:
        cfg = self.cfg
        arrays = self.dataset(state)
        config = cfg.to_dict()
        if cfg.evolve_bc:  # `hades train` retrains with the evolved inner loop by default
            config["bc"].update(self.evolved_bc(state))
        if cfg.evolve_label_temperature:
            config["bc"]["bc_label_temperature"] = float(self.label_temperature(self.solution(state)))
        return Dataset(
            states=arrays["states"],
            actions=arrays["actions"],
            env=cfg.env,
            action_space=self.env.action_space,
            variant=cfg.variant,
            obs_mean=arrays.get("obs_mean"),
            obs_std=arrays.get("obs_std"),
            config=config,
            obs_norm=cfg.obs_norm,
            env_spec=self.env.spec(),
        )
