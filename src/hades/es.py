"""The only module that imports evosax. hades MAXIMISES fitness; evosax minimises.

``Strategy`` wraps any evosax distribution-based algorithm by name:
- ``ask(key, state) -> (population, state)``: population is a pytree with a leading axis;
- ``tell(key, population, fitness, state) -> state``: ``fitness`` is "higher is better"
  (returns); the sign flip to evosax's minimisation happens here and nowhere else.

Each strategy runs with its OWN update rule unless the config says otherwise:
- ``es_optimizer``: ``auto`` gives Open_ES Adam at ``es_lr`` (0.05 by default: the paper's
  OpenES; evosax's own Open_ES default, SGD at 1e-3, is a placeholder) and every other strategy
  evosax's default for it (SNES and xNES: the natural-gradient mean step, SGD at learning rate 1,
  which is what the paper's evosax <= 0.1.5 SNES did); ``adam`` / ``sgd`` replace the optimizer
  of a strategy that has one.
- ``es_temperature`` > 0 replaces a strategy's rank weights by ``softmax(-T * rank / (P - 1))``
  (rank 0 the best), the weights of the paper's evosax <= 0.1.5 SNES: at P = 2048, T = 20 the
  best 10% of ranks carry 0.86 of the weight (evosax 0.3's own temperature weights, DES-style
  sigmoids, give them 0.31).
- ``es_rank_ties`` ``position`` ranks tied fitnesses by their index in the population (a stable
  argsort, as evosax <= 0.1.5 did) before looking up those rank weights; evosax 0.3 averages the
  ranks of ties (``rankdata``), which moves the mean differently when many fitnesses tie (MinAtar
  returns are small integers).
- ``es_adam_b1``: beta1 of the ES's Adam (evosax <= 0.1.5's Adam used 0.99, optax's default is 0.9).
- ``es_shaping`` ``raw`` hands the returns to the update unshaped (the paper's OpenES).
- ``sigma_decay`` / ``sigma_limit``: a std schedule ``max(sigma * decay^g, limit)`` for strategies
  with a schedule; ``sigma_limit`` also floors the std of any strategy that keeps one in its state
  (SNES's adapted per-dimension std), after every update.
An option the chosen strategy would ignore is refused with a one-line error, never dropped.

Antithetic sampling is used wherever the strategy offers it (Open_ES and friends); ``es_sampling``
``mirrored`` adds it to strategies that draw independently but update from the population alone
(``MIRRORABLE``): the second half of the population is the first reflected through the mean.
States are re-cast to concrete dtypes: evosax 0.3 initialises some scalars as weakly typed,
which would otherwise retrace a jitted generation step every generation.
"""

from __future__ import annotations

import inspect

import jax
import jax.numpy as jnp
import optax
from evosax.algorithms import distribution_based_algorithms
from evosax.core.fitness_shaping import identity_fitness_shaping_fn

from hades.config import ESConfig
from hades.errors import HadesError, did_you_mean

# Left out: strategies that need learned parameters from files, several populations, or a
# user-supplied sampling function.
_EXCLUDED = {"CMAAnchoredLES", "LES", "EvoTF_ES", "SV_CMA_ES", "SV_Open_ES", "RandomSearch"}
STRATEGIES = tuple(sorted(n for n in distribution_based_algorithms if n not in _EXCLUDED))
DEFAULT_ADAM_LR = 0.05
# Strategies whose update is a plain rank-weighted sum, so their weights can be replaced
# (CMA-ES and friends derive mu_eff and learning rates from their own weights).
RANK_WEIGHTED = ("SNES", "xNES", "DES")
# Gaussian strategies without antithetic sampling of their own whose update reads the population
# alone (xNES, MA-ES and LM-MA-ES keep the draws in their state, so a reflected population would
# not be what they update from).
MIRRORABLE = ("SNES", "Sep_CMA_ES", "CMA_ES", "SimpleES")


def concrete(tree):
    """Strip weak types so a state fed back into jit does not retrace."""
    return jax.tree.map(lambda x: jnp.asarray(x, dtype=jnp.asarray(x).dtype), tree)


def softmax_rank_weights(population: int, temperature: float) -> jax.Array:
    """The paper's SNES rank weights (evosax <= 0.1.5): ``softmax(-T * rank / (P - 1))``, rank 0 best."""
    ranks = jnp.arange(population, dtype=jnp.float32) / max(population - 1, 1)
    return jax.nn.softmax(-temperature * ranks)


