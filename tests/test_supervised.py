import dataclasses
import gzip
import json
from pathlib import Path

import numpy as np
import pytest

from hades.devices import with_device_count
from hades.errors import HadesError
from hades.plots import run_figures
from hades.presets import make_image_config
from hades.runs import run
from hades.supervised import IMAGES_MAGIC, LABELS_MAGIC, ImageDistiller, load_split, read_idx

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"


def idx_bytes(array: np.ndarray, magic: int) -> bytes:
    header = magic.to_bytes(4, "big")  # the last magic byte is the number of dimensions
    return header + b"".join(int(d).to_bytes(4, "big") for d in array.shape) + array.astype(np.uint8).tobytes()


def write_split(directory: Path, prefix: str, n: int, compress: bool, rng):
    images = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
    labels = np.arange(n) % 10
    for stem, arr, magic in (
        (f"{prefix}-images-idx3-ubyte", images, IMAGES_MAGIC),
        (f"{prefix}-labels-idx1-ubyte", labels, LABELS_MAGIC),
    ):
        data = idx_bytes(arr, magic)
        if compress:
            (directory / (stem + ".gz")).write_bytes(gzip.compress(data))
        else:
            (directory / stem).write_bytes(data)
    return images, labels


@pytest.mark.parametrize("compress", [True, False])
def test_idx_roundtrip(tmp_path, compress):
    rng = np.random.default_rng(0)
    images, labels = write_split(tmp_path, "train", 30, compress, rng)
    x, y = load_split(tmp_path, "train")
    assert x.shape == (30, 28, 28, 1) and x.dtype == np.float32
    np.testing.assert_allclose(x[..., 0] * 255, images, atol=1e-3)
    np.testing.assert_array_equal(y, labels)


def test_idx_errors(tmp_path):
    rng = np.random.default_rng(0)
    write_split(tmp_path, "train", 20, False, rng)
    with pytest.raises(HadesError, match="missing t10k-images"):
        load_split(tmp_path, "test")
    path = tmp_path / "train-images-idx3-ubyte"
    with pytest.raises(HadesError, match="magic"):
        read_idx(path, LABELS_MAGIC)
    path.write_bytes(path.read_bytes()[:-5])
    with pytest.raises(HadesError, match="truncated"):
        load_split(tmp_path, "train")
    with pytest.raises(HadesError, match="does not exist"):
        load_split(tmp_path / "nope", "train")


def learnable_split(directory: Path, prefix: str, n: int, rng):
    """Images a classifier can learn: class c lights a 4-pixel-high band at row 2c, plus noise."""
    labels = np.arange(n) % 10
    images = rng.integers(0, 60, (n, 28, 28)).astype(np.uint8)
    for i, c in enumerate(labels):
        images[i, 2 * c + 4 : 2 * c + 8, 4:24] = 230
    for stem, arr, magic in (
        (f"{prefix}-images-idx3-ubyte", images, IMAGES_MAGIC),
        (f"{prefix}-labels-idx1-ubyte", labels, LABELS_MAGIC),
    ):
        (directory / (stem + ".gz")).write_bytes(gzip.compress(idx_bytes(arr, magic)))


def _generated(tmp_path_factory):
    d = tmp_path_factory.mktemp("idx")
    rng = np.random.default_rng(0)
    learnable_split(d, "train", 2000, rng)
    learnable_split(d, "t10k", 500, rng)
    return d, 2000


# the generated set on every clone; ../shared/data's MNIST subset as well where it is beside the
# clone (CI): nothing skips either way
SOURCES = ["generated"] + (["shared"] if (SHARED / "mnist-5k").is_dir() else [])


@pytest.fixture(scope="module", params=SOURCES)
def image_data(request, tmp_path_factory):
    """A small generated, learnable IDX set, or ../shared's real MNIST subset."""
    if request.param == "shared":
        return SHARED / "mnist-5k", 5000
    return _generated(tmp_path_factory)


@pytest.fixture(scope="module")
def generated_data(tmp_path_factory):
    return _generated(tmp_path_factory)


