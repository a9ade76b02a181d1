"""Failures walked end to end through the installed command: a stale or live journal lock, a
torn or garbled journal, two sweeps on one SQLite file, passwords in storage URLs, optional
outputs that cannot be written, absurd sizes, gzip bombs, odd run folders, damaged data and
storage, a full disk, foreign databases.

Each case asserts the exit code (2: input the user must fix; 1: a failed run or a failure of the
machine, such as a full disk or damaged storage; 130: an interrupt), exactly one line on stderr
(a command that then succeeds runs with -q, so its stderr holds only the notices the case
expects), no traceback, and that every finished trial of a study that existed before is still
readable (SQLite: `PRAGMA integrity_check` and Optuna; journal: Optuna's own JournalStorage).
The studies that exist before are built once per module by a real smoke sweep and copied per
case. Only loopback networking (a closed port) is used.
"""

from __future__ import annotations

import hashlib
import os
import pickle
import re
import resource
import shutil
import signal
import socket
import sqlite3
import struct
import subprocess
import sys
import time
import zlib
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import numpy as np
import optuna
import pytest
from optuna.storages.journal import JournalFileBackend, JournalStorage
from optuna.trial import TrialState

pytestmark = pytest.mark.slow

HG = [sys.executable, "-m", "hgsearch"]  # the installed command's module
BASE = ["experiment=smoke", "device=cpu", "threads=1"]
ONE = ["search.families=[hourglass]"]  # the studies made here: one family keeps the file fast
JOURNAL = ["storage=journal"]
NO_PLOTS = ["report.formats=[]"]  # a sweep that must merely succeed skips its plot files
MNIST = ["dataset=mnist", "dataset.download=false"]  # offline: the files are ours
CIFAR = ["dataset=cifar10", "dataset.allow_pickle=true", "dataset.download=false"]
FOLDER = "smoke-gen_classify-digits"  # the run folder of experiment=smoke
STUDY = f"{FOLDER}-hourglass"
SECRET = "PW123secret"
ENV = {k: v for k, v in os.environ.items() if not k.startswith("PG")}  # no stray PGPASSWORD
PEAK_MB = 600  # an idle `hgsearch train` peaks near 290 MB (torch); a 1 GB inflation is far above


# --- running the command ---------------------------------------------------------------------


@dataclass(frozen=True)
class Ran:
    code: int
    out: str
    err: str
    seconds: float
    peak_mb: float  # this child's own peak RSS, see `Child.wait`

    @property
    def lines(self) -> list[str]:
        return [line for line in self.err.splitlines() if line.strip()]


class Child:
    """The installed command in a subprocess whose output goes to files (no pipe to fill)."""

    def __init__(self, args: list[str], out_dir: Path, preexec_fn=None) -> None:
        self.out_path, self.err_path = out_dir / "stdout", out_dir / "stderr"
        with self.out_path.open("wb") as out, self.err_path.open("wb") as err:
            self.start = time.monotonic()
            self.proc = subprocess.Popen(
                [*HG, *args], stdout=out, stderr=err, env=ENV, preexec_fn=preexec_fn
            )

    @property
    def pid(self) -> int:
        return self.proc.pid

    def alive(self) -> bool:
        """Still running (or stopped); WNOWAIT leaves an exited child for `wait` to reap."""
        flags = os.WEXITED | os.WNOHANG | os.WNOWAIT
        return self.proc.returncode is None and os.waitid(os.P_PID, self.pid, flags) is None

    def high_water_mb(self) -> float:
        """The child's peak RSS so far (VmHWM; 0 once it has exited)."""
        try:
            status = Path(f"/proc/{self.pid}/status").read_text()
        except OSError:
            return 0.0
        found = re.search(r"^VmHWM:\s+(\d+) kB", status, re.MULTILINE)
        return int(found[1]) / 1024 if found else 0.0

    def wait(self, timeout: float = 120) -> Ran:
        """Reap the child. Its peak RSS is read from /proc while it runs: the rusage that
        wait4 returns also counts the forked copy of this (large) test process, whose high
        water mark the kernel carries over at exec. Popen returns only after the exec."""
        deadline = time.monotonic() + timeout
        peak_mb = 0.0
        while True:
            peak_mb = max(peak_mb, self.high_water_mb())
            pid, status, _ = os.wait4(self.pid, os.WNOHANG)
            if pid:
                break
            if time.monotonic() > deadline:
                self.kill()
                pytest.fail(f"{' '.join(self.proc.args)} ran past {timeout} s")
            time.sleep(0.02)
        self.proc.returncode = os.waitstatus_to_exitcode(status)
        return Ran(
            self.proc.returncode,
            self.out_path.read_text(errors="replace"),
            self.err_path.read_text(errors="replace"),
            time.monotonic() - self.start,
            peak_mb,
        )

    def kill(self) -> None:
        if self.proc.returncode is None:
            self.proc.send_signal(signal.SIGCONT)
            self.proc.kill()
            self.proc.wait()


