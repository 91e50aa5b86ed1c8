"""The direct-ES baseline: the ES searches the policy's weights themselves (neuroevolution).

It shares everything with HaDES but what a candidate is: a candidate is a full set of policy
parameters, its fitness the mean return of its rollouts (common random numbers as for HaDES),
and the run's product is the mean weights (``policy.safetensors``).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from hades.chunking import Workload
from hades.dataset import PolicyWeights
from hades.distill import RLDriver, RunState


class DirectES(RLDriver):
    def initial_solution(self, key, norm=None):
        """A policy initialisation, or (``--direct-init zeros``, the official baseline) all-zero weights."""
        params = self.policy.init(key)
        if self.cfg.direct_init == "zeros":
            return jax.tree.map(jnp.zeros_like, params)
        return params

    def solution_size(self) -> int:
        return self.n_params()

    def candidate_bytes(self) -> int:
        width = self.cfg.policy.width * self.cfg.policy.depth
        return 4 * (2 * self.n_params() + self.cfg.eval_envs * (width + 2 * int(np.prod(self.env.obs_shape))))

    def workload(self) -> Workload:
        cfg = self.cfg
        obs = int(np.prod(self.env.obs_shape))
        hidden = cfg.policy.width * cfg.policy.depth
        return Workload.direct(
            cfg.es.population,
            self.n_params(),
            hidden,
            cfg.eval_envs,
            self.rollout_steps(),
            obs,
            self.candidate_bytes(),
            self.es_bytes(),
            self.env.step_overhead,
        )

    def score(self, rollout, solution, learners, env_key, norm):
        rollouts = rollout(solution, env_key, norm)
        return jax.tree.map(lambda a: a[None], rollouts), jnp.float32(0.0)

    def product(self, state: RunState) -> PolicyWeights:
        mean, std = self.fixed_stats(state)
        params = jax.device_get(self.solution(state))
        return PolicyWeights(params=params, env=self.cfg.env, config=self.cfg.to_dict(), obs_mean=mean, obs_std=std)
