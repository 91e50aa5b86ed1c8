"""Hyperparameter tuning with optuna (``hades tune``): one study per (environment, method), the same
number of trials and the same outer budget per trial for every method, resumable.

- **Search spaces** are declared per method in ``SPACES``: HaDES (F and R) tunes sigma, BC steps,
  BC learning rate, dataset size and the ES's own knob (the SNES rank temperature, or the ES
  learning rate of Open_ES); direct ES tunes sigma, that ES knob and the policy width. With
  ``strategies`` (``--strategies SNES,Sep_CMA_ES``) the strategy itself is a tuned choice for every
  method alike, each trial running the one drawn with its own update rule (``es.switch_strategy``)
  and that strategy's knob proposed only when it is drawn. Everything else, the outer budget
  included (population, generations, evaluation episodes), is the preset's and is the same for
  every method.
- **Trials** are ordinary run directories (``out/trials/<study>/<setting>/seed<S>``) run with the tuning
  seeds (100 by default), kept apart from the seeds results are reported with (0, 1, 2). A trial's
  value is its final evaluation under the protocol (held-out keys, fresh inits; HaDES-F's own
  init, the figure the paper reports for it), averaged over the tuning seeds; nothing is selected
  on a test set (RL has none; image runs are not tuned here).
- **Storage** is optuna's SQLite database ``out/study.db``: a killed ``hades tune`` continues where it
  stopped when run again (a trial that was running is failed by its missed heartbeat and retried,
  resuming its run directory from the last checkpoint), and several processes or machines that
  see the same file can share a study. A study whose directory is gone with its machine continues
  from its ``tuning.json`` alone (``--import``, ``import_trials``): its trials are added to a new
  study as they finished, the one that was running is run again, and so are the held-out
  check's finished runs (``finished_holdout_runs``). optuna's TPE sampler proposes
  settings after a random start of half the trials (at most optuna's 10: with its default, a
  study of 10 trials or fewer would be random search); its median pruner stops a trial whose
  in-run evaluation trails the median of earlier trials at the same generation, from the second
  half of the run on (``make_pruner``).
- **The preset's own setting is trial 0** of every new study (``preset_point``; each declared range
  is widened to hold it, e.g. the Brax presets' 200-400 BC steps), so a study measures what it
  would change at the same cost and seeds as its proposals. A study whose preset setting lies
  outside the space (a strategy not among ``--strategies``, SNES' own weights: temperature 0)
  has no such trial.
- **Results**: ``tuning.json`` (every trial, the best setting and the importance of each
  parameter, fANOVA) for ``write_report`` to turn into ``tuning.md`` and ``tuning.png``.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import logging
import math
import warnings
from dataclasses import dataclass
from pathlib import Path

from hades.config import DIRECT_ES_IGNORES, changed_settings, changes_said, flatten
from hades.errors import HadesError, HadesWarning
from hades.es import DEFAULT_ADAM_LR, STRATEGIES, switch_strategy
from hades.launch import Launcher, Unit, launch
from hades.presets import make_config


@dataclass(frozen=True)
class Param:
    """One tuned setting: ``kind`` float (log-uniform), int (log-uniform) or choice."""

    kind: str
    low: float = 0.0
    high: float = 0.0
    choices: tuple = ()


HADES_SPACE = {
    "sigma": Param("float", 0.01, 1.0),
    "bc_steps": Param("int", 8, 128),
    "bc_lr": Param("float", 1e-3, 0.1),
    "dataset_size": Param("choice", choices=(4, 8, 16, 32, 64)),
}
DIRECT_SPACE = {
    "sigma": Param("float", 0.003, 0.3),
    "width": Param("choice", choices=(32, 64, 128, 256)),
}
# the ES's own knob, by strategy: rank temperature (SNES), learning rate (Open_ES)
ES_KNOBS = {"SNES": {"es_temperature": Param("float", 5.0, 40.0)}, "Open_ES": {"es_lr": Param("float", 0.005, 0.2)}}
SPACES = {"hades-f": HADES_SPACE, "hades-r": HADES_SPACE, "direct-es": DIRECT_SPACE}
TUNING_SEEDS = (100,)
FINISHED = ("COMPLETE", "PRUNED")  # the trial states a study's --trials counts (failed ones do not)


def space_for(
    preset: str | None, env: str | None, method: str, overrides: dict | None = None, strategies: tuple = ()
) -> dict[str, Param]:
    """The declared space of ``method``, plus the knob of the strategy the run uses; with
    ``strategies``, the strategy itself instead (each proposed strategy's knob is then proposed
    only for it: ``strategy_knobs``)."""
    if method not in SPACES:
        raise HadesError(f"unknown method {method!r} to tune; choose from {', '.join(SPACES)}")
    return _space(_base(preset, env, method, overrides), method, strategies)


def _base(preset, env, method: str, overrides: dict | None = None):
    """The config every trial of ``method``'s study starts from: the preset with the study's overrides."""
    return make_config(preset, **({"env": env} if env else {}), variant=method, **(overrides or {}))


def _values(base) -> dict:
    """``base``'s settings, flat, as its run uses them (``es_lr`` 0 means Adam's default)."""
    flat = flatten(base.to_dict())
    return {**flat, "es_lr": flat["es_lr"] or DEFAULT_ADAM_LR}


@functools.cache
def _discrete_actions(env: str, backend: str) -> int:
    """The number of discrete actions of ``env`` (0: continuous actions)."""
    if env.startswith("brax/"):  # continuous, and slow to build
        return 0
    from hades.envs import make_env

    made = make_env(env, backend)
    return made.num_actions if made.discrete else 0


def _space(base, method: str, strategies: tuple) -> dict[str, Param]:
    values = _values(base)
    declared = {k: _widened(p, values[k]) for k, p in SPACES[method].items()}
    if "dataset_size" in declared and base.label_layout == "official":
        # the official labels give each action dataset_size // actions states: fewer states than
        # actions is a run the distiller refuses (Asterix has 5 actions: 4 states is not a setting)
        actions = _discrete_actions(base.env, base.backend)
        p = declared["dataset_size"]
        kept = tuple(c for c in p.choices if c >= actions)
        declared["dataset_size"] = dataclasses.replace(p, choices=kept or (actions,))
    if strategies:
        return {**declared, "strategy": Param("choice", choices=tuple(strategies))}
    return {**declared, **{k: _widened(p, values[k]) for k, p in ES_KNOBS.get(base.es.strategy, {}).items()}}


def kept_choices(study, space: dict[str, Param]) -> dict[str, Param]:
    """A study's dataset sizes as it first drew them: optuna refuses another set of choices for a
    parameter, so a study begun by an older hades (which proposed sizes the labels refuse) keeps its
    set; such a proposal is then a refused trial, not a crash."""
    p = space.get("dataset_size")
    for t in study.get_trials(deepcopy=False) if p is not None else ():
        drawn = t.distributions.get("dataset_size")
        if drawn is not None and tuple(drawn.choices) != p.choices:
            return {**space, "dataset_size": dataclasses.replace(p, choices=tuple(drawn.choices))}
    return space


def _contains(p: Param, value) -> bool:
    if p.kind == "choice":
        return value in p.choices
    return isinstance(value, (int, float)) and p.low <= value <= p.high


def _widened(p: Param, value) -> Param:
    """``p`` stretched to hold the preset's ``value`` (a log range cannot hold 0: left as it is)."""
    if _contains(p, value) or isinstance(value, bool):
        return p
    if p.kind == "choice":
        return dataclasses.replace(p, choices=tuple(sorted((*p.choices, value))))
    if isinstance(value, (int, float)) and value > 0:
        return dataclasses.replace(p, low=min(p.low, value), high=max(p.high, value))
    return p


