"""Portable artifacts: distilled datasets, policies and resumable checkpoints (safetensors).

Dataset artifact (``dataset.safetensors``), readable with ``safetensors.numpy`` and no JAX:
- tensors ``states`` float32 [N, *obs_shape] in raw observation units; ``actions`` int32 [N]
  (discrete) or float32 [N, act_dim] (continuous, unbounded: the env clips when acting);
  ``obs_mean`` / ``obs_std`` float32 [*obs_shape] when the policy sees normalised inputs;
- string metadata ``format=hades.dataset``, ``schema_version=1``, ``env``, ``action_space``
  (discrete|continuous), ``variant``, ``hades_version``, ``obs_norm`` (none|constant|running: how
  the run normalised observations; the stored statistics are the final ones), ``config`` (the
  full run config, JSON), ``env_spec`` (JSON: ``obs_shape``, ``action_space``, ``action_count``
  or ``action_dim``, ``episode_limit``, and ``feature_names`` / ``channel_names`` where known).
  ``env`` is an id (``CartPole-v1``, ``brax/hopper``) or a ``package.module:function`` reference
  that rebuilds the environment wherever the module is importable.
How to use it: if ``obs_mean`` is present, train on ``(states - obs_mean) / obs_std`` and feed
the policy ``(obs - obs_mean) / obs_std`` when acting; otherwise use raw states/observations.

Every file is written to a temporary name in the same folder, flushed, then renamed over the
target, so a killed run never leaves a half-written artifact.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path

import numpy as np
from safetensors import SafetensorError
from safetensors.numpy import load as st_load
from safetensors.numpy import save as st_save

from hades import __version__
from hades.config import PolicyConfig
from hades.dataset import Dataset, PolicyWeights, run_config
from hades.errors import HadesError, HadesWarning

DATASET_FORMAT = "hades.dataset"
POLICY_FORMAT = "hades.policy"
CHECKPOINT_FORMAT = "hades.checkpoint"
SCHEMA_VERSION = 1


MAX_HEADER_BYTES = 100 << 20  # a safetensors header larger than this is not one of ours
MAX_ARTIFACT_BYTES = 1 << 30  # datasets and policies are KB to MB; checkpoints may be larger


def file_mode() -> int:
    """The mode a new file gets under the process umask (0644 under the usual 022)."""
    return 0o666 & ~_umask()


def _umask() -> int:
    """The process umask, read without changing it (os.umask would set it process-wide)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    return 0o022


TEMP_PREFIX = ".hades-"  # atomic_write's temporaries: .hades-<name>.<random>.tmp


def remove_stale_temporaries(folder) -> int:
    """Delete the temporary files a killed hades writer left in ``folder``
    (``.hades-<name>.<random>.tmp``, nothing else: a user's own ``.notes.tmp`` stays); call it only
    while holding the folder's run lock. Returns how many were removed."""
    removed = 0
    for tmp in Path(folder).glob(f"{TEMP_PREFIX}*.tmp"):
        if tmp.is_file() and not tmp.is_symlink():
            tmp.unlink(missing_ok=True)
            removed += 1
    return removed


def _digest(tensors: dict[str, np.ndarray], metadata: dict[str, str]) -> str:
    """sha256 over every tensor (name, dtype, shape, bytes) and every metadata entry but itself."""
    h = hashlib.sha256()
    for name in sorted(tensors):
        a = np.ascontiguousarray(tensors[name])
        h.update(f"{name}|{a.dtype.str}|{a.shape}|".encode())
        h.update(a.tobytes())
    h.update(json.dumps({k: v for k, v in metadata.items() if k != "checksum"}, sort_keys=True).encode())
    return "sha256:" + h.hexdigest()


def atomic_write(path: str | Path, data: bytes | str) -> None:
    """Write ``data`` to ``path`` so that readers see the old file or the new one, never half."""
    path = Path(path)
    if isinstance(data, str):
        data = data.encode()
    if not path.is_symlink() and path.exists() and not path.is_file():  # a device node, a directory
        raise HadesError(f"{path} exists and is not a regular file; hades writes only regular files")
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f"{TEMP_PREFIX}{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            os.fchmod(f.fileno(), file_mode())  # mkstemp made it 0600; give it the usual permissions
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _write_tensors(path, tensors: dict[str, np.ndarray], metadata: dict[str, str]) -> None:
    tensors = {k: np.array(v, order="C", copy=True) for k, v in tensors.items()}  # keeps 0-d shapes
    metadata = {k: str(v) for k, v in metadata.items()}
    if "provenance" not in metadata:
        from hades.provenance import provenance

        metadata["provenance"] = json.dumps(provenance(), sort_keys=True)
    metadata["checksum"] = _digest(tensors, metadata)
    atomic_write(path, st_save(tensors, metadata=metadata))


