"""Train a PyTorch policy from a hades dataset artifact, the way hades trained its own learners,
and run it in Gymnasium: no JAX, no hades.

    python examples/torch_train.py runs/<run>/dataset.safetensors [--episodes 10]

Needs numpy, safetensors, torch and gymnasium (pip install torch gymnasium). The learner's
settings are read from the artifact's ``config`` metadata (what the dataset was evolved for):
an MLP of ``policy.depth`` hidden layers of ``policy.width`` units with ``policy.activation``
(LeCun-normal weights, zero biases, an output layer with weights of std 0.01/sqrt(fan_in)),
trained full batch for ``bc.bc_steps`` steps of Adam (``bc.bc_lr``, eps ``bc.bc_adam_eps``;
plain SGD when ``bc.bc_optimizer`` is ``sgd``) with the gradient's global norm clipped to
``bc.bc_max_grad_norm`` (0: no clipping) and the learning rate decayed linearly to 0 when
``bc.bc_anneal``; the loss is cross-entropy (discrete actions; against the soft targets
``softmax(one_hot(label) / T)`` when ``bc.bc_label_temperature`` T > 0) or the Gaussian negative
log-likelihood with a learned state-independent log-std (continuous). Inputs are normalised
with ``obs_mean``/``obs_std`` when the artifact has them; actions are sampled or greedy as the
run's ``actions`` says.
"""

from __future__ import annotations

import argparse
import json
import math

import gymnasium as gym
import numpy as np
import torch
from safetensors import safe_open
from safetensors.numpy import load_file

ACTIVATIONS = {"tanh": torch.nn.Tanh, "relu": torch.nn.ReLU, "gelu": torch.nn.GELU}


def read(path):
    arrays = load_file(path)
    with safe_open(path, "np") as f:
        meta = f.metadata()
    return arrays, meta["action_space"] == "discrete", json.loads(meta["config"])


def build(in_dim, out_dim, policy_cfg, discrete, seed=0):
    torch.manual_seed(seed)
    layers, width = [], in_dim
    for _ in range(policy_cfg["depth"]):
        dense = torch.nn.Linear(width, policy_cfg["width"])
        torch.nn.init.normal_(dense.weight, std=1 / math.sqrt(width))  # LeCun normal
        torch.nn.init.zeros_(dense.bias)
        layers += [dense, ACTIVATIONS[policy_cfg["activation"]]()]
        width = policy_cfg["width"]
    head = torch.nn.Linear(width, out_dim)
    torch.nn.init.normal_(head.weight, std=0.1 / math.sqrt(width))  # variance 0.01 / fan_in
    torch.nn.init.zeros_(head.bias)
    net = torch.nn.Sequential(*layers, head)
    log_std = None if discrete else torch.nn.Parameter(torch.zeros(out_dim))
    return net, log_std


def bc_loss(out, targets, log_std, discrete):
    """hades' BC loss: cross-entropy (integer labels or soft targets), or the Gaussian NLL of the
    actions under the policy's mean and learned log-std."""
    if discrete:
        return torch.nn.functional.cross_entropy(out, targets)
    z = (targets - out) * torch.exp(-log_std)
    return (0.5 * z**2 + log_std + 0.5 * math.log(2 * math.pi)).sum(-1).mean()


def fit(x, y, discrete, policy_cfg, bc, seed=0):
    x = torch.as_tensor(x, dtype=torch.float32)
    y = torch.as_tensor(y, dtype=torch.long if discrete else torch.float32)
    out_dim = int(y.max()) + 1 if discrete else y.shape[1]
    net, log_std = build(x.shape[1], out_dim, policy_cfg, discrete, seed)
    params = list(net.parameters()) + ([] if log_std is None else [log_std])
    if bc["bc_optimizer"] == "adam":
        opt = torch.optim.Adam(params, lr=bc["bc_lr"], eps=bc["bc_adam_eps"])
    else:
        opt = torch.optim.SGD(params, lr=bc["bc_lr"])
    steps = bc["bc_steps"]
    schedule = (lambda t: max(0.0, 1.0 - t / steps)) if bc["bc_anneal"] else (lambda t: 1.0)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, schedule)
    temperature = bc.get("bc_label_temperature", 0.0)  # > 0: soft targets softmax(one_hot / T)
    targets = y
    if discrete and temperature > 0:
        targets = torch.softmax(torch.nn.functional.one_hot(y, out_dim).float() / temperature, -1)
    for _ in range(steps):
        loss = bc_loss(net(x), targets, log_std, discrete)
        opt.zero_grad()
        loss.backward()
        if bc["bc_max_grad_norm"] > 0:
            torch.nn.utils.clip_grad_norm_(params, bc["bc_max_grad_norm"])
        opt.step()
        sched.step()
    return net, log_std


def policy_for(path, seed=0):
    """act(obs, rng) -> action, trained on the artifact at ``path``."""
    arrays, discrete, cfg = read(path)
    mean, std = arrays.get("obs_mean"), arrays.get("obs_std")
    norm = (lambda s: (s - mean) / std) if mean is not None else (lambda s: s)
    x = norm(arrays["states"].reshape(len(arrays["states"]), -1))
    net, log_std = fit(x, arrays["actions"], discrete, cfg["policy"], cfg["bc"], seed)
    sample = cfg.get("actions", "sample") == "sample"

    @torch.no_grad()
    def act(obs, rng):
        out = net(torch.as_tensor(norm(np.asarray(obs, np.float32).ravel()), dtype=torch.float32)).numpy()
        if discrete:
            if not sample:
                return int(np.argmax(out))
            p = np.exp(out - out.max())
            return int(rng.choice(len(p), p=p / p.sum()))
        if sample:
            out = out + np.exp(log_std.numpy()) * rng.standard_normal(out.shape)
        return out.astype(np.float32)

    return act, cfg


def evaluate(path, episodes=10, seed=0):
    act, cfg = policy_for(path, seed)
    env = gym.make(cfg["env"])  # the gymnax classic-control ids are Gymnasium's
    rng = np.random.default_rng(seed)
    returns = []
    for ep in range(episodes):
        obs, _ = env.reset(seed=1000 + ep)
        total, done = 0.0, False
        while not done:
            action = act(obs, rng)
            if not isinstance(action, int):
                action = np.clip(action, env.action_space.low, env.action_space.high)
            obs, reward, terminated, truncated, _ = env.step(action)
            total += float(reward)
            done = terminated or truncated
        returns.append(total)
    return returns


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("dataset")
    p.add_argument("--episodes", type=int, default=10)
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args()
    r = evaluate(a.dataset, a.episodes, a.seed)
    print(json.dumps({"return_mean": float(np.mean(r)), "returns": r}))
