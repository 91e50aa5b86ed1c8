"""Train learners built outside hades, unlike the one a dataset was evolved for, from the artifact
alone, and score them in the real environment: does the dataset describe the task, or one learner?

    python examples/outside_learners.py DATASET [DATASET ...] [--seeds 5] [--episodes 10] [--out F.json]
        [--learners knn,tree] [--actions dataset|sample|greedy] [--linear-c 1.0]

DATASET is a dataset.safetensors file (or zoo:NAME, resolved by hades). Learners (each fitted
on the artifact's states, normalised with its ``obs_mean``/``obs_std`` when it has them, and its
actions; discrete datasets' hard labels):

- ``evolved-for``: the learner the artifact names, rebuilt in PyTorch (examples/torch_train.py);
- ``torch-mlp``: a PyTorch MLP hades never used: 3 hidden layers of 256 ReLU units, PyTorch's
  default initialisation (Kaiming-uniform), 300 full-batch Adam steps at lr 1e-3, no clipping;
- ``linear``: scikit-learn LogisticRegression (discrete) / LinearRegression (continuous);
- ``knn``: scikit-learn 1-nearest-neighbour classifier / regressor;
- ``tree``: scikit-learn DecisionTreeClassifier / Regressor.

Classifiers act as the dataset's run did: sampling from their predicted probabilities when its
``actions`` is ``sample`` (a 1-NN or tree predicts probabilities of 0 or 1, so it acts
deterministically), the argmax otherwise (``--actions sample | greedy`` overrides the dataset;
``--linear-c`` sets LogisticRegression's regularisation, whose default leaves its probabilities
soft on a few points); regressors output their prediction (the PyTorch MLPs add their learned
Gaussian noise when sampling). Environments: Gymnasium's where it has the id
(CartPole-v1, Acrobot-v1, MountainCar-v0, MountainCarContinuous-v0, Pendulum-v1), else hades'
JAX environment stepped one observation at a time. Every learner is fitted ``--seeds`` times
(seeds change the PyTorch initialisations, the tree's tie-breaking and the episodes) and each fit
plays ``--episodes`` whole episodes; the table gives the mean over fits with a 95% t interval.

Needs torch, gymnasium and scikit-learn (pip install 'hades[outside]').
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

import numpy as np
from safetensors import safe_open
from safetensors.numpy import load_file

GYMNASIUM_IDS = ("CartPole-v1", "Acrobot-v1", "MountainCar-v0", "MountainCarContinuous-v0", "Pendulum-v1")
LEARNERS = ("evolved-for", "torch-mlp", "linear", "knn", "tree")
T95 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306, 9: 2.262}


def resolve(path: str) -> str:
    if path.startswith("zoo:"):
        from hades.zoo import resolve as zoo_resolve  # only to find the packaged file

        return str(zoo_resolve(path))
    return path


def read(path):
    """(arrays, discrete, run config) of an artifact."""
    arrays = load_file(path)
    with safe_open(path, "np") as f:
        meta = f.metadata()
    return arrays, meta["action_space"] == "discrete", json.loads(meta["config"])


def _torch_train():
    """examples/torch_train.py (imported on demand: it needs torch, the other learners do not)."""
    here = str(Path(__file__).parent)
    if here not in sys.path:
        sys.path.insert(0, here)
    import torch_train

    return torch_train


def torch_mlp(x, y, discrete, seed):
    """3 x 256 ReLU, PyTorch defaults, Adam lr 1e-3 for 300 full-batch steps."""
    import torch

    torch_train = _torch_train()
    torch.manual_seed(seed)
    x = torch.as_tensor(x, dtype=torch.float32)
    out_dim = int(y.max()) + 1 if discrete else y.shape[1]
    y = torch.as_tensor(y, dtype=torch.long if discrete else torch.float32)
    layers, width = [], x.shape[1]
    for _ in range(3):
        layers += [torch.nn.Linear(width, 256), torch.nn.ReLU()]
        width = 256
    net = torch.nn.Sequential(*layers, torch.nn.Linear(width, out_dim))
    log_std = None if discrete else torch.nn.Parameter(torch.zeros(out_dim))
    params = list(net.parameters()) + ([] if log_std is None else [log_std])
    opt = torch.optim.Adam(params, lr=1e-3)
    for _ in range(300):
        loss = torch_train.bc_loss(net(x), y, log_std, discrete)  # the same loss as hades'
        opt.zero_grad()
        loss.backward()
        opt.step()
    return net, log_std


def fit(name, x, y, discrete, bc_cfg, policy_cfg, seed, linear_c=1.0):
    """(probabilities or action) function of one normalised, flattened observation; ``linear_c`` is
    LogisticRegression's inverse L2 strength (scikit-learn's default 1)."""
    if name in ("evolved-for", "torch-mlp"):
        import torch

        if name == "evolved-for":  # examples/torch_train.py rebuilds it
            net, log_std = _torch_train().fit(x, y, discrete, policy_cfg, bc_cfg, seed)
        else:
            net, log_std = torch_mlp(x, y, discrete, seed)

        @torch.no_grad()
        def predict(obs, rng, sample):
            out = net(torch.as_tensor(obs, dtype=torch.float32)).numpy()
            if discrete:
                p = np.exp(out.astype(np.float64) - out.max())
                return p / p.sum()
            if sample:
                out = out + np.exp(log_std.numpy()) * rng.standard_normal(out.shape)
            return out

        return predict
    from sklearn.linear_model import LinearRegression, LogisticRegression
    from sklearn.neighbors import KNeighborsClassifier, KNeighborsRegressor
    from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor

    model = {
        ("linear", True): lambda: LogisticRegression(C=linear_c, max_iter=5000),
        ("linear", False): LinearRegression,
        ("knn", True): lambda: KNeighborsClassifier(n_neighbors=1),
        ("knn", False): lambda: KNeighborsRegressor(n_neighbors=1),
        ("tree", True): lambda: DecisionTreeClassifier(random_state=seed),
        ("tree", False): lambda: DecisionTreeRegressor(random_state=seed),
    }[(name, discrete)]()
    model.fit(x, y)
    num_actions = int(y.max()) + 1 if discrete else 0

    def predict(obs, rng, sample):
        if discrete:
            p = np.zeros(num_actions)
            p[model.classes_] = model.predict_proba(obs[None])[0]
            return p
        return model.predict(obs[None])[0]

    return predict


def gymnasium_episode(env_id, act, seed):
    import gymnasium as gym

    env = gym.make(env_id)
    obs, _ = env.reset(seed=seed)
    total, done = 0.0, False
    while not done:
        action = act(obs)
        if not isinstance(action, int):
            action = np.clip(action, env.action_space.low, env.action_space.high).astype(np.float32)
        obs, reward, terminated, truncated, _ = env.step(action)
        total += float(reward)
        done = terminated or truncated
    return total


class JaxEnv:
    """hades' environment for ids Gymnasium lacks, stepped one observation at a time."""

    def __init__(self, env_id):
        import jax

        from hades.envs import make_env

        self.jax, self.env = jax, make_env(env_id)
        self.reset, self.step = jax.jit(self.env.reset), jax.jit(self.env.step)

    def episode(self, act, seed):
        key = self.jax.random.PRNGKey(seed)
        key, k = self.jax.random.split(key)
        obs, state = self.reset(k)
        total = 0.0
        for _ in range(self.env.max_steps):
            key, k = self.jax.random.split(key)
            obs, state, reward, done = self.step(k, state, np.asarray(act(np.asarray(obs))))
            total += float(reward)
            if bool(done):
                break
        return total


