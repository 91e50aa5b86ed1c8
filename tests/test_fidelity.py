"""The paper-* presets against independent oracles: small reference implementations of what the
official code computed (evosax <= 0.1.5's SNES and OpenES with its Adam, the official fitness
definitions, the official image loss, the official policy initialisation), written here from
their published definitions in numpy or plain JAX, never by calling the evosax 0.3 that hades
wraps. Each test runs hades' preset and the oracle side by side and compares trajectories.
"""

from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from hades.config import replace_flat
from hades.es import Strategy
from hades.presets import make_config, make_image_config

# -- evosax <= 0.1.5, written from its definitions ------------------------------------------------


class OldSNES:
    """SNES of evosax <= 0.1.5 with temperature > 0: ranks = stable argsort of the (minimised)
    fitness, ties by position; weights softmax(-T * rank / (P - 1)); mean += sigma * sum w z;
    sigma *= exp(lr_sigma / 2 * sum w (z^2 - 1)), lr_sigma = (3 + ln d) / (5 sqrt d)."""

    def __init__(self, dims, population, sigma, temperature):
        ranks = np.arange(population) / (population - 1)
        w = np.exp(-temperature * ranks)
        self.w = w / w.sum()
        self.mean, self.sigma = np.zeros(dims), np.full(dims, sigma)
        self.lr_sigma = (3 + np.log(dims)) / (5 * np.sqrt(dims))

    def tell(self, z, returns):
        order = np.argsort(-returns, kind="stable")  # maximize=True: the shaper negates, argsort ascending
        zs = z[order]
        self.mean = self.mean + self.sigma * (self.w[:, None] * zs).sum(0)
        self.sigma = self.sigma * np.exp(self.lr_sigma / 2 * (self.w[:, None] * (zs**2 - 1)).sum(0))


class OldOpenES:
    """OpenES of evosax <= 0.1.5 with opt_name="adam": gradient 1/(P sigma) * z^T (-returns) on raw
    returns; Adam with beta1 0.99, beta2 0.999, eps 1e-8 and bias correction; learning rate times
    lrate_decay after each step (floored at 0.001); sigma times sigma_decay (floored at sigma_limit)."""

    def __init__(self, dims, population, sigma, lr, lr_decay=1.0, sigma_decay=1.0, sigma_limit=0.0):
        self.mean, self.sigma, self.lr = np.zeros(dims), sigma, lr
        self.m, self.v, self.t = np.zeros(dims), np.zeros(dims), 0
        self.population, self.lr_decay, self.sigma_decay, self.sigma_limit = (
            population,
            lr_decay,
            sigma_decay,
            sigma_limit,
        )

    def tell(self, z, returns):
        grad = z.T @ (-returns) / (self.population * self.sigma)
        self.m = 0.99 * self.m + 0.01 * grad
        self.v = 0.999 * self.v + 0.001 * grad**2
        self.t += 1
        mhat, vhat = self.m / (1 - 0.99**self.t), self.v / (1 - 0.999**self.t)
        self.mean = self.mean - self.lr * mhat / (np.sqrt(vhat) + 1e-8)
        self.lr = max(self.lr * self.lr_decay, 0.001)
        self.sigma = max(self.sigma * self.sigma_decay, self.sigma_limit)


def run_side_by_side(es_cfg, oracle, fitness, generations, dims):
    """hades' Strategy and the oracle, fed the same populations (hades asks), compared every
    generation. The oracle is given the noise z = (x - mean) / sigma exactly as float32 arithmetic
    forms it from hades' population (antithetic sums cancel, so the rounding of x matters)."""
    es = Strategy(es_cfg, jnp.zeros(dims))
    state = es.init(jax.random.PRNGKey(0), jnp.zeros(dims))
    tell = jax.jit(es.tell)
    worst = 0.0
    for g in range(generations):
        mean, std = es.mean(state), state.std
        pop, state = es.ask(jax.random.PRNGKey(100 + g), state)
        z = np.asarray((pop - mean) / std, np.float64)
        returns = fitness(np.asarray(pop, np.float64))
        state = tell(jax.random.PRNGKey(g), pop, jnp.asarray(returns, jnp.float32), state)
        oracle.tell(z, returns)
        ours = np.asarray(es.mean(state), np.float64)
        worst = max(worst, np.abs(ours - oracle.mean).max() / (1 + np.abs(oracle.mean).max()))
        if hasattr(state, "std") and np.ndim(oracle.sigma):
            np.testing.assert_allclose(np.asarray(state.std), oracle.sigma, rtol=2e-4)
    return worst


