"""Ctrl-C and SIGTERM during a sweep: stop the number crunching at once, never storage code.

An exception raised by a signal handler lands wherever the main thread happens to be: inside
the storage library while it holds a lock (the next storage call then waits forever), or inside
a finalizer (Python drops it and the sweep goes on). So the handler raises KeyboardInterrupt only
inside `interruptible()` regions (training, data loading); anywhere else it records the request
and the sweep stops at its next safe point, the end of the running trial.
"""

from __future__ import annotations

import signal
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

_requested: list[int] = []  # signals received since `handled()` began
_depth = 0  # > 0 inside an interruptible region


def _handler(signum: int, frame: Any) -> None:
    _requested.append(signum)
    if _depth > 0:
        raise KeyboardInterrupt


def check() -> None:
    """A safe point: stop here if a stop was asked for."""
    if _requested:
        raise KeyboardInterrupt


@contextmanager
def handled() -> Iterator[None]:
    """Install the handlers for SIGINT and SIGTERM (cluster pre-emption); restore the old ones
    afterwards. Must run in the main thread."""
    global _depth
    _requested.clear()
    _depth = 0
    old = {s: signal.signal(s, _handler) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for signum, handler in old.items():
            signal.signal(signum, handler)


@contextmanager
def interruptible() -> Iterator[None]:
    """Code that may be stopped anywhere (no storage calls): a signal raises at once."""
    global _depth
    check()
    _depth += 1
    try:
        yield
    finally:
        _depth -= 1


@contextmanager
def deferred() -> Iterator[None]:
    """Storage calls inside an interruptible region: a signal waits until the block is done."""
    global _depth
    saved, _depth = _depth, 0
    try:
        yield
    finally:
        _depth = saved
    if saved:
        check()
