"""The Dataset value type: what a policy is trained on, and how the normalisation is described."""

import numpy as np

from hades.dataset import Dataset


def test_inputs_are_normalised_only_when_statistics_are_present():
    states = np.array([[1.0, 2.0], [3.0, 6.0]], np.float32)
    plain = Dataset(states=states, actions=np.array([0, 1]), env="e", action_space="discrete")
    assert plain.normalisation == "none" and plain.size == 2
    np.testing.assert_array_equal(plain.inputs(), states)
    mean, std = np.array([1.0, 2.0], np.float32), np.array([2.0, 4.0], np.float32)
    norm = Dataset(
        states=states, actions=np.array([0, 1]), env="e", action_space="discrete", obs_mean=mean, obs_std=std
    )
    assert norm.normalisation == "constant"
    np.testing.assert_allclose(norm.inputs(), [[0.0, 0.0], [1.0, 1.0]])
    rollout = Dataset(states=states, actions=np.array([0, 1]), env="e", action_space="discrete", obs_norm="rollout")
    assert rollout.normalisation == "rollout"
    np.testing.assert_array_equal(rollout.inputs(), states)  # stored as the policy's inputs
