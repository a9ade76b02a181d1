"""Dataset downloads, against an HTTP server on 127.0.0.1 that the tests start: never the internet.

The real sources and their pinned SHA-256s stay in search/download.py; each test points a
dataset's mirrors at the loopback server and pins the hashes of the small files it serves.
"""

from __future__ import annotations

import dataclasses
import functools
import gzip
import hashlib
import io
import socket
import struct
import tarfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import SimpleNamespace

import numpy as np
import pytest

from hgsearch.search import download
from hgsearch.search.data import DataError, DataSettings, load

N_TRAIN, N_TEST = 10_300, 20  # the paper's split keeps 10,000 for eval: 300 left to train
IDX = {
    "train-images-idx3-ubyte.gz": ("images", N_TRAIN),
    "train-labels-idx1-ubyte.gz": ("labels", N_TRAIN),
    "t10k-images-idx3-ubyte.gz": ("images", N_TEST),
    "t10k-labels-idx1-ubyte.gz": ("labels", N_TEST),
}


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@functools.cache
def idx_files() -> dict[str, bytes]:
    """Four valid, small gzipped idx files (image i is blank but for pixel 0 = i % 256)."""
    files = {}
    for name, (kind, n) in IDX.items():
        if kind == "images":
            array = np.zeros((n, 28, 28), np.uint8)
            array[:, 0, 0] = np.arange(n) % 256
        else:
            array = (np.arange(n) % 10).astype(np.uint8)
        header = bytes([0, 0, 0x08, array.ndim]) + b"".join(
            struct.pack(">I", d) for d in array.shape
        )
        files[name] = gzip.compress(header + array.tobytes(), compresslevel=1, mtime=0)
    return files


@functools.cache
def cifar_tarball() -> bytes:
    """cifar-10-binary.tar.gz in miniature: six batches of 1,001 records of 1 + 3072 bytes."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tar:
        for batch in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
            rows = np.zeros((1_001, 3073), np.uint8)
            rows[:, 0] = np.arange(1_001) % 10
            data = rows.tobytes()
            info = tarfile.TarInfo(f"cifar-10-batches-bin/{batch}.bin")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return gzip.compress(raw.getvalue(), compresslevel=1, mtime=0)


@pytest.fixture
def server(monkeypatch):
    """A ThreadingHTTPServer on 127.0.0.1: `files` maps a path to the bytes it serves, `seen`
    lists every GET, a path in `drop_once` gets half its bytes and a closed connection once."""
    state = SimpleNamespace(files={}, seen=[], drop_once=set())

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 - http.server's name
            state.seen.append(self.path)
            body = state.files.get(self.path)
            if body is None:
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if self.path in state.drop_once:
                state.drop_once.discard(self.path)
                self.wfile.write(body[: len(body) // 2])
                self.close_connection = True
                return
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.01})
    thread.start()
    for var in ("NO_PROXY", "no_proxy"):  # a proxy from the environment must not see loopback
        monkeypatch.setenv(var, "127.0.0.1")
    state.url = f"http://127.0.0.1:{httpd.server_port}"
    yield state
    httpd.shutdown()
    thread.join()
    httpd.server_close()


def serve(monkeypatch, server, name, files, mirrors=("/a/",), pinned=None):
    """Serve `files` under the last mirror path and point `name`'s source at the server."""
    for path, data in files.items():
        server.files[mirrors[-1] + path] = data
    pinned = pinned or {path: sha256(data) for path, data in files.items()}
    source = dataclasses.replace(
        download.SOURCES[name], mirrors=tuple(server.url + m for m in mirrors), files=pinned
    )
    monkeypatch.setitem(download.SOURCES, name, source)


