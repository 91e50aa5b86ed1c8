"""Supervised dataset distillation: evolve one synthetic image per class (MNIST, FashionMNIST).

The same ES machinery as the RL side (``es.py``, ``bc.py``'s inner loop, ``runs.py``'s run
directory): a candidate is 10 images with fixed labels 0..9; a classifier (``policies.py``'s MLP
or the released code's small CNN) is trained on them for ``bc_steps`` full-batch steps, and the
fitness is minus its cross-entropy on real training images (a fresh random minibatch each
generation, or the full set). All candidates of a generation share the classifier
initialisation and the minibatch (common random numbers); the initialisation is drawn afresh
every generation. Reported: test accuracy of ``eval_classifiers`` freshly initialised
classifiers trained on the images, next to that of the class-mean images.

Data: the standard IDX files (``train-images-idx3-ubyte[.gz]``, ``train-labels-idx1-ubyte[.gz]``,
``t10k-images-idx3-ubyte[.gz]``, ``t10k-labels-idx1-ubyte[.gz]``) in a directory the user names
(``--data-dir`` or ``$HADES_DATA_DIR``), or the cache directory ``hades data download`` fills
(``hades.data.cache_dir``); nothing is downloaded by a run.
"""

from __future__ import annotations

import gzip
import os
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import struct

from hades.bc import make_bc_train
from hades.config import ImageDistillConfig
from hades.dataset import Dataset
from hades.devices import population_mesh, replicate, score_population, whole_on_every_device
from hades.errors import HadesError
from hades.es import Strategy, generation_metrics
from hades.policies import make_classifier

NUM_CLASSES = 10
IDX_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
IMAGES_MAGIC, LABELS_MAGIC = 2051, 2049
DATA_DIR_ENV = "HADES_DATA_DIR"


def read_idx(path: Path, magic: int) -> np.ndarray:
    """An IDX file (gzip or not) of unsigned bytes, checking its magic number and size."""
    try:
        raw = path.read_bytes()
        if raw[:2] == b"\x1f\x8b":
            raw = gzip.decompress(raw)
    except (OSError, EOFError, gzip.BadGzipFile) as e:
        raise HadesError(f"{path}: cannot read ({e})") from None
    found = int.from_bytes(raw[:4], "big") if len(raw) >= 4 else None
    if found != magic:
        raise HadesError(
            f"{path}: not an IDX file of {'images' if magic == IMAGES_MAGIC else 'labels'} "
            f"(magic {found}, expected {magic})"
        )
    ndim = raw[3]
    dims = [int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)]
    body = raw[4 + 4 * ndim :]
    if len(body) != int(np.prod(dims)):
        raise HadesError(f"{path}: header says {dims} but holds {len(body)} bytes (truncated or corrupt)")
    return np.frombuffer(body, np.uint8).reshape(dims)


def resolve_data_dir(data_dir: str | None, dataset: str | None = None) -> Path:
    """``data_dir``, else ``$HADES_DATA_DIR``, else (for ``dataset``) the download cache."""
    d = data_dir or os.environ.get(DATA_DIR_ENV)
    if not d and dataset:
        from hades.data import cache_dir, is_complete

        if is_complete(cache_dir(dataset)):
            return cache_dir(dataset)
    if not d:
        hint = f"hades data download {dataset}, or " if dataset else ""
        raise HadesError(f"no {dataset or 'image'} data: run {hint}pass --data-dir DIR or set ${DATA_DIR_ENV}")
    path = Path(d)
    if not path.is_dir():
        raise HadesError(f"data directory {path} does not exist")
    return path


