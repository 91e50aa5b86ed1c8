"""Distributions of learners for HaDES-R (``--learners sampled`` / ``wide``).

A learner is what turns a dataset into a policy: an MLP (width, depth, activation, initial weight
scale) and its BC optimiser (Adam or SGD, with or without gradient clipping, learning rate, steps).
HaDES-R scores a dataset by the policies a generation's learners train on it; drawing those
learners from a distribution asks the dataset to train all of them.

Every learner of a distribution runs in ONE compiled, vmapped program: they share one network, a
``policies.LearnerMLP`` of the largest width and depth, and a learner's own settings are data:

- **width** (powers of two from ``--learner-min-width`` up to ``--width``): hidden units past the
  width get zero weights in and out (``policies.narrow``), so they stay zero under training;
- **depth** (``--learner-depths``): hidden layers past the depth are the identity; depth 0 is a
  linear model (the zero-padded input goes to the output layer; inputs must fit in ``--width``);
- **activation** (``--learner-activations``): an index choosing the hidden layers' function;
- **optimiser** (``--learner-optimizers``): Adam or SGD, clipped to ``--learner-clip-norm`` or not
  (``bc.learner_direction``); SGD learners take ``--learner-sgd-lr-scale`` times the learning rate;
- **init scale**: hidden weights times ``s``, ``log s`` uniform in ``[-log r, log r]``
  (``--learner-init-range``), i.e. LeCun-normal initialisation with variance ``s**2``;
- **learning rate** (log-uniform over ``--learner-lr-range``) and **steps** (uniform from
  ``--learner-min-steps`` of ``--bc-steps``).

A sampled learner computes exactly what the genuinely built learner (an ``MLP`` of that width,
depth and activation, trained by ``make_bc_train`` with that optimiser) computes from the same
initial weights: tests/test_learners.py checks each axis.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np

from hades.config import LEARNER_OPTIMIZERS, DistillConfig, split_list
from hades.policies import narrow

WIDE = {
    "activations": ("tanh", "relu", "gelu"),
    "depths": (1, 2, 3),
    "optimizers": LEARNER_OPTIMIZERS,
    "init_range": 2.0,
}


@dataclasses.dataclass(frozen=True)
class LearnerSpace:
    """The choices of every axis (each sampled uniformly and independently)."""

    widths: tuple[int, ...]
    activations: tuple[str, ...]
    depths: tuple[int, ...]
    optimizers: tuple[str, ...]
    lr_range: float
    min_steps: float
    init_range: float
    clip_norm: float
    sgd_lr_scale: float
    run_sgd: bool  # the run's own learner, what ``init`` of the network gives
    run_clip: float

    @classmethod
    def from_config(cls, cfg: DistillConfig) -> LearnerSpace:
        lc, policy, bc = cfg.learner, cfg.policy, cfg.bc
        wide = lc.learners == "wide"
        run_opt = bc.bc_optimizer + ("-clip" if bc.bc_max_grad_norm > 0 else "")

        def axis(text, name, run_value, cast=str):
            given = tuple(cast(v) for v in split_list(text))
            return given or (WIDE[name] if wide else (run_value,))

        powers = 2 ** np.arange(int(np.ceil(np.log2(lc.learner_min_width))), int(np.log2(policy.width)) + 1)
        widths = np.unique(np.append(powers[powers < policy.width], policy.width))
        return cls(
            widths=tuple(int(w) for w in widths),
            activations=axis(lc.learner_activations, "activations", policy.activation),
            depths=axis(lc.learner_depths, "depths", policy.depth, int),
            optimizers=axis(lc.learner_optimizers, "optimizers", run_opt),
            lr_range=lc.learner_lr_range,
            min_steps=lc.learner_min_steps,
            init_range=lc.learner_init_range or (WIDE["init_range"] if wide else 1.0),
            clip_norm=lc.learner_clip_norm,
            sgd_lr_scale=lc.learner_sgd_lr_scale,
            run_sgd=bc.bc_optimizer == "sgd",
            run_clip=bc.bc_max_grad_norm if bc.bc_max_grad_norm > 0 else float("inf"),
        )

    def network(self, policy_depth: int, policy_activation: str) -> dict:
        """``make_policy``'s ``learners`` argument: the shared network's activations and depth,
        including the run's own (so its init, the run's learner, is one of the network's)."""
        activations = tuple(dict.fromkeys((*self.activations, policy_activation)))
        return {
            "activations": activations,
            "depth": max(*self.depths, policy_depth),
            "depths": self.depths,
            "sgd": self.run_sgd,
            "clip": self.run_clip,
        }

    def sample(self, key, params, lr, steps, network: dict):
        """``count`` learners from ``count`` stacked network inits (and the run's learning rates and
        step counts): (params with each learner's ``learner`` variables, lr, steps)."""
        count = lr.shape[0]
        k_w, k_lr, k_n = jax.random.split(jax.random.fold_in(key, 1), 3)
        k_act, k_depth, k_opt, k_scale = jax.random.split(jax.random.fold_in(key, 2), 4)
        depth = network["depth"]

        width = jax.random.choice(k_w, jnp.asarray(self.widths), (count,))
        scale = jnp.exp(jax.random.uniform(k_scale, (count,), minval=-1.0, maxval=1.0) * np.log(self.init_range))
        pick = lambda k, choices: jnp.asarray(choices)[jax.random.randint(k, (count,), 0, len(choices))]
        depths = pick(k_depth, list(self.depths)).astype(jnp.int32)

        def one(p, w, s, d):  # a depth-0 learner's output layer reads the input, else narrowed to w
            hidden = narrow(scaled(p, s, depth), w, depth, self.widths[-1])
            if 0 not in self.depths:
                return hidden
            return jax.tree.map(lambda a, b: jnp.where(d == 0, a, b), linear_output(p, depth, self.widths[-1]), hidden)

        params = jax.vmap(one)(params, width, scale, depths)
        activation = pick(k_act, [network["activations"].index(a) for a in self.activations])
        opt = pick(k_opt, [LEARNER_OPTIMIZERS.index(o) for o in self.optimizers])
        sgd = (opt == LEARNER_OPTIMIZERS.index("sgd")) | (opt == LEARNER_OPTIMIZERS.index("sgd-clip"))
        clipped = (opt == LEARNER_OPTIMIZERS.index("adam-clip")) | (opt == LEARNER_OPTIMIZERS.index("sgd-clip"))
        learner = {
            "activation": activation.astype(jnp.int32),
            "depth": depths,
            "sgd": sgd,
            "clip": jnp.where(clipped, jnp.float32(self.clip_norm), jnp.float32(jnp.inf)),
        }
        params = {**params, "learner": learner}
        r = np.log(self.lr_range)
        lr = lr * jnp.exp(jax.random.uniform(k_lr, (count,), minval=-r, maxval=r))
        lr = lr * jnp.where(sgd, self.sgd_lr_scale, 1.0) / (self.sgd_lr_scale if self.run_sgd else 1.0)
        steps = steps * jax.random.uniform(k_n, (count,), minval=self.min_steps, maxval=1.0)
        return params, lr, steps


