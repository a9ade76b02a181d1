"""Downloads of the public datasets (MNIST, Fashion-MNIST, CIFAR-10), checksummed, via pooch.

pooch streams each file to a temporary name beside its destination, checks its SHA-256 and only
then moves it into place (and deletes it on a mismatch or a broken transfer), so a damaged or
interrupted download never looks like data on disk. What this module adds: mirrors tried in
order, one restart of a transfer that dropped mid-file, the CIFAR-10 tarball extracted into its
folder by one rename, and every failure as one DataError line naming the fix. ImageNet-32 needs
a login and is never downloaded; `MANUAL` says where to get it.

The hashes are pinned here, not fetched: a mirror that serves other bytes is refused. pooch
and requests are imported when a download happens, not with the package.
"""

from __future__ import annotations

import logging
import os
import shutil
import sys
import tarfile
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from .formats import DataError

log = logging.getLogger("hgsearch")

TIMEOUT = (10, 60)  # seconds to connect, seconds between bytes: an offline machine fails fast


@dataclass(frozen=True)
class Source:
    mirrors: tuple[str, ...]  # base URLs, tried in order; a file's URL is base + its name
    files: Mapping[str, str]  # file name -> SHA-256 of its bytes as served
    expected: str  # what a user may put in the folder instead (for the offline message)
    extract: str | None = None  # an archive's top folder, extracted beside it


SOURCES: dict[str, Source] = {
    "mnist": Source(
        mirrors=(
            "https://ossci-datasets.s3.amazonaws.com/mnist/",
            "https://storage.googleapis.com/cvdf-datasets/mnist/",
        ),
        # SHA-256 from tensorflow/datasets, tensorflow_datasets/url_checksums/mnist.txt (the
        # cvdf-datasets copies of yann.lecun.com's files); other projects pin the same values
        # for the ossci-datasets mirror, and torchvision pins both mirrors with one MD5 each.
        files={
            "train-images-idx3-ubyte.gz": (
                "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609"
            ),
            "train-labels-idx1-ubyte.gz": (
                "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c"
            ),
            "t10k-images-idx3-ubyte.gz": (
                "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6"
            ),
            "t10k-labels-idx1-ubyte.gz": (
                "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6"
            ),
        },
        expected="train-images-idx3-ubyte[.gz], train-labels-idx1-ubyte[.gz], "
        "t10k-images-idx3-ubyte[.gz], t10k-labels-idx1-ubyte[.gz]",
    ),
    "fashion_mnist": Source(
        mirrors=("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",),
        # SHA-256 from tensorflow/datasets, tensorflow_datasets/url_checksums/fashion_mnist.txt.
        # Cross-checked here: Debian's /usr/share/datasets/fashion-mnist/*.gz hold the same
        # deflate streams under a rewritten gzip header (no file name, the package's date), so
        # their own SHA-256 differs; putting the name and the upstream date (2017-08-31) back
        # gives files with upstream's published MD5s and exactly these SHA-256s.
        files={
            "train-images-idx3-ubyte.gz": (
                "3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84"
            ),
            "train-labels-idx1-ubyte.gz": (
                "a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845"
            ),
            "t10k-images-idx3-ubyte.gz": (
                "346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073"
            ),
            "t10k-labels-idx1-ubyte.gz": (
                "67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5"
            ),
        },
        expected="train-images-idx3-ubyte[.gz], train-labels-idx1-ubyte[.gz], "
        "t10k-images-idx3-ubyte[.gz], t10k-labels-idx1-ubyte[.gz]",
    ),
    "cifar10": Source(
        # The binary release only: the python release is pickles, which can run code.
        mirrors=("https://www.cs.toronto.edu/~kriz/",),
        # SHA-256 from tensorflow/datasets, tensorflow_datasets/url_checksums/cifar10.txt
        # (170,052,171 bytes; the MD5 on the CIFAR page, c32a1d4ab5d03f1284b67883e8d87530, is
        # that of the same file).
        files={
            "cifar-10-binary.tar.gz": (
                "c4a38c50a1bc5f3a1c5537f2155ab9d68f9f25eb1ed8d9ddda3db29a59bca1dd"
            ),
        },
        expected="cifar-10-binary.tar.gz, or the cifar-10-batches-bin/ folder it holds",
        extract="cifar-10-batches-bin",
    ),
}

MANUAL = {
    "imagenet32": 'ImageNet-32 needs a login: download the .npz batches of "Downsampled '
    'ImageNet 32x32" from https://image-net.org/download-images.php',
}


def cache_folder(name: str) -> Path:
    """Where a dataset goes when no dataset.root is given: the user's cache folder
    (~/.cache/hgsearch/<name> on Linux, or $XDG_CACHE_HOME), shared by every run."""
    import pooch

    return pooch.os_cache("hgsearch") / name


def mode(value: object) -> str:
    """dataset.download as auto, true or false: YAML's true/false arrive as booleans, or as the
    strings "True"/"False" after the typed config builder."""
    return str(value).lower()


def needed(name: str, value: object, present: bool) -> bool:
    """Whether to fetch `name`: `auto` when its files are missing, `true` always (files already
    there are checked by SHA-256 and replaced when they differ), `false` never."""
    how = mode(value)
    return name in SOURCES and (how == "true" or (how == "auto" and not present))


