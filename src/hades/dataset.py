"""What a run produces, as plain values with no I/O: a distilled ``Dataset`` (HaDES, images) or a
policy's ``PolicyWeights`` (the direct-ES baseline). ``artifacts.py`` reads and writes them;
everything else passes them around.

A dataset's ``states`` are in raw observation units; when ``obs_mean`` / ``obs_std`` are present
the policy was trained on ``(states - obs_mean) / obs_std`` and acts on observations normalised
the same way (``inputs()``).
"""

from __future__ import annotations

import dataclasses

import numpy as np

from hades import __version__
from hades.config import DistillConfig


@dataclasses.dataclass(frozen=True)
class Dataset:
    states: np.ndarray
    actions: np.ndarray
    env: str
    action_space: str
    variant: str = "hades-r"
    obs_mean: np.ndarray | None = None
    obs_std: np.ndarray | None = None
    config: dict = dataclasses.field(default_factory=dict)
    hades_version: str = __version__
    obs_norm: str = ""  # none | constant | running | rollout ("": inferred from obs_mean)
    # the environment as tools need it without building it (``Env.spec()``): observation shape,
    # action space, action count or dimension, episode limit, feature / channel names where known
    env_spec: dict = dataclasses.field(default_factory=dict)

    @property
    def normalisation(self) -> str:
        return self.obs_norm or ("constant" if self.normalised else "none")

    @property
    def size(self) -> int:
        return int(self.states.shape[0])

    @property
    def normalised(self) -> bool:
        return self.obs_mean is not None

    def learner(self) -> str:
        """The learner the dataset was evolved for, in words (from its run's config): what an
        outside learner should copy to get the returns hades measured."""
        from hades.config import BCConfig, PolicyConfig  # the defaults of settings older artifacts lack

        policy, bc = self.config.get("policy") or {}, self.config.get("bc") or {}
        if not policy or not bc:
            return "unknown (no run config in the artifact)"
        policy = {**dataclasses.asdict(PolicyConfig()), **policy}
        bc = {**dataclasses.asdict(BCConfig()), **bc}
        opt = bc.get("bc_optimizer", "adam")
        parts = [
            f"MLP {policy['depth']} x {policy['width']} {policy['activation']}"
            + (f" ({policy['precision']} matmuls)" if policy.get("precision", "float32") != "float32" else ""),
            f"{bc['bc_steps']} full-batch {'Adam' if opt == 'adam' else 'SGD'} steps at lr {bc['bc_lr']:g}"
            + (f" (eps {bc['bc_adam_eps']:g})" if opt == "adam" else "")
            + (", decayed linearly to 0" if bc.get("bc_anneal") else ""),
            f"gradient norm clipped at {bc['bc_max_grad_norm']:g}" if bc.get("bc_max_grad_norm") else "no clipping",
            ("cross-entropy" if self.action_space == "discrete" else "Gaussian NLL with a learned log-std")
            + (
                f" against soft targets softmax(one_hot / {bc['bc_label_temperature']:.3g})"
                if self.action_space == "discrete" and bc.get("bc_label_temperature", 0) > 0
                else ""
            ),
            {"sample": "actions sampled from the policy", "greedy": "greedy actions"}.get(
                self.config.get("actions"), ""
            ),
            "inputs (x - obs_mean) / obs_std" if self.normalised else "raw inputs",
        ]
        learners = (self.config.get("learner") or {}).get("learners") or self.config.get("learners", "fixed")
        if learners != "fixed":  # the run's learner is one of many the dataset was scored with
            parts.append(f"scored during evolution with a distribution of learners ({learners}) around it")
        return "; ".join(p for p in parts if p)

    def inputs(self) -> np.ndarray:
        """What a policy is trained on: states, normalised if the dataset says so."""
        if self.normalised:
            return (self.states - self.obs_mean) / self.obs_std
        return self.states


@dataclasses.dataclass(frozen=True)
class PolicyWeights:
    """A policy's parameters (nested dict of arrays) with what is needed to run it again."""

    params: dict
    env: str
    config: dict = dataclasses.field(default_factory=dict)
    obs_mean: np.ndarray | None = None
    obs_std: np.ndarray | None = None


def run_config(ds: Dataset) -> DistillConfig:
    """The run config a dataset records (defaults for an artifact that records none)."""
    return DistillConfig.from_dict(ds.config) if ds.config else DistillConfig()
