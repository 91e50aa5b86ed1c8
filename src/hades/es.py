"""The only module that imports evosax. hades MAXIMISES fitness; evosax minimises.

``Strategy`` wraps any evosax distribution-based algorithm by name:
- ``ask(key, state) -> (population, state)``: population is a pytree with a leading axis;
- ``tell(key, population, fitness, state) -> state``: ``fitness`` is "higher is better"
  (returns); the sign flip to evosax's minimisation happens here and nowhere else.
Antithetic sampling is used wherever the strategy offers it (Open_ES and friends); fitness
shaping is the strategy's own (centred ranks for Open_ES, rank weights for SNES).
States are re-cast to concrete dtypes: evosax 0.3 initialises some scalars as weakly typed,
which would otherwise retrace a jitted generation step every generation.
"""

from __future__ import annotations

import inspect

import jax
import jax.numpy as jnp
import optax
from evosax.algorithms import distribution_based_algorithms
from evosax.algorithms.distribution_based.discovered_es import get_weights as temperature_weights

from hades.config import ESConfig
from hades.errors import HadesError

# Left out: strategies that need learned parameters from files, several populations, or a
# user-supplied sampling function.
_EXCLUDED = {"CMAAnchoredLES", "LES", "EvoTF_ES", "SV_CMA_ES", "SV_Open_ES", "RandomSearch"}
STRATEGIES = tuple(sorted(n for n in distribution_based_algorithms if n not in _EXCLUDED))


def concrete(tree):
    """Strip weak types so a state fed back into jit does not retrace."""
    return jax.tree.map(lambda x: jnp.asarray(x, dtype=jnp.asarray(x).dtype), tree)


class Strategy:
    def __init__(self, cfg: ESConfig, solution):
        if cfg.strategy not in STRATEGIES:
            raise HadesError(f"unknown ES strategy {cfg.strategy!r}; choose one of {', '.join(STRATEGIES)}")
        cls = distribution_based_algorithms[cfg.strategy]
        accepted = inspect.signature(cls.__init__).parameters
        kwargs = {}
        if "optimizer" in accepted:
            kwargs["optimizer"] = optax.adam(cfg.es_lr)
        if "std_schedule" in accepted:
            kwargs["std_schedule"] = optax.constant_schedule(cfg.sigma)
        if "use_antithetic_sampling" in accepted:
            kwargs["use_antithetic_sampling"] = True
        self.cfg = cfg
        self.algo = cls(population_size=cfg.population, solution=solution, **kwargs)
        params = self.algo.default_params
        if hasattr(params, "std_init"):
            params = params.replace(std_init=jnp.asarray(cfg.sigma, jnp.float32))
        if cfg.es_temperature > 0 and hasattr(params, "weights"):
            params = params.replace(weights=temperature_weights(cfg.population, cfg.es_temperature))
        self.params = concrete(params)
        self.num_dims = self.algo.num_dims

    def init(self, key, mean):
        return concrete(self.algo.init(key, mean, self.params))

    def ask(self, key, state):
        return self.algo.ask(key, state, self.params)

    def tell(self, key, population, fitness, state):
        state, _ = self.algo.tell(key, population, -fitness, state, self.params)
        return concrete(state)

    def mean(self, state):
        return self.algo.get_mean(state)
