import jax
import jax.numpy as jnp
import numpy as np
import pytest

from hades.bc import bc_loss, learning_rate, make_bc_train, uniform_labels
from hades.config import BCConfig, PolicyConfig
from hades.policies import make_policy


def test_uniform_labels_cover_every_state():
    labels = np.asarray(uniform_labels(16, 3))
    assert labels.shape == (16,)
    assert sorted(np.bincount(labels)) == [5, 5, 6]  # 16 states, 3 actions: all 16 labelled


def test_bc_fits_four_points_discrete():
    policy = make_policy(PolicyConfig(width=32, depth=2), (2,), True, 2)
    x = jnp.array([[1.0, 1.0], [-1.0, -1.0], [1.0, -1.0], [-1.0, 1.0]])  # XOR: not linearly separable
    y = jnp.array([0, 0, 1, 1])
    params, loss = jax.jit(make_bc_train(policy, BCConfig(bc_lr=0.01, bc_steps=300)))(
        policy.init(jax.random.PRNGKey(0)), x, y
    )
    assert float(loss) < 1e-2
    assert np.array_equal(np.argmax(policy.apply(params, x), -1), np.asarray(y))


def test_bc_fits_four_points_continuous():
    policy = make_policy(PolicyConfig(width=32, depth=2), (3,), False, 2)
    x = jax.random.normal(jax.random.PRNGKey(1), (4, 3))
    y = jnp.array([[0.5, -1.0], [2.0, 0.0], [-1.5, 1.0], [0.0, 3.0]])
    params, loss = jax.jit(make_bc_train(policy, BCConfig(bc_lr=0.01, bc_steps=600, bc_max_grad_norm=0)))(
        policy.init(jax.random.PRNGKey(0)), x, y
    )
    np.testing.assert_allclose(policy.apply(params, x), y, atol=0.05)
    # the learned std shrinks towards the residuals, so the NLL falls below that of std = 1
    assert float(loss) < 0.5 * np.log(2 * np.pi)


def test_linear_anneal_really_anneals():
    sched = learning_rate(BCConfig(bc_lr=0.03, bc_steps=64, bc_anneal=True))
    assert float(sched(0)) == pytest.approx(0.03)
    assert float(sched(32)) == pytest.approx(0.015)
    assert float(sched(63)) < 0.03 / 60
    assert float(learning_rate(BCConfig(bc_lr=0.03, bc_anneal=False))(50)) == pytest.approx(0.03)


@pytest.mark.parametrize("anneal", [True, False])
def test_the_trainer_takes_the_annealed_steps(anneal):
    """The trainer itself (not just the schedule): with SGD, step t moves the params by
    lr * (1 - t / n) * gradient when annealing, lr * gradient otherwise (checked by hand)."""
    policy = make_policy(PolicyConfig(width=8, depth=1), (2,), True, 2)
    x, y = jnp.array([[1.0, 0.5], [-1.0, -0.5], [0.3, -1.0]]), jnp.array([0, 1, 1])
    cfg = BCConfig(bc_lr=0.5, bc_steps=4, bc_anneal=anneal, bc_optimizer="sgd", bc_max_grad_norm=0.0)
    params = p0 = policy.init(jax.random.PRNGKey(0))
    for t in range(4):
        grads = jax.grad(lambda p: bc_loss(policy, p, x, y))(params)
        size = 0.5 * (1 - t / 4) if anneal else 0.5
        params = jax.tree.map(lambda p, g, size=size: p - size * g, params, grads)
    trained, _ = jax.jit(make_bc_train(policy, cfg))(p0, x, y)
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6), trained, params)


