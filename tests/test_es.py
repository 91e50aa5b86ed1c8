import jax
import jax.numpy as jnp
import numpy as np
import pytest

from hades.config import ESConfig
from hades.errors import HadesError
from hades.es import STRATEGIES, Strategy

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


@pytest.mark.parametrize("cfg", [dict(strategy="Open_ES", es_lr=0.1), dict(strategy="SNES")])
def test_es_maximises_a_quadratic(cfg):
    es, state, _ = optimise(ESConfig(population=32, sigma=0.5, **cfg), 150)
    start, end = float(fitness(jnp.zeros(16))), float(fitness(es.mean(state)))
    assert end > -0.05 * abs(start), (start, end)


@pytest.mark.parametrize("name", STRATEGIES)
def test_every_strategy_moves_its_mean_towards_the_optimum(name):
    """With its own update rule; the MEAN must improve (the best sample ever drawn would not show
    a mean that never moves). Strategies whose own rule is SGD at 1e-3 move slowly, but they move."""
    es, state, _ = optimise(ESConfig(strategy=name, population=16, sigma=0.5), 60)
    start, end = float(fitness(jnp.zeros(16))), float(fitness(es.mean(state)))
    assert np.isfinite(end) and end > start + 0.5, (start, end)


def test_no_retrace_across_generations():
    _, _, step = optimise(ESConfig(strategy="SNES", population=8), 5)
    assert step._cache_size() == 1


def test_unknown_strategy_is_a_user_error():
    with pytest.raises(HadesError, match="unknown ES strategy"):
        Strategy(ESConfig(strategy="Nope"), jnp.zeros(2))


def test_snes_takes_evosax_own_natural_gradient_step():
    """hades' SNES moves its mean exactly as evosax's default SNES (SGD at 1.0), not by Adam."""
    from evosax.algorithms import SNES

    cfg = ESConfig(strategy="SNES", population=16, sigma=0.5)
    ours = Strategy(cfg, jnp.zeros(16))
    ref = SNES(population_size=16, solution=jnp.zeros(16))
    ref_params = ref.default_params.replace(std_init=jnp.float32(0.5))
    k_init, k_ask = jax.random.split(jax.random.PRNGKey(0))
    s_ours, s_ref = ours.init(k_init, jnp.zeros(16)), ref.init(k_init, jnp.zeros(16), ref_params)
    pop, s_ours = ours.ask(k_ask, s_ours)
    pop_ref, s_ref = ref.ask(k_ask, s_ref, ref_params)
    np.testing.assert_array_equal(pop, pop_ref)
    s_ours = ours.tell(k_ask, pop, fitness(pop), s_ours)
    s_ref, _ = ref.tell(k_ask, pop_ref, -fitness(pop_ref), s_ref, ref_params)  # evosax minimises
    np.testing.assert_allclose(ours.mean(s_ours), ref.get_mean(s_ref), rtol=1e-6, atol=1e-7)
    step = float(jnp.linalg.norm(ours.mean(s_ours)))
    # Adam's first step moves each coordinate by ~lr (0.05 * 4 = 0.2 in norm); the natural gradient by ~sigma
    assert step > 0.5, step


def test_paper_rank_weights_put_most_mass_on_the_top_ranks():
    from hades.es import softmax_rank_weights

    w = np.asarray(softmax_rank_weights(2048, 20.0))
    assert w.sum() == pytest.approx(1.0, abs=1e-5)
    assert np.all(np.diff(w) < 0)  # rank 0 (the best) weighs most
    assert w[:205].sum() == pytest.approx(0.86, abs=0.01)  # the paper's evosax <= 0.1.5 SNES
    es = Strategy(ESConfig(strategy="SNES", population=2048, sigma=0.5, es_temperature=20.0), jnp.zeros(4))
    np.testing.assert_allclose(es.params.weights, w, rtol=1e-6)


@pytest.mark.parametrize(
    "cfg",
    [
        dict(strategy="SNES", sigma=0.5, sigma_limit=0.3),
        dict(strategy="Open_ES", sigma=0.5, sigma_decay=0.9, sigma_limit=0.2, es_lr=0.1),
    ],
)
def test_sigma_never_falls_below_the_limit(cfg):
    es = Strategy(ESConfig(population=16, **cfg), jnp.zeros(16))
    state = es.init(jax.random.PRNGKey(0), TARGET)  # start at the optimum: SNES shrinks its std there
    lowest = []
    for g in range(60):
        k1, k2 = jax.random.split(jax.random.PRNGKey(g))
        pop, state = es.ask(k1, state)
        state = es.tell(k2, pop, fitness(pop), state)
        lowest.append(float(jnp.min(state.std)))
    assert min(lowest) >= cfg["sigma_limit"] - 1e-6
    assert min(lowest) == pytest.approx(cfg["sigma_limit"], rel=1e-3)  # the floor was reached, and held


