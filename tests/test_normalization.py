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


def test_principal_axes_are_the_data_s_directions_scaled_to_its_std():
    """Points spread with std 3 along (1, 1)/sqrt(2) and 0.5 along (1, -1)/sqrt(2) around (2, -1):
    the mean, the first axis along (1, 1) with length 3, the second along (1, -1) with length 0.5."""
    from hades.normalization import principal_axes

    rng = np.random.default_rng(0)
    z = rng.standard_normal((20000, 2))
    z = (z - z.mean(0)) / z.std(0)
    u = np.array([[1.0, 1.0], [1.0, -1.0]]) / np.sqrt(2)
    seen = np.array([2.0, -1.0]) + z[:, :1] * 3.0 * u[0] + z[:, 1:] * 0.5 * u[1]
    mean, axes = (np.asarray(a) for a in principal_axes(seen, 2))
    np.testing.assert_allclose(mean, [2.0, -1.0], atol=1e-4)
    np.testing.assert_allclose(np.abs(axes @ u.T), [[3.0, 0.0], [0.0, 0.5]], atol=0.05)
