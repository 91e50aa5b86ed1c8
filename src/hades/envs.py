"""One adapter over the environment suites: ``make_env("CartPole-v1")``, ``make_env("brax/hopper")``.

Any JAX environment works, by one of three routes (all end in :func:`adapt`):
- an id: every id in gymnax's registry (``gymnax.registered_envs``), ``brax/<name>`` or a bare
  Brax name (``hopper``);
- ``"package.module:function"``: hades imports the module and calls the function (no arguments),
  which returns a gymnax environment (``(env, params)``, or the env alone for its default
  params), a Brax ``Env``, an XLand-MiniGrid ``(env, params)`` or a hades :class:`Env`. Artifacts
  store the reference, so ``hades train`` / ``render`` / ... rebuild it wherever the module is
  importable;
- Python objects: ``make_config(env=obj)`` or ``register("my-env", factory)``; such a name lives
  only in the process that registered it (use the module route for artifacts other processes use).

An :class:`Env` exposes pure, jittable ``reset(key) -> (obs, state)`` and
``step(key, state, action) -> (obs, state, reward, done)`` with *no* auto-reset: rollouts run
each episode once (see ``rollout.py``). ``done`` is ``terminated or truncated`` (gymnax 1.x
returns them separately; the time limit counts as the end of the episode). Continuous actions
are clipped to the action space here, so datasets may hold unbounded action labels.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from hades.config import BACKENDS
from hades.envtable import BRAX_NAMES, ENV_SPECS
from hades.errors import HadesError, did_you_mean


@dataclasses.dataclass(frozen=True)
class Env:
    name: str
    obs_shape: tuple[int, ...]
    discrete: bool
    num_actions: int  # discrete: number of actions; continuous: action dimension
    max_steps: int  # the episode limit
    reset: Callable[[jax.Array], tuple[jax.Array, Any]]
    step: Callable[[jax.Array, Any, jax.Array], tuple[jax.Array, Any, jax.Array, jax.Array]]
    action_low: float | None = None
    action_high: float | None = None
    feature_names: tuple[str, ...] | None = None
    channel_names: tuple[str, ...] | None = None
    body_parents: tuple[int, ...] | None = None  # Brax: each body's parent index (-1: root), for drawing
    # seconds of fixed CPU cost per batched step beyond the policy's (the chunk cost model charges
    # it once per loop iteration): known only where measured (STEP_OVERHEAD), else 0
    step_overhead: float = 0.0

    @property
    def action_space(self) -> str:
        return "discrete" if self.discrete else "continuous"

    @property
    def action_dim(self) -> int:
        """Width of a policy's output (logits or Gaussian mean)."""
        return self.num_actions

    def spec(self) -> dict:
        """What tools need to know without building the environment (artifacts carry it)."""
        out = {
            "obs_shape": list(self.obs_shape),
            "action_space": self.action_space,
            "action_count" if self.discrete else "action_dim": self.num_actions,
            "episode_limit": self.max_steps,
        }
        if self.feature_names:
            out["feature_names"] = list(self.feature_names)
        if self.channel_names:
            out["channel_names"] = list(self.channel_names)
        return out


FEATURE_NAMES = {
    "CartPole-v1": ("cart position", "cart velocity", "pole angle", "pole angular velocity"),
    "Acrobot-v1": ("cos theta1", "sin theta1", "cos theta2", "sin theta2", "theta1 velocity", "theta2 velocity"),
    "MountainCar-v0": ("position", "velocity"),
    "MountainCarContinuous-v0": ("position", "velocity"),
    "Pendulum-v1": ("cos theta", "sin theta", "angular velocity"),
}
CHANNEL_NAMES = {
    "Breakout-MinAtar": ("paddle", "ball", "trail", "brick"),
    "SpaceInvaders-MinAtar": ("cannon", "alien", "alien left", "alien right", "friendly bullet", "enemy bullet"),
    "Asterix-MinAtar": ("player", "enemy", "trail", "gold"),
    "Freeway-MinAtar": ("chicken", "car", "speed 1", "speed 2", "speed 3", "speed 4", "speed 5"),
}


def _gymnax_id(env_id: str) -> Env:
    import gymnax  # deferred: importing gymnax pulls in all its suites

    try:
        env, params = gymnax.make(env_id)
    except Exception as e:  # e.g. MNISTBandit-bsuite downloads MNIST when it is made
        raise HadesError(f"gymnax cannot build {env_id!r} here ({e.__class__.__name__}: {e})") from None
    return _gymnax(env, params, env_id)


