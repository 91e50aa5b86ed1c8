"""The inner loop: behaviour cloning on a (tiny) dataset by full-batch Adam (or SGD).

Losses are a few lines of jax.numpy (no distrax):
- discrete: cross-entropy of the policy's logits against fixed integer labels;
- continuous: Gaussian negative log-likelihood of the dataset actions under the policy's mean
  and learned state-independent std.
``make_bc_train(policy, cfg)(params0, x, y) -> (params, final_loss)`` is pure and jittable;
``x`` are inputs already normalised the way the policy will see observations.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import optax

from hades.config import BCConfig
from hades.policies import Policy

LOG_2PI = float(jnp.log(2 * jnp.pi))


def uniform_labels(n: int, num_actions: int) -> jax.Array:
    """Fixed discrete labels spread uniformly over actions; every one of the n states is labelled."""
    return jnp.arange(n, dtype=jnp.int32) % num_actions


def bc_loss(policy: Policy, params, x, y):
    out = policy.apply(params, x)
    if policy.discrete:
        return optax.softmax_cross_entropy_with_integer_labels(out, y).mean()
    log_std = params["params"]["log_std"]
    z = (y - out) * jnp.exp(-log_std)
    return (0.5 * z**2 + log_std + 0.5 * LOG_2PI).sum(-1).mean()


def learning_rate(cfg: BCConfig, lr=None, steps=None):
    """The step size at step ``t``: constant, or linear from ``lr`` to 0 over ``steps`` (it really
    reaches ~0 at the end). ``lr`` / ``steps`` default to the config's and may be traced."""
    lr = cfg.bc_lr if lr is None else lr
    steps = cfg.bc_steps if steps is None else steps
    if cfg.bc_anneal:
        return lambda t: lr * jnp.clip(1.0 - t / steps, 0.0, 1.0)
    return lambda t: lr * jnp.ones_like(t, jnp.float32)


def make_direction(cfg: BCConfig) -> optax.GradientTransformation:
    """The optimiser without its step size: (clipping +) Adam moments, or plain SGD."""
    direction = optax.scale_by_adam(eps=cfg.bc_adam_eps) if cfg.bc_optimizer == "adam" else optax.identity()
    if cfg.bc_max_grad_norm > 0:
        return optax.chain(optax.clip_by_global_norm(cfg.bc_max_grad_norm), direction)
    return direction


def make_bc_train(policy: Policy, cfg: BCConfig, max_steps: int | None = None):
    """``train(params, x, y, lr=None, steps=None) -> (params, final_loss)``.

    ``lr`` and ``steps`` (default: the config's) may be traced values, so policies with different
    learning rates and step counts train in one vmapped call (transfer sweeps, evolved inner-loop
    hyperparameters); the scan runs ``max_steps`` (default ``cfg.bc_steps``) steps and leaves the
    params alone after a policy's own ``steps``.
    """
    direction = make_direction(cfg)
    length = max_steps or cfg.bc_steps
    grad_fn = jax.value_and_grad(lambda p, x, y: bc_loss(policy, p, x, y))

    def train(params, x, y, lr=None, steps=None):
        size = learning_rate(cfg, lr, steps)
        n = cfg.bc_steps if steps is None else steps

        def body(carry, t):
            params, opt_state = carry
            loss, grads = grad_fn(params, x, y)
            updates, opt_state = direction.update(grads, opt_state, params)
            scale = jnp.where(t < n, -size(t), 0.0)
            params = jax.tree.map(lambda p, u: p + scale * u, params, updates)
            return (params, opt_state), loss

        (params, _), _ = jax.lax.scan(body, (params, direction.init(params)), jnp.arange(length))
        return params, bc_loss(policy, params, x, y)

    return train