_runs = 0


def hg(*args: str, timeout: float = 120, preexec_fn=None) -> Ran:
    global _runs
    _runs += 1
    out_dir = Path.cwd() / f".hg-{_runs}"  # the test's tmp_path (see `in_tmp`)
    out_dir.mkdir()
    return Child(list(args), out_dir, preexec_fn).wait(timeout)


def one_line(ran: Ran, code: int | tuple[int, ...], *needles: str) -> str:
    """The exit code, exactly one line on stderr holding every needle, no traceback."""
    codes = (code,) if isinstance(code, int) else code
    assert "Traceback" not in ran.err + ran.out, ran.err[-3000:]
    assert ran.code in codes, (ran.code, ran.err[-1500:])
    assert len(ran.lines) == 1, ran.err[-3000:]
    for needle in needles:
        assert needle in ran.err, (needle, ran.err)
    return ran.lines[0]


def succeeded(ran: Ran, *notices: str) -> list[str]:
    """Exit 0, no traceback, and (run with -q) nothing on stderr but the expected notices."""
    assert "Traceback" not in ran.err + ran.out, ran.err[-3000:]
    assert ran.code == 0, (ran.code, ran.err[-3000:])
    for line in ran.lines:
        assert any(n in line for n in notices), (line, ran.err[-3000:])
    return ran.lines


# --- reading what is stored ------------------------------------------------------------------


def sqlite_storage(db: Path) -> str:
    return "sqlite:///" + quote(str(db))  # a `?` or `%` in a folder name stays in the path


def journal_storage(path: Path) -> JournalStorage:
    return JournalStorage(JournalFileBackend(str(path)))


def finished(storage) -> dict[tuple[str, int], tuple]:
    """Every COMPLETE trial as Optuna reads it: (study, number) -> (values, params)."""
    rdb = optuna.storages.RDBStorage(storage) if isinstance(storage, str) else None
    out = {}
    try:
        for name in optuna.get_all_study_names(rdb or storage):
            study = optuna.load_study(study_name=name, storage=rdb or storage)
            for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
                out[(name, t.number)] = (tuple(t.values), tuple(sorted(t.params.items())))
    finally:
        if rdb is not None:
            rdb.engine.dispose()  # no file left open (a tmpfs must unmount)
    return out


def integrity(db: Path) -> str:
    """PRAGMA integrity_check's answer ("ok" for a sound file), or the error SQLite raised."""
    uri = f"file:{quote(str(db))}?mode=ro"
    try:
        with closing(sqlite3.connect(uri, uri=True)) as con:
            return con.execute("PRAGMA integrity_check").fetchone()[0]
    except sqlite3.DatabaseError as exc:
        return str(exc)


def assert_kept(run: Path, before: dict, journal: bool = False) -> None:
    """Every finished trial of the study that existed before is still there, unchanged."""
    if journal:
        after = finished(journal_storage(run / "hgsearch.journal"))
    else:
        db = run / "hgsearch.db"
        assert integrity(db) == "ok"
        after = finished(sqlite_storage(db))
    lost = {k: v for k, v in before.items() if after.get(k) != v}
    assert not lost, lost


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def digests(folder: Path) -> dict[str, str]:
    """Every file under `folder` but the SQLite writer's lock file (a sweep may note its pid
    there before it is refused): the study, the report, the logs, the weights."""
    files = [p for p in sorted(folder.rglob("*")) if p.is_file() and p.suffix != ".lock"]
    return {str(p.relative_to(folder)): digest(p) for p in files}


# --- the studies that exist before, and the files of the data cases --------------------------