def _gymnax(env, params, env_id: str) -> Env:
    """A gymnax-style environment (``reset_env`` / ``step_env`` / ``is_truncated`` with params);
    a discrete observation (FrozenLake's cell index) is given to policies one-hot."""
    obs_space = env.observation_space(params)
    act_space = env.action_space(params)
    discrete = hasattr(act_space, "n")
    low = None if discrete else float(jnp.min(act_space.low))
    high = None if discrete else float(jnp.max(act_space.high))
    num_actions = int(act_space.n) if discrete else int(np.prod(act_space.shape))
    one_hot = hasattr(obs_space, "n") and not tuple(obs_space.shape)  # a discrete observation: a cell index
    shape = (int(obs_space.n),) if one_hot else tuple(int(d) for d in obs_space.shape)
    if not shape or not np.issubdtype(np.dtype(getattr(obs_space, "dtype", np.float32)), np.number):
        raise HadesError(f"environment {env_id!r}: observations must be arrays of numbers (got {obs_space})")
    features = (lambda o: jax.nn.one_hot(o, shape[0])) if one_hot else (lambda o: o.astype(jnp.float32))
    # gymnax 1.x reports the time limit apart (is_truncated); other gymnax-style suites fold it into done
    truncated = (lambda st: env.is_truncated(st, params)) if hasattr(env, "is_truncated") else (lambda st: False)
    if not discrete and len(act_space.shape) != 1:
        raise HadesError(f"environment {env_id!r}: continuous actions must be a vector (got shape {act_space.shape})")

    def reset(key):
        obs, state = env.reset_env(key, params)
        return features(obs), state

    def step(key, state, action):
        if not discrete:
            action = jnp.clip(action, act_space.low, act_space.high)
        obs, state, reward, terminated, _ = env.step_env(key, state, action, params)
        done = jnp.logical_or(terminated, truncated(state))
        return features(obs), state, jnp.asarray(reward, jnp.float32).reshape(()), done

    return Env(
        name=env_id,
        obs_shape=shape,
        discrete=discrete,
        num_actions=num_actions,
        max_steps=int(getattr(params, "max_steps_in_episode", 0) or getattr(params, "max_timesteps", 0) or 0)
        or _NO_LIMIT,
        reset=reset,
        step=step,
        action_low=low,
        action_high=high,
        feature_names=FEATURE_NAMES.get(env_id),
        channel_names=CHANNEL_NAMES.get(env_id),
    )


BRAX_EPISODE = 1000
_NO_LIMIT = 1000  # the step cap of an environment that states no episode limit


@contextlib.contextmanager
def _quiet():
    """brax 0.14 warns that it is unmaintained and mujoco's mjx prints to stdout when warp is
    missing: keep both off the user's terminal (stdout carries hades' JSON results)."""
    log = Path("MUJOCO_LOG.TXT")
    existed = log.exists()
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            yield
    finally:
        if not existed:  # mujoco logs its model-compiler warnings into the working directory
            log.unlink(missing_ok=True)


def _brax_id(env_id: str, backend: str = "positional") -> Env:
    if backend not in BACKENDS:
        raise HadesError(f"unknown Brax backend {backend!r}; choose one of {', '.join(BACKENDS)}")
    with _quiet():
        from brax import envs as brax_envs

        env = brax_envs.get_environment(env_id.removeprefix("brax/"), backend=backend)
    return dataclasses.replace(_brax(env, env_id), step_overhead=STEP_OVERHEAD.get(backend, 0.0))


# The fixed CPU cost of one batched step of a Brax backend, beyond what scales with the number
# of environments stepped: fitted to timed hopper generations (docs/performance.md, "The chunk
# cost model"). Positional physics runs many small kernels per step, so scoring one candidate
# per core at a time pays it 16 times as often as 16 at a time; the other backends were not
# measured to need it.
STEP_OVERHEAD = {"positional": 2.8e-4}


def _brax(env, env_id: str) -> Env:
    """A Brax environment: 1000-step episodes, actions clipped to the actuators' control range here
    (datasets may hold unbounded labels), no auto-reset (no Brax wrappers)."""
    low, high = (jnp.asarray(x, jnp.float32) for x in env.sys.actuator.ctrl_range.T)

    def reset(key):
        state = env.reset(key)
        return state.obs.astype(jnp.float32), state

    def step(key, state, action):
        state = env.step(state, jnp.clip(action, low, high))
        reward = jnp.asarray(state.reward, jnp.float32).reshape(())
        return state.obs.astype(jnp.float32), state, reward, jnp.asarray(state.done).reshape(()) > 0

    return Env(
        name=env_id,
        obs_shape=(int(env.observation_size),),
        discrete=False,
        num_actions=int(env.action_size),
        max_steps=BRAX_EPISODE,
        reset=reset,
        step=step,
        action_low=float(low.min()),
        action_high=float(high.max()),
        body_parents=tuple(int(p) for p in env.sys.link_parents),
    )


