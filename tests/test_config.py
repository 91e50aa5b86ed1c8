"""Presets say what the paper's official code did; settings are checked before anything runs."""

import pytest

from hades.errors import HadesError
from hades.presets import make_config, make_image_config


def test_paper_minatar_is_the_official_minatar_setting():
    c = make_config("paper-minatar")
    assert (c.es.strategy, c.es.es_optimizer, c.es.es_lr, c.es.es_temperature) == ("SNES", "auto", 0.0, 20.0)
    assert (c.es.population, c.es.sigma, c.es.sigma_limit, c.es.es_rank_ties) == (2048, 0.5, 0.0, "position")
    assert (c.policy.width, c.policy.activation, c.bc.bc_steps, c.bc.bc_lr) == (512, "relu", 64, 0.03)
    assert (c.bc.bc_adam_eps, c.bc.bc_anneal, c.bc.bc_max_grad_norm) == (1e-5, False, 0.0)
    assert (c.actions, c.eval_envs, c.eval_steps, c.obs_norm, c.dataset_size) == ("sample", 8, 1024, "official", 16)
    assert (c.fixed_length, c.fixed_fitness, c.init_scale, c.policy.policy_init) == (True, "last", 0.0, "orthogonal")


def test_paper_minatar_baseline_has_its_own_hyperparameters():
    c = make_config("paper-minatar", variant="direct-es")
    assert (c.es.sigma, c.policy.width, c.direct_init) == (0.03, 256, "zeros")
    assert make_config("paper-minatar", variant="direct-es", sigma=0.1).es.sigma == 0.1  # the user's word wins
    assert make_config("paper-minatar").es.sigma == 0.5  # HaDES keeps its own


def test_paper_brax_is_the_official_brax_setting():
    c = make_config("paper-brax", env="brax/walker2d")
    assert (c.es.strategy, c.es.es_optimizer, c.es.es_lr, c.es.es_shaping) == ("Open_ES", "adam", 0.05, "raw")
    assert (c.obs_norm, c.actions, c.eval_steps, c.bc.bc_adam_eps, c.bc.bc_steps) == (
        "rollout",
        "sample",
        1024,
        1e-5,
        400,
    )
    assert (c.fixed_length, c.fixed_fitness, c.es.es_adam_b1, c.init_scale) == (True, "pooled", 0.99, 0.0)
    assert make_config("paper-brax", env="brax/hopper").bc.bc_steps == 200


def test_paper_images_is_the_released_setting():
    c = make_image_config("paper-images")
    assert (c.es.population, c.es.sigma, c.es.sigma_decay, c.es.sigma_limit) == (512, 0.02, 0.999, 0.001)
    assert (c.bc.bc_lr, c.bc.bc_optimizer, c.bc.bc_loss_per_action, c.es.es_adam_b1) == (0.1, "sgd", True, 0.99)
    assert (c.es.es_lr, c.es.es_lr_decay, c.fitness_batch, c.num_inits, c.model) == (0.01, 0.999, 0, 2, "cnn")


def test_every_preset_samples_actions_where_the_paper_does():
    for name in ("breakout", "breakout-p512", "space-invaders", "asterix", "freeway", "hopper", "walker2d"):
        c = make_config(name)
        assert c.actions == "sample" and c.eval_steps == 0, name


@pytest.mark.parametrize(
    "bad, message",
    [
        (dict(sigma=float("inf")), "--sigma"),
        (dict(sigma=float("nan")), "--sigma"),
        (dict(bc_lr=0.0), "--bc-lr"),
        (dict(sigma_limit=1.0, sigma=0.1), "--sigma-limit"),
        (dict(sigma_decay=1.5), "--sigma-decay"),
        (dict(bc_adam_eps=0.0), "--bc-adam-eps"),
        (dict(actions="argmax"), "unknown actions"),
    ],
)
def test_bad_settings_are_refused_up_front(bad, message):
    with pytest.raises(HadesError, match=message):
        make_config(None, **bad)


def test_legacy_stochastic_actions_key_is_read():
    from hades.config import DistillConfig

    assert DistillConfig.from_dict({"stochastic_actions": False}).actions == "greedy"
    assert DistillConfig.from_dict({"stochastic_actions": True}).actions == "sample"
    old = DistillConfig.from_dict({"es": {"strategy": "SNES", "es_lr": 0.05}})  # what hades 0.1 ran: Adam
    assert (old.es.es_optimizer, old.es.es_lr) == ("adam", 0.05)
    assert DistillConfig.from_dict({"es": {"strategy": "CMA_ES", "es_lr": 0.05}}).es.es_lr == 0.0


def test_paper_brax_preset_sets_bc_epochs_per_environment():
    assert make_config("paper-brax", env="brax/hopper").bc.bc_steps == 200
    assert make_config("paper-brax", env="brax/inverted_double_pendulum").bc.bc_steps == 200
    for env in ("brax/ant", "brax/walker2d", "brax/humanoid"):
        cfg = make_config("paper-brax", env=env)
        assert cfg.bc.bc_steps == 400
        assert (cfg.es.population, cfg.dataset_size, cfg.policy.width, cfg.bc.bc_lr) == (2048, 64, 512, 0.005)
    assert make_config("paper-brax", env="brax/ant", bc_steps=7).bc.bc_steps == 7  # options still win


