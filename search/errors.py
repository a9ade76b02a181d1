"""Errors a user fixes by changing the command line or a config file; each prints as one line."""

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
