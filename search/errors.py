"""What a failure looks like to a user: the errors fixed by changing the command line or a config
file (exit code 2), the failures of the machine (a full disk, a damaged storage; exit code 1),
each printed as one line."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class ConfigError(ValueError):
    """A configuration value a user must change; the message names the key and the fix."""


class StorageError(RuntimeError):
    """A storage the tool cannot open or write, or a study it must not change."""


class DeviceError(RuntimeError):
    """A device that is not there or not understood."""


class DamagedStorage(RuntimeError):
    """A study storage whose contents cannot be read (a failure of the machine, exit code 1)."""


class UserError(Exception):
    """Any other input the user must fix (a missing study, nothing to report, ...)."""


def unknown_key(section: str, key: str, known: Iterable[str]) -> ConfigError:
    """`unknown key arch.dz; did you mean arch.d_z?` (or the known keys when none is near)."""
    where = f"{section}.{key}" if section else key
    known = list(known)
    near = difflib.get_close_matches(key, known, n=1, cutoff=0.5)
    if near:
        hint = f"did you mean {section + '.' if section else ''}{near[0]}?"
    else:
        hint = f"known keys: {', '.join(sorted(known))}"
    return ConfigError(f"unknown key {where}; {hint}")


def first_line(exc: BaseException) -> str:
    """An exception's message on one line (its type's name when it has none)."""
    text = " ".join(line.strip() for line in str(exc).strip().splitlines() if line.strip())
    return text or type(exc).__name__


def user_errors() -> tuple[type[BaseException], ...]:
    """Exceptions that mean 'fix your input', each printed as one line."""
    from ..models import SpecError
    from .data import DataError
    from .record import RecordError

    return (UserError, SpecError, DataError, ConfigError, StorageError, DeviceError, RecordError)


def machine_failure(exc: BaseException, storage: str | None) -> str | None:
    """One line for a failure of the machine rather than of the input: a full disk, a damaged
    study storage (`storage`: the one in use, as shown). None for anything else (a bug: its
    traceback is worth having)."""
    import errno
    import sqlite3

    from optuna.exceptions import StorageInternalError
    from sqlalchemy.exc import DatabaseError

    from .urls import redact

    seen: BaseException | None = exc
    while seen is not None:  # the cause chain: Optuna and SQLAlchemy wrap the OS's error
        text = str(seen).lower()
        if (isinstance(seen, OSError) and seen.errno in (errno.ENOSPC, errno.EDQUOT)) or (
            "disk is full" in text or "no space left" in text
        ):
            where = getattr(seen, "filename", None) or storage or "the output folder"
            return (
                f"the disk holding {where} is full: free some space and run the same command "
                f"again (every finished trial is stored)"
            )
        if isinstance(seen, sqlite3.DatabaseError | DatabaseError | StorageInternalError) and (
            "malformed" in text or "not a database" in text or "corrupt" in text
        ):
            return (
                f"the study storage at {storage} is damaged: {redact(first_line(seen))}; "
                f"restore a backup, or move it aside to start afresh"
            )
        seen = seen.__cause__ or seen.__context__
    return None
