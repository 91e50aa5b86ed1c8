"""The driver: evaluation protocol, HaDES-F's saved init, common random numbers, fresh inits."""

import json

import jax
import numpy as np
import pytest
from helpers import cli

from hades.artifacts import load_dataset
from hades.distill import Distiller
from hades.runs import make_driver, run


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


def test_observed_initial_states_are_states_random_actions_visit(tiny_config):
    """``--init-states observed``: the ES starts from distinct visited MinAtar frames (binary
    channels once the normalisation is undone), not from zeros; ``normal`` at scale 0 is zeros."""
    d = Distiller(tiny_config(env="Breakout-MinAtar", obs_norm="constant", init_scale=0.0, init_states="observed"))
    state = d.init()
    states = np.asarray(state.norm.inverse(d.es.mean(state.es_state)["states"]))
    assert states.shape[0] == d.cfg.dataset_size
    np.testing.assert_allclose(states, np.round(states), atol=1e-4)  # frames: every channel 0 or 1
    assert set(np.unique(np.round(states))) == {0.0, 1.0}
    assert len({row.tobytes() for row in np.round(states)}) > 1  # not one frame repeated
    assert states.reshape(len(states), -1).sum(1).min() >= 1  # each frame shows something (the paddle)
    zero = Distiller(tiny_config(env="Breakout-MinAtar", init_scale=0.0))
    assert not np.asarray(zero.es.mean(zero.init().es_state)["states"]).any()


def test_clip_states_keeps_the_dataset_inside_the_range_random_actions_visit(tiny_config):
    """``--clip-states observed``: BC sees (and the artifact holds) states clipped feature by
    feature to the visited range, in raw units; without it a wide start lies far outside."""
    from hades.errors import HadesError

    clipped = Distiller(tiny_config(init_scale=20.0, clip_states="observed"))
    lo, hi = (np.asarray(b) for b in clipped.state_range)
    assert np.all(hi > lo)  # CartPole's four features all vary under random actions
    states = clipped.product(clipped.init()).states
    assert np.all(states >= lo - 1e-4) and np.all(states <= hi + 1e-4)
    assert np.isclose(states, lo, atol=1e-4).any() and np.isclose(states, hi, atol=1e-4).any()
    free = Distiller(tiny_config(init_scale=20.0)).product(clipped.init()).states
    assert np.any(free < lo - 1) or np.any(free > hi + 1)  # the check can fail
    with pytest.raises(HadesError, match="--clip-states"):
        tiny_config(clip_states="observed", obs_norm="rollout").validate()


def test_state_components_evolve_states_on_the_principal_axes_of_visited_states(tiny_config):
    """``--state-components K``: the ES evolves K coordinates per state, and every state BC sees
    (and the artifact holds) lies in the K-dimensional affine span of the visited states' mean and
    leading axes; without it a start leaves that span. Refused where it cannot apply."""
    from hades.errors import HadesError
    from hades.normalization import principal_axes

    d = Distiller(tiny_config(state_components=2, init_scale=1.0))
    mean, axes = (np.asarray(b, np.float64) for b in d.basis)
    assert axes.shape == (2, 4) and d.solution_size() == d.cfg.dataset_size * 2 + 3
    state = d.init()
    assert d.solution(state)["states"].shape == (d.cfg.dataset_size, 2)

    def off_span(states):
        centred = np.asarray(states, np.float64).reshape(len(states), -1) - mean
        q, _ = np.linalg.qr(axes.T)  # orthonormal basis of the span
        return np.abs(centred - centred @ q @ q.T).max()

    states = d.product(state).states
    assert off_span(states) < 1e-4 and np.abs(states - mean).max() > 1e-2  # in the span, not all at the mean
    raw_start = mean + np.random.default_rng(0).standard_normal(states.shape)  # what a raw-state start is
    assert off_span(raw_start) > 1e-2  # the check can fail
    for bad in (dict(obs_norm="rollout"), dict(init_states="observed"), dict(variant="direct-es")):
        with pytest.raises(HadesError, match="--state-components"):
            tiny_config(state_components=2, **bad).validate()
    with pytest.raises(HadesError, match="1 to the 4 observation features"):
        principal_axes(np.zeros((10, 4)), 5)