def tied_returns(x):
    """Small-integer returns (MinAtar-like): most of the population ties."""
    return np.floor(4 - ((x - 0.7) ** 2).sum(-1) / x.shape[-1])


def paper_es(preset, **changes):
    cfg = make_config(preset) if preset != "paper-images" else make_image_config(preset)
    return replace_flat(cfg.es, changes)


def test_paper_minatar_snes_follows_evosax_0_1_5_with_tied_fitnesses():
    dims, population = 20, 64
    cfg = paper_es("paper-minatar", population=population)
    oracle = OldSNES(dims, population, cfg.sigma, cfg.es_temperature)
    assert len(np.unique(tied_returns(np.random.default_rng(0).normal(0, 0.5, (population, dims))))) < 8
    worst = run_side_by_side(cfg, oracle, tied_returns, 40, dims)
    assert worst < 1e-4, worst


def test_paper_minatar_snes_random_walks_when_every_fitness_ties():
    """evosax 0.1.5 ranks all-equal fitnesses by position, so its mean still moves by the softmax weights."""
    dims, population = 8, 32
    cfg = paper_es("paper-minatar", population=population)
    oracle = OldSNES(dims, population, cfg.sigma, cfg.es_temperature)
    worst = run_side_by_side(cfg, oracle, lambda x: np.zeros(len(x)), 10, dims)
    assert worst < 1e-4 and np.abs(oracle.mean).max() > 0.1, (worst, oracle.mean)


@pytest.mark.parametrize("preset", ["paper-brax", "paper-images"])
def test_paper_open_es_follows_evosax_0_1_5_adam(preset):
    dims, population = 200, 256
    cfg = paper_es(preset, population=population)
    oracle = OldOpenES(dims, population, cfg.sigma, cfg.es_lr, cfg.es_lr_decay, cfg.sigma_decay, cfg.sigma_limit)
    quadratic = lambda x: -((x - 1.0) ** 2).sum(-1)
    worst = run_side_by_side(cfg, oracle, quadratic, 100, dims)
    assert worst < 1e-3, worst


# -- the official fitness definitions --------------------------------------------------------------


def counting_env(max_steps=1000):
    """An environment whose episode lengths vary: reset draws L in [2, 9]; every step pays L, the
    episode ends after L steps (return L * L). Actions are ignored."""
    from hades.envs import Env

    def reset(key):
        L = jax.random.randint(key, (), 2, 10)
        return jnp.zeros(1, jnp.float32), (jnp.int32(0), L)

    def step(key, state, action):
        t, L = state
        t = t + 1
        return jnp.zeros(1, jnp.float32), (t, L), L.astype(jnp.float32), t >= L

    return Env("counting", (1,), True, 2, max_steps, reset, step)


def official_streams(env, key, num_envs, steps):
    """Per-step (reward, done) of ``num_envs`` auto-reset environments, stepped in plain Python with
    the rollout's key schedule (reset keys from fold_in(key, 0), re-resets from fold_in(key, 2), t)."""
    obs_state = [env.reset(k) for k in jax.random.split(jax.random.fold_in(key, 0), num_envs)]
    states = [s for _, s in obs_state]
    rewards, dones = np.zeros((steps, num_envs)), np.zeros((steps, num_envs), bool)
    for t in range(steps):
        resets = jax.random.split(jax.random.fold_in(jax.random.fold_in(key, 2), t), num_envs)
        for e in range(num_envs):
            _, s, r, d = env.step(None, states[e], 0)
            rewards[t, e], dones[t, e] = float(r), bool(d)
            states[e] = env.reset(resets[e])[1] if d else s
    return rewards, dones