@pytest.mark.parametrize("wide, base", [("cartpole-wide", "cartpole"), ("hopper-wide", "hopper")])
def test_wide_presets_are_the_learners_experiments_hades_r_wide(wide, base):
    # docs/experiments.md section 0 measured these as `--preset BASE --variant hades-r --learners wide`
    assert make_config(wide) == make_config(base, variant="hades-r", learners="wide")
    assert make_config(wide).learner.learners == "wide" and make_config(wide).variant == "hades-r"


@pytest.mark.parametrize(
    "cpu, paper, departures",
    [
        ("breakout", "paper-minatar", {"sigma"}),
        ("space-invaders", "paper-minatar", {"sigma"}),
        ("freeway", "paper-minatar", {"sigma"}),
        ("ant", "paper-brax", {"backend"}),
        ("humanoid", "paper-brax", {"backend"}),
        ("reacher", "paper-brax", {"backend"}),
    ],
)
def test_cpu_presets_are_the_paper_presets_with_the_outer_budget_scaled(cpu, paper, departures):
    # the inner loop stays the paper's; what differs is the outer budget (population, generations,
    # fitness episodes), the width the CPU can afford, and settings docs/reproduction.md justifies
    from hades.config import flatten
    from hades.presets import CPU_OUTER_BUDGET, PRESETS

    env = PRESETS[cpu]["env"]
    a, b = flatten(make_config(cpu).to_dict()), flatten(make_config(paper, env=env).to_dict())
    differ = {k for k in a if a[k] != b[k]}
    assert differ <= set(CPU_OUTER_BUDGET) | departures | {"eval_policies"}, differ
    assert {"bc_steps", "bc_lr", "bc_anneal", "bc_adam_eps", "bc_max_grad_norm", "init_scale"}.isdisjoint(differ)


@pytest.mark.parametrize(
    "preset, untuned, hades_f, hades_r, direct_width",
    [
        ("reacher", "inverted_pendulum", None, (383, 32, 0.081), 32),
        ("humanoid", "inverted_pendulum", None, (61, 64, 0.1), None),
        ("ant", "inverted_pendulum", None, (181, 64, 0.479), None),
        ("walker2d", "inverted_pendulum", (239, 4, 0.028), None, None),
        ("hopper", "inverted_pendulum", (131, 4, 0.028), None, None),
        ("space-invaders", "breakout", None, (89, 4, 0.028), None),
        ("freeway", "breakout", None, None, 32),
    ],
)
def test_a_study_that_held_moves_only_its_own_methods_preset(preset, untuned, hades_f, hades_r, direct_width):
    # reacher's optuna study: HaDES-R's and direct ES's bests held on held-out seeds; humanoid's, ant's
    # and SpaceInvaders': HaDES-R's alone; walker2d's: HaDES-F's alone; Freeway's: direct ES's so far; the other
    # methods' studies chose their presets (docs/reproduction.md). Each variant gets only its own
    from hades.config import flatten

    env = make_config(preset).env
    brax = env.startswith("brax/")

    def departures(variant):
        a = flatten(make_config(preset, variant=variant).to_dict())
        # an untuned cpu preset of the same domain (inverted_pendulum is not a paper environment, so no
        # study will move it), run on the studied preset's environment
        b = flatten(make_config(untuned, env=env, variant=variant).to_dict())
        return {k: a[k] for k in a if a[k] != b[k]}

    es_rate = "es_lr" if brax else "es_temperature"  # Open_ES' learning rate, SNES' temperature
    for variant, want in (("hades-f", hades_f), ("hades-r", hades_r)):
        got = departures(variant)
        if want is None:
            assert got == {}, variant
            continue
        assert set(got) <= {"sigma", "bc_steps", "bc_lr", "dataset_size", es_rate} and {"sigma", "bc_steps"} <= set(got)
        assert (got["bc_steps"], make_config(preset, variant=variant).dataset_size, round(got["sigma"], 3)) == want
    d = departures("direct-es")
    assert d == {} if direct_width is None else set(d) == {"sigma", "width", es_rate} and d["width"] == direct_width
    # paper-brax's baseline init kept; the MinAtar cpu presets' direct ES starts from a policy init
    assert make_config(preset, variant="direct-es").direct_init == ("zeros" if brax else "policy")
    assert make_config(preset, variant="hades-r", dataset_size=8).dataset_size == 8  # the user's word wins
    assert make_config(preset, variant="hades-f", dataset_size=8).dataset_size == 8


def test_train_with_a_preset_takes_the_inner_loop_of_the_datasets_variant():
    # `hades train DATASET --preset reacher`: a HaDES-R dataset is retrained with the inner loop
    # HaDES-R evolved it under (its own entry), a HaDES-F one with the preset's common one
    from hades.cli.datasets import preset_inner_loop

    base = make_config("cartpole")
    r = preset_inner_loop(base, "reacher", "brax/reacher", "hades-r")
    f = preset_inner_loop(base, "reacher", "brax/reacher", "hades-f")
    assert (r.bc.bc_steps, round(r.bc.bc_lr, 4)) == (383, 0.0355)
    assert (f.bc.bc_steps, f.bc.bc_lr) == (400, 0.005)
    assert r.env == base.env and r.policy.activation == "tanh"  # only policy and BC settings move
