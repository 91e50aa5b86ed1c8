"""Tests of hades.devices."""

import json
import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from helpers import TINY_ARGS, users_env

from hades.devices import with_device_count
from hades.distill import Distiller
from hades.errors import HadesError
from hades.runs import make_driver


@pytest.mark.parametrize("variant", ["hades-r", "direct-es"])
def test_chunked_evaluation_matches_the_whole_population(tiny_config, variant):
    """--chunk only changes how many candidates are live at once, not the result."""
    out = []
    for chunk in (0, 2):
        d = make_driver(tiny_config(variant=variant, chunk=chunk))
        s = d.init()
        for _ in range(2):
            s, m = d.step(s)
        out.append(jax.tree.leaves(d.solution(s)))
    for a, b in zip(*out):
        np.testing.assert_array_equal(a, b)
    with pytest.raises(HadesError, match="chunk"):
        tiny_config(chunk=3)


def test_more_devices_than_visible_is_a_clear_error(tiny_config):
    with pytest.raises(HadesError, match="device"):
        Distiller(tiny_config(devices=len(jax.devices()) + 1))


def test_a_device_count_replaces_the_old_one_and_keeps_every_other_flag():
    flags = "--xla_backend_optimization_level=1 --xla_force_host_platform_device_count=8 --xla_dump_to=/tmp/x"
    assert with_device_count(flags, 2).split() == [
        "--xla_backend_optimization_level=1", "--xla_dump_to=/tmp/x", "--xla_force_host_platform_device_count=2",
    ]  # fmt: skip
    assert with_device_count("", 1) == "--xla_force_host_platform_device_count=1"


def test_a_users_command_starts_one_host_device_per_core_and_a_set_count_wins():
    """`hades.cli.main` calls use_host_cores before JAX starts (the suite pins one device, so this
    runs with a user's XLA_FLAGS)."""
    code = "from hades.devices import use_host_cores; use_host_cores(); import jax; print(len(jax.devices()))"
    env = users_env()
    assert "device_count" not in env["XLA_FLAGS"]
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert int(proc.stdout) == len(os.sched_getaffinity(0))
    env = {**env, "XLA_FLAGS": with_device_count(env["XLA_FLAGS"], 3)}
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert int(proc.stdout) == 3


_SHARDED_RUN = """
import sys, numpy as np
from hades.presets import make_config
from hades.runs import make_driver
import jax
assert len(jax.devices()) == 2, jax.devices()
out = {}
# (2, 2): one candidate per device at a time, which each device runs unbatched (vmap_batch)
for devices, chunk in ((1, 0), (2, 0), (2, 2)):
    d = make_driver(make_config(sys.argv[3] or None, population=8, generations=3, width=16, depth=1, bc_steps=10,
                              eval_envs=2, eval_steps=30, devices=devices, chunk=chunk, variant=sys.argv[1],
                              obs_norm=sys.argv[2]))
    s = d.init()
    for _ in range(3):
        s, _ = d.step(s)
    direct = sys.argv[1] == "direct-es"
    out[devices, chunk] = np.asarray(jax.tree.leaves(d.solution(s))[0]) if direct else d.dataset(s)["states"]
    assert (d.mesh is None) == (devices == 1)
print(np.array_equal(out[1, 0], out[2, 0]), float(np.abs(out[1, 0] - out[2, 0]).max()))
try:
    make_driver(make_config(None, population=6, devices=4))
except Exception as e:
    print(type(e).__name__)
d = make_driver(make_config(None, population=6, devices=2))
print("auto", 1 if d.mesh is None else d.mesh.devices.size)
print("one per device", np.array_equal(out[1, 0], out[2, 2]), float(np.abs(out[1, 0] - out[2, 2]).max()))
"""


