"""Real signals delivered to this process: where they interrupt and where they wait."""

from __future__ import annotations

import os
import signal

import pytest

from hgsearch.search import interrupt


def ctrl_c():
    os.kill(os.getpid(), signal.SIGINT)  # the handler runs before the next bytecode


def test_interruptible_code_stops_at_once():
    with interrupt.handled():
        ran = []
        with pytest.raises(KeyboardInterrupt), interrupt.interruptible():
            ctrl_c()
            ran.append("after")
        assert ran == []


def test_other_code_runs_on_and_stops_at_the_next_safe_point():
    with interrupt.handled():
        ctrl_c()
        ran = ["after"]  # not interrupted: this could have been a storage call
        with pytest.raises(KeyboardInterrupt):
            interrupt.check()
        with pytest.raises(KeyboardInterrupt), interrupt.interruptible():
            ran.append("never")  # a request already made stops the next training at its start
        assert ran == ["after"]


def test_deferred_block_inside_training_completes_then_stops():
    with interrupt.handled():
        ran = []
        with pytest.raises(KeyboardInterrupt), interrupt.interruptible():
            with interrupt.deferred():
                ctrl_c()
                ran.append("write finished")
            ran.append("never")
        assert ran == ["write finished"]


def test_handlers_are_restored_and_requests_forgotten():
    before_int, before_term = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)
    with interrupt.handled():
        os.kill(os.getpid(), signal.SIGTERM)  # pre-emption on a cluster: the same path
        with pytest.raises(KeyboardInterrupt):
            interrupt.check()
    assert signal.getsignal(signal.SIGINT) is before_int
    assert signal.getsignal(signal.SIGTERM) is before_term
    with interrupt.handled():
        interrupt.check()  # a new sweep starts with no stale request
