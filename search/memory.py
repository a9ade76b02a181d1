"""Will it fit? An estimate of a training run's memory from the spec and the batch size,
checked against what the machine has before anything is allocated (an absurd size is then
one line with the estimate, not minutes of swapping or a traceback)."""

from __future__ import annotations

import os
from pathlib import Path

import torch

from ..models import MLPSpec, trainable_params

GB = 1 << 30


def training_bytes(spec: MLPSpec, batch: int, replicas: int = 1) -> int:
    """fp32 weights, gradients and AdamW's two moments, plus a step's activations and their
    gradients (generously), per replica."""
    params = trainable_params(spec.d_x, spec.d_y, spec.d_z, spec.d_h, spec.depth)
    width = spec.d_x + 2 * spec.d_y + spec.depth * (4 * spec.d_z + 2 * spec.d_h) + 3 * spec.d_z
    return replicas * 4 * (4 * params + 2 * batch * width)


def available_bytes(device: torch.device | str) -> int:
    """Free memory where training would run: the GPU's, or the machine's available RAM."""
    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.mem_get_info(device)[0]
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_AVPHYS_PAGES")


def too_big(spec: MLPSpec, batch: int, device, replicas: int = 1) -> str | None:
    """Why training this would not fit, or None."""
    need, have = training_bytes(spec, batch, replicas), available_bytes(device)
    if need <= have:
        return None
    return (
        f"memory: training it needs about {need / GB:,.1f} GB (batch {batch}), "
        f"{have / GB:,.1f} GB are available on {torch.device(device)}"
    )


def usable_cpus() -> int:
    """The CPUs this process may run on (a SLURM job's or a container's share, not the whole
    node's)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def busy_cores(sample: float = 0.1) -> float | None:
    """How many CPUs other work keeps busy right now (/proc/stat over `sample` seconds), or
    None where that cannot be read."""
    import time

    def read() -> tuple[int, int]:
        fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
        return sum(fields[:8]), fields[3] + fields[4]  # (all but guest time, idle + iowait)

    try:
        total0, idle0 = read()
        time.sleep(sample)
        total1, idle1 = read()
    except (OSError, ValueError, IndexError):
        return None
    if total1 <= total0:
        return None
    return (1.0 - (idle1 - idle0) / (total1 - total0)) * (os.cpu_count() or 1)


def auto_threads() -> int:
    """Threads for this process: the CPUs it may use that nothing else is using. On a quiet
    2-core machine two threads train 1.7x faster than one, beside one busy core 1.4-2.5x
    slower (docs/performance.md): spinning threads that wait for a taken core collapse."""
    usable = usable_cpus()
    busy = busy_cores()
    if busy is None:
        return usable
    return max(1, min(usable, round(usable - busy)))