def preset_point(preset, env, method: str, overrides: dict | None = None, strategies: tuple = ()) -> dict | None:
    """The preset's own setting as a point of the study's space (trial 0 of a new study), or None
    when it is not one (its strategy is not among ``strategies``, or a value the space cannot hold)."""
    return _preset_point(_base(preset, env, method, overrides), method, strategies)


def _preset_point(base, method: str, strategies: tuple) -> dict | None:
    space = _space(base, method, strategies)
    if strategies:
        space = {**space, **ES_KNOBS.get(base.es.strategy, {})}
    values = _values(base)
    point = {k: values[k] for k in space}
    return point if all(_contains(p, point[k]) for k, p in space.items()) else None


def trial_settings(base, params: dict) -> dict:
    """What a trial runs on top of ``base``: its setting and, for a drawn strategy, the resets that
    strategy needs (``es.switch_strategy``: the preset's SNES temperature or Open_ES's Adam would
    otherwise be refused or kept), those that change something."""
    if "strategy" not in params:
        return dict(params)
    flat = flatten(base.to_dict())
    resets = switch_strategy(base.es, params["strategy"])
    return {**{k: v for k, v in resets.items() if flat[k] != v}, **params}


def trial_command(preset, env, method: str, overrides: dict, params: dict) -> str:
    """The command that runs a trial's setting again, ``--seed S`` left for the seed to run: the
    study's overrides and ``trial_settings``, so the command runs what the trial ran (for direct
    ES: all it uses; the inner loop's settings, which ``hades baseline`` does not offer, are left
    out)."""
    import shlex

    settings = {**overrides, **trial_settings(_base(preset, env, method, overrides), params)}
    if method == "direct-es":  # what `hades baseline` does not offer, the run does not use
        settings = {k: v for k, v in settings.items() if k not in DIRECT_ES_IGNORES}
    argv = ["hades", "baseline" if method == "direct-es" else "distill"]
    argv += ["--preset", preset] if preset else []
    argv += ["--env", env] if env else []
    argv += [] if method == "direct-es" else ["--variant", method]
    for k, v in settings.items():
        flag = "--" + k.replace("_", "-")
        if isinstance(v, bool):
            argv.append(flag if v else "--no-" + k.replace("_", "-"))
        else:
            argv += [flag, repr(v) if isinstance(v, float) else str(v)]
    return " ".join(shlex.quote(a) for a in argv) + " --seed S"


def retry_interrupted(study, optuna) -> None:
    """Queue again, with the same setting, each trial a stop request interrupted (Ctrl-C,
    SIGTERM: optuna marks it failed), so the study continues it from its runs' checkpoints; a
    trial that failed on its own (a refused setting) is not retried. A process killed outright
    leaves its trial running, which the storage's heartbeat retries (``_storage``)."""
    trials = study.get_trials(deepcopy=False)
    retried = {t.user_attrs.get("retry_of") for t in trials}
    for t in trials:
        if t.state == optuna.trial.TrialState.FAIL and t.user_attrs.get("interrupted") and t.number not in retried:
            attrs = {"retry_of": t.number, **({"preset": True} if t.user_attrs.get("preset") else {})}
            study.enqueue_trial(t.params, user_attrs=attrs)


def load_record(path) -> dict:
    """Another study directory's ``tuning.json`` (``--import``), or a one-line error."""
    path = Path(path)
    try:
        record = json.loads(path.read_text())
    except FileNotFoundError:
        raise HadesError(f"--import: no such file {path}") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise HadesError(f"--import: {path} is not a tuning.json ({e})") from None
    if not isinstance(record, dict) or not isinstance(record.get("studies"), dict):
        raise HadesError(f"--import: {path} is not a tuning.json (no studies)")
    return record


