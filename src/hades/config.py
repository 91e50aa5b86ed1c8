"""Frozen, typed configuration for every knob, and the named presets.

Each field carries its help text in ``metadata`` so the CLI builds its options from these
classes (a flag is written once, here). Field names are unique across the nested classes so
they flatten to one namespace of options (``--width``, ``--bc-lr``, ``--es-lr`` ...).
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from typing import Any

from hades.errors import HadesError

VARIANTS = ("hades-f", "hades-r", "direct-es")
OBS_NORMS = ("none", "constant", "running")
BACKENDS = ("positional", "spring", "generalized", "mjx")
ACTIVATIONS = ("tanh", "relu", "gelu", "silu", "elu")


def knob(default: Any, help: str, choices: tuple | None = None) -> Any:
    """A dataclass field with CLI help (and optional choices) attached."""
    return field(default=default, metadata={"help": help, "choices": choices})


@dataclass(frozen=True)
class PolicyConfig:
    """The MLP policy trained in the inner loop."""

    width: int = knob(64, "hidden units per layer")
    depth: int = knob(2, "number of hidden layers")
    activation: str = knob("tanh", "hidden activation", ACTIVATIONS)


@dataclass(frozen=True)
class BCConfig:
    """Behaviour cloning: full-batch Adam on the dataset."""

    bc_lr: float = knob(0.01, "BC learning rate (Adam)")
    bc_steps: int = knob(100, "BC full-batch gradient steps (the paper's 'epochs')")
    bc_max_grad_norm: float = knob(1.0, "clip BC gradients to this global norm (0: no clipping)")
    bc_anneal: bool = knob(False, "anneal the BC learning rate linearly to 0 over the steps")
    bc_optimizer: str = knob("adam", "inner-loop optimiser", ("adam", "sgd"))


@dataclass(frozen=True)
class ESConfig:
    """The outer evolution strategy (any evosax distribution-based strategy)."""

    strategy: str = knob("Open_ES", "evosax strategy name (Open_ES, SNES, PGPE, CMA_ES, ...)")
    population: int = knob(128, "candidates per generation (even; antithetic pairs)")
    sigma: float = knob(0.1, "initial search standard deviation")
    es_lr: float = knob(0.05, "ES learning rate (Adam on the mean, for strategies with an optimizer)")
    es_temperature: float = knob(0.0, "rank-weight temperature for SNES/xNES (paper MinAtar: 20; 0: evosax default)")


@dataclass(frozen=True)
class DistillConfig:
    """One distillation run (HaDES-F, HaDES-R, or the direct-ES baseline)."""

    env: str = knob("CartPole-v1", "environment id (see `hades envs`)")
    backend: str = knob("positional", "Brax physics pipeline for brax/* environments (spring is ~3x faster on CPU)", BACKENDS)
    variant: str = knob("hades-r", "hades-f: one fixed init; hades-r: k fresh inits per generation; direct-es: ES on policy weights", VARIANTS)
    dataset_size: int = knob(4, "number of synthetic state-action pairs")
    num_inits: int = knob(2, "HaDES-R: fresh policy initialisations per generation (k >= 2)")
    generations: int = knob(50, "ES generations")
    seed: int = knob(0, "random seed (same seed, same machine: identical dataset)")
    eval_envs: int = knob(4, "evaluation episodes per candidate (one per parallel env)")
    eval_steps: int = knob(0, "step cap per evaluation episode (0: the environment's episode limit)")
    stochastic_actions: bool = knob(False, "sample actions from the policy during rollouts (default: greedy/mean)")
    obs_norm: str = knob("constant", "observation normalisation: none; constant statistics of reference states; "
                         "or running statistics of every observation the evaluation envs see (the paper's Brax setting)", OBS_NORMS)
    obs_std_floor: float = knob(0.05, "lower bound on the normalisation std (avoids blowing up rare inputs)")
    init_scale: float = knob(0.3, "std of the initial dataset states (in normalised units)")
    eval_every: int = knob(5, "evaluate the current mean dataset every this many generations (0: only at the end)")
    eval_episodes: int = knob(16, "episodes per policy when evaluating the mean dataset")
    eval_policies: int = knob(4, "freshly initialised policies trained on the mean dataset when evaluating (HaDES-R)")
    checkpoint_every: int = knob(10, "write a resumable checkpoint every this many generations")
    devices: int = knob(0, "split the population over this many devices (0: the most visible devices that "
                        "divide the population; an explicit count must divide it)")
    evolve_bc: bool = knob(False, "evolve the BC learning rate and step count with the data (two extra genes, "
                           "log scale; steps up to 2x --bc-steps); the artifact stores the evolved values")
    learners: str = knob("fixed", "HaDES-R: train each generation's policies with the configured learner (fixed), "
                         "or sample each one's width, learning rate and steps (sampled)", ("fixed", "sampled"))
    learner_min_width: int = knob(16, "sampled learners: widths are powers of two from this up to --width")
    learner_lr_range: float = knob(10.0, "sampled learners: learning rate log-uniform in [bc_lr/r, bc_lr*r]")
    learner_min_steps: float = knob(0.5, "sampled learners: steps uniform in [this fraction of bc_steps, bc_steps]")
    chunk: int = knob(0, "evaluate this many candidates at a time (bounds memory: HaDES holds chunk policies, "
                      "not population many); 0: auto (CPU: 16 per device, which keeps the BC working set in "
                      "cache; accelerators: the whole population); the population size: all at once")
    policy: PolicyConfig = field(default_factory=PolicyConfig)
    bc: BCConfig = field(default_factory=BCConfig)
    es: ESConfig = field(default_factory=ESConfig)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_dict(cls, d: dict) -> "DistillConfig":
        return replace_flat(cls(), flatten(d))

    def validate(self) -> "DistillConfig":
        """Raise HadesError for settings that cannot run; return self."""
        if self.variant not in VARIANTS:
            raise HadesError(f"unknown variant {self.variant!r}; choose one of {', '.join(VARIANTS)}")
        if self.backend not in BACKENDS:
            raise HadesError(f"unknown backend {self.backend!r}; choose one of {', '.join(BACKENDS)}")
        if self.devices < 0:
            raise HadesError(f"--devices must be >= 0 (got {self.devices})")
        if self.learners not in ("fixed", "sampled"):
            raise HadesError(f"unknown learners {self.learners!r}; choose fixed or sampled")
        if self.learners == "sampled" and self.variant != "hades-r":
            raise HadesError("--learners sampled needs --variant hades-r (fresh learners every generation)")
        if self.learners == "sampled" and not (1 <= self.learner_min_width <= self.policy.width
                                               and self.learner_lr_range >= 1 and 0 < self.learner_min_steps <= 1):
            raise HadesError("sampled learners need 1 <= --learner-min-width <= --width, --learner-lr-range >= 1 "
                             "and 0 < --learner-min-steps <= 1")
        if self.evolve_bc and self.variant == "direct-es":
            raise HadesError("--evolve-bc evolves the inner loop of HaDES; direct ES has none")
        if self.chunk < 0 or (self.chunk and self.es.population % self.chunk):
            raise HadesError(f"--chunk must divide the population ({self.es.population}); got {self.chunk}")
        if self.obs_norm not in OBS_NORMS:
            raise HadesError(f"unknown obs_norm {self.obs_norm!r}; choose one of {', '.join(OBS_NORMS)}")
        if self.policy.activation not in ACTIVATIONS:
            raise HadesError(f"unknown activation {self.policy.activation!r}; choose one of {', '.join(ACTIVATIONS)}")
        positive = {
            "dataset_size": self.dataset_size, "generations": self.generations,
            "eval_envs": self.eval_envs, "population": self.es.population, "width": self.policy.width,
            "depth": self.policy.depth, "bc_steps": self.bc.bc_steps, "eval_episodes": self.eval_episodes,
            "eval_policies": self.eval_policies, "checkpoint_every": self.checkpoint_every,
        }
        for name, value in positive.items():
            if value < 1:
                raise HadesError(f"--{name.replace('_', '-')} must be >= 1 (got {value})")
        if self.variant == "hades-r" and self.num_inits < 2:
            raise HadesError(f"HaDES-R needs --num-inits >= 2 (got {self.num_inits}); use --variant hades-f for one fixed init")
        if self.es.population % 2:
            raise HadesError(f"--population must be even for antithetic sampling (got {self.es.population})")
        if not self.es.sigma > 0 or not self.bc.bc_lr > 0 or not self.es.es_lr > 0:
            raise HadesError("--sigma, --bc-lr and --es-lr must be > 0")
        if self.eval_steps < 0 or self.eval_every < 0:
            raise HadesError("--eval-steps and --eval-every must be >= 0")
        return self


@dataclass(frozen=True)
class ImageDistillConfig:
    """Supervised dataset distillation: one synthetic image per class (``hades distill-images``)."""

    dataset: str = knob("fashion-mnist", "which image dataset", ("mnist", "fashion-mnist"))
    data_dir: str = knob("", "directory holding the IDX files (default: $HADES_DATA_DIR)")
    model: str = knob("mlp", "classifier trained in the inner loop: mlp (one hidden layer) or cnn "
                      "(3x3 conv with 16 channels, dense 128: the released code's)", ("mlp", "cnn"))
    hidden: int = knob(128, "hidden units of the classifier's dense layer")
    image_init: str = knob("mean", "initial images: the class-wise mean images, or random", ("mean", "random"))
    fitness_batch: int = knob(1024, "real training images per generation for the fitness loss "
                              "(a fresh random minibatch each generation; 0: the full training set)")
    generations: int = knob(1500, "ES generations")
    seed: int = knob(0, "random seed")
    eval_every: int = knob(100, "measure test accuracy every this many generations (0: only at the end)")
    eval_classifiers: int = knob(20, "classifiers (fresh initialisations) trained on the images for test accuracy")
    checkpoint_every: int = knob(100, "write a resumable checkpoint every this many generations")
    bc: BCConfig = field(default_factory=lambda: BCConfig(bc_lr=0.1, bc_steps=100, bc_max_grad_norm=0.0,
                                                          bc_optimizer="sgd"))
    es: ESConfig = field(default_factory=lambda: ESConfig(population=64, sigma=0.02, es_lr=0.01))

    to_dict = DistillConfig.to_dict
    to_json = DistillConfig.to_json

    @classmethod
    def from_dict(cls, d: dict) -> "ImageDistillConfig":
        return replace_flat(cls(), flatten(d))

    def validate(self) -> "ImageDistillConfig":
        for name in ("generations", "eval_classifiers", "checkpoint_every", "hidden"):
            if getattr(self, name) < 1:
                raise HadesError(f"--{name.replace('_', '-')} must be >= 1 (got {getattr(self, name)})")
        if self.es.population < 2 or self.es.population % 2:
            raise HadesError(f"--population must be even for antithetic sampling (got {self.es.population})")
        if self.bc.bc_steps < 1 or not self.bc.bc_lr > 0 or not self.es.sigma > 0:
            raise HadesError("--bc-steps, --bc-lr and --sigma must be > 0")
        if self.fitness_batch < 0 or self.eval_every < 0:
            raise HadesError("--fitness-batch and --eval-every must be >= 0")
        return self


def fields_of(cls) -> list[dataclasses.Field]:
    """All leaf fields of a (nested) config class, in declaration order."""
    out = []
    for f in dataclasses.fields(cls):
        if f.default_factory is not dataclasses.MISSING:
            out.extend(fields_of(type(f.default_factory())))
        else:
            out.append(f)
    return out


def flatten(d: dict) -> dict:
    """Nested config dict -> flat {field_name: value} (names are unique across levels)."""
    out = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(flatten(v))
        else:
            out[k] = v
    return out


def replace_flat(cfg, overrides: dict):
    """Return ``cfg`` with flat field overrides applied at whatever nesting level they live."""
    overrides = dict(overrides)
    changes = {}
    for f in dataclasses.fields(cfg):
        sub = getattr(cfg, f.name)
        if dataclasses.is_dataclass(sub):
            names = {g.name for g in fields_of(type(sub))}
            mine = {k: overrides.pop(k) for k in list(overrides) if k in names}
            if mine:
                changes[f.name] = replace_flat(sub, mine)
        elif f.name in overrides:
            changes[f.name] = overrides.pop(f.name)
    if overrides:
        raise HadesError(f"unknown setting(s): {', '.join(sorted(overrides))}")
    return dataclasses.replace(cfg, **changes)


# ---------------------------------------------------------------------------------------------
# Presets: flat overrides of DistillConfig. CPU presets are sized for a 2-core laptop; the
# paper-* presets copy the paper's tables (reference/HADES.md) and need accelerators.

_MINATAR_CPU = dict(
    dataset_size=16, obs_norm="constant", generations=200, eval_envs=4, eval_steps=500,
    width=64, depth=2, activation="relu", bc_lr=0.01, bc_anneal=True, bc_steps=16,
    bc_max_grad_norm=0.5, strategy="SNES", population=128, sigma=0.1, es_lr=0.05,
    es_temperature=20.0, variant="hades-f", eval_every=10, eval_episodes=32,
)

class PerEnv(dict):
    """A preset value that depends on the run's environment: ``PerEnv({env: value}, default=...)``."""

    def __init__(self, values: dict, default: Any):
        super().__init__(values)
        self.default = default

    def __repr__(self) -> str:
        return "{" + ", ".join(f"{k.removeprefix('brax/')}: {v}" for k, v in self.items()) + f", else: {self.default}}}"