def _check_size(path: Path, f) -> tuple[int, dict]:
    """Refuse a file whose header is not a safetensors header of a sensible size, or whose length
    is not what its header says, before reading it whole; returns (file size, its metadata).
    ``f`` is the file open for reading: its size and header are the same file's as the bytes read
    after, even when a running hades replaces ``path`` meanwhile (a checkpoint every generation)."""
    size = os.fstat(f.fileno()).st_size
    head = f.read(8)
    n = int.from_bytes(head, "little") if len(head) == 8 else -1
    if not 0 < n <= min(MAX_HEADER_BYTES, size - 8):
        raise HadesError(
            f"{path}: not a safetensors file (hades datasets, policies and checkpoints are; "
            f"this one's first 8 bytes do not give a header size within its {size} bytes)"
        )
    try:
        header = json.loads(f.read(n))
        end = max([0] + [int(v["data_offsets"][1]) for k, v in header.items() if k != "__metadata__"])
    except (ValueError, TypeError, KeyError, AttributeError, IndexError):
        raise HadesError(f"{path}: not a readable safetensors file (malformed header)") from None
    if 8 + n + end != size:
        raise HadesError(
            f"{path}: file size {size} does not match its header ({8 + n + end} bytes): truncated or padded"
        )
    metadata = header.get("__metadata__") or {}
    if not isinstance(metadata, dict):
        raise HadesError(f"{path}: not a readable safetensors file (malformed metadata)")
    return size, metadata


def _read_tensors(path, expected_format: str) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    path = Path(path)
    if not path.is_file():
        raise HadesError(f"{path}: no such file")
    try:
        with open(path, "rb") as f:  # one open file: header, size and tensors from the same version
            size, metadata = _check_size(path, f)
            if expected_format != CHECKPOINT_FORMAT and size > MAX_ARTIFACT_BYTES:
                raise HadesError(f"{path}: {size / 2**30:.3g} GB is too large for a hades {expected_format}")
            f.seek(0)
            data = f.read()
        tensors = st_load(data)
    except (SafetensorError, ValueError, OSError, UnicodeDecodeError) as e:
        raise HadesError(f"{path}: not a readable safetensors file ({str(e).splitlines()[0][:80]})") from None
    fmt = metadata.get("format")
    if fmt != expected_format:
        raise HadesError(f"{path}: not a {expected_format} artifact (format={fmt!r})")
    version = metadata.get("schema_version")
    if version != str(SCHEMA_VERSION):
        raise HadesError(f"{path}: schema_version {version!r} is not supported (this hades reads {SCHEMA_VERSION})")
    checksum = metadata.get("checksum")
    if checksum is None and expected_format == CHECKPOINT_FORMAT:
        raise HadesError(f"{path}: checkpoint has no checksum (written by hades < 0.3); start the run again")
    if checksum is None:
        import warnings

        warnings.warn(
            f"{path} has no checksum (written by hades < 0.3?): nothing shows whether it was changed",
            HadesWarning,
            stacklevel=3,
        )
    if checksum is not None and checksum != _digest(tensors, metadata):
        raise HadesError(f"{path}: checksum mismatch: the file was changed or corrupted after hades wrote it")
    return tensors, metadata


def save_dataset(path, ds: Dataset) -> None:
    tensors = {"states": ds.states.astype(np.float32)}
    tensors["actions"] = ds.actions.astype(np.int32 if ds.action_space == "discrete" else np.float32)
    if ds.normalised:
        tensors["obs_mean"] = ds.obs_mean.astype(np.float32)
        tensors["obs_std"] = ds.obs_std.astype(np.float32)
    meta = {
        "format": DATASET_FORMAT,
        "schema_version": SCHEMA_VERSION,
        "env": ds.env,
        "action_space": ds.action_space,
        "variant": ds.variant,
        "hades_version": ds.hades_version,
        "obs_norm": ds.normalisation,
        "config": json.dumps(ds.config, sort_keys=True),
        "env_spec": json.dumps(ds.env_spec, sort_keys=True),
    }
    _write_tensors(path, tensors, meta)


def dataset_file(path) -> Path:
    """A dataset argument as a file: ``zoo:NAME`` is the packaged dataset (``hades.zoo``), a run
    directory the ``dataset.safetensors`` in it; any other path as it is."""
    from hades.zoo import resolve

    path = resolve(path)
    if path.is_dir():
        if not (path / DATASET_FILE).is_file():
            raise HadesError(f"{path} is a directory without a {DATASET_FILE} (a finished run's directory holds one)")
        return path / DATASET_FILE
    return path