def _xminigrid(env, params, env_id: str) -> Env:
    """An XLand-MiniGrid environment (``xminigrid.make``): its TimeStep API, discrete actions,
    the symbolic grid view as float observations; the time limit ends the episode."""
    shape = tuple(int(d) for d in env.observation_shape(params))
    num_actions = int(env.num_actions(params))
    limit = int(params.max_steps)

    def reset(key):
        ts = env.reset(params, key)
        return ts.observation.astype(jnp.float32), ts

    def step(key, ts, action):
        ts = env.step(params, ts, action)
        return ts.observation.astype(jnp.float32), ts, jnp.asarray(ts.reward, jnp.float32).reshape(()), ts.last()

    return Env(env_id, shape, True, num_actions, limit, reset, step)


def _jumanji(env, env_id: str) -> Env:
    """A Jumanji environment (``jumanji.make``): its (state, TimeStep) API; the observation's
    array fields (e.g. Snake's grid, step count and action mask) flattened into one float vector;
    discrete actions; the environment's ``time_limit`` as the episode limit."""
    spec = env.action_spec
    if not hasattr(spec, "num_values") or spec.shape != ():
        raise HadesError(f"environment {env_id!r}: hades takes Jumanji environments with one discrete action")

    def features(observation):
        leaves = jax.tree.leaves(observation)
        return jnp.concatenate([jnp.ravel(x).astype(jnp.float32) for x in leaves])

    _, ts = jax.eval_shape(env.reset, jax.random.PRNGKey(0))
    size = sum(int(np.prod(x.shape)) for x in jax.tree.leaves(ts.observation))

    def reset(key):
        state, ts = env.reset(key)
        return features(ts.observation), state

    def step(key, state, action):
        state, ts = env.step(state, action)
        return features(ts.observation), state, jnp.asarray(ts.reward, jnp.float32).reshape(()), ts.last()

    limit = int(getattr(env, "time_limit", 0) or 0) or _NO_LIMIT
    return Env(env_id, (size,), True, int(spec.num_values), limit, reset, step)


def adapt(obj, name: str) -> Env:
    """A hades :class:`Env` named ``name`` from what a user has: a gymnax environment (``(env,
    params)`` or the env alone, with its default params), a Brax ``Env``, an XLand-MiniGrid
    ``(env, params)``, a Jumanji environment, or a hades ``Env``."""
    if isinstance(obj, Env):
        return dataclasses.replace(obj, name=name)
    env, params = obj if isinstance(obj, tuple) and len(obj) == 2 else (obj, None)
    module = type(env).__module__ or ""
    if module.startswith("xminigrid") and params is not None:
        return _xminigrid(env, params, name)
    if module.startswith("jumanji") and hasattr(env, "action_spec"):
        return _jumanji(env, name)
    if hasattr(env, "step_env") and hasattr(env, "reset_env"):  # gymnax's Environment API
        return _gymnax(env, env.default_params if params is None else params, name)
    if all(hasattr(env, a) for a in ("sys", "observation_size", "action_size", "reset", "step")):  # Brax
        return _brax(env, name)
    raise HadesError(
        f"environment {name!r}: cannot use a {type(env).__module__}.{type(env).__name__}; hades takes a gymnax "
        "environment (or (env, params)), a Brax Env, an XLand-MiniGrid (env, params), a Jumanji environment "
        "or a hades.envs.Env"
    )


# Environments registered by name in this process: name -> factory() returning what adapt() takes.
_REGISTERED: dict[str, Callable[[], Any]] = {}


def register(name: str, factory: Callable[[], Any], *, overwrite: bool = False) -> str:
    """Make ``name`` an environment id in this process (``make_config(env=name)``, ``make_env``);
    ``factory()`` returns what :func:`adapt` takes. Returns the name."""
    if not isinstance(name, str) or not name or ":" in name:
        raise HadesError(f"an environment name is a non-empty string without ':' (got {name!r})")
    if not overwrite and (name in _REGISTERED or name in ENV_SPECS):
        raise HadesError(f"environment {name!r} is already known; pass overwrite=True to replace it")
    _REGISTERED[name] = factory
    return name


