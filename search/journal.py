"""Optuna's journal file (`storage=journal`), made to survive its own failures.

The lock is the journal's usual symlink lock file (`<journal>.lock`, the one Optuna's tools
take too), but its link names the owner (host, pid, time) and is never followed: a lock left
by a dead process on this host is broken at once, any other after `grace` seconds without
change, each with a one-line notice; signals are honoured while waiting. A torn last record (a
full disk, a killed write) is cut off at open, after a backup copy, so every complete record
stays readable and the next append does not glue itself to the torn one.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import socket
import time
import uuid
from pathlib import Path

from . import interrupt

log = logging.getLogger("hgsearch")
PREFIX = "hgsearch-lock"


def alive(pid: int) -> bool:
    """Whether a process of this host with this pid runs."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class JournalLock:
    """A lock object for JournalFileBackend(lock_obj=): it only calls acquire() and release()
    (held by tests/test_internals.py)."""

    def __init__(self, journal: Path, grace: float = 60.0) -> None:
        self.lock_file = str(journal) + ".lock"
        self.grace = grace

    def _stale(self) -> str | None:
        """Why the present lock is stale, or None (also None when it just went away)."""
        try:
            target = os.readlink(self.lock_file)
            age = time.time() - os.lstat(self.lock_file).st_mtime
        except OSError:
            return None
        parts = target.split(":")
        if len(parts) == 4 and parts[0] == PREFIX:
            host, pid = parts[1], int(parts[2])
            if host == socket.gethostname() and not alive(pid):
                return f"left by pid {pid}, which is no longer running"
        if age > self.grace:
            return f"held for {age:.0f} s without change"
        return None

    def acquire(self) -> bool:
        target = f"{PREFIX}:{socket.gethostname()}:{os.getpid()}:{time.time():.0f}"
        pause = 0.001
        while True:
            try:
                os.symlink(target, self.lock_file)
                return True
            except FileExistsError:
                why = self._stale()
                if why is not None:
                    self._break(why)
                    continue
                interrupt.check()  # a Ctrl-C or SIGTERM during a sweep stops the wait
                time.sleep(pause)
                pause = min(2 * pause, 0.2)

    def _break(self, why: str) -> None:
        aside = f"{self.lock_file}.{uuid.uuid4().hex}.stale"
        try:
            os.rename(self.lock_file, aside)  # atomic: only one breaker wins
            os.unlink(aside)
        except OSError:
            return
        log.warning("broke the stale journal lock %s (%s)", self.lock_file, why)

    def release(self) -> None:
        try:
            os.unlink(self.lock_file)
        except FileNotFoundError:
            pass


def repair(path: Path, lock: JournalLock) -> Path | None:
    """Cut a torn last record (no final newline, or a last line that is not JSON) off the
    journal, after copying it aside; returns the backup, or None when the journal is whole."""
    lock.acquire()
    try:
        size = path.stat().st_size
        if size == 0:
            return None
        with path.open("rb") as fh:
            fh.seek(max(0, size - (1 << 20)))
            tail = fh.read()
        keep = size - len(tail) + tail.rfind(b"\n") + 1 if b"\n" in tail else 0
        lines = tail[: keep - (size - len(tail))].splitlines()
        if keep == size and lines:
            try:
                json.loads(lines[-1])
                return None
            except ValueError:  # a whole line of garbage at the end: cut it too
                keep -= len(lines[-1]) + 1
        backup = path.with_name(f"{path.name}.torn-{time.strftime('%Y%m%d-%H%M%S')}.bak")
        shutil.copy2(path, backup)
        os.truncate(path, keep)
        log.warning(
            "the journal %s ended in a torn record (%d bytes: a full disk or a killed write?): "
            "cut off, the whole file kept at %s",
            path,
            size - keep,
            backup,
        )
        return backup
    finally:
        lock.release()