def load_dataset(path) -> Dataset:
    """A dataset artifact from ``path`` (a file, or a run directory holding one), or a packaged
    one from ``zoo:NAME`` (``hades.zoo``)."""
    path = dataset_file(path)
    t, meta = _read_tensors(path, DATASET_FORMAT)
    missing = [k for k in ("states", "actions") if k not in t] + [k for k in ("env", "action_space") if k not in meta]
    if missing:
        raise HadesError(f"{path}: dataset artifact lacks {', '.join(missing)}")
    states, actions = t["states"], t["actions"]
    space = meta["action_space"]
    if space not in ("discrete", "continuous"):
        raise HadesError(f"{path}: unknown action_space {space!r}")
    if actions.shape[0] != states.shape[0] or (space == "discrete") != (actions.ndim == 1):
        raise HadesError(f"{path}: actions {actions.shape} do not match states {states.shape} ({space})")
    if ("obs_mean" in t) != ("obs_std" in t):
        raise HadesError(f"{path}: obs_mean and obs_std must come together")
    if not np.issubdtype(states.dtype, np.floating) or not np.all(np.isfinite(states)):
        raise HadesError(f"{path}: states must be finite floating-point numbers")
    if space == "discrete" and actions.dtype.kind not in "iu":
        raise HadesError(f"{path}: discrete actions must be integers (got {actions.dtype})")
    if space == "continuous" and (actions.dtype.kind != "f" or not np.all(np.isfinite(actions))):
        raise HadesError(f"{path}: continuous actions must be finite floating-point numbers")
    for name in ("obs_mean", "obs_std"):
        if name in t:
            v = t[name]
            if v.shape != states.shape[1:]:
                raise HadesError(f"{path}: {name} has shape {v.shape}, states {states.shape[1:]}")
            if not np.all(np.isfinite(v)) or (name == "obs_std" and not np.all(v > 0)):
                raise HadesError(f"{path}: {name} must be finite" + (" and > 0" if name == "obs_std" else ""))
    try:
        config = json.loads(meta.get("config", "{}"))
        env_spec = json.loads(meta.get("env_spec", "{}"))
    except json.JSONDecodeError:
        raise HadesError(f"{path}: config or env_spec metadata is not valid JSON") from None
    _check_dataset_fields(path, t, meta, config, env_spec)
    return Dataset(
        states=states,
        actions=actions,
        env=meta["env"],
        action_space=space,
        variant=meta.get("variant", "unknown"),
        obs_mean=t.get("obs_mean"),
        obs_std=t.get("obs_std"),
        config=config,
        hades_version=meta.get("hades_version", "unknown"),
        obs_norm=meta.get("obs_norm", ""),
        env_spec=env_spec if isinstance(env_spec, dict) else {},
    )


MAX_INPUT = 1e7  # |policy input| or |continuous action| beyond this trains on overflow, not data
VARIANT_NAMES = ("hades-f", "hades-r", "direct-es", "multitask", "supervised", "unknown")


def _check_dataset_fields(path, t: dict, meta: dict, config, env_spec) -> None:
    """Every field hades reads from a dataset artifact, checked the same way whether or not it has a
    checksum: shapes, values, and the run config through the CLI's own validation."""
    from hades.config import OBS_NORMS, DistillConfig, ImageDistillConfig

    states, actions = t["states"], t["actions"]
    if states.ndim < 2 or min(states.shape) < 1:
        raise HadesError(f"{path}: a dataset needs at least one state of at least one feature (states {states.shape})")
    if actions.dtype.kind in "iu" and actions.size and actions.min() < 0:
        raise HadesError(f"{path}: discrete action labels must be >= 0")
    inputs = states.astype(np.float64)
    if "obs_mean" in t:
        inputs = (inputs - t["obs_mean"]) / t["obs_std"].astype(np.float64)
    if not np.all(np.abs(inputs) <= MAX_INPUT):
        raise HadesError(
            f"{path}: states reach {np.abs(inputs).max():.3g} in the policy's input units (at most {MAX_INPUT:g})"
        )
    if actions.dtype.kind == "f" and not np.all(np.abs(actions) <= MAX_INPUT):
        raise HadesError(f"{path}: continuous actions reach {np.abs(actions).max():.3g} (at most {MAX_INPUT:g})")
    variant, obs_norm = meta.get("variant", "unknown"), meta.get("obs_norm", "")
    if variant not in VARIANT_NAMES:
        raise HadesError(f"{path}: unknown variant {variant!r}")
    if obs_norm not in (*OBS_NORMS, ""):
        raise HadesError(f"{path}: unknown obs_norm {obs_norm!r}")
    if not isinstance(config, dict) or not isinstance(env_spec, dict):
        raise HadesError(f"{path}: config and env_spec metadata must be JSON objects")
    if config and variant != "unknown":
        cls = ImageDistillConfig if variant == "supervised" else DistillConfig
        fields = {k: v for k, v in config.items() if k != "tasks"} if variant == "multitask" else config
        try:
            cls.from_dict(fields).validate()
        except HadesError as e:
            raise HadesError(f"{path}: config: {e}") from None
    features = int(np.prod(states.shape[1:]))
    for key, count in (("feature_names", features), ("channel_names", states.shape[-1])):
        names = env_spec.get(key)
        if names is not None and not (
            isinstance(names, list) and all(isinstance(n, str) for n in names) and len(names) == count
        ):
            raise HadesError(f"{path}: env_spec {key} must be a list of {count} strings")