def load_split(data_dir, split: str, dataset: str | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(images float32 [n, 28, 28, 1] in [0, 1], labels int32 [n]) of 'train' or 'test'."""
    directory = resolve_data_dir(str(data_dir) if data_dir else None, dataset)
    arrays = []
    for stem, magic in zip(IDX_FILES[split], (IMAGES_MAGIC, LABELS_MAGIC)):
        path = next((directory / n for n in (stem + ".gz", stem) if (directory / n).is_file()), None)
        if path is None:
            raise HadesError(f"{directory}: missing {stem}.gz (or {stem})")
        arrays.append(read_idx(path, magic))
    images, labels = arrays
    if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
        raise HadesError(f"{directory}: {split} images {images.shape} and labels {labels.shape} do not match")
    if labels.max() >= NUM_CLASSES:
        raise HadesError(f"{directory}: {split} labels exceed {NUM_CLASSES - 1}")
    return (images.astype(np.float32) / 255.0)[..., None], labels.astype(np.int32)


def class_means(images: np.ndarray, labels: np.ndarray) -> np.ndarray:
    return np.stack([images[labels == c].mean(0) for c in range(NUM_CLASSES)])


def training_split(cfg: ImageDistillConfig):
    """((fit images, labels), (validation images, labels)): ``cfg.holdout`` training images set
    aside by a fixed permutation (seed 0, whatever the run's seed), the same for every run."""
    train_x, train_y = load_split(cfg.data_dir, "train", cfg.dataset)
    if cfg.holdout >= len(train_x):
        raise HadesError(f"--holdout {cfg.holdout} leaves no training images (the training set has {len(train_x)})")
    order = np.random.default_rng(0).permutation(len(train_x))
    val, fit = order[: cfg.holdout], order[cfg.holdout :]
    return (train_x[fit], train_y[fit]), (train_x[val], train_y[val])


@struct.dataclass
class ImageRunState:
    es_state: object
    generation: jax.Array


class ImageDistiller:
    eval_keys = ("accuracy_mean", "accuracy_std")

    def __init__(self, cfg: ImageDistillConfig):
        self.cfg = cfg.validate()
        (self.train_x, self.train_y), (self.val_x, self.val_y) = training_split(cfg)
        self.test_x, self.test_y = load_split(cfg.data_dir, "test", cfg.dataset)
        self.means = class_means(self.train_x, self.train_y)
        shape = self.train_x.shape[1:]
        self.model = make_classifier(cfg.model, cfg.hidden, shape, NUM_CLASSES)
        self.bc_train = make_bc_train(self.model, cfg.bc)
        self.labels = jnp.arange(NUM_CLASSES, dtype=jnp.int32)
        root = jax.random.PRNGKey(cfg.seed)
        self._setup_key, self._gen_key, self._eval_key = (jax.random.fold_in(root, i) for i in range(3))
        self.es = Strategy(cfg.es, jnp.zeros((NUM_CLASSES, *shape)))
        # the population over --devices (one by default) and, on the full training set, a few
        # candidates at a time to bound memory (the RL drivers' map, so images shard the same way)
        self.mesh = population_mesh(cfg.devices, cfg.es.population)
        per = 1 if self.mesh is None else int(self.mesh.devices.size)
        fits = [c for c in (4 * per, 2 * per, per) if cfg.es.population % c == 0]
        self.chunk = cfg.chunk or (0 if cfg.fitness_batch else fits[0])
        self._train_x, self._train_y = jnp.asarray(self.train_x), jnp.asarray(self.train_y)
        self.step = jax.jit(self._generation)
        self._accuracies = jax.jit(self._test_accuracies, static_argnums=2)
        self._baseline = None

    def init(self) -> ImageRunState:
        k_data, k_es = jax.random.split(self._setup_key)
        if self.cfg.image_init == "mean":
            images = jnp.asarray(self.means)
        else:
            images = jax.random.uniform(k_data, self.means.shape)
        return ImageRunState(self.es.init(k_es, images), jnp.int32(0))

    def _loss(self, params, x, y):
        return optax.softmax_cross_entropy_with_integer_labels(self.model.apply(params, x), y).mean()

    def _generation(self, state: ImageRunState):
        key = jax.random.fold_in(self._gen_key, state.generation)
        k_ask, k_init, k_batch, k_tell = jax.random.split(key, 4)
        population, es_state = self.es.ask(k_ask, state.es_state)
        inits = jax.vmap(self.model.init)(jax.random.split(k_init, self.cfg.num_inits))
        if self.cfg.fitness_batch:
            idx = jax.random.randint(k_batch, (self.cfg.fitness_batch,), 0, self._train_x.shape[0])
            x, y = self._train_x[idx], self._train_y[idx]
        else:
            x, y = self._train_x, self._train_y

        def fitness(images, inits, x, y):
            def one(init):
                params, inner_loss = self.bc_train(init, images, self.labels)
                return -self._loss(params, x, y), inner_loss

            fit, inner = jax.vmap(one)(inits)
            return fit.mean(), inner.mean()

        fit, inner = score_population(fitness, population, self.mesh, self.chunk, (inits, x, y))
        population = replicate(population, self.mesh)
        es_state = whole_on_every_device(self.es.tell, self.mesh)(k_tell, population, fit, es_state)
        metrics = generation_metrics(fit, inner, self.es.mean(es_state))
        return state.replace(es_state=es_state, generation=state.generation + 1), metrics

    def _test_accuracies(self, images, key, split: str):
        x, y = (
            jnp.asarray(a) for a in ((self.val_x, self.val_y) if split == "validation" else (self.test_x, self.test_y))
        )

        def one(k):
            params, _ = self.bc_train(self.model.init(k), images, self.labels)
            return jnp.mean(jnp.argmax(self.model.apply(params, x), -1) == y)

        return jax.lax.map(one, jax.random.split(key, self.cfg.eval_classifiers))

    def images(self, state: ImageRunState) -> np.ndarray:
        return np.asarray(self.es.mean(state.es_state), np.float32)

    def test_accuracy(self, images, key=None, split: str = "test") -> dict:
        acc = np.asarray(self._accuracies(jnp.asarray(images), self._eval_key if key is None else key, split))
        return {
            "accuracy_mean": float(acc.mean()),
            "accuracy_std": float(acc.std()),
            "accuracies": [float(a) for a in acc],
            "split": split,
        }

    @property
    def eval_split(self) -> str:
        return "validation" if self.cfg.holdout else "test"

    def evaluate(self, state: ImageRunState) -> dict:
        """In-run evaluation: the validation set (the test set when nothing is held out)."""
        return self.test_accuracy(self.images(state), split=self.eval_split)

    def final_evaluate(self, state: ImageRunState, in_run: dict | None = None) -> dict:
        """The final figure: test accuracy, measured once, at the last generation."""
        return self.test_accuracy(self.images(state), split="test")

    def describe(self, state=None) -> dict:
        if self._baseline is None:  # the class-mean images, evaluated the same way
            b = self.test_accuracy(self.means)
            self._baseline = {
                "class_mean_accuracy_mean": b["accuracy_mean"],
                "class_mean_accuracy_std": b["accuracy_std"],
            }
        return {
            "dataset": self.cfg.dataset,
            "variant": "supervised",
            "model": self.cfg.model,
            "eval_split": self.eval_split,
            "fitness_images": int(len(self.train_x)),
            **self._baseline,
        }

    def own_init(self, state: ImageRunState):
        return None  # classifiers are freshly initialised every generation

    def product(self, state: ImageRunState) -> Dataset:
        return Dataset(
            states=self.images(state),
            actions=np.arange(NUM_CLASSES, dtype=np.int32),
            env=self.cfg.dataset,
            action_space="discrete",
            variant="supervised",
            config=self.cfg.to_dict(),
        )
