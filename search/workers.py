"""Several local worker processes on one study (`workers=N`), and Hydra multirun (`-m`) for
launchers such as SLURM's (`hydra/launcher=slurm`): every worker is an ordinary Optuna worker
on the shared storage.
"""

from __future__ import annotations

import logging
import re
import signal
import subprocess
import sys
from collections.abc import Callable

log = logging.getLogger("hgsearch")

INTERNAL = ("workers=", "worker=", "threads=", "search.name=")


def spawn(overrides: list[str], workers: int, prefix: str) -> list[subprocess.Popen]:
    """Start workers 1..N-1 as child processes on the same studies (this process is 0)."""
    if workers <= 1:
        return []
    keep = [o for o in overrides if not o.startswith(INTERNAL)]
    from .memory import usable_cpus

    threads = max(1, usable_cpus() // workers)
    keep += [f"threads={threads}", f"search.name={prefix}"]
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


def swept_keys(overrides: list[str]) -> list[str]:
    """The keys a multirun sweeps over (`key=a,b`, ranges, globs), `worker` excepted: workers
    share a study, every other swept value gets its own."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    parsed = OverridesParser.create().parse_overrides(
        [o for o in overrides if o not in ("-m", "--multirun")]
    )
    return sorted(
        o.key_or_group for o in parsed if o.is_sweep_override() and o.key_or_group != "worker"
    )


def first_job(overrides: list[str]) -> list[str]:
    """The overrides of a multirun's first job (`key=a,b` -> `key=a`), without `-m`."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    kept = [o for o in overrides if o not in ("-m", "--multirun")]
    parsed = OverridesParser.create().parse_overrides(kept)
    out = []
    for text, o in zip(kept, parsed, strict=True):
        if o.is_sweep_override():
            first = next(iter(o.sweep_string_iterator()))
            text = f"{o.get_key_element()}={first}"
        out.append(text)
    return out


def name_suffix(keys: list[str], task_overrides: list[str]) -> str:
    """A job's own values of the swept keys, e.g. `-train.epochs=2` (no path separators)."""
    values = dict(o.split("=", 1) for o in task_overrides if "=" in o)
    parts = [re.sub(r"[^A-Za-z0-9._=+-]", "_", f"{k}={values.get(k, '')}") for k in keys]
    return "".join(f"-{p}" for p in parts)[:80]


def multirun(overrides: list[str], run: Callable[..., int]) -> int:
    """`hgsearch sweep -m worker=0,1,2 hydra/launcher=slurm ...`: one Hydra job per worker;
    `-m key=a,b`: one study per value. `run(config, overrides, name_suffix)` runs a job."""
    import hydra
    from hydra.core.hydra_config import HydraConfig
    from omegaconf import DictConfig, OmegaConf

    from .config import parse
    from .errors import UserError
    from .urls import secrets_of

    for o in overrides:
        key, _, value = o.partition("=")
        if key.lstrip("+~") == "storage.url" and secrets_of(value):
            raise UserError(
                "a password in storage.url would be written into Hydra's multirun folders: put "
                "it in PGPASSWORD or ~/.pgpass and leave it out of the URL"
            )
    keys = swept_keys(overrides)

    @hydra.main(config_path="pkg://hgsearch.conf", config_name="config", version_base="1.3")
    def job(cfg: DictConfig) -> int:
        raw = OmegaConf.to_container(cfg, resolve=True)
        task_overrides = list(HydraConfig.get().overrides.task)
        return run(parse(raw), task_overrides, name_suffix(keys, task_overrides))

    argv = sys.argv
    sys.argv = ["hgsearch", *overrides]
    try:
        job()
    finally:
        sys.argv = argv
    return 0