def test_traced_learning_rates_and_step_counts_train_in_one_call():
    """vmapped over (lr, steps): each policy matches its own separately trained twin."""
    policy = make_policy(PolicyConfig(width=16, depth=1), (2,), True, 2)
    x = jnp.array([[1.0, 1.0], [-1.0, -1.0], [1.0, -1.0], [-1.0, 1.0]])
    y = jnp.array([0, 0, 1, 1])
    p0 = policy.init(jax.random.PRNGKey(0))
    lrs, steps = jnp.array([0.001, 0.01, 0.03]), jnp.array([20, 50, 35])
    cfg = BCConfig(bc_anneal=True)
    together = jax.jit(jax.vmap(lambda lr, n: make_bc_train(policy, cfg, max_steps=50)(p0, x, y, lr, n)[1]))(lrs, steps)
    for i in range(3):
        alone = make_bc_train(policy, BCConfig(bc_lr=float(lrs[i]), bc_steps=int(steps[i]), bc_anneal=True))
        # batched kernels round differently and Adam amplifies it a little: 3% on the loss
        np.testing.assert_allclose(together[i], jax.jit(alone)(p0, x, y)[1], rtol=0.03)
    longer = make_bc_train(policy, BCConfig(bc_lr=0.03, bc_steps=50, bc_anneal=True))
    assert float(jax.jit(longer)(p0, x, y)[1]) < 0.5 * float(together[2])  # 35 steps really stopped at 35


@pytest.mark.parametrize("temperature", [0.5, 2.0])
def test_soft_labels_train_the_policy_to_the_soft_targets(temperature):
    """With a label temperature T the policy learns softmax(one_hot / T), not the hard label."""
    policy = make_policy(PolicyConfig(width=32, depth=1), (2,), True, 3)
    x, y = jnp.array([[1.0, 0.0], [0.0, 1.0]]), jnp.array([0, 2])
    cfg = BCConfig(bc_lr=0.01, bc_steps=500, bc_label_temperature=temperature)
    params, _ = jax.jit(make_bc_train(policy, cfg))(policy.init(jax.random.PRNGKey(0)), x, y)
    p = np.asarray(jax.nn.softmax(policy.apply(params, x)))
    e = np.exp(1.0 / temperature)
    want = np.array([[e, 1, 1], [1, 1, e]]) / (e + 2)
    np.testing.assert_allclose(p, want, atol=0.01)
    # the same temperature passed as a traced value (an evolved gene) trains the same policy
    traced, _ = jax.jit(make_bc_train(policy, BCConfig(bc_lr=0.01, bc_steps=500)))(
        policy.init(jax.random.PRNGKey(0)), x, y, None, None, jnp.float32(temperature)
    )
    np.testing.assert_allclose(policy.apply(traced, x), policy.apply(params, x), atol=1e-5)


def test_bfloat16_matmuls_keep_float32_parameters_and_still_fit():
    """--precision bfloat16: the same parameters (float32), outputs within bf16 rounding of the
    float32 policy's, and BC still fits XOR."""
    full = make_policy(PolicyConfig(width=32, depth=2), (2,), True, 2)
    half = make_policy(PolicyConfig(width=32, depth=2, precision="bfloat16"), (2,), True, 2)
    params = full.init(jax.random.PRNGKey(0))
    assert jax.tree.map(lambda a: a.dtype, half.init(jax.random.PRNGKey(0))) == jax.tree.map(lambda a: a.dtype, params)
    x = jax.random.normal(jax.random.PRNGKey(1), (16, 2))
    a, b = full.apply(params, x), half.apply(params, x)
    assert b.dtype == jnp.float32 and not np.array_equal(a, b)
    np.testing.assert_allclose(a, b, atol=2e-3)
    x = jnp.array([[1.0, 1.0], [-1.0, -1.0], [1.0, -1.0], [-1.0, 1.0]])
    y = jnp.array([0, 0, 1, 1])
    trained, loss = jax.jit(make_bc_train(half, BCConfig(bc_lr=0.01, bc_steps=300)))(params, x, y)
    assert float(loss) < 0.05 and np.array_equal(np.argmax(half.apply(trained, x), -1), np.asarray(y))