def log_wrapper(rewards, dones):
    """purejaxrl's LogWrapper: returned_episode_returns holds the last completed episode's return."""
    ep, last = np.zeros(rewards.shape[1]), np.zeros(rewards.shape[1])
    completed = []
    for r, d in zip(rewards, dones):
        ep = ep + r
        completed += [ep[e] for e in np.flatnonzero(d)]
        last = np.where(d, ep, last)
        ep = np.where(d, 0.0, ep)
    return last, completed


def test_fixed_length_fitness_is_the_official_minatar_and_brax_fitness():
    from hades.normalization import ObsNorm
    from hades.policies import make_policy
    from hades.rollout import fitness_of, make_rollout

    env, num_envs, steps = counting_env(), 4, 40
    policy = make_policy(make_config().policy, env.obs_shape, True, 2)
    params = policy.init(jax.random.PRNGKey(0))
    key = jax.random.PRNGKey(7)
    last, completed = log_wrapper(*official_streams(env, key, num_envs, steps))
    stack = lambda r: jax.tree.map(lambda a: a[None, None], r)  # [candidates, learners, envs]
    norm = ObsNorm.identity(env.obs_shape)
    minatar = make_rollout(env, policy, num_envs, steps, fixed_length=True, fixed_fitness="last")(params, key, norm)
    brax = make_rollout(env, policy, num_envs, steps, fixed_length=True, fixed_fitness="pooled")(params, key, norm)
    # MinAtar: fitness = returned_episode_returns[:, :, -1, :].mean()  (distill_minatar.py)
    np.testing.assert_allclose(float(fitness_of(stack(minatar))[0]), last.mean(), rtol=1e-6)
    # Brax: fitness = (returns * dones).sum() / dones.sum()  (distill_brax.py)
    np.testing.assert_allclose(float(fitness_of(stack(brax), pooled=True)[0]), np.mean(completed), rtol=1e-6)
    assert not np.isclose(last.mean(), np.mean(completed))  # the two definitions differ here


# -- the inner loop ------------------------------------------------------------------------------


def test_paper_images_inner_loop_is_the_official_sgd_on_cross_entropy_over_classes():
    """Official: SGD at 0.1 on -mean(log_softmax(logits) * one_hot) (mean over images AND classes)."""
    from hades.bc import make_bc_train
    from hades.policies import make_classifier

    cfg = make_image_config("paper-images")
    bc = replace_flat(cfg.bc, {"bc_steps": 30})
    model = make_classifier("cnn", 16, (8, 8, 1), 10)
    params0 = model.init(jax.random.PRNGKey(1))
    x = jax.random.uniform(jax.random.PRNGKey(2), (10, 8, 8, 1))
    y = jnp.arange(10)
    ours, _ = jax.jit(make_bc_train(model, bc))(params0, x, y)

    def official_loss(p):
        logp = jax.nn.log_softmax(model.apply(p, x))
        return -jnp.mean(logp * jax.nn.one_hot(y, 10))

    ref = params0
    for _ in range(30):
        ref = jax.tree.map(lambda p, g: p - 0.1 * g, ref, jax.grad(official_loss)(ref))
    for a, b in zip(jax.tree.leaves(ours), jax.tree.leaves(ref)):
        np.testing.assert_allclose(a, b, atol=2e-5)


