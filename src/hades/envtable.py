"""The environments hades knows, as static data (no JAX): ``hades envs`` answers from it without
building anything, the presets name the Brax environments from it, and ``hades.envs`` checks the
built environments against it (tests do too)."""

from __future__ import annotations

# the Brax environments hades knows (``brax/<name>``), each with a CPU preset of its name
BRAX_NAMES = (
    "hopper",
    "walker2d",
    "reacher",
    "inverted_double_pendulum",
    "ant",
    "halfcheetah",
    "humanoid",
    "humanoidstandup",
    "inverted_pendulum",
)

# Every environment hades knows, as static data (``hades envs`` answers from it without building
# anything; tests check it against the built environments): observation shape, action space,
# number of actions (discrete) or action dimension (continuous), episode limit.
ENV_SPECS: dict[str, tuple[tuple[int, ...], str, int, int]] = {
    "CartPole-v1": ((4,), "discrete", 2, 500),
    "Acrobot-v1": ((6,), "discrete", 3, 500),
    "MountainCar-v0": ((2,), "discrete", 3, 200),
    "Pendulum-v1": ((3,), "continuous", 1, 200),
    "MountainCarContinuous-v0": ((2,), "continuous", 1, 999),
    "Breakout-MinAtar": ((10, 10, 4), "discrete", 3, 1000),
    "SpaceInvaders-MinAtar": ((10, 10, 6), "discrete", 4, 1000),
    "Asterix-MinAtar": ((10, 10, 4), "discrete", 5, 1000),
    "Freeway-MinAtar": ((10, 10, 7), "discrete", 3, 2500),
    "brax/hopper": ((11,), "continuous", 3, 1000),
    "brax/walker2d": ((17,), "continuous", 6, 1000),
    "brax/reacher": ((11,), "continuous", 2, 1000),
    "brax/inverted_double_pendulum": ((8,), "continuous", 1, 1000),
    "brax/ant": ((27,), "continuous", 8, 1000),
    "brax/halfcheetah": ((17,), "continuous", 6, 1000),
    "brax/humanoid": ((244,), "continuous", 17, 1000),
    "brax/humanoidstandup": ((244,), "continuous", 17, 1000),
    "brax/inverted_pendulum": ((4,), "continuous", 1, 1000),
}
