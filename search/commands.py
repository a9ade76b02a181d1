"""The commands on studies, given their typed configuration (the CLI parses it): `sweep` runs
the studies of the configured families (resuming them), `status` lists a storage's studies,
`frontier` reports stored studies. The report is the one call from search into analysis.
(The commands on one model are in search/single.py.)
"""

from __future__ import annotations

import logging

import optuna

from ..analysis import NothingToReport, report_studies
from . import interrupt
from .config import Config
from .errors import ConfigError, UserError
from .memory import auto_threads, usable_cpus
from .plan import Plan, make_plan
from .resume import check_unchanged, stored_config, study_names
from .store import open_storage
from .study import quiet_optuna, run_family

log = logging.getLogger("hgsearch")


def set_threads(threads: int | None, workers: int = 1) -> None:
    """CPU threads for this process: `threads=` as given; several workers on one host share
    the cores (spinning OpenMP threads slow everything down many times over); one worker takes
    the cores nothing else is using (and looks again after every trial, search/progress.py)."""
    import torch

    if threads:
        n = int(threads)
    elif workers > 1:
        n = max(1, usable_cpus() // workers)
    else:
        n = auto_threads()
    torch.set_num_threads(n)


def sweep(config: Config, overrides: list[str], name_suffix: str = "") -> int:
    """Run (or resume) the studies of every configured family, then report them."""
    from . import workers as local
    from .data import load
    from .tasks import prepare
    from .train import precision_note, resolve_device

    plan = make_plan(config, name_suffix)
    if config.workers > 1 and not config.storage.shared:
        raise ConfigError(
            "SQLite allows one writing process at a time, so workers>1 cannot share it: use "
            "storage=journal (processes on one host) or storage=postgres (many machines)"
        )
    device = resolve_device(config.device)
    if note := precision_note(config.train, device):
        log.warning(note)
    set_threads(config.threads, config.workers)
    with interrupt.handled():  # Ctrl-C and SIGTERM stop cleanly, see search/interrupt.py
        storage = open_storage(config.storage, create=True)  # may wait for a journal's lock
        quiet_optuna()
        for family in plan.families:  # before anything runs: a refusal leaves nothing behind
            name = plan.study_name(family)
            check_unchanged(
                name,
                stored_config(storage, name),
                plan.fingerprint(family),
                config.search.allow_space_change,
            )
        log.info(
            "sweep %s: %s on %s, families %s, %d trained trials each, device %s, storage %s",
            plan.prefix,
            config.task.name,
            config.data.name,
            ", ".join(plan.families),
            plan.goal.target,
            device,
            config.storage.where(),
        )
        children = local.spawn(overrides, config.workers, plan.prefix)
        try:
            with interrupt.interruptible():
                data = prepare(load(config.data), config.task, device)
            studies = [run_family(plan, f, storage, data, str(device)) for f in plan.families]
            interrupt.check()
        except BaseException:
            local.stop(children)
            raise
        finally:
            local.wait(children)
        if config.worker == 0:
            report(plan, studies)
        interrupt.check()
    return 0


def report(plan: Plan, studies: list[optuna.Study]) -> None:
    import errno

    try:
        report_studies(studies, plan.run_folder, plan.config.report)
    except NothingToReport as exc:
        raise UserError(str(exc)) from None
    except OSError as exc:
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            raise
        raise UserError(
            f"cannot write the report into {plan.run_folder} ({exc.strerror}): give run_dir= a "
            f"writable folder (the studies are stored and unchanged)"
        ) from None


def status(config: Config) -> int:
    from .status import print_status

    storage = open_storage(config.storage, create=False)
    quiet_optuna()
    print_status(storage)
    return 0


def frontier(config: Config) -> int:
    plan = make_plan(config)
    storage = open_storage(config.storage, create=False)
    quiet_optuna()
    names = [plan.study_name(f) for f in plan.families]
    present = set(study_names(storage))
    if not present & set(names):
        raise UserError(
            f"no study named {' or '.join(names)} in the storage: run "
            f"`hgsearch sweep` with the same overrides first"
        )
    for family, name in zip(plan.families, names, strict=True):
        if name in present:  # a report of another space would overwrite this one's folder
            check_unchanged(
                name,
                stored_config(storage, name),
                plan.fingerprint(family),
                config.search.allow_space_change,
            )
    studies = [optuna.load_study(study_name=n, storage=storage) for n in names if n in present]
    report(plan, studies)
    return 0
