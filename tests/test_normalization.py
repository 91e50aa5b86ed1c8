"""Tests of hades.normalization."""

import jax.numpy as jnp
import numpy as np

from hades.normalization import RunningStats


def test_running_stats_merge_matches_numpy():
    rng = np.random.default_rng(0)
    a, b = rng.normal(3, 2, (500, 4)), rng.normal(-1, 0.5, (300, 4))
    sa = RunningStats.from_sums(jnp.float32(500), a.sum(0), (a**2).sum(0))
    sb = RunningStats.from_sums(jnp.float32(300), b.sum(0), (b**2).sum(0))
    merged = RunningStats.empty((4,)).merge(sa).merge(sb)
    both = np.concatenate([a, b])
    np.testing.assert_allclose(merged.mean, both.mean(0), rtol=1e-4)
    np.testing.assert_allclose(merged.norm(0.0).std, both.std(0), rtol=1e-3)
    assert float(merged.norm(10.0).std.min()) == 10.0  # the floor applies
    np.testing.assert_array_equal(RunningStats.empty((4,)).norm(0.1).std, np.ones(4))  # empty: identity


def test_running_normalisation_is_recorded_in_the_artifact(tmp_path, tiny_config):
    from hades.artifacts import load_dataset
    from hades.runs import run

    run(tiny_config(env="Pendulum-v1", obs_norm="running"), tmp_path / "r")
    ds = load_dataset(tmp_path / "r" / "dataset.safetensors")
    assert ds.obs_norm == "running" and ds.normalised
    assert not np.allclose(ds.obs_std, 1.0)  # the final running statistics, not the identity
