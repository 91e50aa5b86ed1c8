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


def learning_rate(cfg: BCConfig):
    """Constant, or linear from bc_lr to 0 over bc_steps (it really reaches ~0 at the end)."""
    if cfg.bc_anneal:
        return optax.linear_schedule(cfg.bc_lr, 0.0, cfg.bc_steps)
    return cfg.bc_lr


def make_optimizer(cfg: BCConfig) -> optax.GradientTransformation:
    opt = (optax.sgd if cfg.bc_optimizer == "sgd" else optax.adam)(learning_rate(cfg))
    if cfg.bc_max_grad_norm > 0:
        return optax.chain(optax.clip_by_global_norm(cfg.bc_max_grad_norm), opt)
    return opt


def make_bc_train(policy: Policy, cfg: BCConfig):
    opt = make_optimizer(cfg)
    grad_fn = jax.value_and_grad(lambda p, x, y: bc_loss(policy, p, x, y))

    def train(params, x, y):
        def body(carry, _):
            params, opt_state = carry
            loss, grads = grad_fn(params, x, y)
            updates, opt_state = opt.update(grads, opt_state, params)
            return (optax.apply_updates(params, updates), opt_state), loss

        (params, _), losses = jax.lax.scan(body, (params, opt.init(params)), None, length=cfg.bc_steps)
        return params, bc_loss(policy, params, x, y)

    return train
