"""Distributions of learners: a learner sampled inside the shared network computes what the
genuinely built learner (its own MLP, its own optimiser) computes from the same initial weights."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from hades.bc import make_bc_train
from hades.config import LEARNER_OPTIMIZERS, BCConfig, PolicyConfig
from hades.errors import HadesError
from hades.learners import LearnerSpace, describe, scaled
from hades.policies import make_policy
from hades.presets import make_config

OBS, ACTIONS, MAX_WIDTH = 5, 3, 32


def _space(**given):
    cfg = make_config(env="CartPole-v1", variant="hades-r", width=MAX_WIDTH, learner_min_width=8, **given)
    return cfg, LearnerSpace.from_config(cfg)


def _genuine(params, learner, i, discrete, activations):
    """Learner ``i`` of a stack as its own MLP: (policy, params, BCConfig of its optimiser)."""
    p = jax.tree.map(lambda a: np.asarray(a[i]), params["params"])
    live = int((np.abs(p["Dense_0"]["kernel"]).sum(axis=0) > 0).sum())
    depth = int(learner["depth"][i])
    universal_depth = sum(1 for k in p if k.startswith("Dense_")) - 1
    own = {}
    for layer in range(depth):
        k, b = p[f"Dense_{layer}"]["kernel"], p[f"Dense_{layer}"]["bias"]
        own[f"Dense_{layer}"] = {"kernel": k[: (k.shape[0] if layer == 0 else live), :live], "bias": b[:live]}
    out = p[f"Dense_{universal_depth}"]
    rows = live if depth else OBS  # a linear learner's output layer reads the input
    own[f"Dense_{depth}"] = {"kernel": out["kernel"][:rows], "bias": out["bias"]}
    if "log_std" in p:
        own["log_std"] = p["log_std"]
    activation = activations[int(learner["activation"][i])]
    policy = make_policy(PolicyConfig(width=live, depth=depth, activation=activation), (OBS,), discrete, ACTIONS)
    clip = float(learner["clip"][i])
    bc = BCConfig(
        bc_optimizer="sgd" if bool(learner["sgd"][i]) else "adam",
        bc_max_grad_norm=clip if np.isfinite(clip) else 0.0,
        bc_steps=40,
    )
    return policy, {"params": own}, bc


SPACES = {
    "wide": {"learners": "wide"},
    "activations": {"learners": "sampled", "learner_activations": "tanh,relu,gelu,elu"},
    "depths": {"learners": "sampled", "learner_depths": "0,1,3"},
    "optimizers": {
        "learners": "sampled",
        "learner_optimizers": "adam,sgd,adam-clip,sgd-clip",
        "learner_clip_norm": 0.05,
    },
}


@pytest.mark.parametrize(
    "space, discrete",
    [
        pytest.param("wide", True, marks=pytest.mark.slow),
        ("wide", False),
        ("activations", True),
        ("depths", False),
        ("optimizers", True),
    ],  # fmt: skip
)
def test_a_sampled_learner_trains_like_the_learner_built_for_real(space, discrete):
    cfg = _space(**SPACES[space])[0]
    sp = LearnerSpace.from_config(cfg)
    network = sp.network(cfg.policy.depth, cfg.policy.activation)
    policy = make_policy(cfg.policy, (OBS,), discrete, ACTIONS, learners=network)
    count = 8
    inits = jax.vmap(policy.init)(jax.random.split(jax.random.PRNGKey(0), count))
    # a Gaussian NLL diverges under SGD at the top of the range (lr 3); training that diverges
    # cannot be compared (rounding differences grow), so the continuous case starts 30x lower
    base = 0.01 if discrete else 0.0003
    params, lr, steps = sp.sample(jax.random.PRNGKey(1), inits, jnp.full(count, base), jnp.full(count, 40.0), network)
    steps = jnp.full(count, 40, jnp.int32)  # the genuine learner runs its config's steps
    x = jax.random.normal(jax.random.PRNGKey(2), (6, OBS))
    y = jnp.arange(6) % ACTIONS if discrete else jax.random.normal(jax.random.PRNGKey(3), (6, ACTIONS))
    train = make_bc_train(policy, BCConfig(bc_steps=40))
    trained, _ = jax.vmap(lambda p, a, n: train(p, x, y, a, n))(params, lr, steps)
    probe = jax.random.normal(jax.random.PRNGKey(4), (9, OBS))
    learner = jax.device_get(params["learner"])
    assert len({(d["activation"], d["depth"], d["optimizer"]) for d in describe(params)}) >= 2
    if space == "depths":  # linear learners (depth 0) among them
        assert {d["depth"] for d in describe(params)} == {0, 1, 3}
    for i in range(count):
        own_policy, own_params, bc = _genuine(params, learner, i, discrete, network["activations"])
        own_trained, _ = make_bc_train(own_policy, bc)(own_params, x, y, lr[i], 40)
        want = own_policy.apply(own_trained, probe)
        got = policy.apply(jax.tree.map(lambda a, i=i: a[i], trained), probe)
        assert np.allclose(got, want, atol=2e-5, rtol=1e-4), (space, i, describe(params)[i])
        moved = np.abs(np.asarray(want) - np.asarray(own_policy.apply(own_params, probe))).max()
        assert moved > 1e-4  # training did something the comparison can see


def test_the_axes_take_every_choice_and_only_those():
    cfg, sp = _space(learners="wide")
    assert sp.activations == ("tanh", "relu", "gelu") and sp.depths == (1, 2, 3)
    assert sp.optimizers == LEARNER_OPTIMIZERS and sp.init_range == 2.0 and sp.widths == (8, 16, 32)
    network = sp.network(cfg.policy.depth, cfg.policy.activation)
    policy = make_policy(cfg.policy, (OBS,), True, ACTIONS, learners=network)
    count = 400
    inits = jax.vmap(policy.init)(jax.random.split(jax.random.PRNGKey(0), count))
    params, lr, steps = sp.sample(jax.random.PRNGKey(1), inits, jnp.full(count, 0.01), jnp.full(count, 100.0), network)
    rows = describe(params)
    assert {r["depth"] for r in rows} == {1, 2, 3}
    assert {network["activations"][r["activation"]] for r in rows} == {"tanh", "relu", "gelu"}
    assert {r["optimizer"] for r in rows} == set(LEARNER_OPTIMIZERS)
    sgd = np.asarray(params["learner"]["sgd"])
    lr = np.asarray(lr)
    assert lr[~sgd].min() >= 0.001 - 1e-9 and lr[~sgd].max() <= 0.1 + 1e-9
    assert lr[sgd].min() >= 0.03 - 1e-9 and lr[sgd].max() <= 3.0 + 1e-6  # 30x an Adam learner's
    assert 50 <= np.asarray(steps).min() and np.asarray(steps).max() <= 100
    # init scale in [1/2, 2]: the input kernels' spread varies by up to 4x between learners
    std = np.asarray(params["params"]["Dense_0"]["kernel"]).reshape(count, -1)
    live = np.array([s[s != 0].std() for s in std])
    assert live.max() / live.min() > 2.5


def test_init_scale_is_lecun_normal_with_that_variance():
    net = nn.Dense(16, kernel_init=nn.initializers.lecun_normal())
    wider = nn.Dense(16, kernel_init=nn.initializers.variance_scaling(1.7**2, "fan_in", "truncated_normal"))
    key, x = jax.random.PRNGKey(5), jnp.zeros((1, 4))
    a = {"params": {"Dense_0": net.init(key, x)["params"]}}
    b = wider.init(key, x)["params"]
    assert np.allclose(scaled(a, 1.7, 1)["params"]["Dense_0"]["kernel"], b["kernel"], rtol=1e-6)


def test_the_run_learner_is_the_network_default():
    cfg, sp = _space(learners="wide", activation="relu", depth=2, bc_optimizer="adam", bc_max_grad_norm=0.0)
    network = sp.network(cfg.policy.depth, cfg.policy.activation)
    universal = make_policy(cfg.policy, (OBS,), True, ACTIONS, learners=network)
    plain = make_policy(cfg.policy, (OBS,), True, ACTIONS)
    p = universal.init(jax.random.PRNGKey(0))
    assert network["activations"][int(p["learner"]["activation"])] == "relu" and int(p["learner"]["depth"]) == 2
    assert not bool(p["learner"]["sgd"]) and np.isinf(float(p["learner"]["clip"]))
    # depth-3 network, learner of depth 2: Dense_2 is skipped, Dense_3 is the output layer
    q = {
        "params": {
            "Dense_0": p["params"]["Dense_0"],
            "Dense_1": p["params"]["Dense_1"],
            "Dense_2": p["params"]["Dense_3"],
        }
    }
    probe = jax.random.normal(jax.random.PRNGKey(1), (7, OBS))
    assert np.allclose(universal.apply(p, probe), plain.apply(q, probe), atol=1e-6)


@pytest.mark.parametrize(
    "given, message",
    [
        ({"learner_activations": "tanh,swish"}, "swish"),
        ({"learner_depths": "1,x"}, "integers"),
        ({"learner_depths": "-1"}, ">= 0"),
        ({"learner_optimizers": "rmsprop"}, "rmsprop"),
        ({"learner_init_range": 0.5}, "init-range"),
    ],
)
def test_bad_axes_are_refused_in_one_line(given, message):
    with pytest.raises(HadesError, match=message):
        make_config(env="CartPole-v1", variant="hades-r", learners="wide", **given)


def test_wide_learners_need_hades_r():
    with pytest.raises(HadesError, match="hades-r"):
        make_config(env="CartPole-v1", variant="hades-f", learners="wide")


def test_linear_learners_start_as_a_linear_model_would():
    """Depth 0: the output layer reads the input (rows past it are zero), initialised with the
    variance a linear model's output layer gets (0.01 / fan-in, fan-in = the input size)."""
    cfg = make_config(env="CartPole-v1", variant="hades-r", width=MAX_WIDTH, learners="sampled", learner_depths="0")
    sp = LearnerSpace.from_config(cfg)
    network = sp.network(cfg.policy.depth, cfg.policy.activation)
    policy = make_policy(cfg.policy, (OBS,), True, ACTIONS, learners=network)
    count = 200
    inits = jax.vmap(policy.init)(jax.random.split(jax.random.PRNGKey(0), count))
    params, _, _ = sp.sample(jax.random.PRNGKey(1), inits, jnp.full(count, 0.01), jnp.full(count, 10.0), network)
    kernel = np.asarray(params["params"][f"Dense_{network['depth']}"]["kernel"])  # [count, width, actions]
    assert np.all(kernel[:, OBS:] == 0)
    assert np.std(kernel[:, :OBS]) == pytest.approx(np.sqrt(0.01 / OBS), rel=0.1)


def test_a_diverged_sampled_learner_acts_with_its_untrained_weights(tiny_config):
    """A learner whose BC diverges (here: every SGD learner, at an absurd step size) is scored as
    its untrained policy, so the generation's fitness stays finite."""
    from hades.distill import Distiller

    d = Distiller(
        tiny_config(
            env="Pendulum-v1",
            variant="hades-r",
            learners="sampled",
            learner_optimizers="sgd",
            learner_sgd_lr_scale=1e6,
            learner_min_width=16,
            width=16,
            num_inits=4,
        )
    )
    state = d.init()
    learners = d.learners(jax.random.PRNGKey(0), state, 4)
    sol = d.solution(state)
    x, y = d.bc_data(sol, state.norm)
    trained, _ = jax.vmap(lambda p, lr, n: d.bc_train(p, x, y, lr, n.astype(jnp.int32)))(*learners)
    assert not np.all(np.isfinite(np.asarray(trained["params"]["Dense_0"]["kernel"])))  # it does diverge
    state, metrics = d.step(state)
    assert bool(metrics["finite"]) and np.isfinite(float(metrics["fitness_mean"]))
