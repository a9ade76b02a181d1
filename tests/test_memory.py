"""What the machine has: memory estimates before allocating, CPUs nothing else is using."""

from __future__ import annotations

import subprocess
import sys
import time

from hgsearch.models import MLPSpec
from hgsearch.search.memory import (
    GB,
    auto_threads,
    busy_cores,
    too_big,
    training_bytes,
    usable_cpus,
)


def test_memory_estimate_grows_with_the_model_and_the_batch():
    small = MLPSpec("hourglass", 784, 784, 785, 115, 4)
    assert 10e6 < training_bytes(small, 128) < 100e6  # ~2M parameters x 16 bytes + activations
    assert training_bytes(small, 256) > training_bytes(small, 128)
    assert training_bytes(small, 128, replicas=5) == 5 * training_bytes(small, 128)
    assert too_big(small, 128, "cpu") is None
    huge = MLPSpec("hourglass", 784, 784, 785, 115, 10**8)
    why = too_big(huge, 128, "cpu")
    assert why.startswith("memory: training it needs about") and "GB are available" in why
    assert training_bytes(huge, 128) > 1000 * GB


def test_threads_leave_a_busy_core_alone():
    """One process spinning on a core: the sweep's threads take the others only."""
    hog = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        time.sleep(0.5)
        busy = busy_cores(0.3)
        assert busy is not None and busy >= 0.5
        if usable_cpus() > 1:
            assert auto_threads() < usable_cpus()
    finally:
        hog.kill()
        hog.wait()
    assert 1 <= auto_threads() <= usable_cpus()