def fetch(name: str, folder: Path) -> None:
    """Download every file of `name` into `folder` (made if missing), or raise one DataError."""
    import pooch

    source = SOURCES[name]
    quiet = pooch.get_logger()
    level = quiet.level
    quiet.setLevel(logging.WARNING)  # pooch logs each start itself; a failure prints one line
    try:
        for fname, sha256 in source.files.items():
            processor = _extract_beside(name, source.extract) if source.extract else None
            _fetch_file(name, source, fname, sha256, folder, processor)
    finally:
        quiet.setLevel(level)


class _Downloader:
    """pooch's HTTP downloader, remembering what arrived: the SHA-256 (pooch deletes a file
    whose hash is wrong, and the error should name both hashes) and whether any bytes came
    (a transfer that broke after it started is worth restarting; a refused one is not)."""

    def __init__(self) -> None:
        import pooch

        self.http = pooch.HTTPDownloader(progressbar=sys.stderr.isatty(), timeout=TIMEOUT)
        self.sha256: str | None = None
        self.started = False

    def __call__(self, url: str, output_file: str, pooch_: object) -> None:
        import pooch

        try:
            self.http(url, output_file, pooch_)
        finally:
            self.started = os.path.exists(output_file) and os.path.getsize(output_file) > 0
        self.sha256 = pooch.file_hash(output_file)


def _fetch_file(
    name: str,
    source: Source,
    fname: str,
    sha256: str,
    folder: Path,
    processor: Callable[[str, str, object], str] | None,
) -> None:
    import pooch
    import requests

    failures: list[str] = []
    damaged: str | None = None
    offline = True  # every mirror failed before answering
    for base in source.mirrors:
        url, host = base + fname, urlsplit(base).netloc
        for attempt in (1, 2):
            downloader = _Downloader()
            try:
                pooch.retrieve(
                    url,
                    known_hash=f"sha256:{sha256}",
                    fname=fname,
                    path=folder,
                    processor=processor,
                    downloader=downloader,
                )
                if downloader.sha256 is not None:
                    log.info("downloaded %s from %s into %s", fname, host, folder)
                return
            except requests.RequestException as exc:
                broke = isinstance(exc, requests.exceptions.ChunkedEncodingError)
                if attempt == 1 and (downloader.started or broke):
                    continue  # dropped mid-file: start this mirror again from byte 0
                failures.append(f"{host}: {_reason(exc)}")
                unreachable = isinstance(exc, requests.ConnectionError | requests.Timeout)
                offline = offline and unreachable and not downloader.started
                break
            except ValueError:
                if downloader.sha256 in (None, sha256):
                    raise  # not pooch's hash check
                damaged = (
                    f"{fname} from {host}: SHA-256 does not match (got {downloader.sha256}, "
                    f"expected {sha256})"
                )
                offline = False
                break  # pooch deleted it; another mirror may serve the right bytes
            except OSError as exc:  # the folder: not writable, disk full
                why = exc.strerror or getattr(exc.__cause__, "strerror", None) or str(exc)
                raise DataError(
                    f"cannot write {name} into {folder} ({' '.join(why.split())}): "
                    f"pass dataset.root=<a writable folder>"
                ) from exc
    if damaged:
        raise DataError(f"{name}: {damaged}: the download was damaged; run again")
    why = "the machine looks offline: " if offline else ""
    raise DataError(
        f"cannot download {name} ({'; '.join(failures)}); {why}put the files in {folder} "
        f"(expected {source.expected}) or pass dataset.root=/path/to/them"
    )


def _reason(exc: Exception) -> str:
    """A transfer failure in a few words. requests wraps urllib3 wraps the socket's error; the
    socket's own words ("Connection refused", "Temporary failure in name resolution") say it."""
    import requests

    if isinstance(exc, requests.HTTPError) and exc.response is not None:
        return f"HTTP {exc.response.status_code}"
    if isinstance(exc, requests.exceptions.ChunkedEncodingError):
        return "the connection dropped mid-file"
    if isinstance(exc, requests.Timeout):
        return "timed out"
    todo: list[BaseException] = [exc]
    seen: set[int] = set()
    while todo:
        err = todo.pop(0)
        if id(err) in seen:
            continue
        seen.add(id(err))
        if isinstance(err, OSError) and err.strerror:
            return " ".join(err.strerror.split())
        inner = (getattr(err, "reason", None), err.__cause__, err.__context__, *err.args)
        todo += [e for e in inner if isinstance(e, BaseException)]
    return type(exc).__name__


def _extract_beside(name: str, top: str) -> Callable[[str, str, object], str]:
    """A pooch processor: the archive's `top` folder, extracted next to the archive through a
    temporary folder and one rename, so a half-extracted folder never looks complete."""

    def process(archive: str, action: str, _pooch: object) -> str:
        import pooch

        final = Path(archive).parent / top
        if action == "fetch" and final.is_dir():
            return str(final)
        try:
            with tempfile.TemporaryDirectory(dir=final.parent, prefix=f".{top}.") as tmp:
                pooch.Untar(extract_dir=tmp)(archive, "download", None)
                if not (Path(tmp) / top).is_dir():
                    raise DataError(f"{name}: {archive} holds no {top}/ folder")
                if final.exists():
                    shutil.rmtree(final)
                os.replace(Path(tmp) / top, final)
        except (OSError, tarfile.TarError) as exc:
            raise DataError(
                f"{name}: cannot extract {archive} ({exc}); delete it and run again"
            ) from exc
        return str(final)

    return process
