"""Where studies live: SQLite (default), Optuna's journal file, or PostgreSQL shared by workers.

PostgreSQL passwords are never put in a URL we build: libpq reads PGPASSWORD or ~/.pgpass
itself. Any URL a user gives is shown through `urls.shown`/`redact` (never a password).
SQLite allows one writer: a sweep holds an exclusive lock beside the database for its whole
run, so a second sweep on the same file is refused in one line instead of failing the first's
running trial. A damaged storage is one line naming it and how to recover; nothing is written.
"""

from __future__ import annotations

import fcntl
import inspect
import os
import socket
import sqlite3
import tempfile
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote

import optuna

from .errors import DamagedStorage, StorageError
from .settings import StorageSettings
from .urls import redact, shown, sqlite_path

DIRECTIONS = ["maximize", "minimize"]


def _writable_parent(path: Path, what: str) -> None:
    folder = path.parent
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StorageError(
            f"cannot create the folder {folder} for the {what} ({exc.strerror}): set run_dir= "
            f"or storage.url= to a writable place"
        ) from None
    try:  # a real write: permission bits do not tell root about read-only file systems
        with tempfile.TemporaryFile(dir=folder):
            pass
        writable = not path.exists() or os.access(path, os.W_OK)
    except OSError:
        writable = False
    if not writable:
        raise StorageError(
            f"the {what} at {path} is in a read-only place: set run_dir= or storage.url= to a "
            f"writable folder"
        )


current: str | None = None  # the storage this process opened last, for messages
_held: dict[Path, int] = {}  # SQLite files this process writes, and their lock's descriptor


def claim_sqlite(path: Path) -> None:
    """Hold an exclusive lock on `<db>.lock` for this process's life (the kernel drops it when
    the process ends, however it ends); a second writer is refused, naming the first."""
    path = path.absolute()
    if path in _held:
        return
    lock = path.with_name(path.name + ".lock")
    fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        owner = os.pread(fd, 200, 0).decode(errors="replace").strip() or "another process"
        os.close(fd)
        raise StorageError(
            f"another hgsearch sweep ({owner}) is writing {path}: SQLite takes one writer at a "
            f"time; wait for it, or give this sweep its own run_dir= (or use storage=journal "
            f"for several workers on one study)"
        ) from None
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"pid {os.getpid()} on {socket.gethostname()} since {time.ctime()}".encode(), 0)
    _held[path] = fd


def _check_sqlite_file(path: Path) -> None:
    """Refuse a file that is not an SQLite database or holds another program's tables."""
    try:
        con = sqlite3.connect(f"file:{quote(str(path))}?mode=ro", uri=True)
        try:
            tables = {
                r[0] for r in con.execute("select name from sqlite_master where type='table'")
            }
            if "studies" in tables:  # a damaged page anywhere, found before anything runs
                (verdict,) = con.execute("pragma quick_check(1)").fetchone()
                if verdict != "ok":
                    raise sqlite3.DatabaseError(verdict)
        finally:
            con.close()
    except sqlite3.DatabaseError as exc:
        raise DamagedStorage(
            f"the study storage at {path} is damaged: {exc}; restore a backup, or move it aside "
            f"to start afresh (finished trials cannot be read from it)"
        ) from None
    if tables and "studies" not in tables:
        raise StorageError(
            f"{path} is not an Optuna study database (it holds other tables: "
            f"{', '.join(sorted(tables)[:3])}): point storage.url or run_dir elsewhere"
        )


def open_storage(settings: StorageSettings, *, create: bool) -> optuna.storages.BaseStorage:
    """Open (and with create=True, make) the storage; one-line StorageError on failure.
    `create` is for writers (a sweep): it also claims an SQLite file for this process."""
    global current
    current = settings.where()
    if settings.journal:
        return _journal(Path(settings.path or "hgsearch.journal").absolute(), settings, create)
    url = settings.resolved_url()
    path = sqlite_path(url)
    if path is not None:
        if not create and not path.exists():
            raise StorageError(
                f"no study database at {path}: run `hgsearch sweep` first, or point "
                f"storage.url at an existing one"
            )
        if path.exists():
            _check_sqlite_file(path)
        if create:
            _writable_parent(path, "study database")
            claim_sqlite(path)
        return _rdb(url, settings, engine_kwargs={"connect_args": {"timeout": 60}}, heartbeat=False)
    return _rdb(url, settings, engine_kwargs={"pool_pre_ping": True}, heartbeat=True)


def _journal(path: Path, settings: StorageSettings, create: bool):
    from optuna.storages.journal import JournalFileBackend, JournalStorage

    from .journal import JournalLock, repair

    if not create and not path.exists():
        raise StorageError(f"no journal file at {path}: run `hgsearch sweep` first")
    if create:
        _writable_parent(path, "journal file")
    lock = JournalLock(path, grace=settings.grace_period)
    try:
        if path.exists() and create:
            repair(path, lock)
        return JournalStorage(JournalFileBackend(str(path), lock_obj=lock))
    except OSError as exc:
        raise StorageError(f"cannot open the journal file {path}: {exc.strerror}") from None
    except (ValueError, KeyError, TypeError) as exc:  # a record that is not Optuna's
        raise DamagedStorage(
            f"the study storage at {path} is damaged: {str(exc).splitlines()[0][:200]}; restore "
            f"a backup, or move it aside to start afresh"
        ) from None


def _rdb(url: str, settings: StorageSettings, *, engine_kwargs: dict, heartbeat: bool):
    kwargs: dict[str, Any] = {"engine_kwargs": engine_kwargs}
    if heartbeat:
        kwargs.update(
            heartbeat_interval=settings.heartbeat_interval, grace_period=settings.grace_period
        )
        params = inspect.signature(optuna.storages.RDBStorage.__init__).parameters
        if "heartbeat_stale_trial_callback" in params:  # Optuna >= 4.9
            kwargs["heartbeat_stale_trial_callback"] = (
                optuna.storages.RetryHeartbeatStaleTrialCallback(max_retry=settings.max_retry)
            )
        else:
            kwargs["failed_trial_callback"] = optuna.storages.RetryFailedTrialCallback(
                max_retry=settings.max_retry
            )
    try:
        return with_retries(lambda: optuna.storages.RDBStorage(url, **kwargs))
    except ImportError as exc:
        hint = "pip install 'hgsearch[postgres]'"
        if url.startswith("postgresql://"):  # SQLAlchemy's default driver is psycopg 3 now
            hint = (
                "write postgresql+psycopg2:// (pip install 'hgsearch[postgres]') or pip "
                "install psycopg"
            )
        raise StorageError(
            f"the driver for {shown(url)} is not installed ({redact(str(exc), url)}): {hint}"
        ) from None
    except Exception as exc:  # sqlalchemy's OperationalError and friends
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise StorageError(
            f"cannot open the study storage {shown(url)}: {redact(first, url)}"
        ) from None


def with_retries(make: Any, attempts: int = 6) -> Any:
    """Workers starting together race to create the schema or the study; the losers retry."""
    import random

    from sqlalchemy.exc import OperationalError

    for attempt in range(attempts):
        try:
            return make()
        except (ImportError, OperationalError):
            raise  # a missing driver, an unreachable server or a wrong password: no use retrying
        except Exception:
            if attempt == attempts - 1:
                raise
            time.sleep(0.2 * (attempt + 1) + random.random() * 0.3)
    return None  # pragma: no cover
