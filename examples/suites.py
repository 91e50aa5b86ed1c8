"""Environments from other JAX suites, for ``hades distill --env suites:FUNCTION`` (run with this
folder on PYTHONPATH, and ``pip install 'hades[suites]'``). Each function takes no arguments and
returns what hades' adapter takes: gymnax-style environments (Craftax) as they are, XLand-MiniGrid
as ``(env, params)``."""


def minigrid_empty_random():
    """XLand-MiniGrid's MiniGrid-EmptyRandom-6x6: reach the goal from a random start and heading
    (reward 1 - 0.9 * steps / 144 on arrival, 0 otherwise; symbolic 7x7x2 view, 6 actions)."""
    import xminigrid

    return xminigrid.make("MiniGrid-EmptyRandom-6x6")


def minigrid_empty_random_8x8():
    """XLand-MiniGrid's MiniGrid-EmptyRandom-8x8: the same task on a larger grid (256-step limit)."""
    import xminigrid

    return xminigrid.make("MiniGrid-EmptyRandom-8x8")


def minigrid_doorkey():
    """XLand-MiniGrid's MiniGrid-DoorKey-5x5: pick up the key, open the door, reach the goal."""
    import xminigrid

    return xminigrid.make("MiniGrid-DoorKey-5x5")


def craftax_classic():
    """Craftax-Classic, symbolic observations (1345 features, 17 actions), no auto-reset: the
    return counts achievements unlocked (plus a small health term)."""
    from craftax.craftax_env import make_craftax_env_from_name

    return make_craftax_env_from_name("Craftax-Classic-Symbolic-v1", auto_reset=False)


def jumanji_snake():
    """Jumanji's Snake-v1 (12x12 grid, 4 actions): +1 per fruit eaten, the episode ends when the
    snake hits itself or a wall (or after 4000 steps)."""
    import jumanji

    return jumanji.make("Snake-v1")


def jumanji_game2048():
    """Jumanji's Game2048-v1 (4x4 board of tile exponents plus the legal-move mask, 4 actions):
    the reward is the value of the tiles merged by each move; the episode ends when no move is
    legal (hades caps it at 1000 steps, as it states no limit)."""
    import jumanji

    return jumanji.make("Game2048-v1")


def jumanji_pacman():
    """Jumanji's PacMan-v1 (31x28 maze, 4 ghosts, 5 actions; the observation's grid, positions,
    pellets and action mask flattened to 1529 features): +10 per pellet, more for power pellets and
    ghosts; the episode ends on losing the life or clearing the maze (1000-step limit)."""
    import jumanji

    return jumanji.make("PacMan-v1")