def dead_port() -> int:
    """A loopback port with nothing listening: bound, then closed."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize("name", ["mnist", "fashion_mnist"])
def test_download_then_load_then_nothing_more(monkeypatch, server, tmp_path, name):
    serve(monkeypatch, server, name, idx_files())
    s = load(DataSettings(name, root=str(tmp_path)))
    assert (len(s.train.labels), len(s.eval.labels), len(s.test.labels)) == (300, 10_000, 20)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(IDX)  # no temporary left
    for path, data in idx_files().items():
        assert sha256((tmp_path / path).read_bytes()) == sha256(data)
    assert len(server.seen) == 4
    load(DataSettings(name, root=str(tmp_path)))
    assert len(server.seen) == 4  # files on disk: no request


def test_cifar10_binary_tarball_is_extracted(monkeypatch, server, tmp_path):
    serve(monkeypatch, server, "cifar10", {"cifar-10-binary.tar.gz": cifar_tarball()})
    s = load(DataSettings("cifar10", root=str(tmp_path)))
    assert (len(s.train.labels), len(s.eval.labels), len(s.test.labels)) == (5, 5_000, 1_001)
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "cifar-10-batches-bin",
        "cifar-10-binary.tar.gz",
    ]  # the extraction's temporary folder is gone
    load(DataSettings("cifar10", root=str(tmp_path)))
    assert server.seen == ["/a/cifar-10-binary.tar.gz"]


def test_no_root_downloads_into_the_user_cache(monkeypatch, server, tmp_path):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    serve(monkeypatch, server, "mnist", idx_files())
    assert len(load(DataSettings("mnist")).test.labels) == 20
    assert sorted(p.name for p in (tmp_path / "hgsearch" / "mnist").iterdir()) == sorted(IDX)


def test_corrupted_download_is_one_line_and_leaves_nothing(monkeypatch, server, tmp_path):
    good = idx_files()
    bad = {k: v[:-9] + b"corrupted" for k, v in good.items()}
    serve(monkeypatch, server, "mnist", bad, pinned={k: sha256(v) for k, v in good.items()})
    with pytest.raises(DataError) as info:
        load(DataSettings("mnist", root=str(tmp_path)))
    message = str(info.value)
    first = "train-images-idx3-ubyte.gz"
    assert f"got {sha256(bad[first])}, expected {sha256(good[first])}" in message
    assert "SHA-256 does not match" in message and "run again" in message
    assert "\n" not in message
    assert list(tmp_path.iterdir()) == []


def test_dropped_connection_is_restarted(monkeypatch, server, tmp_path):
    serve(monkeypatch, server, "mnist", idx_files())
    server.drop_once.add("/a/train-images-idx3-ubyte.gz")
    s = load(DataSettings("mnist", root=str(tmp_path)))
    assert len(s.train.labels) == 300
    data = (tmp_path / "train-images-idx3-ubyte.gz").read_bytes()
    assert sha256(data) == sha256(idx_files()["train-images-idx3-ubyte.gz"])
    assert server.seen.count("/a/train-images-idx3-ubyte.gz") == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(IDX)


def test_offline_says_where_to_put_the_files(monkeypatch, tmp_path):
    ports = dead_port(), dead_port()
    source = dataclasses.replace(
        download.SOURCES["mnist"], mirrors=tuple(f"http://127.0.0.1:{p}/mnist/" for p in ports)
    )
    monkeypatch.setitem(download.SOURCES, "mnist", source)
    with pytest.raises(DataError) as info:
        load(DataSettings("mnist", root=str(tmp_path)))
    message = str(info.value)
    assert message.startswith("cannot download mnist (")
    assert all(f"127.0.0.1:{p}: Connection refused" in message for p in ports)  # both mirrors
    assert f"looks offline: put the files in {tmp_path} (expected train-images" in message
    assert "dataset.root=" in message and "\n" not in message
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("value", ["false", "False"])  # YAML's false reaches here as "False"
def test_download_false_keeps_the_missing_files_error(monkeypatch, server, tmp_path, value):
    serve(monkeypatch, server, "mnist", idx_files())
    with pytest.raises(DataError, match="no MNIST-style idx files"):
        load(DataSettings("mnist", root=str(tmp_path), download=value))
    with pytest.raises(DataError, match="needs its files on disk: set dataset.root"):
        load(DataSettings("cifar10", download=value))
    assert server.seen == []


def test_second_mirror_serves_when_the_first_404s(monkeypatch, server, tmp_path):
    serve(monkeypatch, server, "mnist", idx_files(), mirrors=("/gone/", "/b/"))
    assert len(load(DataSettings("mnist", root=str(tmp_path))).train.labels) == 300
    assert [p.split("/")[1] for p in server.seen] == ["gone", "b"] * 4


def test_download_true_rechecks_files_already_there(monkeypatch, server, tmp_path):
    serve(monkeypatch, server, "mnist", idx_files())
    for path, data in idx_files().items():
        (tmp_path / path).write_bytes(data)
    damaged = tmp_path / "t10k-labels-idx1-ubyte.gz"
    damaged.write_bytes(b"not what was pinned")
    load(DataSettings("mnist", root=str(tmp_path), download="true"))
    assert server.seen == ["/a/t10k-labels-idx1-ubyte.gz"]  # the others matched their hashes
    assert damaged.read_bytes() == idx_files()["t10k-labels-idx1-ubyte.gz"]


def test_imagenet32_is_never_downloaded_and_says_where_to_get_it(tmp_path):
    for settings in (DataSettings("imagenet32", root=str(tmp_path)), DataSettings("imagenet32")):
        with pytest.raises(DataError) as info:
            load(settings)
        assert "https://image-net.org/download-images.php" in str(info.value)
        assert '"Downsampled ImageNet 32x32"' in str(info.value) and ".npz" in str(info.value)


def test_config_accepts_auto_true_false_and_refuses_others():
    from omegaconf import OmegaConf

    from hgsearch.search.config import parse
    from hgsearch.search.errors import ConfigError
    from tests.conftest import compose_cfg

    def parsed(*overrides):
        return parse(OmegaConf.to_container(compose_cfg(["dataset=mnist", *overrides])))

    assert parsed().data.download == "auto"
    assert download.mode(parsed("dataset.download=false").data.download) == "false"
    assert download.mode(parsed("dataset.download=true").data.download) == "true"
    with pytest.raises(ConfigError, match="dataset.download='sometimes'"):
        parsed("dataset.download=sometimes")


def test_cli_train_downloads_into_dataset_root(monkeypatch, server, tmp_path):
    from hgsearch.search import train
    from hgsearch.search.cli import main
    from tests.fakes import FakeTrainer

    monkeypatch.setattr(train, "train", FakeTrainer())  # the download is under test, not SGD
    serve(monkeypatch, server, "mnist", idx_files())
    argv = ["train", "dataset=mnist", f"dataset.root={tmp_path}", "train.epochs=1"]
    argv += ["arch.d_z=65", "arch.d_h=16", "arch.depth=1", "dataset.limit=300", "device=cpu"]
    assert main([*argv, f"run_dir={tmp_path / 'runs'}"]) == 0
    assert len(server.seen) == 4
    assert all((tmp_path / path).is_file() for path in IDX)