# Brax on CPU: spring physics (~3x positional here), a small dataset and policy, OpenES; sized so
# a hopper run shows clear progress in about 20 minutes on 2 cores.
_BRAX_CPU = dict(
    backend="spring", variant="hades-f", dataset_size=16, obs_norm="running", width=64, depth=2,
    activation="tanh", bc_lr=0.005, bc_steps=100, bc_max_grad_norm=0.5, eval_envs=4, eval_steps=1000,
    strategy="Open_ES", population=64, sigma=0.03, es_lr=0.05, generations=150, eval_every=10,
    eval_episodes=8, eval_policies=2, checkpoint_every=10,
)

PRESETS: dict[str, dict] = {
    "cartpole": dict(env="CartPole-v1"),
    "acrobot": dict(env="Acrobot-v1", dataset_size=6, generations=40, obs_norm="constant"),
    "mountaincar": dict(env="MountainCar-v0", dataset_size=6, generations=60, obs_norm="constant", population=128),
    "pendulum": dict(env="Pendulum-v1", dataset_size=8, generations=60, obs_norm="constant", bc_steps=200),
    "mountaincar-continuous": dict(env="MountainCarContinuous-v0", dataset_size=4, generations=40, obs_norm="constant", eval_steps=999),
    "breakout": dict(_MINATAR_CPU, env="Breakout-MinAtar"),
    # a larger CPU budget (population 512, 400 generations: about 6 minutes here)
    "breakout-p512": dict(_MINATAR_CPU, env="Breakout-MinAtar", population=512, generations=400, eval_every=50),
    "space-invaders": dict(_MINATAR_CPU, env="SpaceInvaders-MinAtar"),
    "asterix": dict(_MINATAR_CPU, env="Asterix-MinAtar"),
    "freeway": dict(_MINATAR_CPU, env="Freeway-MinAtar", eval_steps=1024),
    # The paper's MinAtar table (SNES, population 2048, 5000 generations); pick the game with --env.
    "paper-minatar": dict(
        env="Breakout-MinAtar", variant="hades-f", dataset_size=16, obs_norm="constant",
        width=512, depth=2, activation="relu", bc_lr=0.03, bc_anneal=True, bc_steps=64,
        bc_max_grad_norm=0.5, eval_envs=8, eval_steps=1024, num_inits=2,
        strategy="SNES", population=2048, sigma=0.5, es_lr=0.05, es_temperature=20.0,
        generations=5000, eval_every=50, checkpoint_every=50,
    ),
    # CPU-sized Brax presets, one per environment (pick the backend with --backend).
    **{name: dict(_BRAX_CPU, env=f"brax/{name}") for name in (
        "hopper", "walker2d", "reacher", "inverted_double_pendulum", "ant", "halfcheetah", "humanoid",
        "humanoidstandup", "inverted_pendulum")},
    # The paper's Brax table (OpenES, population 2048, 2000 generations, positional physics);
    # pick the environment with --env. BC epochs: 200 for hopper and inverted_double_pendulum.
    "paper-brax": dict(
        env="brax/hopper", backend="positional", variant="hades-f", dataset_size=64, obs_norm="running",
        width=512, depth=2, activation="tanh", bc_lr=0.005, bc_anneal=False, num_inits=2,
        bc_steps=PerEnv({"brax/hopper": 200, "brax/inverted_double_pendulum": 200}, default=400),
        bc_max_grad_norm=0.5, eval_envs=4, eval_steps=1024, strategy="Open_ES", population=2048, sigma=0.03,
        es_lr=0.05, generations=2000, eval_every=50, checkpoint_every=50,
    ),
}