@dataclass(frozen=True)
class Made:
    root: Path
    sqlite: Path  # a run folder with hgsearch.db and its report
    journal: Path  # a run folder with hgsearch.journal and its report
    sqlite_trials: dict
    journal_trials: dict


@pytest.fixture(scope="module")
def made(tmp_path_factory) -> Made:
    root = tmp_path_factory.mktemp("made")
    for name, extra in (("sqlite", []), ("journal", JOURNAL)):
        proc = subprocess.run(
            [*HG, "sweep", *BASE, *ONE, *extra, f"run_dir={root / name}", *NO_PLOTS, "-q"],
            capture_output=True,
            text=True,
            timeout=300,
            env=ENV,
            cwd=root,
        )
        assert proc.returncode == 0, proc.stderr[-2000:]
    made = Made(
        root,
        root / "sqlite",
        root / "journal",
        finished(sqlite_storage(root / "sqlite" / "hgsearch.db")),
        finished(journal_storage(root / "journal" / "hgsearch.journal")),
    )
    assert len(made.sqlite_trials) == 3 and len(made.journal_trials) == 3
    return made


@pytest.fixture(autouse=True)
def in_tmp(tmp_path, monkeypatch):
    """Commands run in the test's own folder, so anything written relative to it is seen."""
    monkeypatch.chdir(tmp_path)


@pytest.fixture
def sqlite_run(made, tmp_path) -> Path:
    return Path(shutil.copytree(made.sqlite, tmp_path / "run"))


@pytest.fixture
def journal_run(made, tmp_path) -> Path:
    return Path(shutil.copytree(made.journal, tmp_path / "run"))


def idx(shape: tuple[int, ...], data: bytes = b"") -> bytes:
    """An MNIST-style idx file: magic (unsigned bytes, ndim), big-endian dims, data."""
    return bytes([0, 0, 8, len(shape)]) + b"".join(s.to_bytes(4, "big") for s in shape) + data