def test_warm_start_starts_the_es_at_the_dataset_and_refuses_one_that_does_not_fit(tiny_config, tmp_path):
    """``--init-dataset``: a run's starting mean is the artifact's states, read through the new
    run's own statistics (so its product before any generation is that dataset again); a dataset
    of another size, label layout or environment, or a direct-ES run, is refused in one line."""
    from hades.artifacts import save_dataset
    from hades.errors import HadesError

    first = Distiller(tiny_config(init_scale=1.0, seed=1))
    ds = first.product(first.init())
    path = tmp_path / "dataset.safetensors"
    save_dataset(path, ds)
    warm = Distiller(tiny_config(init_scale=1.0, seed=2, init_dataset=str(path)))
    again = warm.product(warm.init())
    np.testing.assert_allclose(again.states, ds.states, rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(again.actions, ds.actions)
    cold = Distiller(tiny_config(init_scale=1.0, seed=2))
    assert not np.allclose(cold.product(cold.init()).states, ds.states)  # the check can fail
    for overrides, message in (
        ({"dataset_size": 6}, "set --dataset-size"),
        ({"label_layout": "official"}, "fixed labels"),
        ({"env": "Acrobot-v1"}, "is a dataset for CartPole-v1"),
    ):
        with pytest.raises(HadesError, match=message):
            Distiller(tiny_config(init_dataset=str(path), **overrides)).init()
    with pytest.raises(HadesError, match="direct ES starts from a policy"):
        tiny_config(variant="direct-es", init_dataset=str(path)).validate()


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


def test_evolved_bc_hyperparameters_are_genes_and_stored(tmp_path, tiny_config):
    cfg = tiny_config(evolve_bc=True, generations=3, sigma=0.5)
    d = Distiller(cfg)
    assert d.initial_solution(jax.random.PRNGKey(0))["bc_genes"].shape == (2,)
    summary = run(cfg, tmp_path / "r")
    evolved = summary["evolved_bc"]
    assert evolved["bc_lr"] != cfg.bc.bc_lr or evolved["bc_steps"] != cfg.bc.bc_steps  # the genes moved
    assert 1 <= evolved["bc_steps"] <= 2 * cfg.bc.bc_steps
    ds = load_dataset(tmp_path / "r" / "dataset.safetensors")
    assert ds.config["bc"]["bc_lr"] == pytest.approx(evolved["bc_lr"])
    assert ds.config["bc"]["bc_steps"] == evolved["bc_steps"]
    proc = cli("train", tmp_path / "r" / "dataset.safetensors", "--policies", 1, "--episodes", 1)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["bc"]["bc_steps"] == evolved["bc_steps"]  # train uses them by default


def test_evolved_genes_scale_the_learning_rate_and_steps(tiny_config):
    d = Distiller(tiny_config(evolve_bc=True, bc_steps=10))
    sol = {"bc_genes": np.array([np.log(3.0), np.log(1.5)], np.float32)}
    lr, steps = d.bc_hyperparameters(sol, np.float32(0.01), np.float32(10))
    assert float(lr) == pytest.approx(0.03, rel=1e-5) and int(steps) == 15
    _, steps = d.bc_hyperparameters({"bc_genes": np.array([0.0, 5.0], np.float32)}, np.float32(0.01), np.float32(10))
    assert int(steps) == 20  # capped at 2x bc_steps


def test_sampled_learners_vary_width_lr_and_steps(tiny_config):
    d = Distiller(tiny_config(variant="hades-r", learners="sampled", width=64, learner_min_width=8, num_inits=16))
    state = d.init()
    params, lr, steps = d.learners(jax.random.PRNGKey(3), state, 16)
    kernel = np.asarray(params["params"]["Dense_0"]["kernel"])  # [16 learners, in, 64]
    widths = (np.abs(kernel).sum(axis=1) > 0).sum(axis=1)
    assert set(widths) <= {8, 16, 32, 64} and len(set(widths)) >= 2
    lr = np.asarray(lr)
    assert lr.min() >= 0.01 / 10 - 1e-9 and lr.max() <= 0.01 * 10 + 1e-9 and lr.std() > 0
    assert np.asarray(steps).min() >= 5 and np.asarray(steps).max() <= 10
    state, m = d.step(state)
    assert bool(m["finite"])


def test_sampled_learners_need_hades_r(tiny_config):
    from hades.errors import HadesError

    with pytest.raises(HadesError, match="hades-r"):
        tiny_config(variant="hades-f", learners="sampled")


def test_fixed_length_generation_does_the_released_codes_work(tiny_config):
    """--fixed-length: every candidate's every env steps exactly --eval-steps, whatever ends."""
    cfg = tiny_config(fixed_length=True)  # CartPole, 8 candidates x 2 inits x 2 envs x 30 steps
    d = Distiller(cfg)
    _, m = d.step(d.init())
    assert float(m["env_steps"]) == 8 * cfg.num_inits * 2 * 30
    _, m = Distiller(tiny_config()).step(d.init())
    assert float(m["env_steps"]) <= 8 * cfg.num_inits * 2 * 30


def test_the_label_temperature_gene_reaches_the_trainer_and_the_artifact(tiny_config):
    d = Distiller(tiny_config(evolve_label_temperature=True, bc_label_temperature=0.2))
    sol = {**d.initial_solution(jax.random.PRNGKey(0)), "label_gene": np.array([np.log(3.0)], np.float32)}
    assert float(d.label_temperature(sol)) == pytest.approx(0.6, rel=1e-5)
    state = d.init()
    state, m = d.step(state)
    assert bool(m["finite"])
    assert d.product(state).config["bc"]["bc_label_temperature"] == pytest.approx(
        float(d.label_temperature(d.solution(state)))
    )


def test_the_label_temperature_gene_needs_a_start_and_discrete_actions(tiny_config):
    from hades.errors import HadesError

    with pytest.raises(HadesError, match="must be > 0"):
        tiny_config(evolve_label_temperature=True)
    with pytest.raises(HadesError, match="discrete"):
        Distiller(tiny_config(env="Pendulum-v1", evolve_label_temperature=True, bc_label_temperature=0.2))