def check_import(record: dict, preset, env, methods, overrides, strategies, seeds, out: Path, storage=None) -> None:
    """A record is taken in only by the study it came from: the same preset, environment, tuning
    seeds, settings and strategies (so its trials' values rank beside new ones), and only into
    studies that hold no trial yet (numbers and settings are copied as they were)."""
    asked = {"preset": preset, "env": env, "seeds": list(seeds), "overrides": dict(overrides),
             "strategies": list(strategies)}  # fmt: skip
    for key, value in asked.items():
        if record.get(key) != value:
            raise HadesError(
                f"--import: the record's study ran with {key} {record.get(key)!r}, this command with {value!r}; "
                "import it with the options its study began with"
            )
    names = [study_name(_base(preset, env, m, dict(overrides)).env, m) for m in methods]
    if not any(n in record["studies"] for n in names):
        raise HadesError(f"--import: the record holds none of this command's studies ({', '.join(names)})")
    if storage is None and not (Path(out) / "study.db").is_file():
        return
    optuna = _optuna()
    storage = storage or _storage(optuna, Path(out))
    for name in names:
        if name not in record["studies"]:
            continue
        try:
            study = optuna.load_study(study_name=name, storage=storage)
        except KeyError:
            continue
        if study.get_trials(deepcopy=False):
            raise HadesError(
                f"--import: {out} already holds trials of {name}; import into a new --out (or continue it as it is)"
            )


def import_trials(optuna, study, rows: list[dict], space: dict[str, Param]) -> None:
    """Add another directory's trials (``tuning.json``'s rows, from ``hades tune`` or its
    ``--report``) to the empty ``study``, in order and so with their numbers: finished ones as
    they finished (value, in-run evaluations for the pruner), a stopped one or one its machine
    lost while it ran as stopped (``retry_interrupted`` then runs its setting again unless a later
    row already did), a failed one as failed, a queued one queued again. Their run directories
    stay behind (the held-out check's finished runs travel on their own: ``finished_holdout_runs``)."""
    from optuna.distributions import json_to_distribution

    state = optuna.trial.TrialState
    for row in sorted(rows, key=lambda r: r["number"]):
        unknown = sorted(set(row["params"]) - set(space))
        if unknown:
            raise HadesError(
                f"--import: trial {row['number']} tunes {', '.join(unknown)}, which this study does not "
                f"({', '.join(sorted(space))})"
            )
        attrs = {k: row[k] for k in ("preset", "refused", "retry_of") if k in row}
        if row["state"] == "WAITING":
            study.enqueue_trial(row["params"], user_attrs=attrs)
            continue
        recorded = row.get("distributions") or {}
        distributions = {
            k: json_to_distribution(recorded[k]) if k in recorded else _distribution(optuna, space[k])
            for k in row["params"]
        }
        done = row["state"] in FINISHED
        # stopped, or running when its machine went: run again (a trial the heartbeat failed was
        # queued again by it, a row of its own; a refused one is not retried)
        if row["state"] == "RUNNING" or row.get("stopped"):
            attrs["interrupted"] = True
        study.add_trial(
            optuna.trial.create_trial(
                state=state[row["state"]] if done else state.FAIL,
                value=row["value"] if done else None,
                params=row["params"],
                distributions=distributions,
                intermediate_values={int(k): v for k, v in (row.get("intermediate") or {}).items()},
                user_attrs=attrs,
            )
        )


def _distribution(optuna, p: Param):
    """The optuna distribution ``_suggest`` draws ``p`` from."""
    d = optuna.distributions
    if p.kind == "float":
        return d.FloatDistribution(p.low, p.high, log=True)
    if p.kind == "int":
        return d.IntDistribution(int(p.low), int(p.high), log=True)
    return d.CategoricalDistribution(list(p.choices))