def gzip_bomb(path: Path, head: bytes, zeros: int = 1 << 30) -> None:
    """A valid gzip file of `head` then `zeros` zero bytes, ~1 MB on disk, written without
    compressing a gigabyte: after a full flush the deflater starts afresh, so every 16 MiB of
    zeros compresses to the same bytes, written over and over."""
    chunk = 1 << 24
    deflate = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    first = deflate.compress(head) + deflate.flush(zlib.Z_FULL_FLUSH)
    block = deflate.compress(bytes(chunk)) + deflate.flush(zlib.Z_FULL_FLUSH)
    crc = zlib.crc32(head)
    for _ in range(zeros // chunk):
        crc = zlib.crc32(bytes(chunk), crc)
    with path.open("wb") as fh:
        fh.write(b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\xff" + first)  # gzip header, no name
        for _ in range(zeros // chunk):
            fh.write(block)
        fh.write(deflate.flush())  # an empty final block
        fh.write(struct.pack("<II", crc, (len(head) + zeros) & 0xFFFFFFFF))


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> dict[str, Path]:
    """Data folders of the data cases, each broken one way."""
    root = tmp_path_factory.mktemp("data")
    rng = np.random.default_rng(0)
    out = {}
    for name in ("bomb", "corrupt"):
        folder = out[name] = root / name
        folder.mkdir(parents=True)
        for stem in ("train-labels-idx1-ubyte", "t10k-labels-idx1-ubyte"):
            (folder / stem).write_bytes(idx((10,), bytes(range(10))))
        pixels = rng.integers(0, 256, 10 * 28 * 28, dtype=np.uint8).tobytes()
        (folder / "t10k-images-idx3-ubyte").write_bytes(idx((10, 28, 28), pixels))
    # The header says 10 images of 28x28; the stream inflates to 1 GB of zeros.
    bomb = out["bomb"] / "train-images-idx3-ubyte.gz"
    gzip_bomb(bomb, idx((10, 28, 28)))
    assert bomb.stat().st_size < 2 << 20
    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
    assert len(inflater.decompress(bomb.read_bytes(), 1 << 20)) == 1 << 20  # > the 7,856 promised
    # A valid gzipped idx file with bytes flipped in the middle of its deflate stream.
    pixels = (rng.integers(0, 8, 10 * 28 * 28) * 30).astype(np.uint8).tobytes()
    good = bytearray(zlib.compress(idx((10, 28, 28), pixels), wbits=16 + zlib.MAX_WBITS))
    middle = len(good) // 2
    good[middle : middle + 8] = bytes(b ^ 0xFF for b in good[middle : middle + 8])
    (out["corrupt"] / "train-images-idx3-ubyte.gz").write_bytes(bytes(good))
    with pytest.raises(zlib.error):
        zlib.decompress(bytes(good), wbits=16 + zlib.MAX_WBITS)
    # CIFAR python batches: a pickle calling _codecs.encode with a codec that does not exist,
    # and a well-formed batch whose labels are strings.
    codec = b"\x80\x02c_codecs\nencode\nX\x01\x00\x00\x00xX\x0d\x00\x00\x00no-such-codec\x86R."
    with pytest.raises(LookupError):
        pickle.loads(codec)
    strings = {b"data": np.zeros((2, 3072), np.uint8), b"labels": ["cat", "dog"]}
    for name, blob in (("codec", codec), ("strings", pickle.dumps(strings, protocol=2))):
        folder = out[name] = root / name
        (folder / "cifar-10-batches-py").mkdir(parents=True)
        (folder / "cifar-10-batches-py" / "data_batch_1").write_bytes(blob)
    return out


# --- 1. the journal lock ---------------------------------------------------------------------


def dead_pid() -> int:
    proc = subprocess.Popen(["true"])
    proc.wait()
    with pytest.raises(ProcessLookupError):
        os.kill(proc.pid, 0)
    return proc.pid


@pytest.mark.parametrize("owner", ["unknown", "dead"])
def test_a_stale_journal_lock_is_broken_with_a_notice(made, journal_run, owner):
    """A sweep SIGKILLed while holding the lock leaves `<journal>.lock`. Optuna's own lock is a
    symlink to the journal's path as its process spelled it, relative and dangling from here:
    its owner is unknown, so it is broken after storage.grace_period seconds without change.
    The tool's own lock names host and pid: a dead pid is broken at once (grace stays 60 s)."""
    lock = journal_run / "hgsearch.journal.lock"
    if owner == "unknown":
        os.symlink(f"{journal_run.name}/hgsearch.journal", lock)
        extra, why = ["storage.grace_period=3"], "without change"
    else:
        pid = dead_pid()
        os.symlink(f"hgsearch-lock:{socket.gethostname()}:{pid}:{time.time():.0f}", lock)
        extra, why = [], f"left by pid {pid}"
    assert lock.is_symlink() and not lock.exists()  # a dangling link, as a killed sweep leaves
    ran = hg("sweep", *BASE, *ONE, *JOURNAL, f"run_dir={journal_run}", *extra, *NO_PLOTS, "-q")
    notices = succeeded(ran, "broke the stale journal lock")
    assert len(notices) == 1 and why in notices[0] and str(lock) in notices[0], ran.err
    if owner == "unknown":
        held = float(re.search(r"held for (\d+) s", notices[0]).group(1))
        assert held >= 3  # not broken before its grace period
    assert ran.seconds < 40  # within seconds, not after the default 60 s grace
    assert not os.path.lexists(lock)
    assert_kept(journal_run, made.journal_trials, journal=True)


def _sleeping(pid: int) -> bool:
    """The main thread is in a sleep call (the lock's wait loop), not importing or working."""
    try:
        return "nanosleep" in Path(f"/proc/{pid}/wchan").read_text()
    except OSError:
        return False


def test_a_sweep_waiting_for_a_live_journal_lock_stops_on_sigterm(made, journal_run, tmp_path):
    holder = subprocess.Popen(["sleep", "60"])
    lock = journal_run / "hgsearch.journal.lock"
    target = f"hgsearch-lock:{socket.gethostname()}:{holder.pid}:{time.time():.0f}"
    os.symlink(target, lock)
    child = Child(["sweep", *BASE, *ONE, *JOURNAL, f"run_dir={journal_run}"], tmp_path)
    try:
        deadline, seen = time.monotonic() + 60, 0
        while seen < 5 and child.alive():  # five looks in a row in its wait, 0.1 s apart
            seen = seen + 1 if _sleeping(child.pid) else 0
            assert time.monotonic() < deadline, "the sweep never started waiting for the lock"
            time.sleep(0.1)
        if child.alive():
            time.sleep(1.5)  # ~2 s of waiting
        assert child.alive(), child.err_path.read_text()[-2000:]  # it waits: the owner lives
        assert os.readlink(lock) == target
        child.proc.send_signal(signal.SIGTERM)
        sent = time.monotonic()
        ran = child.wait(timeout=30)
        took = time.monotonic() - sent
    finally:
        child.kill()
        holder.kill()
        holder.wait()
    one_line(ran, 130, "interrupted")  # not -15: killed before any handler was in place
    assert took < 5
    assert os.readlink(lock) == target  # a live owner's lock is left alone
    assert_kept(journal_run, made.journal_trials, journal=True)


# --- 2. a torn or garbled journal ------------------------------------------------------------


def test_a_torn_journal_is_cut_off_after_a_backup_and_every_complete_record_kept(
    journal_run, tmp_path
):
    journal = journal_run / "hgsearch.journal"
    torn = journal.read_bytes()[:-37]  # `head -c -37`: a killed write, a full disk
    journal.write_bytes(torn)
    whole = tmp_path / "whole-records.journal"  # the complete records before the tear
    whole.write_bytes(torn[: torn.rfind(b"\n") + 1])
    before = finished(journal_storage(whole))
    assert before
    args = [*BASE, *ONE, *JOURNAL, f"run_dir={journal_run}", *NO_PLOTS, "-q"]

    status = hg("status", *args)
    succeeded(status)
    assert STUDY in status.out
    succeeded(hg("frontier", *args))
    ran = hg("sweep", *args)
    notices = succeeded(ran, "torn record")
    backups = sorted(journal_run.glob("hgsearch.journal.torn-*.bak"))
    assert len(backups) == 1 and backups[0].read_bytes() == torn
    assert len(notices) == 1 and "cut off" in notices[0] and str(backups[0]) in notices[0]
    assert journal.read_bytes().endswith(b"\n")
    assert_kept(journal_run, before, journal=True)


def test_garbage_in_the_middle_of_a_journal_is_one_line_and_the_file_is_unchanged(journal_run):
    journal = journal_run / "hgsearch.journal"
    lines = journal.read_bytes().splitlines(keepends=True)
    middle = len(lines) // 2
    journal.write_bytes(b"".join([*lines[:middle], b"#!garbage, not a record\n", *lines[middle:]]))
    before = digest(journal)
    ran = hg("status", *BASE, *JOURNAL, f"run_dir={journal_run}")
    one_line(ran, (1, 2), "damaged", str(journal))
    assert digest(journal) == before
    assert not list(journal_run.glob("*.bak"))


# --- 3. two sweeps on one SQLite file --------------------------------------------------------


def _running(db: Path) -> list[int]:
    """Numbers of the RUNNING trials, [] while the database is missing or being written."""
    try:
        uri = f"file:{quote(str(db))}?mode=ro"
        with closing(sqlite3.connect(uri, uri=True, timeout=0.5)) as con:
            rows = con.execute("select number from trials where state = 'RUNNING'").fetchall()
    except sqlite3.Error:
        return []
    return [r[0] for r in rows]


def _state(pid: int) -> str:
    """R, S, T (stopped), ... from /proc/<pid>/stat."""
    return Path(f"/proc/{pid}/stat").read_text().rsplit(") ", 1)[1].split()[0]


def _states(db: Path) -> dict[int, str]:
    uri = f"file:{quote(str(db))}?mode=ro"
    with closing(sqlite3.connect(uri, uri=True, timeout=10)) as con:
        return dict(con.execute("select number, state from trials").fetchall())


def test_a_second_sweep_on_one_sqlite_file_is_refused_and_the_first_goes_on(tmp_path):
    """Sweep A is frozen (SIGSTOP) while a trial of it is RUNNING, so that trial is surely still
    running while sweep B starts, however loaded the machine; then A resumes and finishes."""
    run = tmp_path / "run"
    db = run / "hgsearch.db"
    args = ["sweep", *BASE, *ONE, f"run_dir={run}", *NO_PLOTS, "-q"]
    (tmp_path / "a").mkdir()
    a = Child([*args, "train.epochs=20", "search.n_trials=2"], tmp_path / "a")
    try:
        deadline = time.monotonic() + 120
        while True:
            assert a.alive(), a.err_path.read_text()[-2000:]
            assert time.monotonic() < deadline, "sweep A never had a RUNNING trial"
            running = _running(db)
            if running:
                a.proc.send_signal(signal.SIGSTOP)
                while _state(a.pid) not in ("T", "Z"):  # stopped (or, against hope, gone)
                    time.sleep(0.01)
                if _running(db) == running and a.alive():
                    break  # frozen inside that trial
                a.proc.send_signal(signal.SIGCONT)
            time.sleep(0.05)
        b = hg(*args)
        during = _states(db)
        a.proc.send_signal(signal.SIGCONT)
        ran_a = a.wait(timeout=180)
    finally:
        a.kill()
    one_line(b, 2, "another hgsearch sweep", f"pid {a.pid}")
    assert all(during[n] == "RUNNING" for n in running), during  # B failed nothing of A's
    succeeded(ran_a)
    after = _states(db)
    assert after == {0: "COMPLETE", 1: "COMPLETE"}, after
    assert integrity(db) == "ok"
    assert len(finished(sqlite_storage(db))) == 2  # both readable by Optuna


# --- 4. passwords in storage URLs ------------------------------------------------------------

URLS = {
    "userinfo": f"postgresql+psycopg2://u:{SECRET}@127.0.0.1:1/db",
    # Hydra needs a value holding "=" quoted, as a shell user writes 'storage.url="..."'
    "query": f'"postgresql+psycopg2://u@127.0.0.1:1/db?password={SECRET}"',
    "empty-user": f"postgresql://:{SECRET}@127.0.0.1:1/db",
}


@pytest.mark.parametrize("command", [["sweep", "-m", "worker=0"], ["status"]], ids=lambda c: c[0])
@pytest.mark.parametrize("shape", list(URLS))
def test_a_password_in_the_storage_url_is_never_shown_or_written(tmp_path, command, shape):
    """Nothing listens on port 1: status fails to connect; sweep -m refuses the URL outright
    (Hydra would write it into its multirun folders). Neither output nor any file written
    under the working folder (run_dir inside it) holds the password."""
    ran = hg(*command, *BASE, f"run_dir={tmp_path / 'run'}", f"storage.url={URLS[shape]}")
    one_line(ran, 2)
    assert SECRET not in ran.out + ran.err
    for path in tmp_path.rglob("*"):
        if path.is_file() and not path.parent.name.startswith(".hg-"):  # not its own output
            assert SECRET.encode() not in path.read_bytes(), path


# --- 5. results kept when optional outputs fail ----------------------------------------------


def test_trials_are_stored_as_trained_when_their_log_cannot_be_written(made, sqlite_run):
    """Root ignores permission bits, so the log folder is made impossible instead: a file
    stands where the folder `trials/hourglass` should be."""
    logs = sqlite_run / FOLDER / "trials" / "hourglass"
    shutil.rmtree(logs)
    logs.write_text("a file where the trial logs' folder should be\n")
    ran = hg("sweep", *BASE, *ONE, f"run_dir={sqlite_run}", "search.n_trials=5", *NO_PLOTS, "-q")
    notices = succeeded(ran, "could not write")
    assert len(notices) == 2, ran.err
    assert_kept(sqlite_run, made.sqlite_trials)
    study = optuna.load_study(study_name=STUDY, storage=sqlite_storage(sqlite_run / "hgsearch.db"))
    new = [t for t in study.trials if (STUDY, t.number) not in made.sqlite_trials]
    trained = [t for t in new if t.user_attrs.get("trained")]
    assert len(trained) == 2, [(t.number, t.state, t.user_attrs) for t in new]
    for t in trained:
        assert t.state == TrialState.COMPLETE
        assert str(logs) in t.user_attrs["warning"], t.user_attrs


def test_a_search_name_too_long_is_refused_before_anything_runs(made, sqlite_run):
    before = digests(sqlite_run)
    ran = hg("sweep", *BASE, *ONE, f"run_dir={sqlite_run}", "search.name=" + "n" * 260)
    one_line(ran, 2, "search.name")
    assert digests(sqlite_run) == before
    assert_kept(sqlite_run, made.sqlite_trials)


# --- 6. absurd sizes and a gzip bomb ---------------------------------------------------------

SIZES = [
    ["train", "arch.depth=100000000"],
    ["train", "arch.d_z=1000000000000"],
    ["train", "train.batch_size=100000000"],
    ["sweep", "train.batch_size=100000000"],
]


@pytest.mark.parametrize("args", SIZES, ids=[" ".join(a) for a in SIZES])
def test_an_absurd_size_is_one_line_with_the_memory_estimate(tmp_path, args):
    ran = hg(args[0], *BASE, f"run_dir={tmp_path / 'run'}", *args[1:])
    line = one_line(ran, 2)
    assert re.search(r"needs about [\d,.]+ [GT]B", line), line
    assert ran.seconds < 30 and ran.peak_mb < PEAK_MB, (ran.seconds, ran.peak_mb)


def test_a_gzip_bomb_is_refused_before_it_inflates(data, tmp_path):
    ran = hg("train", *BASE, f"run_dir={tmp_path / 'run'}", *MNIST, f"dataset.root={data['bomb']}")
    one_line(ran, 2, "train-images-idx3-ubyte.gz")
    assert ran.peak_mb < PEAK_MB, ran.peak_mb
    assert ran.seconds < 30


# --- 7. paths --------------------------------------------------------------------------------


def test_a_search_name_that_climbs_out_of_run_dir_is_refused(tmp_path):
    run = tmp_path / "a" / "b" / "run"
    ran = hg("sweep", *BASE, f"run_dir={run}", "search.name=../../x")
    one_line(ran, 2, "search.name")
    assert not list(tmp_path.rglob("x*"))


@pytest.mark.parametrize("name", ["runs?mode=ro", "runs%41b"])
def test_a_run_dir_with_url_characters_is_used_as_it_is(tmp_path, name):
    """`?` would start a URL's query (here one that opens the database read-only) and `%41`
    decodes to `A`, if the tool put the path into a URL unquoted."""
    run = tmp_path / "odd" / name
    where = f'run_dir="{run}"'  # Hydra's quoting, for the "=" in the first name
    ran = hg("sweep", *BASE, *ONE, where, "search.n_trials=1", "-q")
    succeeded(ran)
    assert os.listdir(tmp_path / "odd") == [name]  # not a decoded, cut or second folder
    assert (run / "hgsearch.db").is_file() and integrity(run / "hgsearch.db") == "ok"
    assert (run / FOLDER / "summary.md").is_file() and (run / FOLDER / "trials.csv").is_file()
    assert {n for n, _ in finished(sqlite_storage(run / "hgsearch.db"))} == {STUDY}
    status = hg("status", *BASE, where, "-q")
    succeeded(status)
    assert STUDY in status.out


# --- 8. one line instead of a traceback ------------------------------------------------------

REFUSED = [
    (["sweep", "search.n_trials=abc"], "search.n_trials"),
    (["train", "device=mps"], "mps"),
    (["train", "dataset.limit=1"], "dataset.limit"),
    (["train", "dataset.limit=-5"], "dataset.limit"),
    (["train", *MNIST, "dataset.root={corrupt}"], "train-images-idx3-ubyte.gz"),
    (["train", *CIFAR, "dataset.root={codec}"], "data_batch_1"),
    (["train", *CIFAR, "dataset.root={strings}"], "labels"),
    (["train", "+foo=1"], "unknown key foo"),  # 9.
    (["sweep", "search.max_attempts=-1"], "search.max_attempts"),  # 9.
]


@pytest.fixture(scope="module")
def refusals(made) -> Path:
    """One copy of the SQLite run folder for all refusals, each of which must leave it as it
    was."""
    return Path(shutil.copytree(made.sqlite, made.root / "refusals"))


@pytest.mark.parametrize(("args", "needle"), REFUSED, ids=[" ".join(c[0]) for c in REFUSED])
def test_a_bad_value_or_file_is_one_line(made, data, refusals, args, needle):
    before = digests(refusals)
    args = [re.sub(r"\{(\w+)\}", lambda m: str(data[m.group(1)]), a) for a in args]
    ran = hg(args[0], *BASE, *ONE, f"run_dir={refusals}", *args[1:])
    one_line(ran, 2, needle)
    assert digests(refusals) == before
    assert_kept(refusals, made.sqlite_trials)


@pytest.mark.parametrize("command", ["status", "sweep"])
def test_a_damaged_sqlite_database_is_one_line_and_left_as_it_is(sqlite_run, command):
    db = sqlite_run / "hgsearch.db"
    raw = bytearray(db.read_bytes())
    middle = len(raw) // 2 // 4096 * 4096  # a page boundary: the trial tables' pages
    raw[middle : middle + 3 * 4096] = bytes((i * 7 + 13) % 251 for i in range(3 * 4096))
    db.write_bytes(bytes(raw))
    assert integrity(db) != "ok"
    before = digest(db)
    ran = hg(command, *BASE, *ONE, f"run_dir={sqlite_run}")
    line = one_line(ran, 1, "damaged", str(db))
    assert "restore a backup" in line or "move it aside" in line
    assert digest(db) == before


def test_a_report_folder_that_cannot_be_made_is_one_line(made, sqlite_run):
    """Root ignores permission bits: a file stands where the report folder should be."""
    report = sqlite_run / FOLDER
    shutil.rmtree(report)
    report.write_text("a file where the report folder should be\n")
    db_before = digest(sqlite_run / "hgsearch.db")
    ran = hg("frontier", *BASE, *ONE, f"run_dir={sqlite_run}")
    one_line(ran, 2, str(report))
    assert digest(sqlite_run / "hgsearch.db") == db_before
    assert_kept(sqlite_run, made.sqlite_trials)


@contextmanager
def full_disk(folder: Path, db: Path) -> Iterator[Callable[[], None] | None]:
    """A copy of `db` on a full disk: a 2 MB tmpfs mounted on `folder`, filled up to 16 KB by
    a filler file. Where mounting is not allowed, yields a preexec_fn that limits the child's
    file sizes to the database's (writes past it fail with EFBIG) instead."""
    folder.mkdir()
    mount = ["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(folder)]
    mounted = subprocess.run(mount, capture_output=True).returncode == 0
    try:
        shutil.copy(db, folder / "hgsearch.db")
        if mounted:
            free = os.statvfs(folder).f_bavail * os.statvfs(folder).f_frsize
            (folder / "filler").write_bytes(bytes(free - 16 * 1024))
            yield None
        else:
            limit = (folder / "hgsearch.db").stat().st_size
            yield lambda: resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    finally:
        if mounted and subprocess.run(["umount", str(folder)], capture_output=True).returncode:
            subprocess.run(["umount", "--lazy", str(folder)], check=True)


def test_a_full_disk_during_a_sqlite_sweep_is_one_line_and_every_trial_kept(made, tmp_path):
    """Run with -q: the progress lines of a sweep that ran before the disk filled are not part
    of the failure."""
    run = tmp_path / "disk"
    with full_disk(run, made.sqlite / "hgsearch.db") as limit:
        args = [*BASE, *ONE, f"run_dir={run}", "search.n_trials=5", "-q"]
        ran = hg("sweep", *args, preexec_fn=limit)
        one_line(ran, 1, str(run))
        if limit is None:  # a real full disk (ENOSPC), not a file-size limit (EFBIG)
            assert "full" in ran.err and "free some space" in ran.err
        assert_kept(run, made.sqlite_trials)


# --- 9. smaller ------------------------------------------------------------------------------


def test_another_programs_sqlite_database_is_refused_and_left_as_it_is(tmp_path):
    foreign = tmp_path / "other.db"
    with closing(sqlite3.connect(foreign)) as con:
        con.execute("create table foo (a integer)")
        con.execute("insert into foo values (1)")
        con.commit()
    before = digest(foreign)
    ran = hg("status", *BASE, f"storage.url={sqlite_storage(foreign)}")
    one_line(ran, 2, str(foreign))
    assert digest(foreign) == before
    with closing(sqlite3.connect(f"file:{foreign}?mode=ro", uri=True)) as con:
        tables = {r[0] for r in con.execute("select name from sqlite_master where type='table'")}
    assert tables == {"foo"}


def test_frontier_of_another_search_space_is_refused_and_the_report_unchanged(made, sqlite_run):
    before = digests(sqlite_run)
    ran = hg(
        "frontier", *BASE, *ONE, f"run_dir={sqlite_run}", "space.hourglass.depth={choices:[1,3]}"
    )
    one_line(ran, 2, "different search space")
    assert digests(sqlite_run) == before
    assert_kept(sqlite_run, made.sqlite_trials)
