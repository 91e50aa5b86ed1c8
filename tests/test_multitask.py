"""Tests of hades.multitask."""

import json

import numpy as np
from helpers import DATA, cli


def test_merge_pads_exactly_and_evaluates(tmp_path):
    from hades.artifacts import load_dataset

    a_path, b_path = DATA / "cartpole_hades_r.safetensors", DATA / "breakout_hades_f.safetensors"
    out = tmp_path / "m.safetensors"
    proc = cli(
        "merge", a_path, b_path, "-o", out, "--evaluate", "--policies", "2", "--episodes", "2", "--eval-steps", "100"
    )
    assert proc.returncode == 0, proc.stderr
    a, b, m = load_dataset(a_path), load_dataset(b_path), load_dataset(out)
    x = m.inputs()
    da, na = 4, a.size
    assert x.shape == (a.size + b.size, 4 + 400)
    assert (x[:na, da:] == 0).all() and (x[na:, :da] == 0).all()  # zero padding in the policy's input space
    np.testing.assert_allclose(x[:na, :da], a.inputs(), rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(x[na:, da:], b.inputs().reshape(b.size, -1), rtol=1e-6, atol=1e-6)
    np.testing.assert_array_equal(m.actions, np.concatenate([a.actions, b.actions + 2]))  # joint categorical
    result = json.loads(proc.stdout)
    assert [t["env"] for t in result["tasks"]] == ["CartPole-v1", "Breakout-MinAtar"]
    cart = result["tasks"][0]
    assert cart["single_task_return"] == 100.0 and cart["multi_task_return"] == 100.0  # capped at 100 steps
    assert cart["single_task_ci95"] == 0.0 and cart["multi_task_ci95"] == 0.0  # both policies hit the cap
    assert cart["random_ci95"] > 0 and len(cart["random_per_seed"]) == 2  # untrained policies fall early, unevenly
    assert out.with_suffix(".png").stat().st_size > 1000 and out.with_suffix(".json").is_file()
    for cmd in (["train", out], ["transfer", out, "-o", tmp_path / "t"], ["render", out, "-o", tmp_path / "r.gif"]):
        proc = cli(*cmd)
        assert proc.returncode == 2 and "multi" in proc.stderr and "Traceback" not in proc.stderr


def test_merge_continuous_pads_actions(tmp_path):
    from hades.dataset import Dataset
    from hades.multitask import merge_datasets, task_view

    rng = np.random.default_rng(0)
    a = Dataset(
        rng.normal(size=(3, 3)).astype(np.float32),
        rng.normal(size=(3, 1)).astype(np.float32),
        "Pendulum-v1",
        "continuous",
        obs_mean=np.ones(3, np.float32),
        obs_std=np.full(3, 2.0, np.float32),
    )
    b = Dataset(
        rng.normal(size=(2, 2)).astype(np.float32),
        rng.normal(size=(2, 1)).astype(np.float32),
        "MountainCarContinuous-v0",
        "continuous",
    )
    m = merge_datasets(a, b)
    assert m.actions.shape == (5, 2)
    assert (m.actions[:3, 1] == 0).all() and (m.actions[3:, 0] == 0).all()
    x = m.inputs()
    assert (x[:3, 3:] == 0).all() and (x[3:, :3] == 0).all()
    back = task_view(m, 0)
    np.testing.assert_allclose(back.states, a.states, rtol=1e-6)
    np.testing.assert_array_equal(task_view(m, 1).actions, b.actions)
    disc = DATA / "cartpole_hades_r.safetensors"
    from hades.artifacts import save_dataset

    save_dataset(tmp_path / "a.safetensors", a)
    proc = cli("merge", tmp_path / "a.safetensors", disc, "-o", tmp_path / "x.safetensors")
    assert proc.returncode == 2 and "cannot merge continuous" in proc.stderr


def test_task_policy_samples_with_its_own_slice_of_log_std():
    """A continuous multi-task agent's sampled actions in task i use task i's log std: a merge of
    a 1-action and a 2-action task has 3 log stds; task 1 must draw its 2 actions with the last 2
    (here tiny, so the sample is the mean), not fail on or mix in task 0's."""
    import jax
    import jax.numpy as jnp

    from hades.config import PolicyConfig
    from hades.dataset import Dataset
    from hades.multitask import merge_datasets, task_policy, tasks_of
    from hades.policies import make_policy

    rng = np.random.default_rng(0)
    a = Dataset(
        rng.normal(size=(3, 3)).astype(np.float32),
        rng.normal(size=(3, 1)).astype(np.float32),
        "Pendulum-v1",
        "continuous",
    )
    b = Dataset(
        rng.normal(size=(2, 2)).astype(np.float32),
        rng.normal(size=(2, 2)).astype(np.float32),
        "MountainCarContinuous-v0",
        "continuous",
    )
    m = merge_datasets(a, b)
    tasks = tasks_of(m)
    policy = make_policy(PolicyConfig(width=8, depth=1), (5,), False, 3)
    params = policy.init(jax.random.PRNGKey(0))
    params["params"]["log_std"] = jnp.array([5.0, -20.0, -20.0])
    view = task_policy(policy, tasks[1], 5)
    x = jnp.ones(2)
    sampled = view.act(params, x, jax.random.PRNGKey(1), stochastic=True)
    assert sampled.shape == (2,)
    np.testing.assert_allclose(sampled, view.apply(params, x), atol=1e-6)
    wide = task_policy(policy, tasks[0], 5).act(params, jnp.ones(3), jax.random.PRNGKey(1), stochastic=True)
    assert abs(float(wide[0] - task_policy(policy, tasks[0], 5).apply(params, jnp.ones(3))[0])) > 1.0
