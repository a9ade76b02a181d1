"""Resuming a study: create or load it, refuse one stored with another search space or PSNR
definition, fail (and queue again) trials left running by a process that died."""

from __future__ import annotations

import json
import os
import socket
from typing import Any

import optuna
from optuna.trial import TrialState

from .errors import StorageError
from .internals import set_study_config, study_config
from .journal import alive
from .store import DIRECTIONS, with_retries
from .urls import redact


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
        study = with_retries(
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

        with_retries(mark)
    return study


def fail_stale_running(study: optuna.Study, *, single_process: bool, max_retry: int = 2) -> int:
    """Mark RUNNING trials that can never finish as failed.

    With a single-process storage (SQLite) every RUNNING trial at start-up was left by a killed
    run. With shared storages only trials of this host whose worker process is gone are stale
    (heartbeats cover other hosts on RDB storages). Each is queued again (see `retry`).
    """
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
            and not alive(int(t.user_attrs["pid"]))
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


def clear_stale(study: optuna.Study, storage: Any) -> int:
    """Fail (and queue again) the trials whose worker is gone: by heartbeat on a shared RDB
    storage (Optuna's own check, which runs its retry callback), by process on this host, and
    on SQLite (one writer, whose lock this process holds) every running trial."""
    if storage.shared:
        optuna.storages.fail_stale_trials(study)
    return fail_stale_running(study, single_process=not storage.shared, max_retry=storage.max_retry)
