"""Where studies live: SQLite (default), Optuna's journal file, or PostgreSQL shared by workers.

PostgreSQL passwords are never put in a URL we build: libpq reads PGPASSWORD or ~/.pgpass
itself, so no password reaches a log line, an error message or a study attribute. A URL a user
gives with a password inside is shown with the password masked.
"""

from __future__ import annotations

import inspect
import json
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import TrialState

from .internals import set_study_config, study_config

DIRECTIONS = ["maximize", "minimize"]


class StorageError(RuntimeError):
    """A storage the tool cannot open or write, or a study it must not change."""


@dataclass(frozen=True)
class StorageSettings:
    kind: str = "sqlite"
    url: str | None = None
    host: str = "127.0.0.1"
    port: int = 5432
    user: str = "postgres"
    database: str = "hgsearch"
    heartbeat_interval: int = 20  # seconds; RDB storages shared by several workers
    grace_period: int = 60
    max_retry: int = 2  # retries of a trial whose worker died

    @property
    def shared(self) -> bool:
        """Several processes may write at once (heartbeats, no stale-trial sweep by us)."""
        return self.kind in ("postgres", "journal") or self.resolved_url().startswith(
            ("postgresql", "mysql")
        )

    def resolved_url(self) -> str:
        if self.url:
            return self.url
        if self.kind == "postgres":
            return f"postgresql+psycopg2://{self.user}@{self.host}:{self.port}/{self.database}"
        raise StorageError(f"storage.url is not set for storage={self.kind}")


def redact(text: str) -> str:
    """Mask any password in URLs inside `text` (scheme://user:PASSWORD@host)."""
    text = re.sub(r"(://[^:/@\s]+):[^@\s]*@", r"\1:***@", text)
    pw = os.environ.get("PGPASSWORD")
    return text.replace(pw, "***") if pw else text


def sqlite_path(url: str) -> Path | None:
    if url.startswith("sqlite:///"):
        return Path(url[len("sqlite:///") :])
    return None


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


def open_storage(settings: StorageSettings, *, create: bool) -> optuna.storages.BaseStorage:
    """Open (and with create=True, make) the storage; one-line StorageError on failure."""
    if settings.kind == "journal" and not (settings.url or "").count("://"):
        from optuna.storages.journal import JournalFileBackend, JournalStorage

        path = Path(settings.resolved_url())
        if not create and not path.exists():
            raise StorageError(f"no journal file at {path}: run `hgsearch sweep` first")
        if create:
            _writable_parent(path, "journal file")
        try:
            return JournalStorage(JournalFileBackend(str(path)))
        except OSError as exc:
            raise StorageError(f"cannot open the journal file {path}: {exc.strerror}") from None
    url = settings.resolved_url()
    path = sqlite_path(url)
    if path is not None:
        if not create and not path.exists():
            raise StorageError(
                f"no study database at {path}: run `hgsearch sweep` first, or point "
                f"storage.url at an existing one"
            )
        if create:
            _writable_parent(path, "study database")
        return _rdb(url, settings, engine_kwargs={"connect_args": {"timeout": 60}}, heartbeat=False)
    return _rdb(url, settings, engine_kwargs={"pool_pre_ping": True}, heartbeat=True)


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
        return _with_retries(lambda: optuna.storages.RDBStorage(url, **kwargs))
    except ImportError as exc:
        raise StorageError(
            f"the driver for {redact(url)} is not installed ({exc}); for PostgreSQL: "
            f"pip install 'hgsearch[postgres]'"
        ) from None
    except Exception as exc:  # sqlalchemy's OperationalError and friends
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise StorageError(
            f"cannot open the study storage {redact(url)}: {redact(first)}"
        ) from None


def _with_retries(make: Any, attempts: int = 6) -> Any:
    """Workers starting together race to create the schema or the study; the losers retry."""
    import random
    import time

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


def _normal(value: Any) -> Any:
    return json.loads(json.dumps(value, sort_keys=True))


def _differences(old: Any, new: Any, prefix: str = "") -> list[str]:
    if isinstance(old, dict) and isinstance(new, dict):
        out: list[str] = []
        for key in sorted(set(old) | set(new)):
            out += _differences(old.get(key), new.get(key), f"{prefix}{key}.")
        return out
    return [] if old == new else [prefix.rstrip(".")]


