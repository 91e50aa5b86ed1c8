"""MLP policies (flax linen) with a categorical or a Gaussian head.

``Policy.init(key) -> params`` and ``Policy.apply(params, x)`` are pure. For discrete actions
``apply`` returns logits; for continuous actions it returns the Gaussian mean and the policy's
params hold a learned, state-independent ``log_std``. Weights use LeCun-normal initialisation
(``lecun``, output layer at variance scale 0.01) or the official code's orthogonal one
(``orthogonal``: gains sqrt(2) for hidden layers, 0.01 for the output, zero biases). The
orthogonal matrices come from ``orthogonal`` below, a Gram-Schmidt QR written in matmuls: the
same Q as ``jax.nn.initializers.orthogonal`` for the same key (to float32 rounding), without
LAPACK's batched QR, which under vmap (HaDES-R initialises inside traced code) can deadlock
jaxlib's CPU backend on 2 cores.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import flax.linen as nn
import jax
import jax.numpy as jnp

from hades.config import PolicyConfig

OUTPUT_INIT = nn.initializers.variance_scaling(0.01, "fan_in", "normal")
HIDDEN_GAIN, OUTPUT_GAIN = 2.0**0.5, 0.01  # the official code's orthogonal gains


def _gram_schmidt(a: jax.Array) -> jax.Array:
    """Q of the reduced QR of ``a`` [m, k], m >= k, with R's diagonal positive (which makes it
    unique: the Q of ``jnp.linalg.qr`` times the signs of R's diagonal). Classical Gram-Schmidt,
    each column orthogonalised twice ("twice is enough"), in matmuls only."""
    m, k = a.shape
    cols = jnp.arange(k)

    def body(j, q):
        v = a[:, j]
        for _ in range(2):
            done = (cols < j).astype(a.dtype)
            v = v - q @ (done * (q.T @ v))
        return q.at[:, j].set(v / jnp.linalg.norm(v))

    return jax.lax.fori_loop(0, k, body, jnp.zeros_like(a))


def orthogonal(scale: float = 1.0):
    """``jax.nn.initializers.orthogonal(scale)`` for 2-D kernels, without LAPACK (see module doc)."""

    def init(key, shape, dtype=jnp.float32):
        n_rows, n_cols = shape
        wide = n_rows < n_cols
        a = jax.random.normal(key, (n_cols, n_rows) if wide else (n_rows, n_cols), dtype)
        q = _gram_schmidt(a)
        return scale * (q.T if wide else q)

    return init


def kernel_inits(policy_init: str):
    """(hidden, output) kernel initialisers of a policy init scheme."""
    if policy_init == "orthogonal":
        return orthogonal(HIDDEN_GAIN), orthogonal(OUTPUT_GAIN)
    return nn.initializers.lecun_normal(), OUTPUT_INIT


ACTIVATION_FNS = {"tanh": nn.tanh, "relu": nn.relu, "gelu": nn.gelu, "silu": nn.silu, "elu": nn.elu}


class MLP(nn.Module):
    width: int
    depth: int
    activation: str
    out_dim: int
    gaussian: bool
    in_ndim: int = 1  # observation rank: inputs are flattened over these trailing axes
    dtype: str = "float32"  # matmul inputs (parameters stay float32; outputs are float32)
    init_scheme: str = "lecun"  # lecun | orthogonal (the official code's)

    @nn.compact
    def __call__(self, x):
        act = ACTIVATION_FNS[self.activation]
        hidden_init, output_init = kernel_inits(self.init_scheme)
        x = x.reshape(x.shape[: x.ndim - self.in_ndim] + (-1,))
        for _ in range(self.depth):
            x = act(nn.Dense(self.width, kernel_init=hidden_init, dtype=self.dtype)(x))
        out = nn.Dense(self.out_dim, kernel_init=output_init, dtype=self.dtype)(x)
        if self.gaussian:
            self.param("log_std", nn.initializers.zeros, (self.out_dim,))
        return out.astype(jnp.float32)


class LearnerMLP(nn.Module):
    """The MLP of a distribution of learners (``learners.py``): ``depth`` hidden layers of ``width``
    units, laid out as ``MLP``'s (same parameter names and initialisers), plus a ``learner``
    collection of non-trained variables that say which learner it is:

    - ``activation``: an index into ``activations`` (every hidden layer uses that function);
    - ``depth``: how many hidden layers the learner has; the layers after them are the identity
      (``h -> h``), so their weights receive no gradient and the network computes exactly what a
      network of that depth computes; with ``linear``, depth 0 (a linear model) too: the input,
      zero-padded to the width, goes straight to the output layer (needs inputs <= width);
    - ``sgd`` and ``clip``: the learner's optimiser (Adam or SGD) and gradient-norm clip (inf: none),
      read by ``bc.make_bc_train``, not by the forward pass.

    The defaults (``default_*``) are the run's own learner, so ``init`` gives that learner.
    """

    width: int
    depth: int
    activations: tuple[str, ...]
    out_dim: int
    gaussian: bool
    in_ndim: int = 1
    default_activation: int = 0
    default_depth: int = 1
    default_sgd: bool = False
    default_clip: float = float("inf")
    dtype: str = "float32"
    linear: bool = False  # learners of depth 0 (linear models) are possible

    @nn.compact
    def __call__(self, x):
        which = self.variable("learner", "activation", lambda: jnp.int32(self.default_activation)).value
        used = self.variable("learner", "depth", lambda: jnp.int32(self.default_depth)).value
        self.variable("learner", "sgd", lambda: jnp.bool_(self.default_sgd))
        self.variable("learner", "clip", lambda: jnp.float32(self.default_clip))
        fns = [ACTIVATION_FNS[a] for a in self.activations]
        x = x.reshape(x.shape[: x.ndim - self.in_ndim] + (-1,))
        for layer in range(self.depth):
            h = nn.Dense(self.width, kernel_init=nn.initializers.lecun_normal(), dtype=self.dtype)(x)
            h = fns[0](h) if len(fns) == 1 else jax.lax.switch(which, fns, h)
            if layer > 0:
                x = jnp.where(layer < used, h, x)
            elif self.linear:  # depth 0: the input itself, zero-padded to the width
                pad = jnp.zeros(x.shape[:-1] + (self.width - x.shape[-1],), x.dtype)
                x = jnp.where(used > 0, h, jnp.concatenate([x, pad], -1).astype(h.dtype))
            else:
                x = h
        out = nn.Dense(self.out_dim, kernel_init=OUTPUT_INIT, dtype=self.dtype)(x)
        if self.gaussian:
            self.param("log_std", nn.initializers.zeros, (self.out_dim,))
        return out.astype(jnp.float32)


CNN_BIAS_INIT = nn.initializers.uniform(0.05)  # the released code's: biases uniform in [0, 0.05)


class CNN(nn.Module):
    """The released code's small image classifier: 3x3 conv (16 channels), dense ``hidden``, logits;
    LeCun-normal kernels, the conv and hidden biases uniform in [0, 0.05), the output bias zero."""

    hidden: int
    out_dim: int

    @nn.compact
    def __call__(self, x):
        lecun = nn.initializers.lecun_normal()
        x = nn.relu(nn.Conv(16, (3, 3), kernel_init=lecun, bias_init=CNN_BIAS_INIT)(x))
        x = x.reshape(x.shape[:-3] + (-1,))
        x = nn.relu(nn.Dense(self.hidden, kernel_init=lecun, bias_init=CNN_BIAS_INIT)(x))
        return nn.Dense(self.out_dim)(x)


def _log_std(params: dict) -> jax.Array:
    return params["params"]["log_std"]


@dataclasses.dataclass(frozen=True)
class Policy:
    discrete: bool
    init: Callable[[jax.Array], dict]
    apply: Callable[[dict, jax.Array], jax.Array]
    # continuous actions: the Gaussian's log std for the outputs ``apply`` gives (a view of a
    # larger policy, such as one task of a multi-task agent, reads its own slice)
    log_std: Callable[[dict], jax.Array] = _log_std

    def act(self, params, x, key, stochastic: bool = False):
        """Action for one observation (already normalised)."""
        out = self.apply(params, x)
        if self.discrete:
            if stochastic:
                return jax.random.categorical(key, out)
            return jnp.argmax(out, axis=-1)
        if stochastic:
            std = jnp.exp(self.log_std(params))
            return out + std * jax.random.normal(key, out.shape)
        return out


def make_policy(
    cfg: PolicyConfig,
    obs_shape: tuple[int, ...],
    discrete: bool,
    action_dim: int,
    learners: dict | None = None,
) -> Policy:
    """The run's MLP policy; with ``learners`` (``activations``, ``depth``, ``sgd``, ``clip``: a
    distribution's choices and the run's optimiser), a ``LearnerMLP`` whose init is the run's learner."""
    if learners is None:
        net = MLP(
            cfg.width,
            cfg.depth,
            cfg.activation,
            action_dim,
            not discrete,
            in_ndim=len(obs_shape),
            dtype=cfg.precision,
            init_scheme=cfg.policy_init,
        )
    else:
        net = LearnerMLP(
            cfg.width,
            learners["depth"],
            learners["activations"],
            action_dim,
            not discrete,
            in_ndim=len(obs_shape),
            default_activation=learners["activations"].index(cfg.activation),
            default_depth=cfg.depth,
            default_sgd=learners["sgd"],
            default_clip=learners["clip"],
            dtype=cfg.precision,
            linear=min(learners["depths"]) == 0,
        )
    dummy = jnp.zeros(obs_shape, jnp.float32)

    def init(key):
        return net.init(key, dummy)

    return Policy(discrete=discrete, init=init, apply=net.apply)


