"""The direct-ES baseline: a candidate is the policy's weights, the product the mean weights."""

import jax
import numpy as np
import pytest

from hades.dataset import PolicyWeights
from hades.direct import DirectES
from hades.distill import Distiller
from hades.errors import HadesError
from hades.runs import make_driver


def test_the_baseline_gets_its_own_driver(tiny_config):
    assert isinstance(make_driver(tiny_config(variant="direct-es")), DirectES)
    assert isinstance(make_driver(tiny_config(variant="hades-r")), Distiller)
    with pytest.raises(HadesError, match="DirectES"):
        Distiller(tiny_config(variant="direct-es"))


def test_the_search_space_is_the_weights_and_the_product_their_mean(tiny_config):
    d = DirectES(tiny_config(variant="direct-es"))
    state, metrics = d.step(d.init())
    assert bool(metrics["finite"]) and float(metrics["bc_loss"]) == 0.0  # no inner loop
    product = d.product(state)
    assert isinstance(product, PolicyWeights) and d.own_init(state) is None
    mean = jax.tree.leaves(d.es.mean(state.es_state))
    for a, b in zip(jax.tree.leaves(product.params), mean):
        np.testing.assert_array_equal(a, b)
    assert product.obs_mean is not None  # constant normalisation: the statistics travel with the weights