def make_pruner(optuna, generations: int):
    """optuna's median pruner, from the second half of a run on: a trial stops when its in-run
    evaluation trails the median of earlier trials at the same generation. Not before: early
    returns are noisy and rank settings differently from the final ones (a strategy that starts
    slower can finish higher), and pruning at the first evaluation stopped half of a Breakout
    study's trials at generation 10 of 200."""
    return optuna.pruners.MedianPruner(n_startup_trials=3, n_warmup_steps=generations // 2)


def startup_trials(trials: int) -> int:
    """Random proposals before TPE models the study: half the trials, at most optuna's default 10."""
    return max(1, min(10, trials // 2))


def strategy_knobs(strategies: tuple) -> dict[str, Param]:
    """Every knob a study over ``strategies`` can propose (each only when its strategy is drawn)."""
    return {k: p for s in strategies for k, p in ES_KNOBS.get(s, {}).items()}


def check_strategies(strategies: tuple, overrides: dict) -> None:
    unknown = [s for s in strategies if s not in STRATEGIES]
    if unknown:
        raise HadesError(f"--strategies: unknown ES strategy {unknown[0]!r} (choose from {', '.join(STRATEGIES)})")
    if "strategy" in overrides:
        raise HadesError("--strategies tunes the strategy; drop --strategy")


def _suggest(trial, name: str, p: Param):
    if p.kind == "float":
        return trial.suggest_float(name, p.low, p.high, log=True)
    if p.kind == "int":
        return trial.suggest_int(name, int(p.low), int(p.high), log=True)
    return trial.suggest_categorical(name, list(p.choices))


def objective_key(method: str) -> str:
    """The summary figure a trial is scored by: HaDES-F's own init (what the paper reports), the
    fresh-init return otherwise."""
    return "final_own_init_return_mean" if method == "hades-f" else "final_return_mean"


def study_name(env: str, method: str) -> str:
    return f"{env.replace('/', '-')}_{method}"


def _optuna():
    try:
        import optuna
    except ImportError:
        raise HadesError("hades tune needs optuna: pip install 'hades[tune]'") from None
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    optimizer_log = logging.getLogger("optuna.study._optimize")
    if not any(isinstance(f, _QuietStops) for f in optimizer_log.filters):
        optimizer_log.addFilter(_QuietStops())
    return optuna


class _QuietStops(logging.Filter):
    """Drops optuna's two warnings for a trial stopped by Ctrl-C or SIGTERM (its traceback, then
    "failed with value None"): a stop is not a failure, and hades says in one line how to go on."""

    def __init__(self):
        super().__init__()
        self.stopped = None  # the message prefix of the stopped trial's second warning

    def filter(self, record) -> bool:
        exc = record.exc_info
        if exc and exc[0] is not None and issubclass(exc[0], KeyboardInterrupt):
            self.stopped = record.getMessage().split(" failed with parameters")[0] + " failed with value"
            return False
        if self.stopped and record.getMessage().startswith(self.stopped):
            self.stopped = None
            return False
        return True


# seconds a write waits for another process's lock on study.db before SQLite says "database is
# locked" (its default, 5 s, is short when trials on a busy 2-core machine share one study)
SQLITE_BUSY_TIMEOUT = 60
# trials of one `run_trials` call another process may fail as stale before the call gives up
MAX_LOST_TRIALS = 3


def _storage(optuna, out: Path):
    """SQLite storage with heartbeats: a trial whose process died is failed after the grace period
    and retried with the same setting (whose run directories then resume). A heartbeat that finds
    the database busy is skipped, not fatal (``_beat_class``)."""
    import warnings

    from optuna.storages import RetryHeartbeatStaleTrialCallback

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return _beat_class()(
            f"sqlite:///{out / 'study.db'}",
            engine_kwargs={"connect_args": {"timeout": SQLITE_BUSY_TIMEOUT}},
            heartbeat_interval=30,
            grace_period=120,
            heartbeat_stale_trial_callback=RetryHeartbeatStaleTrialCallback(
                max_retry=2, inherit_intermediate_values=True
            ),
        )


@functools.cache
def _beat_class():
    """optuna's RDBStorage whose heartbeat survives a busy database. optuna beats from a thread
    that ends at its first exception, so one "database is locked" silences a live trial; 120 s
    later another process's stale check fails it, and its own process ends on "Cannot tell a FAIL
    trial" (the likeliest cause of CI's one failure of the Ray tuning test, whose workers' stderr
    it did not keep). Here a missed beat is retried at the next one, 30 s on."""
    import optuna
    import sqlalchemy.exc
    from optuna.storages import RDBStorage

    class BusyTolerantStorage(RDBStorage):
        def record_heartbeat(self, trial_id: int) -> None:
            try:
                super().record_heartbeat(trial_id)
            except (optuna.exceptions.StorageInternalError, sqlalchemy.exc.OperationalError):
                pass

    return BusyTolerantStorage


def check_request(preset, env, methods, overrides, strategies, trials: int, seeds, holdout_seeds=()) -> None:
    """Refuse a study that cannot run (an unknown method or strategy, a tuned setting also given,
    no trial to finish, held-out seeds the study tunes on or too few for an interval), before any
    progress is drawn or any file written."""
    check_strategies(strategies, overrides)
    if holdout_seeds and (len(set(holdout_seeds)) < 2 or set(holdout_seeds) & set(seeds)):
        raise HadesError("--holdout-seeds needs 2 or more distinct seeds, none of them a tuning seed (--seeds)")
    tuned = set().union(
        *(space_for(preset, env, m, overrides, strategies) for m in methods), strategy_knobs(strategies)
    )
    clash = sorted(tuned & overrides.keys())
    if clash:
        raise HadesError(f"--{clash[0].replace('_', '-')} is tuned; it cannot also be given")
    if trials < 1:
        raise HadesError(f"--trials must be >= 1 (got {trials})")
    if not seeds:
        raise HadesError("--seeds must name at least one tuning seed")
    if not methods:
        raise HadesError("--variants names no method to tune")


def check_same_study(study, name: str, base, space: dict, out: Path) -> None:
    """Refuse to continue a study whose trials ran other settings or tuned other parameters: its
    trials' run directories (named by the tuned parameters alone) would be resumed or read back
    under a config they were not made with, and the study would rank trials of two budgets. The
    tuned parameters' base values do not count: every trial sets them (the preset's own trial
    keeps the values it was enqueued with), so a study outlives a preset its result moved."""
    old = study.user_attrs.get("base")
    if old is None or not study.get_trials(deepcopy=False):
        return
    changed = changed_settings(old, base.to_dict(), free=set(space))
    if changed:
        raise HadesError(
            f"{out} holds the study {name} run with other settings ({changes_said(changed)}); "
            "continue it with the options it began with, or choose another --out"
        )
    tuned = set(study.user_attrs.get("space", {}))
    if tuned and tuned != set(space):
        raise HadesError(
            f"{out} holds the study {name} tuning {', '.join(sorted(tuned))}; this command tunes "
            f"{', '.join(sorted(space))} (another --strategies?): continue it as it began, or choose another --out"
        )


def check_continuation(preset, env, methods, overrides, strategies, out, storage=None) -> None:
    """Before anything is drawn or run: a study ``out`` already holds continues only with the
    settings it began with (``check_same_study``)."""
    out = Path(out)
    if not (out / "study.db").is_file():
        return
    optuna = _optuna()
    storage = storage or _storage(optuna, out)
    for method in methods:
        base = _base(preset, env, method, dict(overrides or {}))
        name = study_name(base.env, method)
        try:
            study = optuna.load_study(study_name=name, storage=storage)
        except KeyError:  # this method's study has not begun
            continue
        check_same_study(study, name, base, {**_space(base, method, strategies), **strategy_knobs(strategies)}, out)


def tune(
    preset: str | None,
    methods: list[str],
    out_dir,
    *,
    trials: int,
    env: str | None = None,
    seeds: tuple[int, ...] = TUNING_SEEDS,
    overrides: dict | None = None,
    sampler_seed: int = 0,
    on_trial=None,
    reporter_factory=None,
    launcher: Launcher | None = None,
    on_status=None,
    strategies: tuple = (),
    on_resume=None,
    holdout_seeds: tuple[int, ...] = (),
    on_holdout_status=None,
    report_only: bool = False,
    imported: dict | None = None,
) -> dict:
    """Run (or continue) one study per method until each has ``trials`` finished trials; write
    ``tuning.json`` after every finished trial (the trials so far) and at the end, and return its
    content (``report_only``: from the trials finished so far, and the
    held-out check where all its runs finished; nothing runs). ``overrides`` (flat settings: a
    smaller budget, say) apply to every method alike; ``on_trial(study, number, value, state)``
    is told of each finished trial, ``on_resume(n)`` of the trials (counted towards ``trials``)
    that earlier invocations finished.
    With ``holdout_seeds``, each study's best setting is then run beside the preset's on those
    seeds (``holdout_check``: the one-seed study's winner is often noise); with a launcher those
    runs are its units too (``on_holdout_status`` as ``on_status`` is for the trials).
    ``imported`` (another directory's ``tuning.json``, ``load_record``) starts each study that
    holds no trial here from the record's trials (``import_trials``), e.g. a study whose machine
    was given back; its trials count towards ``trials``."""
    optuna = _optuna()

    out = Path(out_dir)
    overrides = dict(overrides or {})
    strategies = tuple(strategies)
    check_request(preset, env, methods, overrides, strategies, trials, seeds, holdout_seeds)
    bases = {m: _base(preset, env, m, overrides) for m in methods}
    names = {m: study_name(base.env, m) for m, base in bases.items()}
    if report_only and not (out / "study.db").is_file():
        raise HadesError(f"{out} holds no study (no study.db): nothing to report")
    out.mkdir(parents=True, exist_ok=True)
    storage = _storage(optuna, out)
    if imported is not None:
        if report_only:
            raise HadesError("--import adds trials; --report runs and adds nothing: give one of them")
        check_import(imported, preset, env, methods, overrides, strategies, seeds, out, storage)
    if report_only:  # the loop below, which checks each study it continues, does not run
        check_continuation(preset, env, methods, overrides, strategies, out, storage)
        known = set(optuna.get_all_study_names(storage))
        names = {m: n for m, n in names.items() if n in known}  # the methods whose study has begun
    done = tuple(optuna.trial.TrialState[state] for state in FINISHED)
    remote = launcher is not None and launcher.remote
    units, prepared = [], []
    for method, base in bases.items() if not report_only else ():
        name = names[method]
        space = {**_space(base, method, strategies), **strategy_knobs(strategies)}
        existing = optuna.create_study(study_name=name, storage=storage, direction="maximize", load_if_exists=True)
        check_same_study(existing, name, base, space, out)
        existing.set_user_attr("space", {k: vars(p) | {"choices": list(p.choices)} for k, p in space.items()})
        existing.set_user_attr("base", base.to_dict())
        if imported is not None and name in imported["studies"] and not existing.get_trials(deepcopy=False):
            import_trials(optuna, existing, imported["studies"][name]["trials"], space)
            # its finished held-out runs, taken where the check runs the same settings
            existing.set_user_attr("holdout_runs", imported["studies"][name].get("holdout_runs", []))
        point = _preset_point(base, method, strategies)
        if point is not None and not existing.get_trials(deepcopy=False):
            existing.enqueue_trial(point, user_attrs={"preset": True}, skip_if_exists=True)
        retry_interrupted(existing, optuna)
        finished = len(existing.get_trials(deepcopy=False, states=done))
        # a continued study must not replay the sampler's first proposals: seed it past what it has
        first = sampler_seed + len(existing.get_trials(deepcopy=False))
        job = _Study(preset, env, method, str(out), tuple(seeds), overrides, trials, strategies)
        prepared.append((name, job, finished, first))
    from hades.artifacts import atomic_write

    def summarize() -> dict:
        summaries = {}
        for method, name in names.items():
            summary = study_summary(optuna, optuna.load_study(study_name=name, storage=storage), method)
            if summary["best_params"] is not None:
                summary["best_command"] = trial_command(preset, env, method, overrides, summary["best_params"])
            summaries[method] = summary
        return summaries

    def write(summaries: dict, target=None) -> dict:
        """``tuning.json`` from each method's summary (``target``: --trials, None while part-way)."""
        studies = {names[m]: summary for m, summary in summaries.items()}
        record = {"preset": preset, "env": env, "seeds": list(seeds), "trials": target, "overrides": overrides,
                  "strategies": list(strategies), "holdout_seeds": list(holdout_seeds), "studies": studies}  # fmt: skip
        atomic_write(out / "tuning.json", json.dumps(record, indent=1, sort_keys=True))
        return record

    def trial_done(*trial):
        if on_trial is not None:
            on_trial(*trial)
        # the record as it stands, after every trial: what `--import` continues from if this
        # machine goes before the study ends
        write(summarize())

    if on_resume is not None:  # trials an earlier invocation finished, for a progress count
        on_resume(sum(min(finished, trials) for _, _, finished, _ in prepared))
    for name, job, finished, first in prepared:
        if finished >= trials:
            continue
        if remote:  # one trial per task, each with its own sampler seed; the study is shared in study.db
            units += [
                Unit(f"{name} trial {finished + k}", run_trials, (job, first + k, 1)) for k in range(trials - finished)
            ]
        else:
            run_trials(job, first, trials - finished, trial_done, reporter_factory)
    if units:

        def done_(unit, trials_run):
            for trial in trials_run:
                trial_done(*trial)

        launch(units, launcher, on_done=done_, on_status=on_status)
    summaries = summarize()
    # studies a held-out check applies to, and of those, the ones whose best is not the preset's trial
    eligible = [m for m, s in summaries.items() if holdout_seeds and None not in (s["best_params"], s["preset_trial"])]
    checks = {
        m: next(t["params"] for t in summaries[m]["trials"] if t["number"] == summaries[m]["preset_trial"])
        for m in eligible
        if summaries[m]["best_trial"] != summaries[m]["preset_trial"]
    }
    # the held-out runs finished so far, here or (imported) elsewhere: in the record, so that
    # `--import` carries them too
    for m, preset_params in checks.items():
        imported_runs = optuna.load_study(study_name=names[m], storage=storage).user_attrs.get("holdout_runs", [])
        summaries[m]["holdout_runs"] = finished_holdout_runs(
            imported_runs, bases[m], m, preset_params, summaries[m]["best_params"], holdout_seeds,
            out / "holdout" / names[m])  # fmt: skip
    if report_only:  # only checks whose runs all finished: reading them back runs nothing
        checks = {
            m: params for m, params in checks.items() if len(summaries[m]["holdout_runs"]) == 2 * len(holdout_seeds)
        }
    elif checks:
        write(summaries)
    # every held-out run not finished a task of its own; holdout_check below reads them back
    if remote and checks and not report_only:
        units = [
            Unit(f"{names[m]} held-out {label} seed {seed}", score_setting,
                 (preset, env, m, overrides, settings, seed, folder))
            for m, preset_params in checks.items()
            for label, settings, seed, folder in holdout_runs(
                bases[m], preset_params, summaries[m]["best_params"], holdout_seeds,
                out / "holdout" / names[m])
            if not _known_run(summaries[m]["holdout_runs"], label, seed)
        ]  # fmt: skip
        launch(units, launcher, on_status=on_holdout_status)
    for method, summary in summaries.items():
        if method in checks:

            def on_run(entry, summary=summary):
                summary["holdout_runs"].append(entry)
                write(summaries)

            summary["holdout"] = holdout_check(preset, env, method, overrides, checks[method], summary["best_params"],
                                               holdout_seeds, out / "holdout" / names[method], reporter_factory,
                                               known=summary["holdout_runs"], on_run=on_run)  # fmt: skip
        elif method in eligible and summary["best_trial"] == summary["preset_trial"]:
            summary["holdout"] = {"seeds": list(holdout_seeds), "verdict": "preset"}  # the preset won the study itself
    return write(summaries, None if report_only else trials)


def run_setting(
    preset, env, method: str, overrides: dict, settings: dict, seed: int, folder: Path, reporter=None
) -> dict:
    """Run (or resume, or read back) ``settings`` at ``seed`` in ``folder/seedS``, as every trial
    does (the config a trial of that setting runs), and return the run's summary."""
    from hades.runs import Reporter, run

    env_kw = {"env": env} if env else {}
    cfg = make_config(preset, **env_kw, variant=method, seed=seed, **overrides, **settings)
    run_dir = Path(folder) / f"seed{seed}"
    resume = (run_dir / "checkpoint.safetensors").is_file()
    return run(cfg, run_dir, resume=resume, reporter=reporter or Reporter())


def score_setting(
    preset, env, method: str, overrides: dict, settings: dict, seed: int, folder: Path, reporter=None
) -> float:
    """``run_setting``'s run, and the figure the study scores."""
    summary = run_setting(preset, env, method, overrides, settings, seed, folder, reporter)
    return float(summary[objective_key(method)])


def holdout_runs(base, preset_params: dict, best_params: dict, seeds, out: Path):
    """The held-out check's runs: ``(label, settings, seed, folder)`` for the preset's setting and
    the study's best on every seed."""
    for label, params in (("preset", preset_params), ("best", best_params)):
        settings = trial_settings(base, params)
        for seed in seeds:
            yield label, settings, int(seed), out / label


def finished_holdout_runs(imported: list, base, method: str, preset_params: dict, best_params: dict, seeds,
                          out: Path) -> list[dict]:  # fmt: skip
    """The held-out check's runs that finished: each ``{label, seed, params, score, fresh}``, from
    ``imported`` (a record's, taken in by ``--import``: those of these settings) or read from the
    run directories here."""
    key = objective_key(method)
    found = []
    for label, _, seed, folder in holdout_runs(base, preset_params, best_params, seeds, out):
        params = preset_params if label == "preset" else best_params
        entry = next((r for r in imported if (r["label"], r["seed"], r["params"]) == (label, seed, params)), None)
        path = folder / f"seed{seed}" / "summary.json"
        if entry is None and path.is_file():
            entry = _holdout_entry(label, seed, params, json.loads(path.read_text()), key)
        if entry is not None:
            found.append(entry)
    return found


def _holdout_entry(label: str, seed: int, params: dict, summary: dict, key: str) -> dict:
    """A finished held-out run as the record keeps it: its setting, seed, score and fresh-init return."""
    return {"label": label, "seed": seed, "params": params, "score": float(summary[key]),
            "fresh": float(summary["final_return_mean"])}  # fmt: skip


def _known_run(runs: list, label: str, seed: int):
    return next((r for r in runs if (r["label"], r["seed"]) == (label, seed)), None)


def holdout_check(
    preset, env, method: str, overrides: dict, preset_params: dict, best_params: dict, seeds, out: Path,
    reporter_factory=None, known=(), on_run=None,
) -> dict:  # fmt: skip
    """The study's best setting against the preset's on ``seeds`` (tuning seeds the study did not
    use, never reported ones): both run on every seed (``out/{preset,best}/seedS``, resumable, or
    read back where a launcher ran them), and the best replaces the preset only when the paired
    difference of their scores has a 95% interval above zero (verdict ``best``; otherwise
    ``preset``). For HaDES-F, whose score is the own-init return, the same runs' fresh-init
    returns are recorded beside it (``fresh``: how the datasets transfer), never deciding. A run
    in ``known`` (``finished_holdout_runs``: finished here or elsewhere) is not run again; each one
    that finishes here goes to ``on_run``."""
    key = objective_key(method)
    scores = {"preset": [], "best": []}
    fresh = {"preset": [], "best": []}
    for label, settings, seed, folder in holdout_runs(
        _base(preset, env, method, overrides), preset_params, best_params, seeds, out
    ):
        entry = _known_run(known, label, seed)
        if entry is None:
            reporter = reporter_factory() if reporter_factory is not None else None
            summary = run_setting(preset, env, method, overrides, settings, seed, folder, reporter)
            params = preset_params if label == "preset" else best_params
            entry = _holdout_entry(label, seed, params, summary, key)
            if on_run is not None:
                on_run(entry)
        scores[label].append(entry["score"])
        if key != "final_return_mean":
            fresh[label].append(entry["fresh"])
    check = {"seeds": [int(x) for x in seeds], **_paired(scores)}
    check["verdict"] = "best" if check["difference_mean"] - check["difference_ci95"] > 0 else "preset"
    if fresh["preset"]:
        check["fresh"] = _paired(fresh)
    return check


def _paired(scores: dict) -> dict:
    """Both settings' figures per seed and their paired difference (mean, 95% half-width)."""
    import numpy as np

    from hades.stats import ci95

    diff = np.array(scores["best"]) - np.array(scores["preset"])
    half = ci95(diff) if len(diff) > 1 else float("inf")
    return {**scores, "difference_mean": float(diff.mean()), "difference_ci95": float(half)}


def _paired_line(p: dict) -> str:
    """``_paired``'s record in words: each setting's figures per seed, and their paired difference."""
    from hades.report import number

    return (
        f"the preset {', '.join(number(v) for v in p['preset'])}; the best {', '.join(number(v) for v in p['best'])}; "
        f"best - preset {number(p['difference_mean'])} ± {number(p['difference_ci95'])}"
    )


@dataclass(frozen=True)
class _Study:
    """What a process needs to run trials of one method's study (picklable, for launchers)."""

    preset: str | None
    env: str | None
    method: str
    out: str
    seeds: tuple[int, ...]
    overrides: dict
    trials: int  # finished trials the study stops at
    strategies: tuple = ()  # tuned ES strategies (empty: the preset's)


def run_trials(job: _Study, sampler_seed: int, n: int, on_trial=None, reporter_factory=None) -> list[tuple]:
    """Run up to ``n`` trials of ``job``'s study (stopping once it has ``job.trials`` finished
    ones, whoever ran them); returns (study, number, value, state) of each trial run here."""
    optuna = _optuna()
    from hades.runs import Reporter

    out = Path(job.out)
    base = _base(job.preset, job.env, job.method, job.overrides)
    name = study_name(base.env, job.method)
    space = _space(base, job.method, job.strategies)
    study = optuna.load_study(
        study_name=name,
        storage=_storage(optuna, out),
        sampler=optuna.samplers.TPESampler(seed=sampler_seed, n_startup_trials=startup_trials(job.trials)),
        pruner=make_pruner(optuna, base.generations),
    )
    space = kept_choices(study, space)

    running = []  # the number of the trial optimize is running

    def objective(trial):
        running.append(trial.number)
        params = {k: _suggest(trial, k, p) for k, p in space.items()}
        if "strategy" in params:  # that strategy's own knob, and its own update rule and weights
            params.update({k: _suggest(trial, k, p) for k, p in ES_KNOBS.get(params["strategy"], {}).items()})
        settings = trial_settings(base, params)
        # named by the setting, so a retried trial (same params) resumes its runs' checkpoints
        key = hashlib.sha1(json.dumps(params, sort_keys=True).encode()).hexdigest()[:12]
        folder = out / "trials" / name / key
        trial.set_user_attr("run_dir", str(folder))
        values = []
        try:
            for seed in job.seeds:
                reporter = _PruningReporter(trial, job.seeds.index(seed), reporter_factory, Reporter)
                values.append(
                    score_setting(job.preset, job.env, job.method, job.overrides, settings, seed, folder, reporter)
                )
        except KeyboardInterrupt:  # a stop request: the next `hades tune` retries this setting
            trial.set_user_attr("interrupted", True)
            raise
        except HadesError as e:  # a setting the run refuses: one line (not optuna's traceback); not retried
            trial.set_user_attr("refused", str(e))
            warnings.warn(f"tune: {name} trial {trial.number} refused: {e}", HadesWarning, stacklevel=1)
            return float("nan")  # optuna marks it failed; finished trials are what the study counts
        return sum(values) / len(values)

    ran = []

    def record(s, t):
        ran.append((s.study_name, t.number, t.value, t.state.name))
        if on_trial is not None:
            on_trial(*ran[-1])

    done = tuple(optuna.trial.TrialState[state] for state in FINISHED)
    callbacks = [optuna.study.MaxTrialsCallback(job.trials, states=done), record]
    lost = 0
    while len(ran) < n and len(study.get_trials(deepcopy=False, states=done)) < job.trials:
        running.clear()
        try:  # one trial a call, so that a trial lost as below is run again here
            study.optimize(objective, n_trials=1, callbacks=callbacks, catch=(HadesError,))
        except Exception:
            # another process's heartbeat check failed the trial while it ran here (its beats
            # missed: a process frozen past the grace period) and queued its setting again; optuna
            # then ends this call (writing to a failed trial, or "Cannot tell a FAIL trial"). The
            # next trial here picks the queued setting up, its runs resuming or read back.
            if not (running and _requeued(study, running[0])) or lost >= MAX_LOST_TRIALS:
                raise
            lost += 1
            warnings.warn(
                f"tune: {name} trial {running[0]} was failed by another process's heartbeat check "
                "while it ran; its setting runs again, resuming its runs",
                HadesWarning,
                stacklevel=1,
            )
    return ran


def _requeued(study, number: int) -> bool:
    """Whether the storage's heartbeat callback queued trial ``number``'s setting again."""
    return any(number in t.system_attrs.get("retry_history", ()) for t in study.get_trials(deepcopy=False))


class _PruningReporter:
    """Reports a trial's in-run evaluations to optuna and stops it when the pruner says so (only on
    the first tuning seed, whose generations line up with earlier trials')."""

    def __init__(self, trial, seed_index: int, factory, base):
        self.trial, self.first = trial, seed_index == 0
        self.inner = factory() if factory else base()

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def generation(self, row: dict) -> None:
        self.inner.generation(row)
        value = row.get("eval_own_init_return_mean") or row.get("eval_return_mean")
        if self.first and value is not None and math.isfinite(value):
            self.trial.report(float(value), int(row["generation"]))
            if self.trial.should_prune():
                import optuna

                raise optuna.TrialPruned()


def study_summary(optuna, study, method: str) -> dict:
    """Every trial of a study, its best setting and each parameter's importance (fANOVA)."""
    from optuna.distributions import distribution_to_json

    rows = [
        {"number": t.number, "state": t.state.name, "value": t.value, "params": t.params}
        | {"run_dir": t.user_attrs.get("run_dir")}
        # what `import_trials` needs to add the trial to another directory's study as it was
        | {"distributions": {k: distribution_to_json(d) for k, d in t.distributions.items()}}
        | {"intermediate": {str(step): v for step, v in sorted(t.intermediate_values.items())}}
        | ({"retry_of": t.user_attrs["retry_of"]} if "retry_of" in t.user_attrs else {})
        | ({"preset": True} if t.user_attrs.get("preset") else {})
        | ({"refused": t.user_attrs["refused"]} if "refused" in t.user_attrs else {})
        | ({"stopped": True} if t.user_attrs.get("interrupted") else {})  # Ctrl-C / SIGTERM: retried, not failed
        for t in study.get_trials(deepcopy=False)
    ]
    preset = next((r for r in rows if r.get("preset") and r["state"] == "COMPLETE"), None)
    complete = [t for t in study.get_trials(deepcopy=False) if t.state == optuna.trial.TrialState.COMPLETE]
    importance = {}
    if len(complete) >= 2 and len({t.value for t in complete}) > 1:
        evaluator = optuna.importance.FanovaImportanceEvaluator(seed=0)
        importance = {
            k: float(v) for k, v in optuna.importance.get_param_importances(study, evaluator=evaluator).items()
        }
    best = max(complete, key=lambda t: t.value) if complete else None
    return {
        "method": method,
        "objective": objective_key(method),
        "trials": rows,
        "finished": sum(t["state"] in FINISHED for t in rows),  # what --trials counts
        "best_value": best.value if best else None,
        "best_params": best.params if best else None,
        "best_trial": best.number if best else None,
        "preset_trial": preset["number"] if preset else None,
        "preset_value": preset["value"] if preset else None,
        "importance": importance,
    }


def report_markdown(record: dict) -> str:
    """``tuning.md``: per study, the best setting, each parameter's importance and every trial."""
    from hades.report import number

    lines = [
        f"# Tuning: preset {record['preset']}" + (f", {record['env']}" if record.get("env") else ""),
        "",
        (f"{record['trials']} trials per method" if record.get("trials") else "The trials finished so far")
        + f", tuning seeds {', '.join(map(str, record['seeds']))}; "
        "the same outer budget for every method" + (f" ({_flags(record['overrides'])})" if record["overrides"] else "")
        + ". A trial's value is its final evaluation (HaDES-F: own init; otherwise fresh inits)."
        + (f" Strategies tuned among: {', '.join(record['strategies'])}." if record.get("strategies") else ""),
    ]  # fmt: skip
    for name, s in record["studies"].items():
        params = sorted({k for t in s["trials"] for k in t["params"]})
        lines += ["", f"## {name}", ""]
        if not record.get("trials"):
            lines.append(f"Finished trials: {s['finished']}")
        if s["best_params"] is not None:
            lines.append(f"Best: trial {s['best_trial']}, {number(s['best_value'])} ({_flags(s['best_params'])})")
        if s.get("best_command"):
            lines.append(f"Run it: `{s['best_command']}`")
        if s.get("preset_value") is not None:
            lines.append(f"The preset's own setting (trial {s['preset_trial']}): {number(s['preset_value'])}")
        h = s.get("holdout")
        if h and "difference_mean" in h:
            lines.append(
                f"Held-out seeds {', '.join(map(str, h['seeds']))}: {_paired_line(h)} (paired, 95% CI): "
                + ("**the best setting holds**" if h["verdict"] == "best" else "not distinguishable; the preset stays")
            )
            if h.get("fresh"):
                lines.append(f"The same runs' fresh inits (recorded, not the criterion): {_paired_line(h['fresh'])}")
        elif h:
            lines.append("Held-out seeds: not run (the preset's own setting won the study)")
        elif s.get("holdout_runs") is not None:
            total = 2 * len(record.get("holdout_seeds") or ())
            lines.append(f"Held-out check: {len(s['holdout_runs'])} of its {total} runs finished")
        if s["importance"]:
            lines.append("Importance (fANOVA): " + ", ".join(f"{k} {v:.2f}" for k, v in s["importance"].items()))
        lines += ["", "| " + " | ".join(["trial", "state", "value", *params]) + " |", "|---" * (3 + len(params)) + "|"]
        for t in s["trials"]:
            cells = [_cell(t["params"].get(k)) for k in params]
            value = number(t["value"]) if t["value"] is not None else "—"
            label = f"{t['number']} (preset)" if t.get("preset") else str(t["number"])
            state = "refused" if t.get("refused") else "stopped" if t.get("stopped") else t["state"].lower()
            lines.append("| " + " | ".join([label, state, value, *cells]) + " |")
        refused = [t for t in s["trials"] if t.get("refused")]
        if refused:
            lines += ["", *(f"Trial {t['number']} refused: {t['refused']}" for t in refused)]
    return "\n".join(lines) + "\n"


def _cell(v) -> str:
    if v is None:
        return "—"
    return f"{v:.3g}" if isinstance(v, float) else str(v)


def _flags(params: dict) -> str:
    return " ".join(f"--{k.replace('_', '-')} {_cell(v)}" for k, v in params.items())
