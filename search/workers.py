"""Several local worker processes on one study (`workers=N`), and Hydra multirun (`-m`) for
launchers such as SLURM's (`hydra/launcher=slurm`): every worker is an ordinary Optuna worker
on the shared storage.
"""

from __future__ import annotations

import logging
import signal
import subprocess
import sys

log = logging.getLogger("hgsearch")


def spawn(overrides: list[str], workers: int) -> list[subprocess.Popen]:
    """Start workers 1..N-1 as child processes with the same overrides (this process is 0)."""
    keep = [o for o in overrides if not o.startswith(("workers=", "worker=", "threads="))]
    import os

    threads = max(1, (os.cpu_count() or 1) // workers)
    keep.append(f"threads={threads}")
    children = []
    for i in range(1, workers):
        cmd = [sys.executable, "-m", "hgsearch", "sweep", *keep, "workers=1", f"worker={i}"]
        children.append(subprocess.Popen(cmd, stdin=subprocess.DEVNULL))
    log.info(
        "started %d more worker process(es): pids %s",
        len(children),
        ", ".join(str(c.pid) for c in children),
    )
    return children


def stop(children: list[subprocess.Popen]) -> None:
    """Ctrl-C reaches the children too; each marks its running trial failed and exits."""
    for child in children:
        if child.poll() is None:
            child.send_signal(signal.SIGINT)


def wait(children: list[subprocess.Popen]) -> int:
    failed = 0
    for child in children:
        if child.wait() not in (0, 130):
            failed += 1
    if failed:
        log.warning("%d worker process(es) exited with an error; see their lines above", failed)
    return failed


def multirun(overrides: list[str]) -> int:
    """`hgsearch sweep -m worker=0,1,2 hydra/launcher=slurm ...`: one Hydra job per worker."""
    import hydra
    from hydra.core.hydra_config import HydraConfig
    from omegaconf import DictConfig, OmegaConf

    from .settings import from_config
    from .sweep import run_sweep

    @hydra.main(config_path="pkg://hgsearch.conf", config_name="config", version_base="1.3")
    def job(cfg: DictConfig) -> int:
        raw = OmegaConf.to_container(cfg, resolve=True)
        task_overrides = list(HydraConfig.get().overrides.task)
        return run_sweep(from_config(raw), task_overrides)

    argv = sys.argv
    sys.argv = ["hgsearch", *overrides]
    try:
        job()
    finally:
        sys.argv = argv
    return 0