def make_classifier(model: str, hidden: int, image_shape: tuple[int, ...], num_classes: int) -> Policy:
    """An image classifier with the Policy interface (``apply`` gives logits)."""
    if model == "cnn":
        net = CNN(hidden, num_classes)
    else:
        net = MLP(hidden, 1, "relu", num_classes, False, in_ndim=len(image_shape))
    dummy = jnp.zeros(image_shape, jnp.float32)
    return Policy(discrete=True, init=lambda key: net.init(key, dummy), apply=net.apply)


def narrow(params: dict, width, depth: int, max_width: int) -> dict:
    """An MLP initialisation of width ``max_width`` turned into one of ``width`` (may be traced):
    hidden units from ``width`` on get zero weights in and out, so they stay zero under training
    (no gradient reaches them) and the network computes exactly what a ``width``-wide one would;
    the layers after a hidden layer are rescaled for their smaller fan-in (LeCun / variance scaling)."""
    p = dict(params["params"])
    live = (jnp.arange(max_width) < width).astype(jnp.float32)
    scale = jnp.sqrt(max_width / width)
    for layer in range(depth + 1):
        name = f"Dense_{layer}"
        kernel, bias = p[name]["kernel"], p[name]["bias"]
        if layer > 0:  # input comes from a narrowed hidden layer
            kernel = kernel * (live * scale)[:, None]
        if layer < depth:  # output is a narrowed hidden layer
            kernel, bias = kernel * live[None, :], bias * live
        p[name] = {**p[name], "kernel": kernel, "bias": bias}
    return {**params, "params": p}


def param_count(cfg: PolicyConfig, in_dim: int, out_dim: int, gaussian: bool = False) -> int:
    """Number of parameters of the MLP (exact; for memory estimates before anything is built)."""
    w, d = cfg.width, cfg.depth
    hidden = in_dim * w + w + (d - 1) * (w * w + w)
    return hidden + w * out_dim + out_dim + (out_dim if gaussian else 0)