def test_paper_policy_init_is_the_official_orthogonal_init():
    """The official BCAgent: orthogonal(sqrt 2), orthogonal(sqrt 2), orthogonal(0.01), zero biases;
    built here with flax and jax's own (LAPACK) orthogonal initialiser, one init, outside vmap."""
    import flax.linen as nn

    from hades.policies import make_policy

    class Official(nn.Module):
        @nn.compact
        def __call__(self, x):
            orth = jax.nn.initializers.orthogonal
            x = x.reshape(-1)
            x = nn.relu(nn.Dense(512, kernel_init=orth(np.sqrt(2)))(x))
            x = nn.relu(nn.Dense(512, kernel_init=orth(np.sqrt(2)))(x))
            return nn.Dense(3, kernel_init=orth(0.01))(x)

    cfg = make_config("paper-minatar")
    policy = make_policy(cfg.policy, (10, 10, 4), True, 3)
    key = jax.random.PRNGKey(5)
    ours = jax.jit(policy.init)(key)
    ref = Official().init(key, jnp.zeros((10, 10, 4)))
    for a, b in zip(jax.tree.leaves(ours), jax.tree.leaves(ref)):
        np.testing.assert_allclose(a, b, atol=1e-5)
    w = ours["params"]
    rms = [float(jnp.sqrt(jnp.mean(w[f"Dense_{i}"]["kernel"] ** 2))) for i in range(3)]
    assert rms == pytest.approx([0.0625, 0.0625, 0.00044], rel=0.05)
    # fresh inits are vmapped inside traced code (HaDES-R): no LAPACK there, the same matrices
    batched = jax.jit(jax.vmap(policy.init))(jax.random.split(key, 2))
    np.testing.assert_allclose(
        batched["params"]["Dense_1"]["kernel"][0],
        policy.init(jax.random.split(key, 2)[0])["params"]["Dense_1"]["kernel"],
        atol=1e-5,
    )


# -- the starting points and the normalisation --------------------------------------------------


@pytest.mark.parametrize("variant", ["hades-f", "hades-r", "direct-es"])
def test_paper_minatar_searches_start_at_zero(variant):
    from hades.direct import DirectES
    from hades.distill import Distiller

    cfg = make_config("paper-minatar", variant=variant, population=4, width=16, memory_check=False)
    driver = (DirectES if variant == "direct-es" else Distiller)(cfg)
    mean = driver.solution(driver.init())
    assert all(float(jnp.abs(leaf).max()) == 0.0 for leaf in jax.tree.leaves(mean))


def test_official_normalisation_is_the_stored_statistics():
    from importlib.resources import files

    from hades.normalization import official_statistics

    folder = files("hades") / "official_stats"
    with (folder / "mean_Breakout-MinAtar.npy").open("rb") as f:
        mean = np.load(f)
    with (folder / "var_Breakout-MinAtar.npy").open("rb") as f:
        var = np.load(f)
    norm = official_statistics("Breakout-MinAtar", (10, 10, 4))
    obs = np.random.default_rng(0).integers(0, 2, (10, 10, 4)).astype(np.float32)
    expected = (obs.ravel() - mean) / np.sqrt(var + 1e-8)
    np.testing.assert_allclose(np.asarray(norm(jnp.asarray(obs))).ravel(), expected, rtol=1e-5)
    assert float(jnp.max(norm(jnp.asarray(obs)))) > 1e3  # no floor: the ~1e-11 variances stay


def test_paper_minatar_labels_are_the_official_blocks_with_the_tail_never_trained():
    from hades.distill import Distiller

    cfg = make_config("paper-minatar", population=4, width=16, memory_check=False)
    d = Distiller(cfg)  # Breakout: 16 states, 3 actions
    np.testing.assert_array_equal(d.labels, [0] * 5 + [1] * 5 + [2] * 5)  # y_list in init_params
    state = d.init()
    x, y = d.bc_data(d.solution(state), state.norm)
    assert x.shape[0] == 15 and d.dataset(state)["states"].shape[0] == 15
    # the official loss: -mean(log_softmax * one_hot) over states and actions
    from hades.bc import bc_loss

    params = d.policy.init(jax.random.PRNGKey(0))
    logits = d.policy.apply(params, x)
    official = -jnp.mean(jax.nn.log_softmax(logits) * jax.nn.one_hot(y, 3))
    np.testing.assert_allclose(
        bc_loss(d.policy, params, x, y, per_action=cfg.bc.bc_loss_per_action), official, rtol=1e-6
    )