def position_rank_weights_fn(population, fitness, state, params):
    """evosax fitness shaping with evosax <= 0.1.5's ranks: a stable argsort (rank 0 = the lowest,
    i.e. best, minimised fitness; ties ranked by population index), then the strategy's weights."""
    ranks = jnp.argsort(jnp.argsort(jnp.where(jnp.isnan(fitness), jnp.inf, fitness), stable=True), stable=True)
    weights = params.weights[..., ranks]
    return jnp.where(jnp.all(jnp.isnan(fitness), axis=-1, keepdims=True), jnp.zeros_like(weights), weights)


def update_rule(cfg: ESConfig) -> tuple[str, float]:
    """(optimizer, learning rate) the strategy will use: ``own`` (evosax's default for it, lr
    unused), ``adam`` or ``sgd``. Raises HadesError for a combination the strategy cannot honour."""
    if cfg.strategy not in STRATEGIES:
        hint = did_you_mean(cfg.strategy, STRATEGIES)
        raise HadesError(f"unknown ES strategy {cfg.strategy!r}{hint} (choose one of {', '.join(STRATEGIES)})")
    accepted = inspect.signature(distribution_based_algorithms[cfg.strategy].__init__).parameters
    if cfg.es_optimizer == "auto":
        name = "adam" if cfg.strategy == "Open_ES" else "own"
    else:
        name = cfg.es_optimizer
        if "optimizer" not in accepted:
            raise HadesError(f"{cfg.strategy} has no optimizer to replace; drop --es-optimizer {name}")
    if name == "own":
        if cfg.es_lr or cfg.es_lr_decay != 1.0:
            raise HadesError(
                f"{cfg.strategy} uses its own update rule (evosax's default), which --es-lr and "
                "--es-lr-decay do not change; pass --es-optimizer adam or sgd to set them"
            )
        return name, 0.0
    if name == "sgd" and not cfg.es_lr:
        raise HadesError("--es-optimizer sgd needs --es-lr")
    return name, cfg.es_lr or DEFAULT_ADAM_LR


def switch_strategy(cfg: ESConfig, strategy: str) -> dict:
    """The ES settings that change when a config written for ``cfg.strategy`` runs ``strategy``
    instead (``hades tune --strategies``): the new strategy with its own update rule, shaping and
    weights, i.e. every option it would refuse reset to the value that means "the strategy's own".
    Population, sigma and the floor on the std are kept; nothing changes for the same strategy."""
    if strategy == cfg.strategy:
        return {}
    accepted = inspect.signature(distribution_based_algorithms[strategy].__init__).parameters
    out = {"strategy": strategy, "es_optimizer": "auto", "es_shaping": "own", "es_rank_ties": "average"}
    if strategy != "Open_ES":  # its own update rule: no learning rate or Adam settings to honour
        out.update(es_lr=0.0, es_lr_decay=1.0, es_adam_b1=0.9)
    if "std_schedule" not in accepted:
        out["sigma_decay"] = 1.0
    if strategy not in RANK_WEIGHTED:
        out["es_temperature"] = 0.0
    if strategy not in MIRRORABLE:
        out["es_sampling"] = "own"
    return out


