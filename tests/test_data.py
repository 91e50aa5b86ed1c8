"""`hades data download`: fetched from a local HTTP server (127.0.0.1, files the test writes; no
network), checked, resumable, then found by distill-images without --data-dir."""

import gzip
import hashlib
import http.server
import json
import threading

import numpy as np
import pytest
from helpers import cli

import hades.data
from hades.supervised import IMAGES_MAGIC, LABELS_MAGIC


def idx(array, magic):
    head = magic.to_bytes(4, "big") + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    return gzip.compress(head + array.astype(np.uint8).tobytes())


class RangeHandler(http.server.SimpleHTTPRequestHandler):
    """Serves files, honouring `Range: bytes=N-` (what a resumed download sends)."""

    ranges: list = []

    def log_message(self, *args):
        pass

    def do_GET(self):
        path = self.translate_path(self.path)
        try:
            data = open(path, "rb").read()
        except OSError:
            self.send_error(404)
            return
        start = 0
        if self.headers.get("Range"):
            start = int(self.headers["Range"].split("=")[1].rstrip("-"))
            RangeHandler.ranges.append(start)
            self.send_response(206)
        else:
            self.send_response(200)
        self.send_header("Content-Length", str(len(data) - start))
        self.end_headers()
        self.wfile.write(data[start:])


@pytest.fixture
def mirror(tmp_path, monkeypatch):
    served = tmp_path / "served"
    served.mkdir()
    rng = np.random.default_rng(0)
    md5 = {}
    for name, n in (("train", 300), ("t10k", 100)):
        labels = np.arange(n) % 10
        images = rng.integers(0, 256, (n, 28, 28))
        for stem, arr, magic in (("images-idx3", images, IMAGES_MAGIC), ("labels-idx1", labels, LABELS_MAGIC)):
            fname = f"{name}-{stem}-ubyte.gz"
            (served / fname).write_bytes(idx(arr, magic))
            md5[fname] = hashlib.md5((served / fname).read_bytes()).hexdigest()
    handler = lambda *a, **k: RangeHandler(*a, directory=str(served), **k)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/"
    spec = {"mirrors": ("http://127.0.0.1:9/nothing/", url), "md5": md5}  # the first mirror is down
    monkeypatch.setitem(hades.data.DATASETS, "fashion-mnist", spec)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv("HADES_DATA_DIR", raising=False)
    RangeHandler.ranges = []
    yield served, md5
    server.shutdown()


def test_download_then_distill_images_without_data_dir(tmp_path, mirror):
    out = cli("data", "download", "fashion-mnist", "--quiet")
    assert out.returncode == 0, out.stderr
    where = tmp_path / "cache" / "hades" / "data" / "fashion-mnist"
    assert json.loads(out.stdout)["dir"] == str(where)
    for name, digest in mirror[1].items():
        assert hashlib.md5((where / name).read_bytes()).hexdigest() == digest
    run = cli(
        "distill-images", "--dataset", "fashion-mnist", "--generations", "2", "--population", "4", "--holdout", "50",
        "--fitness-batch", "64", "--bc-steps", "5", "--eval-classifiers", "2", "--quiet", "--out", tmp_path / "run",
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    assert json.loads((tmp_path / "run" / "config.json").read_text())["data_dir"] == str(where.resolve())


def test_an_interrupted_download_resumes(tmp_path, mirror):
    served, _ = mirror
    where = tmp_path / "d"
    where.mkdir()
    name = "train-images-idx3-ubyte.gz"
    data = (served / name).read_bytes()
    (where / f".{name}.part").write_bytes(data[: len(data) // 2])
    assert cli("data", "download", "fashion-mnist", "--dir", where, "--quiet").returncode == 0
    assert (where / name).read_bytes() == data and len(data) // 2 in RangeHandler.ranges
    assert not list(where.glob(".*.part"))


def test_a_corrupt_file_is_refused_and_not_kept(tmp_path, mirror):
    served, md5 = mirror
    (served / "t10k-labels-idx1-ubyte.gz").write_bytes(b"not the file")
    out = cli("data", "download", "fashion-mnist", "--dir", tmp_path / "d", "--quiet")
    assert out.returncode == 2 and "checksum mismatch" in out.stderr and "Traceback" not in out.stderr
    assert not (tmp_path / "d" / "t10k-labels-idx1-ubyte.gz").exists()
    assert not list((tmp_path / "d").glob(".*.part"))


def test_without_data_distill_images_says_how_to_get_it(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "empty"))
    monkeypatch.delenv("HADES_DATA_DIR", raising=False)
    out = cli("distill-images", "--dataset", "mnist", "--out", tmp_path / "r")
    assert out.returncode == 2 and "hades data download mnist" in out.stderr
