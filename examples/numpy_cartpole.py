"""Train a policy from a hades dataset artifact with plain NumPy and run it in Gymnasium.

    python examples/numpy_cartpole.py runs/<run>/dataset.safetensors

Needs only numpy, safetensors and gymnasium: no JAX, no hades. The recipe for any artifact:
normalise states (and, when acting, observations) with obs_mean/obs_std if present, fit a
classifier (discrete) or regressor (continuous) on (inputs, actions), act greedily.
"""

import sys

import gymnasium as gym
import numpy as np
from safetensors.numpy import load_file


def train_mlp(x, y, num_actions, hidden=64, steps=300, lr=0.01, seed=0):
    """A tanh MLP fitted by full-batch Adam on softmax cross-entropy."""
    rng = np.random.default_rng(seed)
    params = [
        rng.normal(0, 1 / np.sqrt(x.shape[1]), (x.shape[1], hidden)),
        np.zeros(hidden),
        rng.normal(0, 0.01, (hidden, num_actions)),
        np.zeros(num_actions),
    ]
    m = [np.zeros_like(p) for p in params]
    v = [np.zeros_like(p) for p in params]
    onehot = np.eye(num_actions)[y]
    for t in range(1, steps + 1):
        w1, b1, w2, b2 = params
        h = np.tanh(x @ w1 + b1)
        logits = h @ w2 + b2
        p = np.exp(logits - logits.max(1, keepdims=True))
        p /= p.sum(1, keepdims=True)
        g_logits = (p - onehot) / len(x)
        g_h = g_logits @ w2.T * (1 - h**2)
        grads = [x.T @ g_h, g_h.sum(0), h.T @ g_logits, g_logits.sum(0)]
        for i, g in enumerate(grads):
            m[i] = 0.9 * m[i] + 0.1 * g
            v[i] = 0.999 * v[i] + 0.001 * g**2
            params[i] -= lr * (m[i] / (1 - 0.9**t)) / (np.sqrt(v[i] / (1 - 0.999**t)) + 1e-8)
    w1, b1, w2, b2 = params
    return lambda obs: int(np.argmax(np.tanh(obs @ w1 + b1) @ w2 + b2))


def main(path, episodes=5):
    d = load_file(path)
    norm = (lambda s: (s - d["obs_mean"]) / d["obs_std"]) if "obs_mean" in d else (lambda s: s)
    act = train_mlp(norm(d["states"]), d["actions"], num_actions=2)
    env = gym.make("CartPole-v1")
    returns = []
    for ep in range(episodes):
        obs, _ = env.reset(seed=ep)
        total, done = 0.0, False
        while not done:
            obs, reward, terminated, truncated, _ = env.step(act(norm(obs.astype(np.float32))))
            total += reward
            done = terminated or truncated
        returns.append(total)
    return returns


if __name__ == "__main__":
    print(main(sys.argv[1]))