def test_tiny_image_run_on_mnist(tmp_path, image_data):
    cfg = make_image_config(
        None,
        dataset="mnist",
        data_dir=str(image_data[0]),
        population=8,
        generations=3,
        eval_every=1,
        eval_classifiers=2,
        fitness_batch=256,
        bc_steps=20,
        checkpoint_every=1,
    )
    summary = run(cfg, tmp_path / "img")
    run_figures(tmp_path / "img")
    for name in ("dataset.safetensors", "images.png", "metrics.jsonl", "summary.json", "learning_curve.png"):
        assert (tmp_path / "img" / name).is_file()
    # class-mean images already train a classifier far above chance (10%) on the real test set
    assert summary["class_mean_accuracy_mean"] > 0.5
    assert 0.1 < summary["final_accuracy_mean"] <= 1.0
    rows = [json.loads(x) for x in (tmp_path / "img" / "metrics.jsonl").read_text().splitlines()]
    assert [r["generation"] for r in rows] == [1, 2, 3] and rows[0]["eval_accuracy_mean"] is not None
    # resume: extend to 4 generations
    run(dataclasses.replace(cfg, generations=4), tmp_path / "img", resume=True)
    assert len((tmp_path / "img" / "metrics.jsonl").read_text().splitlines()) == 4


def test_es_improves_the_fitness(tmp_path, generated_data):
    """A few dozen generations lower the loss on the (fixed, full) training images of the population."""
    d = ImageDistiller(
        make_image_config(
            None,
            dataset="mnist",
            data_dir=str(generated_data[0]),
            population=16,
            generations=45,
            fitness_batch=0,
            bc_steps=20,
            image_init="random",
            sigma=0.1,
            es_lr=0.1,
        )
    )
    state = d.init()
    first = None
    for _ in range(45):
        state, m = d.step(state)
        first = float(m["fitness_mean"]) if first is None else first
    assert float(m["fitness_mean"]) > first + 0.03  # measured: +0.034 after 30, +0.065 after 60


def test_validation_images_are_held_out_of_the_fitness(image_data):
    d = ImageDistiller(
        make_image_config(None, dataset="mnist", data_dir=str(image_data[0]), holdout=700, generations=1)
    )
    assert len(d.val_x) == 700 and len(d.train_x) == image_data[1] - 700
    flat = lambda a: {x.tobytes() for x in a}
    assert not flat(d.val_x[:200]) & flat(d.train_x)  # (no duplicate images across these)
    assert d.evaluate(d.init())["split"] == "validation" and d.final_evaluate(d.init())["split"] == "test"


_SHARDED_IMAGES = """
import sys, numpy as np
from hades.presets import make_image_config
from hades.supervised import ImageDistiller
out = []
for devices in (1, 2):
    cfg = make_image_config(None, data_dir=sys.argv[1], population=8, generations=2, holdout=20, eval_classifiers=2,
                            bc_steps=5, devices=devices)
    d = ImageDistiller(cfg)
    s = d.init()
    for _ in range(2):
        s, _ = d.step(s)
    out.append((np.asarray(d.es.mean(s.es_state)), 1 if d.mesh is None else d.mesh.devices.size))
print(np.array_equal(out[0][0], out[1][0]), out[0][1], out[1][1])
"""


def test_image_population_over_two_devices_gives_the_images_of_one(tmp_path):
    # the image driver scores its population the way the RL drivers do (over the device mesh,
    # a few candidates at a time), and the split does not change what it evolves
    import os
    import subprocess
    import sys

    rng = np.random.default_rng(0)
    for prefix, n in (("train", 120), ("t10k", 40)):
        write_split(tmp_path, prefix, n, True, rng)
    env = dict(os.environ, XLA_FLAGS=with_device_count(os.environ.get("XLA_FLAGS", ""), 2))
    out = subprocess.run(
        [sys.executable, "-c", _SHARDED_IMAGES, str(tmp_path)], env=env, capture_output=True, text=True, timeout=300
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split() == ["True", "1", "2"], out.stdout