def evaluate(path, learners, seeds, episodes, actions="dataset", linear_c=1.0):
    """Rows of (learner, mean return over fits, 95% CI). ``actions``: how classifiers act:
    as the dataset's run did (``dataset``), or always ``sample`` / ``greedy``."""
    arrays, discrete, cfg = read(resolve(path))
    mean, std = arrays.get("obs_mean"), arrays.get("obs_std")
    n = len(arrays["states"])
    norm = (lambda s: ((s - mean) / std).reshape(-1)) if mean is not None else (lambda s: s.reshape(-1))
    x = np.stack([norm(s) for s in arrays["states"]]).astype(np.float32)
    y = arrays["actions"]
    if discrete:
        y = y.astype(np.int64)
    sample = cfg.get("actions", "sample") == "sample" if actions == "dataset" else actions == "sample"
    env_id = cfg["env"]
    jax_env = None if env_id in GYMNASIUM_IDS else JaxEnv(env_id)
    rows = []
    for name in learners:
        per_fit = []
        for s in range(seeds):
            predict = fit(name, x, y, discrete, cfg["bc"], cfg["policy"], s, linear_c)
            rng = np.random.default_rng(1000 + s)

            def act(obs, predict=predict, rng=rng):
                out = predict(norm(np.asarray(obs, np.float32)), rng, sample)
                if discrete:
                    out = np.asarray(out, np.float64) / np.sum(out)
                    return int(rng.choice(len(out), p=out)) if sample else int(np.argmax(out))
                return np.asarray(out, np.float32)

            seeds_ = [10_000 * (s + 1) + e for e in range(episodes)]
            if jax_env is None:
                returns = [gymnasium_episode(env_id, act, e) for e in seeds_]
            else:
                returns = [jax_env.episode(act, e) for e in seeds_]
            per_fit.append(float(np.mean(returns)))
        v = np.array(per_fit)
        ci = T95.get(len(v) - 1, 1.96) * v.std(ddof=1) / math.sqrt(len(v)) if len(v) > 1 else float("nan")
        rows.append(
            {
                "dataset": path,
                "env": env_id,
                "states": n,
                "learner": name,
                "return_mean": float(v.mean()),
                "return_ci95": float(ci),
                "per_fit": per_fit,
                "episodes": episodes,
                "where": "gymnasium" if jax_env is None else "hades (JAX)",
            }
        )
        print(f"{path}: {name}: {v.mean():.4g} ± {ci:.2g} over {len(v)} fits x {episodes} episodes", file=sys.stderr)
    return rows


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("datasets", nargs="+")
    p.add_argument("--learners", default=",".join(LEARNERS), help=f"comma-separated from {', '.join(LEARNERS)}")
    p.add_argument("--seeds", type=int, default=5, help="fits per learner (default: 5)")
    p.add_argument("--episodes", type=int, default=10, help="whole episodes per fit (default: 10)")
    p.add_argument(
        "--actions",
        choices=("dataset", "sample", "greedy"),
        default="dataset",
        help="how classifiers act: as the dataset's run did (default), or always sample / greedy (argmax)",
    )
    p.add_argument(
        "--linear-c",
        type=float,
        default=1.0,
        help="LogisticRegression's C, the inverse L2 strength (default: 1, scikit-learn's)",
    )
    p.add_argument("--out", help="also write the rows to this JSON file")
    a = p.parse_args(argv)
    learners = [x.strip() for x in a.learners.split(",") if x.strip()]
    unknown = [x for x in learners if x not in LEARNERS]
    if unknown or a.seeds < 1 or a.episodes < 1:
        p.error(f"unknown learner {unknown[0]!r}" if unknown else "--seeds and --episodes must be >= 1")
    if not a.linear_c > 0:
        p.error("--linear-c must be > 0")
    rows = [r for path in a.datasets for r in evaluate(path, learners, a.seeds, a.episodes, a.actions, a.linear_c)]
    if a.out:
        Path(a.out).write_text(json.dumps(rows, indent=1))
    print("| dataset | env | learner | return (95% CI) |\n|---|---|---|---|")
    for r in rows:
        print(f"| {r['dataset']} | {r['env']} | {r['learner']} | {r['return_mean']:.4g} ± {r['return_ci95']:.2g} |")


if __name__ == "__main__":
    main()