@pytest.mark.parametrize(
    "variant,obs_norm,preset",
    [
        # the breakout preset's SNES over 16 x 400 states: with the ES update left to the
        # partitioner, 2 devices gave a mean 6e-8 away from 1 device's after 2 generations (and a
        # run of the preset ended at 3.52 against 3.75)
        ("hades-f", "official", "breakout"),
        pytest.param("hades-r", "constant", "", marks=pytest.mark.slow),  # "": CartPole's defaults
        pytest.param("hades-f", "running", "", marks=pytest.mark.slow),
        pytest.param("direct-es", "none", "", marks=pytest.mark.slow),
    ],
)
def test_two_devices_give_the_same_dataset_as_one(variant, obs_norm, preset):
    """Bit for bit: the candidates are scored split over the devices, and what follows (the ES
    update, the running statistics) runs whole on every device, so it rounds as on one."""
    env = dict(os.environ, XLA_FLAGS=with_device_count(os.environ.get("XLA_FLAGS", ""), 2))
    out = subprocess.run(
        [sys.executable, "-c", _SHARDED_RUN, variant, obs_norm, preset],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    lines = out.stdout.split("\n")
    if obs_norm == "running":
        # CartPole's float physics rounds the last bit of some observations differently in the
        # 2-device program (the returns do not change), and the running statistics sum them:
        # ~1e-9 apart after a generation. The same dataset up to float32 rounding
        assert float(lines[0].split()[1]) < 1e-6, lines[0]
        assert float(lines[3].split()[-1]) < 1e-6, lines[3]
    else:
        assert lines[0].startswith("True"), lines[0]  # bit for bit
        assert lines[3].startswith("one per device True"), lines[3]
    assert lines[1] == "HadesError"  # 4 devices asked for, 2 visible
    assert lines[2] == "auto 2"


def test_a_batch_of_one_runs_unbatched():
    """``vmap_batch``: a batch of one calls the function on its element (no batch dimension in the
    dots, which XLA's CPU backend runs on a slow path), with the result ``jax.vmap`` gives."""
    from hades.devices import vmap_batch

    f = lambda x, w: x @ w  # both operands batched: vmap makes a dot with a batch dimension
    x, w = jnp.ones((1, 2, 3)), jnp.arange(12.0).reshape(1, 3, 4)
    dots = lambda g: [
        e.params["dimension_numbers"][1] for e in jax.make_jaxpr(g)(x, w).eqns if e.primitive.name == "dot_general"
    ]
    assert dots(jax.vmap(f)) == [((0,), (0,))]
    assert dots(vmap_batch(f)) == [((), ())]
    assert jnp.array_equal(vmap_batch(f)(x, w), jax.vmap(f)(x, w))
    x3, w3 = jnp.ones((3, 2, 3)), jnp.arange(36.0).reshape(3, 3, 4)
    assert jnp.array_equal(vmap_batch(f)(x3, w3), jax.vmap(f)(x3, w3))


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("localhost", 0))
        return s.getsockname()[1]


@pytest.mark.slow  # 30 s: two processes joined by jax.distributed
def test_two_process_run_on_one_host_matches_one_process(tmp_path, tiny_config):
    """The multi-host launch (one command per host) on localhost: 2 processes x 2 CPU devices."""
    from safetensors.numpy import load_file

    from hades.runs import run

    args = [
        *TINY_ARGS,
        "--checkpoint-every",
        "1",
        "--coordinator",
        f"localhost:{_free_port()}",
        "--num-processes",
        "2",
        "--out",
        str(tmp_path / "multi"),
        "--quiet",
    ]
    env = dict(os.environ, XLA_FLAGS=with_device_count(os.environ.get("XLA_FLAGS", ""), 2))
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "hades.cli", "distill", *args, "--process-id", str(i)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in (1, 0)
    ]
    outs = [p.communicate(timeout=300) for p in procs]
    assert all(p.returncode == 0 for p in procs), [o[1][-1500:] for o in outs]
    assert json.loads(outs[1][0].strip().splitlines()[-1])["devices"] == 4  # gloo prints to stdout too
    run(tiny_config(generations=2, checkpoint_every=1, eval_every=5), tmp_path / "single")
    a = load_file(tmp_path / "multi" / "dataset.safetensors")
    b = load_file(tmp_path / "single" / "dataset.safetensors")
    np.testing.assert_array_equal(a["states"], b["states"])


