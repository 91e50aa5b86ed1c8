"""The driver: evaluation protocol, HaDES-F's saved init, common random numbers, fresh inits."""

import jax
import numpy as np

from hades.distill import Distiller
from hades.runs import make_driver


def test_hades_f_evaluation_reports_fresh_and_own_init(tiny_config):
    d = Distiller(tiny_config(variant="hades-f"))
    state, _ = d.step(d.init())
    out = d.evaluate(state)
    assert {"return_mean", "own_init_return_mean", "distinct_episodes", "episode_length_mean"} <= set(out)
    assert len(out["returns_per_policy"]) == d.cfg.eval_policies  # fresh policies, not the one own init
    assert out["episodes"] == d.cfg.eval_policies * d.cfg.eval_episodes


def test_evaluation_runs_whole_episodes_whatever_the_fitness_cap(tiny_config):
    d = Distiller(tiny_config(eval_steps=5))  # fitness rollouts capped at 5 steps
    state = d.init()
    r = d.evaluation_rollouts(state)
    assert int(np.max(r.lengths)) > 5  # CartPole episodes of an untrained policy last ~10-40 steps
    assert bool(np.all(r.ended))


def test_evaluation_keys_are_not_the_fitness_keys(tiny_config):
    """Same generation, same dataset: fitness and evaluation episodes start from different resets."""
    d = make_driver(tiny_config(variant="direct-es", eval_envs=2, eval_episodes=2))
    state = d.init()
    _, _, k_env, _ = d.generation_keys(state.generation)
    fit = d.rollout(d.solution(state), k_env, state.norm)
    ev = d.evaluation_rollouts(state)
    assert not np.isin(np.asarray(ev.fingerprint), np.asarray(fit.fingerprint)).any()


def test_breakout_sampled_evaluation_sees_many_episodes(tiny_config):
    d = Distiller(tiny_config(env="Breakout-MinAtar", variant="hades-f", eval_episodes=8, eval_policies=2))
    out = d.evaluate(d.init())
    assert out["distinct_episodes"] > 2 * 2  # greedy would give at most 2 per policy


def test_hades_f_init_is_constant_and_hades_r_inits_are_fresh(tiny_config):
    f = Distiller(tiny_config(variant="hades-f"))
    state = f.init()
    a = f.learners(jax.random.PRNGKey(1), state, 2)[0]
    b = f.learners(jax.random.PRNGKey(2), state, 2)[0]
    jax.tree.map(np.testing.assert_array_equal, a, b)
    jax.tree.map(lambda x, y: np.testing.assert_array_equal(x[0], y), a, f.fixed_init())
    r = Distiller(tiny_config(variant="hades-r"))
    state = r.init()
    p1 = r.learners(r.generation_keys(0)[1], state, 2)[0]
    p2 = r.learners(r.generation_keys(1)[1], state, 2)[0]
    w1, w2 = (p["params"]["Dense_0"]["kernel"] for p in (p1, p2))
    assert not np.allclose(w1[0], w1[1]) and not np.allclose(w1, w2)  # k different inits, new each generation


def test_common_random_numbers_within_a_generation(tiny_config):
    """A population of identical candidates gets identical fitness: within a generation every
    candidate is trained from the same inits and rolled out with the same resets and action keys."""
    import jax.numpy as jnp

    d = Distiller(tiny_config(variant="hades-r", population=8, eval_envs=3))
    state = d.init()
    mean = d.solution(state)
    ask = d.es.ask
    d.es.ask = lambda key, s: (jax.tree.map(lambda x: jnp.broadcast_to(x, (8, *x.shape)), mean), ask(key, s)[1])
    _, metrics = jax.jit(d._generation)(state)
    assert float(metrics["fitness_min"]) == float(metrics["fitness_max"])
    d.es.ask = ask
    _, metrics = jax.jit(d._generation)(state)
    assert float(metrics["fitness_min"]) < float(metrics["fitness_max"])  # different datasets do differ
