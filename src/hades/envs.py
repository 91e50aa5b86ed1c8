"""One adapter over the environment suites: ``make_env("CartPole-v1")``, ``make_env("brax/hopper")``.

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

from hades.config import BACKENDS, ENV_SPECS, resolve_env_name
from hades.errors import HadesError


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

    @property
    def action_space(self) -> str:
        return "discrete" if self.discrete else "continuous"

    @property
    def action_dim(self) -> int:
        """Width of a policy's output (logits or Gaussian mean)."""
        return self.num_actions


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


def _gymnax(env_id: str) -> Env:
    import gymnax  # deferred: importing gymnax pulls in all its suites

    env, params = gymnax.make(env_id)
    obs_space = env.observation_space(params)
    act_space = env.action_space(params)
    discrete = hasattr(act_space, "n")
    low = None if discrete else float(jnp.min(act_space.low))
    high = None if discrete else float(jnp.max(act_space.high))
    num_actions = int(act_space.n) if discrete else int(act_space.shape[0])

    def reset(key):
        obs, state = env.reset_env(key, params)
        return obs.astype(jnp.float32), state

    def step(key, state, action):
        if not discrete:
            action = jnp.clip(action, act_space.low, act_space.high)
        obs, state, reward, terminated, _ = env.step_env(key, state, action, params)
        done = jnp.logical_or(terminated, env.is_truncated(state, params))
        return obs.astype(jnp.float32), state, jnp.asarray(reward, jnp.float32).reshape(()), done

    return Env(
        name=env_id,
        obs_shape=tuple(obs_space.shape),
        discrete=discrete,
        num_actions=num_actions,
        max_steps=int(params.max_steps_in_episode),
        reset=reset,
        step=step,
        action_low=low,
        action_high=high,
        feature_names=FEATURE_NAMES.get(env_id),
        channel_names=CHANNEL_NAMES.get(env_id),
    )


BRAX_EPISODE = 1000


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


def _brax(env_id: str, backend: str = "positional") -> Env:
    """A Brax environment (``brax/<name>``): 1000-step episodes, actions clipped to the actuators'
    control range here (datasets may hold unbounded labels), no auto-reset (no Brax wrappers)."""
    if backend not in BACKENDS:
        raise HadesError(f"unknown Brax backend {backend!r}; choose one of {', '.join(BACKENDS)}")
    with _quiet():
        from brax import envs as brax_envs

        env = brax_envs.get_environment(env_id.removeprefix("brax/"), backend=backend)
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


# The registry: environment id -> factory(id, backend). Others plug in here.
REGISTRY: dict[str, Callable[..., Env]] = {name: (_brax if name.startswith("brax/") else _gymnax) for name in ENV_SPECS}


def make_env(name: str, backend: str = "positional") -> Env:
    """The environment ``name``; ``backend`` picks Brax's physics pipeline (ignored elsewhere)."""
    name = name if name in REGISTRY else resolve_env_name(name)
    if name.startswith("brax/"):
        return REGISTRY[name](name, backend)
    return REGISTRY[name](name)
