import pytest

from hades.config import make_config

# A tiny, fast configuration: a few seconds per run, including compilation.
TINY = dict(
    population=8,
    generations=2,
    width=16,
    depth=1,
    bc_steps=10,
    eval_envs=2,
    eval_steps=30,
    eval_episodes=2,
    eval_policies=2,
    eval_every=1,
    checkpoint_every=1,
)


@pytest.fixture
def tiny_config():
    def make(**overrides):
        return make_config(None, **{**TINY, **overrides})

    return make