class Strategy:
    def __init__(self, cfg: ESConfig, solution):
        optimizer, lr = update_rule(cfg)
        cls = distribution_based_algorithms[cfg.strategy]
        accepted = inspect.signature(cls.__init__).parameters
        kwargs = {}
        if optimizer != "own":
            schedule = optax.exponential_decay(lr, 1, cfg.es_lr_decay) if cfg.es_lr_decay != 1.0 else lr
            if optimizer == "adam":
                kwargs["optimizer"] = optax.adam(schedule, b1=cfg.es_adam_b1)
            else:
                kwargs["optimizer"] = optax.sgd(schedule)
        elif cfg.es_adam_b1 != 0.9:
            raise HadesError(f"--es-adam-b1 sets the ES's Adam; {cfg.strategy} uses its own update rule")
        if "std_schedule" in accepted:
            kwargs["std_schedule"] = self._std_schedule(cfg)
        elif cfg.sigma_decay != 1.0:
            raise HadesError(
                f"{cfg.strategy} adapts its own search std; --sigma-decay applies to strategies "
                "with a std schedule (Open_ES, ARS, PGPE-like)"
            )
        if "use_antithetic_sampling" in accepted:
            kwargs["use_antithetic_sampling"] = True
        if cfg.es_sampling == "mirrored" and cfg.strategy not in MIRRORABLE:
            raise HadesError(
                f"--es-sampling mirrored reflects the draws of {', '.join(MIRRORABLE)}; {cfg.strategy} "
                + ("samples antithetic pairs itself" if "use_antithetic_sampling" in accepted else "cannot take them")
            )
        cfg.check_pairs()  # library code may build a Strategy from a config it never validated
        if cfg.es_shaping == "raw":
            kwargs["fitness_shaping_fn"] = identity_fitness_shaping_fn
        if cfg.es_rank_ties == "position":
            if cfg.strategy not in RANK_WEIGHTED or cfg.es_shaping == "raw":
                raise HadesError(
                    f"--es-rank-ties position ranks the rank weights of {', '.join(RANK_WEIGHTED)}; "
                    f"{cfg.strategy} {'with --es-shaping raw ' if cfg.es_shaping == 'raw' else ''}uses none"
                )
            kwargs["fitness_shaping_fn"] = position_rank_weights_fn
        self.cfg = cfg
        self.optimizer = optimizer
        try:
            self.algo = cls(population_size=cfg.population, solution=solution, **kwargs)
        except AssertionError as e:  # evosax's own checks on the population (e.g. ESMC's >= 4)
            raise HadesError(f"{cfg.strategy} refuses --population {cfg.population}: {e}") from None
        params = self.algo.default_params
        if hasattr(params, "std_init"):
            params = params.replace(std_init=jnp.asarray(cfg.sigma, jnp.float32))
        if cfg.es_temperature > 0:
            if cfg.strategy not in RANK_WEIGHTED:
                raise HadesError(
                    f"--es-temperature replaces the rank weights of {', '.join(RANK_WEIGHTED)}; "
                    f"{cfg.strategy} has none that can be replaced"
                )
            if cfg.es_shaping == "raw":
                raise HadesError("--es-temperature sets rank weights, --es-shaping raw turns them off: choose one")
            params = params.replace(weights=softmax_rank_weights(cfg.population, cfg.es_temperature))
        self._floors_std = (
            cfg.sigma_limit > 0
            and "std" in self.algo.init(jax.random.PRNGKey(0), solution, params).__dataclass_fields__
        )
        if cfg.sigma_limit > 0 and not (self._floors_std or "std_schedule" in accepted):
            raise HadesError(f"{cfg.strategy} keeps no search std that --sigma-limit could bound")
        self.params = concrete(params)
        self.num_dims = self.algo.num_dims

    @staticmethod
    def _std_schedule(cfg: ESConfig):
        if cfg.sigma_decay == 1.0:
            return optax.constant_schedule(max(cfg.sigma, cfg.sigma_limit))
        return optax.exponential_decay(cfg.sigma, 1, cfg.sigma_decay, end_value=cfg.sigma_limit or None)

    def init(self, key, mean):
        return concrete(self.algo.init(key, mean, self.params))

    def ask(self, key, state):
        population, state = self.algo.ask(key, state, self.params)
        if self.cfg.es_sampling == "mirrored":
            half = self.cfg.population // 2
            mean = self.mean(state)
            population = jax.tree.map(lambda x, m: jnp.concatenate([x[:half], 2 * m - x[:half]]), population, mean)
        return population, state

    def tell(self, key, population, fitness, state):
        state, _ = self.algo.tell(key, population, -fitness, state, self.params)
        if self._floors_std:
            state = state.replace(std=jnp.maximum(state.std, self.cfg.sigma_limit))
        return concrete(state)

    def mean(self, state):
        return self.algo.get_mean(state)


def all_finite(tree) -> jax.Array:
    """True when every value of a pytree (a search distribution's mean, say) is finite."""
    return jnp.all(jnp.stack([jnp.all(jnp.isfinite(x)) for x in jax.tree.leaves(tree)]))


def generation_metrics(fitness: jax.Array, bc_loss: jax.Array, mean) -> dict:
    """The metrics every ES driver logs per generation (RL and images alike): the population's
    fitness, the inner loop's loss, and whether the fitness and the new search mean are finite
    (``runs.run`` stops a run, keeping its last good checkpoint, when they are not)."""
    return {
        "fitness_mean": fitness.mean(),
        "fitness_max": fitness.max(),
        "fitness_min": fitness.min(),
        "bc_loss": bc_loss.mean(),
        "finite": jnp.all(jnp.isfinite(fitness)) & all_finite(mean),
    }
