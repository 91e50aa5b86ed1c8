import importlib.util

import numpy as np
import pytest
from helpers import DATA, ROOT
from safetensors.numpy import load_file, save_file

from hades.artifacts import load_dataset, save_dataset
from hades.dataset import Dataset
from hades.errors import HadesError


def make_ds(**kw):
    base = dict(
        states=np.arange(8, dtype=np.float32).reshape(2, 4),
        actions=np.array([0, 1], np.int32),
        env="CartPole-v1",
        action_space="discrete",
        variant="hades-r",
        obs_mean=np.zeros(4, np.float32),
        obs_std=np.ones(4, np.float32) * 2,
        config={"seed": 3},
    )
    return Dataset(**{**base, **kw})


def test_roundtrip_and_plain_numpy_readable(tmp_path):
    path = tmp_path / "dataset.safetensors"
    save_dataset(path, make_ds())
    ds = load_dataset(path)
    np.testing.assert_array_equal(ds.states, make_ds().states)
    assert ds.actions.dtype == np.int32 and ds.config == {"seed": 3}
    np.testing.assert_allclose(ds.inputs(), make_ds().states / 2)
    raw = load_file(path)  # no hades, no JAX
    assert set(raw) == {"states", "actions", "obs_mean", "obs_std"}


def test_a_file_replaced_while_it_is_read_is_read_whole_as_one_version(tmp_path, monkeypatch):
    # a running hades replaces its checkpoint every generation (write, then rename) while another
    # process reads it (`hades distill --resume` first reads the run's config): the reader must
    # take header, size and tensors from one version, never one's header with the other's tensors
    import hades.artifacts as artifacts

    path = tmp_path / "dataset.safetensors"
    save_dataset(path, make_ds())
    check = artifacts._check_size

    def replaced_after_the_header(*args):
        out = check(*args)
        save_dataset(path, make_ds(states=np.full((2, 4), 7.0, np.float32), config={"seed": 4}))
        return out

    monkeypatch.setattr(artifacts, "_check_size", replaced_after_the_header)
    ds = load_dataset(path)  # the version whose header was read
    np.testing.assert_array_equal(ds.states, make_ds().states)
    assert ds.config == {"seed": 3}
    monkeypatch.setattr(artifacts, "_check_size", check)
    assert load_dataset(path).config == {"seed": 4}  # and the next read sees the new one


def test_no_temporary_files_left(tmp_path):
    save_dataset(tmp_path / "d.safetensors", make_ds())
    assert [p.name for p in tmp_path.iterdir()] == ["d.safetensors"]


def test_corrupt_file(tmp_path):
    path = tmp_path / "bad.safetensors"
    path.write_bytes(b"\x00garbage" * 3)
    with pytest.raises(HadesError, match="not a safetensors file"):
        load_dataset(path)


def test_foreign_safetensors(tmp_path):
    path = tmp_path / "foreign.safetensors"
    save_file({"x": np.zeros(3, np.float32)}, path)
    with pytest.raises(HadesError, match="not a hades.dataset"):
        load_dataset(path)


def test_missing_file(tmp_path):
    with pytest.raises(HadesError, match="no such file"):
        load_dataset(tmp_path / "nope.safetensors")


def test_future_schema(tmp_path):
    path = tmp_path / "d.safetensors"
    save_file(
        {"states": np.zeros((1, 4), np.float32), "actions": np.zeros(1, np.int32)},
        path,
        metadata={"format": "hades.dataset", "schema_version": "99", "env": "CartPole-v1", "action_space": "discrete"},
    )
    with pytest.raises(HadesError, match="schema_version"):
        load_dataset(path)


def _example(name: str):
    """examples/NAME.py imported as a module (the examples are scripts, not a package)."""
    spec = importlib.util.spec_from_file_location(name, ROOT / "examples" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.skipif(importlib.util.find_spec("gymnasium") is None, reason="gymnasium not installed")
def test_dataset_trains_a_numpy_policy_in_gymnasium():
    """The artifact is usable without JAX or hades: NumPy BC, Gymnasium's own CartPole-v1."""
    returns = _example("numpy_cartpole").main(str(DATA / "cartpole_hades_r.safetensors"), episodes=5)
    assert min(returns) >= 475


def test_torch_example_trains_the_way_hades_did():
    """examples/torch_train.py: a PyTorch learner built from the artifact's settings solves CartPole."""
    pytest.importorskip("torch")
    pytest.importorskip("gymnasium")
    returns = _example("torch_train").evaluate(
        str(ROOT / "src/hades/zoo_data/CartPole-v1/dataset.safetensors"), episodes=3
    )
    assert min(returns) >= 475


def test_the_artifact_names_the_learner_it_was_evolved_for():
    from hades.artifacts import load_dataset

    text = load_dataset("zoo:CartPole-v1").learner()
    assert text.startswith("MLP 2 x 64 tanh; 100 full-batch Adam steps at lr 0.01")
    assert "cross-entropy" in text and "obs_mean" in text


def test_outside_learners_fit_what_the_artifact_says():
    """examples/outside_learners.py: a 1-nearest-neighbour learner predicts each dataset state's own
    label, and scored in Gymnasium it yields one row per learner with whole episodes."""
    pytest.importorskip("sklearn")
    pytest.importorskip("gymnasium")
    outside = _example("outside_learners")
    path = str(ROOT / "src/hades/zoo_data/CartPole-v1/dataset.safetensors")
    arrays, discrete, cfg = outside.read(path)
    x = (arrays["states"] - arrays["obs_mean"]) / arrays["obs_std"]
    y = arrays["actions"].astype(np.int64)
    rng = np.random.default_rng(0)
    for name in ("knn", "tree"):
        predict = outside.fit(name, x, y, discrete, cfg["bc"], cfg["policy"], 0)
        assert [int(np.argmax(predict(s, rng, False))) for s in x] == list(y)
    linear = outside.fit("linear", x, y, discrete, cfg["bc"], cfg["policy"], 0)
    assert np.allclose(sum(linear(x[0], rng, True)), 1.0)
    (row,) = outside.evaluate(path, ["knn"], 1, 2)
    assert row["learner"] == "knn" and row["where"] == "gymnasium" and 8 <= row["return_mean"] <= 500


def test_outside_linear_classifier_regularisation_sets_its_confidence():
    """The logistic regression's default L2 (C = 1) leaves soft probabilities on a few separable
    points, which sampled actions turn into near-random play; a weak penalty makes it confident."""
    pytest.importorskip("sklearn")
    outside = _example("outside_learners")
    x = np.array([[-1.0, 0.0], [-2.0, 1.0], [1.0, 0.0], [2.0, -1.0]], np.float32)
    y = np.array([0, 0, 1, 1])
    rng = np.random.default_rng(0)
    confidence = {}
    for c in (1.0, 1e4):
        predict = outside.fit("linear", x, y, True, {}, {}, 0, linear_c=c)
        confidence[c] = min(predict(s, rng, True)[label] for s, label in zip(x, y))
    assert confidence[1.0] < 0.9 and confidence[1e4] > 0.99