def check_metric(name: str, stored: Any) -> None:
    """Refuse a study stored under another PSNR definition: its values and new ones would be
    on different scales (per-image PSNR is 0.6-10 dB above the paper's batch PSNR)."""
    from .metrics import DEFINITION

    if stored is None or (isinstance(stored, dict) and stored.get("psnr_definition") == DEFINITION):
        return
    raise StorageError(
        f"study {name} was stored with PSNR as the mean of per-image PSNRs (hgsearch before "
        f"0.2), not the paper's batch PSNR, and cannot be resumed or mixed with new results: "
        f"pick another search.name= to start a new study, or delete it with `optuna "
        f"delete-study --study-name {name} --storage <url>`"
    )


def check_unchanged(
    name: str, stored: Any, fingerprint: dict[str, Any], allow_change: bool
) -> None:
    """Refuse to resume a study whose stored search space differs (unless allowed), or whose
    metric is defined otherwise (always)."""
    check_metric(name, stored)
    fingerprint = _normal(fingerprint)
    if stored is not None and stored != fingerprint and not allow_change:
        changed = ", ".join(_differences(stored, fingerprint)[:4])
        raise StorageError(
            f"study {name} was created with a different search space (changed: {changed}); "
            f"rerun with its settings, pick another search.name=, or pass "
            f"search.allow_space_change=true"
        )


def stored_config(storage: optuna.storages.BaseStorage, name: str) -> Any:
    """The search space stored on an existing study, or None (no study, or none stored)."""
    if name not in optuna.study.get_all_study_names(storage):
        return None
    return study_config(optuna.load_study(study_name=name, storage=storage))


def open_study(
    storage: optuna.storages.BaseStorage,
    name: str,
    sampler: optuna.samplers.BaseSampler,
    fingerprint: dict[str, Any],
    *,
    metric: str,
    allow_change: bool,
) -> optuna.Study:
    """Create or resume a study; refuse to resume one whose stored search space differs."""
    fingerprint = _normal(fingerprint)
    try:
        existing = name in optuna.study.get_all_study_names(storage)
        study = _with_retries(
            lambda: optuna.create_study(
                storage=storage,
                study_name=name,
                directions=DIRECTIONS,
                sampler=sampler,
                load_if_exists=True,
            )
        )
    except Exception as exc:
        if isinstance(exc, StorageError):
            raise
        raise StorageError(
            f"cannot open study {name}: {redact(str(exc).splitlines()[0])}"
        ) from None
    stored = study_config(study)
    if existing:
        check_unchanged(name, stored, fingerprint, allow_change)
    if stored is None or (stored != fingerprint and allow_change):
        from .. import __version__

        summary = (
            f"hgsearch {__version__}: {fingerprint['family']}, {fingerprint['task']['name']} on "
            f"{fingerprint['dataset']['name']}"
        )

        def mark() -> None:
            study.set_metric_names([metric, "params"])
            set_study_config(study, fingerprint)
            study.set_user_attr("hgsearch", summary)

        _with_retries(mark)
    return study


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def fail_stale_running(study: optuna.Study, *, single_process: bool, max_retry: int = 2) -> int:
    """Mark RUNNING trials that can never finish as failed.

    With a single-process storage (SQLite) every RUNNING trial at start-up was left by a killed
    run. With shared storages only trials of this host whose worker process is gone are stale
    (heartbeats cover other hosts on RDB storages). Each is queued again (see `retry`).
    """
    import socket

    storage = study._storage
    host = socket.gethostname()
    stale = [
        t
        for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
        if single_process
        or (
            t.user_attrs.get("host") == host
            and "pid" in t.user_attrs
            and t.user_attrs["pid"] != os.getpid()
            and not _alive(int(t.user_attrs["pid"]))
        )
    ]
    failed = 0
    for t in stale:
        try:
            storage.set_trial_state_values(t._trial_id, state=TrialState.FAIL)
        except (optuna.exceptions.UpdateFinishedTrialError, RuntimeError):
            continue  # it finished or was failed by another worker meanwhile
        retry(study, storage.get_trial(t._trial_id), max_retry)
        failed += 1
    return failed


def retry(study: optuna.Study, failed: optuna.trial.FrozenTrial, max_retry: int) -> None:
    """Queue a failed trial again with the same parameters (and grid point), as Optuna's
    heartbeat retry does, at most `max_retry` times per original trial."""
    cls = getattr(optuna.storages, "RetryHeartbeatStaleTrialCallback", None)
    cls = cls or optuna.storages.RetryFailedTrialCallback
    cls(max_retry=max_retry)(study, failed)


def study_names(storage: optuna.storages.BaseStorage) -> list[str]:
    return sorted(optuna.study.get_all_study_names(storage))