def test_open_es_raw_shaping_uses_the_returns_themselves():
    cfg = ESConfig(strategy="Open_ES", population=4, sigma=0.1, es_optimizer="sgd", es_lr=1.0, es_shaping="raw")
    es = Strategy(cfg, jnp.zeros(2))
    state = es.init(jax.random.PRNGKey(0), jnp.zeros(2))
    pop, state = es.ask(jax.random.PRNGKey(1), state)
    f = jnp.array([3.0, 1.0, -2.0, 7.0])
    state = es.tell(jax.random.PRNGKey(2), pop, f, state)
    eps = pop / 0.1
    expected = (f[:, None] * eps).sum(0) / (4 * 0.1)  # ascent on raw returns, no ranks
    np.testing.assert_allclose(es.mean(state), expected, rtol=1e-5)


@pytest.mark.parametrize(
    "cfg, message",
    [
        (dict(strategy="SNES", es_lr=0.05), "own update rule"),
        (dict(strategy="SNES", es_optimizer="sgd"), "needs --es-lr"),
        (dict(strategy="CMA_ES", es_optimizer="adam"), "no optimizer"),
        (dict(strategy="Open_ES", es_temperature=20.0), "rank weights"),
        (dict(strategy="CMA_ES", es_temperature=20.0), "rank weights"),
        (dict(strategy="SNES", sigma_decay=0.99), "adapts its own search std"),
        (dict(strategy="PGPE", es_lr_decay=0.99), "own update rule"),
    ],
)
def test_options_a_strategy_ignores_are_refused(cfg, message):
    with pytest.raises(HadesError, match=message):
        Strategy(ESConfig(population=8, **cfg), jnp.zeros(4))


def test_adam_can_be_chosen_for_snes():
    es = Strategy(ESConfig(strategy="SNES", population=8, es_optimizer="adam", es_lr=0.01), jnp.zeros(4))
    assert es.optimizer == "adam"


def test_the_list_of_strategies_with_an_optimizer_matches_evosax():
    import inspect

    from evosax.algorithms import distribution_based_algorithms

    from hades.config import OPTIMIZER_STRATEGIES

    has = {
        n for n in STRATEGIES if "optimizer" in inspect.signature(distribution_based_algorithms[n].__init__).parameters
    }
    assert has == set(OPTIMIZER_STRATEGIES)


def test_the_list_of_strategies_that_draw_pairs_matches_evosax():
    """A strategy draws pairs when evosax refuses an odd population for it or returns another number
    of candidates than asked (ESMC: 6 of 7)."""
    import inspect

    from evosax.algorithms import distribution_based_algorithms

    from hades.config import PAIRED_STRATEGIES

    paired = set()
    for name in STRATEGIES:
        cls = distribution_based_algorithms[name]
        takes = "use_antithetic_sampling" in inspect.signature(cls.__init__).parameters
        try:
            algo = cls(population_size=7, solution=jnp.zeros(4), **({"use_antithetic_sampling": True} if takes else {}))
        except AssertionError:
            paired.add(name)
            continue
        state = algo.init(jax.random.PRNGKey(0), jnp.zeros(4), algo.default_params)
        if algo.ask(jax.random.PRNGKey(1), state, algo.default_params)[0].shape[0] != 7:
            paired.add(name)
    assert paired == set(PAIRED_STRATEGIES)


@pytest.mark.parametrize("preset", ["breakout", "paper-brax"])
def test_switch_strategy_makes_any_preset_run_any_strategy(preset):
    """`hades tune --strategies`: a preset written for one strategy (breakout: SNES with the paper's
    rank weights and ties by position; paper-brax: Open_ES with Adam b1 0.99 on raw returns) runs
    another with that strategy's own rule; without the switch the same config is refused."""
    import dataclasses

    from hades.es import switch_strategy
    from hades.presets import make_config

    base = make_config(preset).es
    solution = {"x": jnp.zeros(4)}
    for name in ("SNES", "Open_ES", "Sep_CMA_ES", "xNES", "PGPE", "CMA_ES"):
        cfg = dataclasses.replace(base, **switch_strategy(base, name))
        assert cfg.strategy == name and cfg.population == base.population and cfg.sigma == base.sigma
        Strategy(cfg, solution)  # no option it would refuse
        if name == base.strategy:
            assert cfg == base
    with pytest.raises(HadesError):
        Strategy(dataclasses.replace(base, strategy="Sep_CMA_ES"), solution)