def _released(width: int, population: int, obs: int = 400, actions: int = 6, **kw):
    """The released code's Breakout setting (issue 37): HaDES-F, 16 states, 400 inputs, 6
    actions, 32 BC steps, 8 envs x 1024 steps, at ``width`` (``obs``/``actions``: the same work
    on another environment, e.g. CartPole's 4 and 2)."""
    from hades.chunking import Workload

    params = obs * width + width * width + actions * width + 2 * width + actions
    return Workload.hades(population, params, 2 * width, 1, 16, 32, 8, 1024, obs, **kw)


def test_cpu_chunk_follows_the_caches_of_the_machine_described():
    """The issue-37 case: on a 2-core AMD EPYC (2 MiB L2 per core, 32 MiB L3) a width-512 policy
    (1.9 MB of weights) is best scored one per core (measured there: 5.2 s per generation against
    12.3-13.1 s at 16 per core, whose 30 MB per core stream from memory); the model picks chunk 2
    and predicts the old default at least 1.5x slower. On the Intel Xeon (2 MiB L2, 105 MiB L3
    as it reports them) the released CartPole work at width 512 also goes one per core: measured
    4.5-5.5 s per generation against 7.1-8.3 s at 4 per core, the pick of the model without the
    lone candidate's plain-matmul rate. At width 64 (120 kB) the per-step overhead decides: a
    large chunk on every machine."""
    from hades.chunking import Machine, choose_chunk, generation_seconds, with_rates

    amd = Machine.cpu(2, l2=2 << 20, l3=32 << 20, memory=24 << 30)
    intel = Machine.cpu(2, l2=2 << 20, l3=105 << 20, memory=24 << 30)
    work = _released(512, 64)
    assert choose_chunk(amd, work) == 2
    assert generation_seconds(amd, work, 32) > 1.5 * generation_seconds(amd, work, 2)
    assert choose_chunk(amd, _released(1024, 256)) == 2
    cartpole = _released(512, 64, obs=4, actions=2)
    assert choose_chunk(intel, cartpole) == 2
    assert choose_chunk(with_rates(intel, single=1.0), cartpole) == 8  # what the batched rate alone says
    for machine in (amd, intel):
        assert choose_chunk(machine, _released(64, 256)) in (0, 32, 64, 128)
        assert choose_chunk(machine, _released(1024, 64)) <= 4  # 5.8 MB per candidate


def test_an_environments_fixed_step_cost_keeps_candidates_batched():
    """Brax's positional physics costs about 0.28 ms per batched step whatever the batch: on the
    Intel Xeon the paper's hopper work at width 512 (population 64) took 61.6 s per generation one
    candidate per core against 55.9 s at 16 per core (two interleaved pairs). Without that cost
    the model would take one per core, as it does for the same policy on CartPole."""
    from hades.chunking import Machine, Workload, choose_chunk
    from hades.envs import STEP_OVERHEAD

    intel = Machine.cpu(2, l2=2 << 20, l3=105 << 20, memory=24 << 30)
    params = 11 * 512 + 512 * 512 + 3 * 512 + 2 * 512 + 3 + 3

    def hopper(env_overhead):
        return Workload.hades(64, params, 1024, 1, 64, 200, 4, 1024, 11, env_overhead=env_overhead)

    assert choose_chunk(intel, hopper(0.0)) == 2
    assert choose_chunk(intel, hopper(STEP_OVERHEAD["positional"])) >= 16


def test_cpu_caches_are_read_from_sysfs(tmp_path):
    from hades.chunking import cpu_caches, parse_size

    for i, (level, kind, size) in enumerate(
        [(1, "Data", "48K"), (1, "Instruction", "32K"), (2, "Unified", "2048K"), (3, "Unified", "32M")]
    ):
        d = tmp_path / f"index{i}"
        d.mkdir()
        (d / "level").write_text(f"{level}\n")
        (d / "type").write_text(f"{kind}\n")
        (d / "size").write_text(f"{size}\n")
    assert cpu_caches(str(tmp_path)) == {1: 48 << 10, 2: 2 << 20, 3: 32 << 20}
    assert cpu_caches(str(tmp_path / "missing")) == {}
    assert parse_size("512") == 512


