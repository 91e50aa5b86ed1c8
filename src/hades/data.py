"""Image data a user can get: ``hades data download mnist|fashion-mnist`` fetches the four standard
IDX files from the usual public mirrors into a cache directory that ``distill-images`` then finds
on its own (``$XDG_CACHE_HOME/hades/data/<dataset>``, ``~/.cache/hades/data/<dataset>`` by default).

- Each file is checked against the MD5 its publishers (and torchvision) list: integrity against a
  broken or altered download, not authenticity. A file that fails the check is deleted, and the
  next mirror is tried.
- Downloads resume: bytes arrive in ``.<name>.part`` and an interrupted download continues from
  there (an HTTP Range request; a server that ignores it restarts the file). A finished file is
  never fetched again.
- ``progress(name, done, total)`` is told as bytes arrive (the CLI draws a bar).
"""

from __future__ import annotations

import hashlib
import os
import urllib.error
import urllib.request
from pathlib import Path

from hades.errors import HadesError

IDX_NAMES = (
    "train-images-idx3-ubyte.gz",
    "train-labels-idx1-ubyte.gz",
    "t10k-images-idx3-ubyte.gz",
    "t10k-labels-idx1-ubyte.gz",
)
# the publishers' MD5s (torchvision.datasets.MNIST / FashionMNIST list the same)
DATASETS: dict[str, dict] = {
    "mnist": {
        "mirrors": (
            "https://ossci-datasets.s3.amazonaws.com/mnist/",
            "https://storage.googleapis.com/cvdf-datasets/mnist/",
        ),
        "md5": dict(
            zip(
                IDX_NAMES,
                (
                    "f68b3c2dcbeaaa9fbdd348bbdeb94873",
                    "d53e105ee54ea40749a09fcbcd1e9432",
                    "9fb629c4189551a2d022fa330f9573f3",
                    "ec29112dd5afa0611ce80d1b7f02629c",
                ),
            )
        ),
    },
    "fashion-mnist": {
        "mirrors": (
            "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
            "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/",
        ),
        "md5": dict(
            zip(
                IDX_NAMES,
                (
                    "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
                    "25c81989df183df01b3e8a0aad5dffbe",
                    "bef4ecab320f06d8554ea6380940ec79",
                    "bb300cfdad3c16e7a12a480ee83cd310",
                ),
            )
        ),
    },
}
CHUNK = 1 << 16


def cache_dir(dataset: str) -> Path:
    """Where ``download`` puts ``dataset`` by default and ``distill-images`` looks for it."""
    root = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(root) / "hades" / "data" / dataset


def is_complete(directory: Path) -> bool:
    return all((Path(directory) / n).is_file() for n in IDX_NAMES)


def _md5(path: Path) -> str:
    h = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _fetch(url: str, part: Path, name: str, progress) -> None:
    """Append ``url``'s bytes to ``part`` from where it stops (Range), or restart it."""
    have = part.stat().st_size if part.is_file() else 0
    request = urllib.request.Request(url, headers={"Range": f"bytes={have}-"} if have else {})
    with urllib.request.urlopen(request, timeout=60) as response:
        if have and response.status != 206:  # the server sent the whole file: start again
            have = 0
        total = response.headers.get("Content-Length")
        total = int(total) + have if total is not None else None
        with open(part, "ab" if have else "wb") as f:
            done = have
            while block := response.read(CHUNK):
                f.write(block)
                done += len(block)
                if progress:
                    progress(name, done, total)


def download(dataset: str, directory=None, *, mirrors=None, progress=None) -> Path:
    """Fetch ``dataset``'s four IDX files into ``directory`` (default ``cache_dir``), verified;
    returns the directory. ``mirrors`` replaces the public ones (tests serve files locally)."""
    if dataset not in DATASETS:
        raise HadesError(f"unknown image dataset {dataset!r}; choose from {', '.join(DATASETS)}")
    spec = DATASETS[dataset]
    directory = Path(directory) if directory else cache_dir(dataset)
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise HadesError(f"cannot create {directory}: {e.strerror or e}") from None
    for name in IDX_NAMES:
        target = directory / name
        if target.is_file() and _md5(target) == spec["md5"][name]:
            continue
        part = directory / f".{name}.part"
        errors = []
        for base in mirrors or spec["mirrors"]:
            try:
                _fetch(base + name, part, name, progress)
            except (urllib.error.URLError, OSError, ValueError) as e:
                errors.append(f"{base}: {getattr(e, 'reason', None) or e}")
                continue
            if _md5(part) == spec["md5"][name]:
                os.replace(part, target)
                break
            part.unlink(missing_ok=True)  # a wrong file: never resumed, never kept
            errors.append(f"{base}: checksum mismatch")
        else:
            raise HadesError(f"could not download {name}: " + "; ".join(errors))
    return directory
