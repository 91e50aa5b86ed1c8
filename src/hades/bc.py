"""The inner loop: behaviour cloning on a (tiny) dataset by full-batch Adam (or SGD).

Losses are a few lines of jax.numpy (no distrax):
- discrete: cross-entropy of the policy's logits against fixed integer labels (or, with a label
  temperature T > 0, against the soft targets ``softmax(one_hot(label) / T)``);
- continuous: Gaussian negative log-likelihood of the dataset actions under the policy's mean
  and learned state-independent std.
``make_bc_train(policy, cfg)(params0, x, y) -> (params, final_loss)`` is pure and jittable;
``x`` are inputs already normalised the way the policy will see observations. Only the ``params``
collection is trained; a policy's other variables (a ``LearnerMLP``'s ``learner`` collection: its
activation, depth, optimiser and clip) ride along unchanged.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import optax

from hades.config import BCConfig
from hades.policies import Policy

LOG_2PI = float(jnp.log(2 * jnp.pi))


def uniform_labels(n: int, num_actions: int, layout: str = "interleaved") -> jax.Array:
    """Fixed discrete labels spread uniformly over actions: ``interleaved`` labels every one of the
    n states (0, 1, ..., A-1, 0, ...); ``official`` (the official code) gives each action a block of
    n // A states and labels only those n - n % A (the rest are never trained on)."""
    if layout == "official":
        return jnp.repeat(jnp.arange(num_actions, dtype=jnp.int32), n // num_actions)
    return jnp.arange(n, dtype=jnp.int32) % num_actions


def soft_targets(y, num_actions: int, temperature):
    """``softmax(one_hot(y) / T)``: the label's action gets the most mass, the rest share what T gives
    them (T -> 0: the hard label; large T: uniform)."""
    return jax.nn.softmax(jax.nn.one_hot(y, num_actions) / temperature)


def bc_loss(policy: Policy, params, x, y, temperature=None, per_action: bool = False):
    """Mean BC loss; ``temperature`` (discrete actions; may be traced): soft targets instead of
    labels; ``per_action``: the cross-entropy divided by the number of actions (the official code's
    mean over states and actions)."""
    out = policy.apply(params, x)
    if policy.discrete:
        if temperature is not None:
            loss = optax.softmax_cross_entropy(out, soft_targets(y, out.shape[-1], temperature)).mean()
        else:
            loss = optax.softmax_cross_entropy_with_integer_labels(out, y).mean()
        return loss / out.shape[-1] if per_action else loss
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


def learner_direction(sgd, clip, adam_eps: float) -> optax.GradientTransformation:
    """A sampled learner's optimiser without its step size, from traced flags: gradients clipped to
    global norm ``clip`` (inf: not clipped) exactly as ``optax.clip_by_global_norm`` does, then Adam's
    moments, or (``sgd``) the clipped gradient itself. Adam's state is kept for every learner so one
    vmapped program trains both kinds."""
    clipping, adam = optax.clip_by_global_norm(clip), optax.scale_by_adam(eps=adam_eps)

    def update(grads, state, params=None):
        grads, _ = clipping.update(grads, clipping.init(grads))  # stateless
        moments, state = adam.update(grads, state, params)
        return jax.tree.map(lambda m, g: jnp.where(sgd, g, m), moments, grads), state

    return optax.GradientTransformation(adam.init, update)


def make_bc_train(policy: Policy, cfg: BCConfig, max_steps: int | None = None):
    """``train(params, x, y, lr=None, steps=None, temperature=None) -> (params, final_loss)``.

    ``lr`` and ``steps`` (default: the config's) may be traced values, so policies with different
    learning rates and step counts train in one vmapped call (transfer sweeps, evolved inner-loop
    hyperparameters); the scan runs ``max_steps`` (default ``cfg.bc_steps``) steps and leaves the
    params alone after a policy's own ``steps``. ``temperature`` (default: the config's
    ``bc_label_temperature``, 0 meaning hard labels) may be traced too (an evolved gene). A policy
    whose variables say its own optimiser (``learner`` collection with ``sgd`` / ``clip``) is trained
    with that one; the config's optimiser otherwise.
    """
    length = max_steps or cfg.bc_steps

    def loss_fn(trainable, fixed, x, y, temperature):
        return bc_loss(policy, {**fixed, "params": trainable}, x, y, temperature, cfg.bc_loss_per_action)

    grad_fn = jax.value_and_grad(loss_fn)

    def train(params, x, y, lr=None, steps=None, temperature=None):
        size = learning_rate(cfg, lr, steps)
        n = cfg.bc_steps if steps is None else steps
        if temperature is None and cfg.bc_label_temperature > 0:
            temperature = cfg.bc_label_temperature
        trainable, fixed = params["params"], {k: v for k, v in params.items() if k != "params"}
        learner = fixed.get("learner", {})
        if "sgd" in learner:
            direction = learner_direction(learner["sgd"], learner["clip"], cfg.bc_adam_eps)
        else:
            direction = make_direction(cfg)

        def body(carry, t):
            trainable, opt_state = carry
            loss, grads = grad_fn(trainable, fixed, x, y, temperature)
            updates, opt_state = direction.update(grads, opt_state, trainable)
            scale = jnp.where(t < n, -size(t), 0.0)
            trainable = jax.tree.map(lambda p, u: p + scale * u, trainable, updates)
            return (trainable, opt_state), loss

        init = (trainable, direction.init(trainable))
        (trainable, _), _ = jax.lax.scan(body, init, jnp.arange(length), unroll=min(cfg.bc_unroll, length))
        return {**fixed, "params": trainable}, loss_fn(trainable, fixed, x, y, temperature)

    return train
