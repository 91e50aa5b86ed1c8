"""Frozen, typed configuration for every knob: the schema (the named presets are in
``hades.presets``, the environment table in ``hades.envtable``).

Every choice is a ``Literal`` type and every interval a ``knob(..., bounds=...)``, enforced by one
walk (``check_bounds``); the ``validate`` methods hold only the checks that relate fields. The
module is long (about 700 lines) because each of the ~100 knobs is declared here once with the
help text the CLI shows; splitting it would scatter the one namespace of options.

Each field carries its help text in ``metadata`` so the CLI builds its options from these
classes (a flag is written once, here). Field names are unique across the nested classes so
they flatten to one namespace of options (``--width``, ``--bc-lr``, ``--es-lr`` ...).
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field
from typing import Any, Literal, get_args

from hades.errors import HadesError

# Every choice is a Literal type; its tuple of names (for the CLI and checks) is derived from it.
Variant = Literal["hades-f", "hades-r", "direct-es"]
ObsNormMode = Literal["none", "constant", "official", "running", "rollout"]
ActionMode = Literal["sample", "greedy"]
EsOptimizer = Literal["auto", "adam", "sgd"]
EsShaping = Literal["own", "raw"]
EsSampling = Literal["own", "mirrored"]
Backend = Literal["positional", "spring", "generalized", "mjx"]
Activation = Literal["tanh", "relu", "gelu", "silu", "elu"]
BcOptimizer = Literal["adam", "sgd"]
Precision = Literal["float32", "bfloat16"]
PolicyInit = Literal["lecun", "orthogonal"]
RankTies = Literal["average", "position"]
FixedFitness = Literal["env-mean", "pooled", "last"]
DirectInit = Literal["policy", "zeros"]
LabelLayout = Literal["interleaved", "official"]
InitStates = Literal["normal", "observed"]
ClipStates = Literal["none", "observed"]
LearnerEnvKeys = Literal["shared", "own"]
Learners = Literal["fixed", "sampled", "wide"]
LearnerOptimizer = Literal["adam", "sgd", "adam-clip", "sgd-clip"]
ImageDataset = Literal["mnist", "fashion-mnist"]
ImageModel = Literal["mlp", "cnn"]
ImageInit = Literal["mean", "random"]
VARIANTS = get_args(Variant)
OBS_NORMS = get_args(ObsNormMode)
ACTION_MODES = get_args(ActionMode)
ES_OPTIMIZERS = get_args(EsOptimizer)
ES_SHAPINGS = get_args(EsShaping)
ES_SAMPLINGS = get_args(EsSampling)
BACKENDS = get_args(Backend)
ACTIVATIONS = get_args(Activation)
BC_OPTIMIZERS = get_args(BcOptimizer)
PRECISIONS = get_args(Precision)
POLICY_INITS = get_args(PolicyInit)
RANK_TIES = get_args(RankTies)
FIXED_FITNESSES = get_args(FixedFitness)
DIRECT_INITS = get_args(DirectInit)
LABEL_LAYOUTS = get_args(LabelLayout)
INIT_STATES = get_args(InitStates)
CLIP_STATES = get_args(ClipStates)
LEARNER_ENV_KEYS = get_args(LearnerEnvKeys)
LEARNERS = get_args(Learners)
LEARNER_OPTIMIZERS = get_args(LearnerOptimizer)
# evosax strategies that draw antithetic pairs (hades asks every strategy that offers them for them),
# so a population of theirs is pairs and cannot be odd; the others (SNES, CMA_ES, LM_MA_ES, ...) take any.
# tests/test_es.py checks this list against evosax.
PAIRED_STRATEGIES = (
    "ARS",
    "ASEBO",
    "CR_FM_NES",
    "ESMC",
    "GuidedES",
    "NoiseReuseES",
    "Open_ES",
    "PGPE",
    "PersistentES",
)

# evosax strategies that take an optimizer (hades <= 0.1 gave every one of them Adam at es_lr);
# tests/test_es.py checks this list against evosax.
OPTIMIZER_STRATEGIES = (
    "ARS",
    "ASEBO",
    "DES",
    "ESMC",
    "GuidedES",
    "NoiseReuseES",
    "Open_ES",
    "PGPE",
    "PersistentES",
    "SNES",
    "SimpleES",
    "xNES",
)


# Upper bounds beyond which a run cannot learn anything (it would end at random-policy return
# with exit 0): refused up front. Far above any setting in the paper or in hades' presets.
MAX_SIGMA = 1e3
MAX_ES_LR = 1e6
MAX_BC_LR = 10.0
MAX_SEED = 2**32 - 1  # jax.random.PRNGKey's range
# Upper bounds on counts, wherever a setting comes from (flags, a config file, an artifact, a
# checkpoint): far above any real run, low enough that a forged or mistyped value is refused
# instead of running for days or exhausting memory.
MAX_COUNTS = {
    "bc_steps": 100_000,
    "width": 16_384,
    "depth": 64,
    "dataset_size": 100_000,
    "generations": 10_000_000,
    "population": 10_000_000,
    "num_inits": 10_000,
    "eval_envs": 100_000,
    "eval_steps": 10_000_000,
    "eval_episodes": 100_000,
    "eval_policies": 10_000,
    "checkpoint_every": 10_000_000,
    "eval_every": 10_000_000,
    "bc_unroll": 1_000,
    "seeds": 10_000,
    "episodes": 100_000,
    "hidden": 16_384,
    "eval_classifiers": 10_000,
    "fitness_batch": 10_000_000,
    "holdout": 10_000_000,
    "chunk": 10_000_000,
    "devices": 100_000,
}


def check_bounds(cfg) -> None:
    """Refuse, in any (nested) config, a value outside its field's ``choices`` or ``bounds``, a
    seed outside [0, 2^32) and a count above ``MAX_COUNTS``."""
    for f in dataclasses.fields(cfg):
        value = getattr(cfg, f.name)
        choices = f.metadata.get("choices")
        if dataclasses.is_dataclass(value):
            check_bounds(value)
        elif choices and value not in choices:
            raise HadesError(f"unknown {f.name} {value!r}; choose one of {', '.join(map(str, choices))}")
        elif f.metadata.get("bounds") and not _within(value, f.metadata["bounds"]):
            raise HadesError(f"--{f.name.replace('_', '-')} must be in {f.metadata['bounds']} (got {value})")
        elif f.name == "seed" and not 0 <= value <= MAX_SEED:
            raise HadesError(f"--seed must be in [0, {MAX_SEED}] (got {value})")
        elif f.name in MAX_COUNTS and value > MAX_COUNTS[f.name]:
            raise HadesError(f"--{f.name.replace('_', '-')} must be at most {MAX_COUNTS[f.name]:,} (got {value:,})")


def knob(default: Any, help: str, choices: tuple | None = None, bounds: str | None = None) -> Any:
    """A dataclass field with CLI help, and optionally its choices or its interval (``"(0, 10]"``,
    ``"[0, inf)"``: finite values only), attached; ``check_bounds`` enforces both."""
    return field(default=default, metadata={"help": help, "choices": choices, "bounds": bounds})


def _within(value, bounds: str) -> bool:
    lo, hi = (float(b) for b in bounds[1:-1].split(","))
    above = value > lo if bounds[0] == "(" else value >= lo
    below = value < hi if bounds[-1] == ")" else value <= hi
    return math.isfinite(value) and above and below


@dataclass(frozen=True)
class PolicyConfig:
    """The MLP policy trained in the inner loop."""

    width: int = knob(64, "hidden units per layer", bounds="[1, inf)")
    depth: int = knob(2, "number of hidden layers", bounds="[1, inf)")
    activation: Activation = knob("tanh", "hidden activation", ACTIVATIONS)
    precision: Precision = knob(
        "float32",
        "the policy's matmuls (BC and rollouts): float32, or bfloat16 inputs and weights with float32 "
        "parameters, losses and outputs (for accelerators' reduced-precision units; slower on most CPUs)",
        PRECISIONS,
    )
    policy_init: PolicyInit = knob(
        "lecun",
        "weight initialisation: lecun (LeCun-normal hidden layers, output layer at 0.01 variance scale) or "
        "orthogonal (the official code's: gains sqrt(2), sqrt(2), 0.01, zero biases)",
        POLICY_INITS,
    )


@dataclass(frozen=True)
class BCConfig:
    """Behaviour cloning: full-batch gradient steps (Adam or SGD) on the dataset."""

    bc_lr: float = knob(0.01, "BC learning rate", bounds=f"(0, {MAX_BC_LR:g}]")
    bc_steps: int = knob(100, "BC full-batch gradient steps (the paper's 'epochs')", bounds="[1, inf)")
    bc_max_grad_norm: float = knob(1.0, "clip BC gradients to this global norm (0: no clipping)", bounds="[0, inf)")
    bc_anneal: bool = knob(False, "anneal the BC learning rate linearly to 0 over the steps")
    bc_optimizer: BcOptimizer = knob("adam", "inner-loop optimiser", BC_OPTIMIZERS)
    bc_adam_eps: float = knob(
        1e-8,
        "Adam's epsilon in the inner loop (--bc-optimizer adam only; 1e-8 is optax's, the official code "
        "used 1e-5, and HaDES-F datasets only reproduce with the eps they were evolved with)",
        bounds="(0, inf)",
    )
    bc_unroll: int = knob(
        1,
        "unroll the BC step loop by this many steps (more code to compile; see benchmarks/optimisations.py)",
        bounds="[1, inf)",
    )
    bc_label_temperature: float = knob(
        0.0,
        "discrete actions: 0 trains on the hard labels; T > 0 on the soft targets softmax(one_hot(label) / T) "
        "(a dataset evolved with --evolve-label-temperature records its evolved T here)",
        bounds="[0, inf)",
    )
    bc_loss_per_action: bool = knob(
        False,
        "discrete actions: the official code's loss, -mean(log_softmax(logits) * one_hot) over states AND "
        "actions, i.e. the cross-entropy divided by the number of actions (or classes); with SGD a 1/|A| "
        "smaller step, with Adam a change only through its eps",
    )

    def validate(self) -> BCConfig:
        check_bounds(self)  # choices and intervals, from the fields' knobs
        return self


@dataclass(frozen=True)
class RetrainConfig:
    """How ``train``, ``transfer`` and ``merge`` train and evaluate fresh policies on a dataset
    (the evaluation protocol: whole episodes unless capped, and a capped result says so)."""

    policies: int = knob(5, "fresh policies trained per setting (each its own initialisation)")
    episodes: int = knob(10, "evaluation episodes per policy")
    eval_steps: int = knob(0, "step cap per episode (0: whole episodes; a capped result says so)")
    seed: int = knob(0, "random seed")

    def validate(self) -> RetrainConfig:
        if self.policies < 1 or self.episodes < 1 or self.eval_steps < 0:
            raise HadesError("--policies and --episodes must be >= 1, --eval-steps >= 0")
        check_bounds(self)
        return self


@dataclass(frozen=True)
class ESConfig:
    """The outer evolution strategy (any evosax distribution-based strategy)."""

    strategy: str = knob("Open_ES", "evosax strategy name (Open_ES, SNES, PGPE, CMA_ES, ...)")
    population: int = knob(
        128,
        "candidates per generation (even for the strategies that draw antithetic pairs: Open_ES, PGPE, "
        "ARS, ...; and for --es-sampling mirrored)",
        bounds="[2, inf)",
    )
    sigma: float = knob(0.1, "initial search standard deviation", bounds=f"(0, {MAX_SIGMA:g}]")
    es_optimizer: EsOptimizer = knob(
        "auto",
        "how the ES moves its mean: auto = Adam for Open_ES (the paper's OpenES), "
        "every other strategy its own evosax update rule (SNES/xNES: the natural-gradient step, "
        "learning rate 1); adam or sgd: that optimiser at --es-lr (strategies with an optimizer)",
        ES_OPTIMIZERS,
    )
    es_lr: float = knob(
        0.0,
        "ES learning rate of --es-optimizer adam/sgd (0: 0.05 for Adam; sgd needs a value); "
        "refused for a strategy that uses its own update rule",
        bounds=f"[0, {MAX_ES_LR:g}]",
    )
    es_lr_decay: float = knob(
        1.0, "multiply the ES learning rate by this every generation (adam/sgd only)", bounds="(0, 1]"
    )
    es_adam_b1: float = knob(
        0.9,
        "beta1 of the ES's Adam (--es-optimizer adam, and Open_ES's auto): 0.9 is optax's; the official "
        "code's evosax <= 0.1.5 Adam used 0.99 (the paper-* presets)",
        bounds="[0, 1)",
    )
    es_rank_ties: RankTies = knob(
        "average",
        "how --es-temperature's rank weights treat tied fitnesses: average (evosax 0.3: tied candidates share "
        "their mean rank) or position (evosax <= 0.1.5, the official code: ties ranked by population index)",
        RANK_TIES,
    )
    sigma_decay: float = knob(
        1.0,
        "multiply the search std by this every generation (strategies with a std "
        "schedule: Open_ES, PGPE-like; not SNES, whose std adapts itself)",
        bounds="(0, 1]",
    )
    sigma_limit: float = knob(0.0, "lower bound on the search std, enforced after every update (0: none)")
    es_temperature: float = knob(
        0.0,
        "rank weights softmax(-T * rank / (P - 1)), the paper's evosax <= 0.1.5 SNES "
        "weights (paper MinAtar: 20); 0: the strategy's own weights; only for strategies "
        "with rank weights (SNES, xNES, ...)",
        bounds="[0, inf)",
    )
    es_shaping: EsShaping = knob(
        "own",
        "fitness shaping: own (the strategy's: centred ranks for Open_ES, rank weights "
        "for SNES) or raw (returns as they are, the paper's OpenES)",
        ES_SHAPINGS,
    )
    es_sampling: EsSampling = knob(
        "own",
        "how the population is drawn: own (the strategy's: antithetic pairs for Open_ES, PGPE, ARS and others "
        "that offer them, independent draws for SNES, CMA-ES, ...) or mirrored (the second half of the "
        "population the first half reflected through the mean, for SNES, Sep_CMA_ES, CMA_ES and SimpleES, "
        "whose update reads the population alone)",
        ES_SAMPLINGS,
    )

    def validate(self) -> ESConfig:
        """Ranges only; whether the chosen strategy honours each option is checked by ``es.Strategy``."""
        check_bounds(self)  # choices and intervals, from the fields' knobs
        if not (math.isfinite(self.sigma_limit) and 0 <= self.sigma_limit <= self.sigma):
            raise HadesError(f"--sigma-limit must be in [0, --sigma] (got {self.sigma_limit})")
        self.check_pairs()
        return self

    def check_pairs(self) -> None:
        """A population drawn as antithetic pairs (the strategy's own, or ``--es-sampling mirrored``) is even."""
        if self.population % 2 and (self.strategy in PAIRED_STRATEGIES or self.es_sampling == "mirrored"):
            pairs = "--es-sampling mirrored draws" if self.es_sampling == "mirrored" else f"{self.strategy} draws"
            raise HadesError(f"{pairs} antithetic pairs: --population must be even (got {self.population})")


@dataclass(frozen=True)
class LearnerConfig:
    """HaDES-R's learners: the run's own (fixed), or a distribution every learner of a generation is
    drawn from (``learners.py``; each axis independently, uniformly over its choices)."""

    learners: Learners = knob(
        "fixed",
        "HaDES-R: train each generation's policies with the configured learner (fixed); sample each "
        "one's width, learning rate and steps (sampled); or sample activation, depth, optimiser and "
        "init scale as well (wide: every --learner-* axis left at its default takes its wide choices)",
        LEARNERS,
    )
    learner_min_width: int = knob(16, "sampled learners: widths are powers of two from this up to --width")
    learner_lr_range: float = knob(10.0, "sampled learners: learning rate log-uniform in [lr/r, lr*r]")
    learner_min_steps: float = knob(0.5, "sampled learners: steps uniform in [this fraction of bc_steps, bc_steps]")
    learner_activations: str = knob(
        "", "sampled learners: comma-separated activations ('': the run's --activation; wide: tanh,relu,gelu)"
    )
    learner_depths: str = knob(
        "",
        "sampled learners: comma-separated hidden-layer counts, 0 for linear models ('': --depth; wide: 1,2,3)",
    )
    learner_optimizers: str = knob(
        "",
        "sampled learners: comma-separated optimisers from adam, sgd, adam-clip, sgd-clip (clipped at "
        "--learner-clip-norm) ('': the run's --bc-optimizer and clipping; wide: all four)",
    )
    learner_clip_norm: float = knob(1.0, "sampled learners: the global gradient norm the *-clip optimisers clip to")
    learner_sgd_lr_scale: float = knob(
        30.0,
        "sampled learners: an SGD learner's learning rate is this times an Adam learner's (before the sampled factor)",
    )
    learner_init_range: float = knob(
        0.0, "sampled learners: hidden weights' init scale log-uniform in [1/r, r] (0: 1 for sampled, 2 for wide)"
    )

    def validate(self, policy: PolicyConfig) -> LearnerConfig:
        check_bounds(self)  # choices (learners, ...)
        if self.learners == "fixed":  # the --learner-* axes are not used
            return self
        if not (
            1 <= self.learner_min_width <= policy.width
            and self.learner_lr_range >= 1
            and 0 < self.learner_min_steps <= 1
            and self.learner_clip_norm > 0
            and self.learner_sgd_lr_scale > 0
            and (self.learner_init_range == 0 or self.learner_init_range >= 1)
        ):
            raise HadesError(
                "sampled learners need 1 <= --learner-min-width <= --width, --learner-lr-range >= 1, "
                "0 < --learner-min-steps <= 1, --learner-clip-norm and --learner-sgd-lr-scale > 0, "
                "and --learner-init-range 0 or >= 1"
            )
        for name, choices in (("learner_activations", ACTIVATIONS), ("learner_optimizers", LEARNER_OPTIMIZERS)):
            unknown = [a for a in split_list(getattr(self, name)) if a not in choices]
            if unknown:
                raise HadesError(
                    f"--{name.replace('_', '-')}: unknown {unknown[0]!r}; choose from {', '.join(choices)}"
                )
        try:
            depths = [int(d) for d in split_list(self.learner_depths)]
        except ValueError:
            raise HadesError(
                f"--learner-depths must be comma-separated integers (got {self.learner_depths!r})"
            ) from None
        if any(d < 0 for d in depths):
            raise HadesError(f"--learner-depths must be >= 0 (got {self.learner_depths!r})")
        return self


def split_list(text: str) -> list[str]:
    """``"a, b,c"`` -> ``["a", "b", "c"]`` ('' -> [])."""
    return [t.strip() for t in text.split(",") if t.strip()]


@dataclass(frozen=True)
class DistillConfig:
    """One distillation run (HaDES-F, HaDES-R, or the direct-ES baseline)."""

    env: str = knob("CartPole-v1", "environment id (see `hades envs`)")
    backend: Backend = knob(
        "positional", "Brax physics pipeline for brax/* environments (spring is ~3x faster on CPU)", BACKENDS
    )
    variant: Variant = knob(
        "hades-r",
        "hades-f: one fixed init; hades-r: k fresh inits per generation; direct-es: ES on policy weights",
        VARIANTS,
    )
    dataset_size: int = knob(4, "number of synthetic state-action pairs", bounds="[1, inf)")
    num_inits: int = knob(2, "HaDES-R: fresh policy initialisations per generation (k >= 2)")
    generations: int = knob(50, "ES generations", bounds="[1, inf)")
    seed: int = knob(0, "random seed (same seed, same machine: identical dataset)")
    eval_envs: int = knob(4, "evaluation episodes per candidate (one per parallel env)", bounds="[1, inf)")
    eval_steps: int = knob(
        0,
        "step cap per FITNESS episode (0: the environment's episode limit; it can only "
        "lower it); evaluations of the mean dataset always run whole episodes",
        bounds="[0, inf)",
    )
    fixed_length: bool = knob(
        False,
        "fitness rollouts run exactly --eval-steps steps (the episode limit when 0), resetting "
        "finished episodes, as the released code does (the same work per generation); fitness is "
        "the --fixed-fitness of the completed episodes. Evaluations always run whole episodes",
    )
    fixed_fitness: FixedFitness = knob(
        "env-mean",
        "--fixed-length fitness: env-mean (each env's mean completed return, its first episode's partial "
        "return when none completes, averaged over envs); pooled (the official Brax code: the mean of every "
        "episode completed in any env, 0 when none); last (the official MinAtar code: each env's last "
        "completed episode, 0 when none)",
        FIXED_FITNESSES,
    )
    actions: ActionMode = knob(
        "sample",
        "how policies act in every rollout, fitness and evaluation: sample from the "
        "policy (the paper's setting) or greedy (argmax / Gaussian mean)",
        ACTION_MODES,
    )
    obs_norm: ObsNormMode = knob(
        "constant",
        "observation normalisation: none; constant (statistics of random-action "
        "states); official (the official code's stored MinAtar / Brax statistics, (x - mean) / sqrt(var + 1e-8)); "
        "rollout (each rollout starts fresh running statistics and updates them with "
        "every observation its envs see: the paper's Brax setting); running (statistics pooled "
        "over every candidate's rollouts and all generations so far)",
        OBS_NORMS,
    )
    memory_check: bool = knob(
        True, "refuse, before anything is built, a run whose estimated generation memory exceeds the memory available"
    )
    obs_std_floor: float = knob(
        0.05, "lower bound on the normalisation std (avoids blowing up rare inputs)", bounds="(0, inf)"
    )
    init_scale: float = knob(
        0.3,
        "std of the initial dataset states (in normalised units); 0: all zeros (the official code)",
        bounds="[0, inf)",
    )
    init_states: InitStates = knob(
        "normal",
        "the initial dataset's states: normal (--init-scale x N(0, 1) in the policy's input units) or "
        "observed (states that uniformly random actions visit, as the policy sees them, plus that noise; "
        "discrete labels stay the fixed uniform ones)",
        INIT_STATES,
    )
    clip_states: ClipStates = knob(
        "none",
        "none, or observed: BC trains on the dataset's states clipped, feature by feature, to the range of "
        "the states uniformly random actions visit (in raw observation units; the ES's mean itself is not "
        "clipped, the artifact is); not with --obs-norm rollout",
        CLIP_STATES,
    )
    state_components: int = knob(
        0,
        "evolve each dataset state as this many coordinates on the principal axes of the states "
        "uniformly random actions visit (raw units, each axis scaled to its std; the state is their "
        "mean plus the coordinates' combination, so --init-scale and --sigma are in those stds) instead "
        "of one value per observation feature (0: off); not with direct ES, --obs-norm rollout, "
        "--init-dataset or --init-states observed",
        bounds="[0, inf)",
    )
    init_dataset: str = knob(
        "",
        "warm start: a dataset.safetensors (or its run directory, or zoo:NAME) of the same environment "
        "whose states (and, for continuous actions, labels) are the ES's starting mean instead of "
        "--init-states / --init-scale, "
        "e.g. a dataset evolved at a smaller budget; it must have this run's size and, for discrete "
        "actions, its fixed labels ('': none)",
    )
    label_layout: LabelLayout = knob(
        "interleaved",
        "discrete actions: fixed labels 0, 1, ..., A-1, 0, 1, ... over every state (interleaved), or the "
        "official code's blocks of dataset_size // A states per action, the remaining states evolved but "
        "never trained on and left out of the artifact (official)",
        LABEL_LAYOUTS,
    )
    learner_env_keys: LearnerEnvKeys = knob(
        "shared",
        "HaDES-R: the generation's learners roll out with the same environment keys (shared) or each with "
        "its own (own: the official code, which derives both a learner's init and its rollout from one key)",
        LEARNER_ENV_KEYS,
    )
    direct_init: DirectInit = knob(
        "policy",
        "direct ES: the search starts from a policy initialisation (policy) or from all-zero weights "
        "(zeros: the official baseline)",
        DIRECT_INITS,
    )
    eval_every: int = knob(
        5, "evaluate the current mean dataset every this many generations (0: only at the end)", bounds="[0, inf)"
    )
    eval_episodes: int = knob(
        16, "episodes per policy when evaluating the mean dataset (held-out keys)", bounds="[1, inf)"
    )
    eval_policies: int = knob(
        4,
        "freshly initialised policies trained on the mean dataset when evaluating "
        "(HaDES-F also reports its own init separately)",
        bounds="[1, inf)",
    )
    checkpoint_every: int = knob(10, "write a resumable checkpoint every this many generations", bounds="[1, inf)")
    devices: int = knob(
        0,
        "split the population over this many devices (0: the most visible devices that "
        "divide the population; an explicit count must divide it)",
    )
    evolve_bc: bool = knob(
        False,
        "evolve the BC learning rate and step count with the data (two extra genes, "
        "log scale; steps up to 2x --bc-steps); the artifact stores the evolved values",
    )
    evolve_label_temperature: bool = knob(
        False,
        "discrete actions: evolve a label temperature gene (log scale) starting from --bc-label-temperature "
        "(which must be > 0); BC trains on soft targets softmax(one_hot(label) / T) and the artifact stores "
        "the evolved T",
    )
    chunk: int = knob(
        0,
        "evaluate this many candidates at a time (bounds memory: HaDES holds chunk policies, "
        "not population many); 0: auto (CPU: 16 per device, which keeps the BC working set in "
        "cache; accelerators: the whole population); the population size: all at once",
    )
    policy: PolicyConfig = field(default_factory=PolicyConfig)
    bc: BCConfig = field(default_factory=BCConfig)
    es: ESConfig = field(default_factory=ESConfig)
    learner: LearnerConfig = field(default_factory=LearnerConfig)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_dict(cls, d: dict) -> DistillConfig:
        if not isinstance(d, dict):
            raise HadesError(f"a run config must be a JSON object (got {type(d).__name__})")
        flat = flatten(d)
        return replace_flat(cls(), legacy(flat))

    def validate(self) -> DistillConfig:
        """Raise HadesError for settings that cannot run; return self."""
        check_bounds(self)  # choices and intervals from the knobs, seeds, counts
        if self.devices < 0:
            raise HadesError(f"--devices must be >= 0 (got {self.devices})")
        self.learner.validate(self.policy)
        if self.learner.learners != "fixed" and self.variant != "hades-r":
            raise HadesError(
                f"--learners {self.learner.learners} needs --variant hades-r (fresh learners every generation)"
            )
        if self.evolve_label_temperature and (self.variant == "direct-es" or self.bc.bc_label_temperature <= 0):
            raise HadesError(
                "--evolve-label-temperature evolves HaDES' soft labels from --bc-label-temperature, "
                "which must be > 0 (e.g. 0.2)"
            )
        if self.variant == "direct-es" and (self.init_dataset or self.init_states != "normal"):
            raise HadesError(
                "--init-dataset and --init-states set HaDES' initial dataset; direct ES starts from a "
                "policy (--direct-init)"
            )
        if self.clip_states != "none" and (self.variant == "direct-es" or self.obs_norm == "rollout"):
            raise HadesError(
                "--clip-states clips HaDES' dataset in raw observation units: not for direct ES or --obs-norm rollout"
            )
        if self.state_components and (
            self.variant == "direct-es"
            or self.obs_norm == "rollout"
            or self.init_dataset
            or self.init_states != "normal"
        ):
            raise HadesError(
                "--state-components evolves HaDES' states on the principal axes of raw observations: not for "
                "direct ES, --obs-norm rollout, --init-dataset or --init-states observed"
            )
        if self.init_dataset and self.init_states != "normal":
            raise HadesError("--init-dataset sets the initial states itself; leave --init-states at normal")
        if self.evolve_bc and self.variant == "direct-es":
            raise HadesError("--evolve-bc evolves the inner loop of HaDES; direct ES has none")
        if self.chunk < 0 or (self.chunk and self.es.population % self.chunk):
            raise HadesError(f"--chunk must divide the population ({self.es.population}); got {self.chunk}")
        if self.fixed_fitness != "env-mean" and not self.fixed_length:
            raise HadesError(f"--fixed-fitness {self.fixed_fitness} defines the fitness of --fixed-length rollouts")
        if self.variant == "hades-r" and self.num_inits < 2:
            raise HadesError(
                f"HaDES-R needs --num-inits >= 2 (got {self.num_inits}); use --variant hades-f for one fixed init"
            )
        self.es.validate()
        self.bc.validate()
        return self


@dataclass(frozen=True)
class ImageDistillConfig:
    """Supervised dataset distillation: one synthetic image per class (``hades distill-images``)."""

    dataset: ImageDataset = knob("fashion-mnist", "which image dataset", get_args(ImageDataset))
    data_dir: str = knob("", "directory holding the IDX files ('': the directory $HADES_DATA_DIR names)")
    model: ImageModel = knob(
        "mlp",
        "classifier trained in the inner loop: mlp (one hidden layer) or cnn "
        "(3x3 conv with 16 channels, dense 128: the released code's)",
        get_args(ImageModel),
    )
    hidden: int = knob(128, "hidden units of the classifier's dense layer")
    image_init: ImageInit = knob("mean", "initial images: the class-wise mean images, or random", get_args(ImageInit))
    fitness_batch: int = knob(
        1024,
        "real training images per generation for the fitness loss "
        "(a fresh random minibatch each generation; 0: the full training set)",
    )
    num_inits: int = knob(
        1,
        "classifier initialisations per generation, shared by every candidate; the fitness "
        "averages over them (the released code: 2)",
    )
    holdout: int = knob(
        1000,
        "training images held out as a validation set (never used for fitness): in-run "
        "evaluations measure accuracy on them, the test set is used once, at the end; 0: no "
        "validation set, in-run evaluations show test accuracy (a curve to look at, never to "
        "pick a generation by)",
    )
    generations: int = knob(500, "ES generations")
    seed: int = knob(0, "random seed")
    eval_every: int = knob(50, "measure validation accuracy every this many generations (0: only at the end)")
    eval_classifiers: int = knob(20, "classifiers (fresh initialisations) trained on the images per accuracy figure")
    checkpoint_every: int = knob(100, "write a resumable checkpoint every this many generations")
    devices: int = knob(
        1,
        "devices to spread the population over (1: one, the default; 0: as many as divide the "
        "population; on CPU set XLA_FLAGS=--xla_force_host_platform_device_count=N)",
        bounds="[0, inf)",
    )
    chunk: int = knob(
        0,
        "candidates scored at a time (0: 4 per device on the full training set, to bound memory; the "
        "whole population with --fitness-batch); must divide the population",
        bounds="[0, inf)",
    )
    bc: BCConfig = field(
        default_factory=lambda: BCConfig(bc_lr=0.1, bc_steps=100, bc_max_grad_norm=0.0, bc_optimizer="sgd")
    )
    es: ESConfig = field(default_factory=lambda: ESConfig(population=64, sigma=0.02, es_lr=0.01))

    to_dict = DistillConfig.to_dict
    to_json = DistillConfig.to_json

    @classmethod
    def from_dict(cls, d: dict) -> ImageDistillConfig:
        if not isinstance(d, dict):
            raise HadesError(f"a run config must be a JSON object (got {type(d).__name__})")
        return replace_flat(cls(), legacy(flatten(d)))

    def validate(self) -> ImageDistillConfig:
        for name in ("generations", "eval_classifiers", "checkpoint_every", "hidden", "num_inits"):
            if getattr(self, name) < 1:
                raise HadesError(f"--{name.replace('_', '-')} must be >= 1 (got {getattr(self, name)})")
        self.es.validate()
        self.bc.validate()
        if self.fitness_batch < 0 or self.eval_every < 0 or self.holdout < 0:
            raise HadesError("--fitness-batch, --holdout and --eval-every must be >= 0")
        check_bounds(self)
        return self


def legacy(flat: dict) -> dict:
    """A flat config written by hades <= 0.1, read as what that version ran: greedy or sampled
    actions from ``stochastic_actions``; Adam at ``es_lr`` for every strategy with an optimizer."""
    flat = dict(flat)
    if "stochastic_actions" in flat:
        stochastic = flat.pop("stochastic_actions")
        flat.setdefault("actions", "sample" if stochastic else "greedy")  # a newer explicit value wins
    if "es_lr" in flat and "es_optimizer" not in flat:
        if flat.get("strategy", "Open_ES") in OPTIMIZER_STRATEGIES:
            flat["es_optimizer"] = "adam"
        else:
            flat["es_lr"] = 0.0
    return flat


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


# settings that say where a run's work is placed (devices, chunks, checkpoints, where the data
# lie), not what it computes: a run may resume, and a study continue, with other values
PLACEMENT = frozenset({"devices", "chunk", "checkpoint_every", "memory_check", "data_dir"})


def changed_settings(before: dict, now: dict, free=()) -> list[str]:
    """``'name old -> new'`` for each setting two (nested) config dicts give different values;
    placement, ``free`` and settings only one side has (an option a later hades added, whose
    default is the old behaviour) do not count."""
    a, b = flatten(before), flatten(now)
    same = a.keys() & b.keys()
    return [f"{k} {a[k]!r} -> {b[k]!r}" for k in sorted(same) if k not in PLACEMENT and k not in free and a[k] != b[k]]


def changes_said(changed: list[str], shown: int = 3) -> str:
    """``changed_settings``' list for a one-line error: the first ``shown``, then how many more."""
    return ", ".join(changed[:shown]) + (f" and {len(changed) - shown} more" if len(changed) > shown else "")


def _typed(name: str, default, value):
    """``value`` as the type of the field's ``default``, or a HadesError naming the setting."""
    kind = type(default)
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if kind is int and isinstance(value, float) and value.is_integer() and math.isfinite(value):
        return int(value)
    if isinstance(value, kind) and (kind is bool or not isinstance(value, bool)):
        return value
    raise HadesError(f"setting {name} must be {kind.__name__} (got {value!r})")


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
            changes[f.name] = _typed(f.name, sub, overrides.pop(f.name))
    if overrides:
        raise HadesError(f"unknown setting(s): {', '.join(sorted(overrides))}")
    return dataclasses.replace(cfg, **changes)


# settings the direct-ES baseline has no use for (`hades baseline` does not offer them): it evolves
# the weights of one policy, so there is no dataset, no inner loop (BC) and one evaluated policy
DIRECT_ES_IGNORES = (
    "variant",
    "dataset_size",
    "num_inits",
    *(f.name for f in fields_of(LearnerConfig)),
    "evolve_bc",
    "evolve_label_temperature",
    "init_scale",
    "init_states",
    "init_dataset",
    "clip_states",
    "state_components",
    "eval_policies",
    *(f.name for f in fields_of(BCConfig)),
)


# hades < 0.4 kept the presets and the environment table here; their names still resolve, with a
# DeprecationWarning (the one upward reference in the library, by name, resolved on first use)
_MOVED = {
    **dict.fromkeys(("PRESETS", "PRESET_DESCRIPTIONS", "IMAGE_PRESETS", "make_config", "make_image_config"), "presets"),
    **dict.fromkeys(("resolve_preset", "PerEnv"), "presets"),
    **dict.fromkeys(("ENV_SPECS", "BRAX_NAMES"), "envtable"),
}


def __getattr__(name: str):
    if name not in _MOVED:
        raise AttributeError(f"module 'hades.config' has no attribute {name!r}")
    import importlib
    import warnings

    module = f"hades.{_MOVED[name]}"
    warnings.warn(f"hades.config.{name} moved to {module} in hades 0.4", DeprecationWarning, stacklevel=2)
    return getattr(importlib.import_module(module), name)