def test_accelerator_chunk_comes_from_the_device_memory():
    """On an accelerator the whole population is scored at once when it fits in the devices'
    memory; otherwise the largest chunk that fits (a divisor of the population)."""
    from hades.chunking import MEMORY_SHARE
    from hades.devices import auto_chunk

    gb = 2**30

    def work(candidate_bytes, population=2048):
        return _released(64, population, candidate_bytes=candidate_bytes, fixed_bytes=gb)

    assert auto_chunk(0, work(10 * 2**20), None, backend="gpu", memory=80 * gb) == 0  # 20 GB + 1 GB of 48 GB
    chunk = auto_chunk(0, work(100 * 2**20), None, backend="gpu", memory=80 * gb)
    assert chunk == 256 and 2048 % chunk == 0  # 256 x 100 MB = 25 GB fits, 512 x 100 MB does not
    assert chunk * 100 * 2**20 + gb <= MEMORY_SHARE * 80 * gb < 2 * chunk * 100 * 2**20 + gb
    assert auto_chunk(64, work(100 * 2**20), None, backend="gpu", memory=gb) == 64  # as given


def _dot_precision(x) -> str:
    eqn = next(e for e in jax.make_jaxpr(lambda a: a @ a)(x).eqns if e.primitive.name == "dot_general")
    return str(eqn.params["precision"])


def test_float32_matmuls_asks_every_device_for_float32_dots():
    from hades.devices import float32_matmuls

    x = jnp.ones((2, 2), jnp.float32)
    assert _dot_precision(x) == "None"  # JAX's default: TF32 on Ampere+ GPUs, bf16 on TPUs
    with float32_matmuls():
        assert "HIGHEST" in _dot_precision(x)
    with jax.default_matmul_precision("bfloat16"), float32_matmuls():  # the user's choice wins
        assert "DEFAULT" in _dot_precision(x)


def test_a_run_traces_under_float32_matmuls(tmp_path, monkeypatch):
    from hades import runs
    from hades.presets import make_config

    seen = []
    make_driver = runs.make_driver
    monkeypatch.setattr(
        runs, "make_driver", lambda cfg: seen.append(jax.config.jax_default_matmul_precision) or make_driver(cfg)
    )
    cfg = make_config(None, population=4, generations=1, width=8, depth=1, bc_steps=2, eval_envs=2, eval_steps=10,
                      eval_episodes=2, eval_policies=2)  # fmt: skip
    runs.run(cfg, tmp_path / "run")
    assert seen == ["float32"]
    assert jax.config.jax_default_matmul_precision is None  # restored after the run


def test_a_step_larger_than_memory_is_refused_once_compiled(monkeypatch, tmp_path, tiny_config):
    """xNES holds a d x d matrix per candidate in its update, which the config's memory formula
    does not count (on Breakout the kernel killed such a run at 21 GB): the compiled step's own
    figure (XLA's memory analysis) refuses it in one line before any generation runs."""
    import hades.devices
    from hades.devices import compiled_bytes
    from hades.runs import make_driver, run

    cfg = tiny_config(strategy="xNES", dataset_size=64, es_rank_ties="average", es_temperature=0.0, devices=1)
    d = make_driver(cfg)
    formula, compiled = d.memory_estimate(), compiled_bytes(d.step.lower(d.init()).compile(), d.mesh)
    assert compiled > 2 * formula  # 8 candidates x (64 x 4)^2 floats the formula leaves out
    monkeypatch.setattr(hades.devices, "available_memory", lambda: int((formula + compiled) / 2 / 0.9))
    with pytest.raises(HadesError, match=r"XLA's figure for the compiled step.*SNES or Sep_CMA_ES"):
        run(cfg, tmp_path / "run")
    assert not (tmp_path / "run" / "checkpoint.safetensors").exists()