def _from_preset(cls, presets: dict[str, dict], preset_name: str | None, overrides: dict):
    """``cls()`` with an optional named preset and then flat overrides applied, validated."""
    if preset_name and preset_name not in presets:
        raise HadesError(f"unknown preset {preset_name!r}; choose one of {', '.join(presets)}")
    flat = dict(presets[preset_name]) if preset_name else {}
    flat.update(overrides)
    env = flat.get("env", getattr(cls(), "env", None))
    flat = {k: v.get(env, v.default) if isinstance(v, PerEnv) else v for k, v in flat.items()}
    return replace_flat(cls(), flat).validate()


def make_config(preset_name: str | None = None, **overrides) -> DistillConfig:
    """DistillConfig from an optional preset plus flat overrides, validated."""
    return _from_preset(DistillConfig, PRESETS, preset_name, overrides)


# Supervised presets (``hades distill-images --preset``).
IMAGE_PRESETS: dict[str, dict] = {
    # CPU default: about 20 minutes on 2 cores.
    "cpu": {},
    # The released code's settings (reference/HADES.md): needs an accelerator.
    "paper-images": dict(model="cnn", population=512, generations=1000, sigma=0.02, es_lr=0.01,
                         bc_optimizer="sgd", bc_lr=0.1, bc_steps=1000, bc_max_grad_norm=0.0,
                         eval_every=100, checkpoint_every=100),
}


def make_image_config(preset_name: str | None = None, **overrides) -> ImageDistillConfig:
    """ImageDistillConfig from an optional preset plus flat overrides, validated."""
    return _from_preset(ImageDistillConfig, IMAGE_PRESETS, preset_name, overrides)