def flatten_params(params, prefix: str = "") -> dict[str, np.ndarray]:
    """Nested dict of arrays -> {'a/b/c': array} (for policy artifacts)."""
    out = {}
    for k, v in params.items():
        name = f"{prefix}/{k}" if prefix else k
        if isinstance(v, dict) or hasattr(v, "items"):
            out.update(flatten_params(v, name))
        else:
            out[name] = np.asarray(v)
    return out


def unflatten_params(flat: dict[str, np.ndarray]) -> dict:
    out: dict = {}
    for name, v in flat.items():
        node = out
        *parents, leaf = name.split("/")
        for p in parents:
            node = node.setdefault(p, {})
        node[leaf] = v
    return out


def save_policy(path, params, env: str, config: dict, obs_mean=None, obs_std=None) -> None:
    """A policy's weights (the direct-ES baseline's product), keyed by parameter path."""
    tensors = {f"params/{k}": v for k, v in flatten_params(params).items()}
    if obs_mean is not None:
        tensors["obs_mean"], tensors["obs_std"] = np.asarray(obs_mean), np.asarray(obs_std)
    meta = {
        "format": POLICY_FORMAT,
        "schema_version": SCHEMA_VERSION,
        "env": env,
        "hades_version": __version__,
        "config": json.dumps(config, sort_keys=True),
    }
    _write_tensors(path, tensors, meta)


def load_policy(path):
    t, meta = _read_tensors(path, POLICY_FORMAT)
    params = unflatten_params({k[len("params/") :]: v for k, v in t.items() if k.startswith("params/")})
    return params, meta, t.get("obs_mean"), t.get("obs_std")


DATASET_FILE = "dataset.safetensors"
POLICY_FILE = "policy.safetensors"
INIT_FILE = "init.safetensors"  # HaDES-F: the policy initialisation a run's dataset is tied to


def save_product(out_dir, product: Dataset | PolicyWeights) -> Path:
    """Write a run's product into ``out_dir`` (``dataset.safetensors`` or ``policy.safetensors``)."""
    if isinstance(product, Dataset):
        path = Path(out_dir) / DATASET_FILE
        save_dataset(path, product)
    else:
        path = Path(out_dir) / POLICY_FILE
        save_policy(path, product.params, product.env, product.config, product.obs_mean, product.obs_std)
    return path


def save_checkpoint(path, leaves: list[np.ndarray], metadata: dict) -> None:
    tensors = {f"leaf_{i:05d}": np.asarray(x) for i, x in enumerate(leaves)}
    _write_tensors(
        path,
        tensors,
        {"format": CHECKPOINT_FORMAT, "schema_version": SCHEMA_VERSION, "hades_version": __version__, **metadata},
    )


def load_checkpoint(path) -> tuple[list[np.ndarray], dict[str, str]]:
    t, meta = _read_tensors(path, CHECKPOINT_FORMAT)
    return [t[k] for k in sorted(t)], meta


def own_init_params(dataset_path, ds: Dataset, policy_cfg: PolicyConfig):
    """The saved initialisation a HaDES-F dataset is tied to (``init.safetensors`` beside it);
    refused for other variants, another architecture, or a run directory without it."""
    if ds.variant != "hades-f":
        raise HadesError(
            f"--own-init retrains a HaDES-F dataset from its run's fixed initialisation; "
            f"{dataset_path} is a {ds.variant} dataset (train it from fresh inits)"
        )
    if policy_cfg != run_config(ds).policy:
        raise HadesError("--own-init retrains the run's own architecture; drop --width/--depth/--activation")
    path = Path(dataset_path).parent / INIT_FILE
    if not path.is_file():
        raise HadesError(
            f"no {INIT_FILE} beside {dataset_path}: --own-init needs the HaDES-F run directory's "
            "saved initialisation (written by hades >= 0.2)"
        )
    params, _, _, _ = load_policy(path)
    return params