@pytest.mark.parametrize("name", ["SNES", "Sep_CMA_ES", "CMA_ES", "SimpleES"])
def test_mirrored_sampling_reflects_the_first_half_through_the_mean(name):
    """--es-sampling mirrored: candidate i + P/2 is 2 * mean - candidate i, the first half is the
    strategy's own draw with the same key, and a mirrored run still optimises."""
    import dataclasses

    own = ESConfig(strategy=name, population=16, sigma=0.5)
    mirrored = dataclasses.replace(own, es_sampling="mirrored")
    mean = {"a": jnp.arange(3.0), "b": jnp.ones((2, 2))}
    pops = []
    for cfg in (own, mirrored):
        es = Strategy(cfg, mean)
        pops.append(es.ask(jax.random.PRNGKey(1), es.init(jax.random.PRNGKey(0), mean))[0])
    for key in mean:
        first, second = pops[1][key][:8], pops[1][key][8:]
        np.testing.assert_allclose(first + second, 2 * np.broadcast_to(mean[key], first.shape), atol=1e-5)
        np.testing.assert_array_equal(first, pops[0][key][:8])
        assert not np.allclose(pops[0][key][8:], second)  # its own draw is not already mirrored
    es, state, _ = optimise(dataclasses.replace(mirrored, population=32), 150)
    start, end = float(fitness(jnp.zeros(16))), float(fitness(es.mean(state)))
    assert end > start + 0.5, (start, end)


def test_mirrored_pairs_cancel_in_snes_mean_step_on_a_symmetric_fitness():
    """A fitness symmetric about the mean scores each mirrored pair alike: tied ranks share their
    weight, so SNES's mean step is exactly zero; from independent draws it is not."""
    for sampling, moves in (("own", True), ("mirrored", False)):
        es = Strategy(ESConfig(strategy="SNES", population=16, sigma=0.5, es_sampling=sampling), jnp.zeros(4))
        state = es.init(jax.random.PRNGKey(0), jnp.zeros(4))
        pop, state = es.ask(jax.random.PRNGKey(1), state)
        new = es.tell(jax.random.PRNGKey(2), pop, -jnp.sum(pop**2, axis=-1), state)
        step = float(jnp.abs(es.mean(new)).max())
        assert (step > 1e-3) == moves, (sampling, step)


@pytest.mark.parametrize("name, says", [("Open_ES", "antithetic pairs itself"), ("xNES", "cannot take them")])
def test_mirrored_sampling_is_refused_where_it_cannot_apply(name, says):
    with pytest.raises(HadesError, match=says):
        Strategy(ESConfig(strategy=name, population=16, es_sampling="mirrored"), jnp.zeros(4))
    with pytest.raises(HadesError, match="mirrored draws antithetic pairs: --population must be even"):
        Strategy(ESConfig(strategy="SNES", population=15, es_sampling="mirrored"), jnp.zeros(4))


def test_odd_populations_are_refused_only_by_strategies_that_draw_pairs():
    """SNES, Sep-CMA-ES and LM-MA-ES take any population (CMA-ES' default 4 + 3 ln n is often odd)
    and maximise the quadratic with 7 candidates; Open_ES, PGPE and ARS draw antithetic pairs and refuse it
    with a one-line reason, as evosax's own assertion (ESMC's population >= 4) is turned into one."""
    for name in ("SNES", "Sep_CMA_ES", "LM_MA_ES"):
        cfg = ESConfig(strategy=name, population=7, sigma=0.5).validate()
        es, state, _ = optimise(cfg, 150)
        start, end = float(fitness(jnp.zeros(16))), float(fitness(es.mean(state)))
        assert end > -0.05 * abs(start), (name, start, end)
    for name in ("Open_ES", "PGPE", "ARS"):
        with pytest.raises(HadesError, match=f"{name} draws antithetic pairs: --population must be even"):
            ESConfig(strategy=name, population=7).validate()
    with pytest.raises(HadesError, match="ESMC refuses --population 2"):
        Strategy(ESConfig(strategy="ESMC", population=2), jnp.zeros(4))