def linear_output(params: dict, depth: int, max_width: int) -> dict:
    """A network init as a depth-0 (linear) learner's: the output layer reads the zero-padded input,
    so its rows past the input size are zeroed and the rest rescaled for fan-in = the input size
    (what the output layer of a genuine linear model is initialised with)."""
    p = dict(params["params"])
    in_dim = p["Dense_0"]["kernel"].shape[0]  # the first layer's fan-in is the input size
    name = f"Dense_{depth}"
    live = (jnp.arange(max_width) < in_dim).astype(jnp.float32)
    kernel = p[name]["kernel"] * (live * np.sqrt(max_width / in_dim))[:, None]
    p[name] = {**p[name], "kernel": kernel}
    return {**params, "params": p}


def scaled(params: dict, scale, depth: int) -> dict:
    """Hidden layers' kernels (``Dense_0`` .. ``Dense_{depth-1}``) times ``scale`` (may be traced)."""
    p = dict(params["params"])
    for layer in range(depth):
        name = f"Dense_{layer}"
        p[name] = {**p[name], "kernel": p[name]["kernel"] * scale}
    return {**params, "params": p}


def describe(params) -> list[dict]:
    """Each stacked learner's settings in words (``learner`` variables only): for reports and tests."""
    learner = jax.device_get(params["learner"])
    return [
        {
            "activation": int(a),
            "depth": int(d),
            "optimizer": ("sgd" if s else "adam") + ("-clip" if np.isfinite(c) else ""),
        }
        for a, d, s, c in zip(learner["activation"], learner["depth"], learner["sgd"], learner["clip"])
    ]