def register_object(obj) -> str:
    """Register a Python environment object under a name derived from its class (``python/Catch``,
    ``python/Catch-2``, ...) and return the name; the same object gets the same name."""

    def equal(x, y) -> bool:
        try:
            return x is y or bool(x == y)
        except Exception:  # arrays inside params: compare by identity only
            return False

    def same(a, b):  # the same environment object, with equal params
        if isinstance(a, tuple) and isinstance(b, tuple):
            return len(a) == len(b) == 2 and a[0] is b[0] and equal(a[1], b[1])
        return a is b

    for name, factory in _REGISTERED.items():
        if same(getattr(factory, "hades_object", None), obj):
            return name
    env = obj[0] if isinstance(obj, tuple) and len(obj) == 2 else obj
    adapt(obj, "probe")  # refuse what hades cannot use now, not at the first rollout
    base = f"python/{type(env).__name__}"
    name, n = base, 1
    while name in _REGISTERED:
        n += 1
        name = f"{base}-{n}"
    factory = lambda: obj
    factory.hades_object = obj
    return register(name, factory)


# ``package.module:function`` references the user gave (``--env`` on the command line, or
# :func:`trust` in Python). A reference read from a file (an artifact, a checkpoint, a config) is
# never imported unless the user gave the same one: loading a file never runs code it names.
_TRUSTED: set[str] = set()


def trust(ref: str) -> str:
    """Allow ``make_env`` to import ``package.module:function`` and call it (the user's own word:
    ``--env`` does this). Returns the reference."""
    ref = resolve_name(ref)
    if ":" not in ref:
        raise HadesError(f"trust() takes a package.module:function reference (got {ref!r})")
    _TRUSTED.add(ref)
    return ref


def _reference(ref: str) -> Env:
    """``package.module:function`` the user gave: import the module, call the function, adapt what
    it returns. Refused, before anything is imported, for a reference the user did not give."""
    import importlib

    if ref not in _TRUSTED:
        raise HadesError(
            f"environment {ref!r} names Python code, and hades never imports code named in a file; "
            f"if you trust it, pass --env {ref} (in Python: hades.envs.trust({ref!r}))"
        )
    module_name, _, attr = ref.partition(":")
    try:
        module = importlib.import_module(module_name)
    except Exception as e:  # ImportError, or the module failing as it loads
        raise HadesError(
            f"environment {ref!r}: cannot import module {module_name!r} ({e.__class__.__name__}: {e})"
        ) from None
    fn = getattr(module, attr, None)
    if not callable(fn):
        raise HadesError(f"environment {ref!r}: module {module_name!r} has no function {attr!r}")
    try:
        made = fn()
    except (Exception, SystemExit) as e:  # a factory that raises or exits is an error, never exit 0
        what = "exited" if isinstance(e, SystemExit) else "raised"
        raise HadesError(f"environment factory {ref} {what} {e.__class__.__name__}: {e}") from None
    try:
        return adapt(made, ref)
    except HadesError as e:
        raise HadesError(
            f"environment factory {ref} returned {type(made).__name__}, not an environment ({e})"
        ) from None


def gymnax_ids() -> list[str]:
    import gymnax

    return list(gymnax.registered_envs)


def resolve_name(env) -> str:
    """The id hades stores for ``env``: known ids as they are, bare Brax names as ``brax/<name>``,
    ``module:function`` references checked for form, every gymnax registry id, names registered in
    this process; a Python environment object is registered (:func:`register_object`). An unknown
    id is a one-line error naming the closest known ones."""
    if not isinstance(env, str):
        return register_object(env)
    if env in ENV_SPECS or env in _REGISTERED:
        return env
    if env in BRAX_NAMES:
        return f"brax/{env}"
    if ":" in env:
        module_name, _, attr = env.partition(":")
        if not module_name or not attr.isidentifier() or not all(p.isidentifier() for p in module_name.split(".")):
            raise HadesError(f"environment reference {env!r} must read package.module:function")
        return env
    gymnax_known = gymnax_ids()
    if env in gymnax_known:
        return env
    known = list(ENV_SPECS) + list(BRAX_NAMES) + gymnax_known + list(_REGISTERED)
    hint = did_you_mean(env, known, n=3)
    if env.startswith("python/"):
        hint = (
            " (a Python object registered by another process: register it again with hades.envs.register, "
            "or make it with --env package.module:function so artifacts can rebuild it)"
        )
    raise HadesError(f"unknown environment {env!r}{hint} (`hades envs` lists them)")


def make_env(name, backend: str = "positional") -> Env:
    """The environment ``name`` (any id :func:`resolve_name` takes, or an environment object);
    ``backend`` picks Brax's physics pipeline for ``brax/*`` ids (ignored elsewhere)."""
    name = resolve_name(name)
    if name in _REGISTERED:
        return adapt(_REGISTERED[name](), name)
    if name.startswith("brax/"):
        return _brax_id(name, backend)
    if ":" in name:
        return _reference(name)
    return _gymnax_id(name)