def test_paper_hades_r_learners_roll_out_with_their_own_keys():
    """The official code derives a learner's init and its rollout from one key: two learners of the
    same candidate see different episodes (hades' CPU default shares them, common random numbers)."""
    from hades.distill import Distiller

    for keys, same in (("own", False), ("shared", True)):
        cfg = make_config(
            "cartpole", variant="hades-r", num_inits=2, population=4, learner_env_keys=keys, memory_check=False
        )
        d = Distiller(cfg)
        state = d.init()
        params, lr, steps = d.learners(jax.random.PRNGKey(0), state, 2)
        params = jax.tree.map(lambda a: jnp.broadcast_to(a[:1], a.shape), params)  # one init twice
        r, _ = d.score(d.rollout, d.solution(state), (params, lr, steps), jax.random.PRNGKey(3), state.norm)
        assert bool(jnp.all(r.fingerprint[0] == r.fingerprint[1])) == same, keys


# -- released datasets of the official runs as acceptance tests ---------------------------------

RELEASED = Path(__file__).parent / "data" / "official"  # copies of ../shared/reference/official/released


def retrain(name, preset, seeds, episodes, **env):
    from hades.artifacts import load_dataset
    from hades.config import RetrainConfig
    from hades.evaluation import run_config, summarize, train_and_evaluate

    ds = load_dataset(RELEASED / name)
    cfg = make_config(preset, env=ds.env)
    rollouts = train_and_evaluate(
        ds, cfg.policy, cfg.bc, RetrainConfig(seeds, episodes, seed=1000), actions=run_config(ds).actions, **env
    )
    from hades.envs import make_env

    return summarize(rollouts, make_env(ds.env, env.get("backend", "positional")))


@pytest.mark.parametrize("seed, official", [(0, 10.7), (1, 12.0)])
def test_released_breakout_datasets_retrain_to_the_official_figures(seed, official):
    """`hades train DATASET --preset paper-minatar --policies 8 --episodes 8 --seed 1000` against the
    official retrain script's figure (fresh inits; docs/fidelity.md)."""
    s = retrain(f"breakout_D16_hades-r_seed{seed}.safetensors", "paper-minatar", 8, 8)
    assert abs(s["return_mean"] - official) <= s["return_ci95"], (s["return_mean"], s["return_ci95"], official)


@pytest.mark.slow
def test_released_hopper_dataset_retrains_to_the_official_figure():
    s = retrain("hopper_D64_hades-r_seed0.safetensors", "paper-brax", 4, 4, backend="positional")
    assert abs(s["return_mean"] - 1770) <= s["return_ci95"], (s["return_mean"], s["return_ci95"])


def test_shipped_statistics_are_checked_against_their_sums(monkeypatch, tmp_path):
    """The official statistics ship with SHA256SUMS; a changed file is refused in one line."""
    import shutil
    from importlib.resources import files

    from hades.errors import HadesError
    from hades.normalization import official_statistics

    copy = tmp_path / "hades"
    shutil.copytree(str(files("hades") / "official_stats"), copy / "official_stats")
    (copy / "official_stats" / "var_Breakout-MinAtar.npy").chmod(0o644)
    data = bytearray((copy / "official_stats" / "var_Breakout-MinAtar.npy").read_bytes())
    data[-1] ^= 1
    (copy / "official_stats" / "var_Breakout-MinAtar.npy").write_bytes(bytes(data))
    import importlib.resources

    monkeypatch.setattr(importlib.resources, "files", lambda package: copy)
    with pytest.raises(HadesError, match="SHA256SUMS"):
        official_statistics("Breakout-MinAtar", (10, 10, 4))
