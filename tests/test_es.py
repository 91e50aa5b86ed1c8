import jax
import jax.numpy as jnp
import numpy as np
import pytest

from hades.config import ESConfig
from hades.es import STRATEGIES, Strategy
from hades.errors import HadesError

TARGET = jnp.tile(jnp.array([1.0, -2.0, 3.0, 0.5]), 4)  # 16 dims (LM_MA_ES needs more than a few)


def fitness(x):  # maximised at TARGET
    return -jnp.sum((x - TARGET) ** 2, axis=-1)


def optimise(cfg, generations):
    es = Strategy(cfg, jnp.zeros(16))
    state = es.init(jax.random.PRNGKey(0), jnp.zeros(16))

    @jax.jit
    def step(state, key):
        k1, k2 = jax.random.split(key)
        pop, state = es.ask(k1, state)
        return es.tell(k2, pop, fitness(pop), state)

    for g in range(generations):
        state = step(state, jax.random.PRNGKey(g))
    return es, state, step


@pytest.mark.parametrize("name", ["Open_ES", "SNES"])
def test_es_maximises_a_quadratic(name):
    es, state, _ = optimise(ESConfig(strategy=name, population=32, sigma=0.5, es_lr=0.1), 150)
    start, end = float(fitness(jnp.zeros(16))), float(fitness(es.mean(state)))
    assert end > 0.98 * start + 0.0 and end > -0.05 * abs(start), (start, end)


@pytest.mark.parametrize("name", STRATEGIES)
def test_every_strategy_improves_on_the_start(name):
    es, state, _ = optimise(ESConfig(strategy=name, population=16, sigma=0.5, es_lr=0.1), 40)
    best = max(float(fitness(es.mean(state))), float(-state.best_fitness))  # evosax stores -fitness
    assert np.isfinite(best) and best > float(fitness(jnp.zeros(16)))


def test_no_retrace_across_generations():
    _, _, step = optimise(ESConfig(strategy="SNES", population=8), 5)
    assert step._cache_size() == 1


def test_unknown_strategy_is_a_user_error():
    with pytest.raises(HadesError, match="unknown ES strategy"):
        Strategy(ESConfig(strategy="Nope"), jnp.zeros(2))
