"""Image files in their standard on-disk formats, read into uint8 arrays (N, C, H, W).

MNIST-style idx files (gzipped or not), CIFAR-10 binary and python batches, Downsampled-ImageNet
`.npz` and pickled batches. A pickle can run code when loaded, so it is read only when the user
opts in, and then through an unpickler that admits plain arrays only. Every malformed file is a
DataError naming the file and what was expected.
"""

from __future__ import annotations

import io
import pickle
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np


class DataError(RuntimeError):
    """Missing or malformed data; the message says what was expected where."""


@dataclass(frozen=True)
class ImageSet:
    images: np.ndarray  # (N, C, H, W) uint8
    labels: np.ndarray  # (N,) int64

    def take(self, index: np.ndarray) -> ImageSet:
        return ImageSet(self.images[index], self.labels[index])


MAX_BYTES = 64 << 30  # no image file of ours decompresses to more (ImageNet-32's train: ~4 GB)


def _inflate(path: Path, raw: bytes, limit: int) -> bytes:
    """gunzip `raw` to at most `limit` bytes: a file that inflates to more (a damaged header, a
    gzip bomb) is refused before the memory is spent."""
    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
    out = inflater.decompress(raw, limit + 1)
    if len(out) > limit:
        raise DataError(
            f"{path} decompresses to more than {limit:,} bytes, more than it can hold: a "
            f"damaged or hostile file; download it again"
        )
    if not inflater.eof:
        raise DataError(f"cannot read {path}: the gzip data ends early (a truncated download?)")
    return out


def read_bytes(path: Path, limit: int = MAX_BYTES) -> bytes:
    """A file's bytes, gunzipped when it is gzipped (at most `limit` of them)."""
    try:
        raw = path.read_bytes()
        return _inflate(path, raw, limit) if raw[:2] == b"\x1f\x8b" else raw
    except (OSError, EOFError) as exc:
        raise DataError(f"cannot read {path}: {exc}") from exc
    except zlib.error as exc:
        raise DataError(
            f"cannot read {path}: damaged gzip data ({exc}); get the file again"
        ) from exc


def _idx_size(path: Path) -> int:
    """The size an idx file's header promises (magic, dims, data), read from its first bytes
    without inflating the rest."""
    raw = path.read_bytes()[: 1 << 16]
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = zlib.decompressobj(16 + zlib.MAX_WBITS).decompress(raw, 64)
        except zlib.error as exc:
            raise DataError(f"cannot read {path}: damaged gzip data ({exc})") from exc
    if len(raw) < 4 or raw[3] == 0 or len(raw) < 4 + 4 * raw[3]:
        return 64  # a header this short is refused by read_idx with its own message
    shape = [int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(raw[3])]
    return 4 + 4 * raw[3] + int(np.prod(shape, dtype=object))


def read_idx(path: Path) -> np.ndarray:
    """An idx file (gzipped or not) as a uint8 array; the header is checked against the size."""
    promised = _idx_size(path)
    if promised > MAX_BYTES:
        raise DataError(f"{path}: its header promises {promised:,} bytes, not an image set")
    raw = read_bytes(path, limit=promised)
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


def find_idx_dir(root: Path, torchvision_name: str) -> Path:
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


def idx_pair(folder: Path, which: str) -> ImageSet:
    images = read_idx(_idx_file(folder, IDX_FILES[f"{which}_images"]))
    labels = read_idx(_idx_file(folder, IDX_FILES[f"{which}_labels"]))
    if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
        raise DataError(
            f"{folder}: {which} images {images.shape} and labels {labels.shape} do not match "
            f"(expected (N, H, W) and (N,))"
        )
    return ImageSet(np.ascontiguousarray(images[:, None]), labels.astype(np.int64))


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


def read_pickle(path: Path, allow_pickle: bool) -> dict:
    if not allow_pickle:
        raise DataError(
            f"{path} is a Python pickle, and loading a pickle can run code: pass "
            f"dataset.allow_pickle=true if you trust it, or use the .npz/binary format"
        )
    try:
        obj = _ArrayUnpickler(io.BytesIO(read_bytes(path)), encoding="bytes").load()
    except DataError:
        raise
    except Exception as exc:  # noqa: BLE001 - whatever a foreign pickle throws is one line
        raise DataError(f"{path}: not a pickled batch of arrays ({type(exc).__name__}: "
                        f"{str(exc)[:120]})") from exc  # fmt: skip
    if not isinstance(obj, dict):
        raise DataError(f"{path}: expected a pickled dict with 'data' and 'labels'")
    return {(k.decode() if isinstance(k, bytes) else k): v for k, v in obj.items()}


def pickled_batch(obj: dict, path: Path, side: int) -> ImageSet:
    data, labels = obj.get("data"), obj.get("labels")
    if data is None or labels is None:
        raise DataError(f"{path}: expected arrays 'data' and 'labels'")
    try:
        data = np.asarray(data, dtype=np.uint8)
        labels = np.asarray(labels, dtype=np.int64).reshape(-1)
    except (TypeError, ValueError, OverflowError) as exc:
        raise DataError(
            f"{path}: 'data' must be bytes 0-255 and 'labels' integers ({exc})"
        ) from exc
    if data.ndim != 2 or data.shape[1] != 3 * side * side or len(data) != len(labels):
        raise DataError(
            f"{path}: 'data' {data.shape} and 'labels' {labels.shape} do not hold "
            f"N x {3 * side * side} pixels with N labels"
        )
    return ImageSet(data.reshape(-1, 3, side, side), labels)


def concat(sets: list[ImageSet]) -> ImageSet:
    return ImageSet(
        np.concatenate([s.images for s in sets]), np.concatenate([s.labels for s in sets])
    )


def cifar_binary(path: Path) -> ImageSet:
    raw = read_bytes(path)
    if len(raw) == 0 or len(raw) % 3073:
        raise DataError(f"{path}: a CIFAR-10 binary batch holds records of 1 + 3072 bytes")
    rows = np.frombuffer(raw, np.uint8).reshape(-1, 3073)
    return ImageSet(rows[:, 1:].reshape(-1, 3, 32, 32).copy(), rows[:, 0].astype(np.int64))


def imagenet_batch(path: Path, allow_pickle: bool) -> ImageSet:
    if path.suffix == ".npz":
        try:
            with np.load(path, allow_pickle=False) as npz:
                obj = {k: npz[k] for k in npz.files}
        except (OSError, ValueError) as exc:
            raise DataError(f"{path}: not a readable .npz batch ({exc})") from exc
    else:
        obj = read_pickle(path, allow_pickle)
    batch = pickled_batch(obj, path, 32)
    # Downsampled-ImageNet labels run 1..1000.
    return ImageSet(batch.images, batch.labels - 1 if batch.labels.min() >= 1 else batch.labels)
