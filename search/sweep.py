"""`hgsearch sweep` / `status` / `frontier`: studies of both families in one storage.

A study is one (experiment, task, dataset, family, budget mode). Its target is a total of
trained trials: re-running the same command resumes it and stops once the target is reached.
"""

from __future__ import annotations

import logging
import math
import os
import socket
import subprocess
import sys
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import TrialState

from . import interrupt
from .metrics import DEFINITION
from .objective import (
    METRICS,
    Diverged,
    EarlyStop,
    Objective,
    trained_trials,
    training_trials,
)
from .sampler import exhausted, make_sampler
from .settings import ConfigError, Settings, build
from .space import Budget, FamilySpace, check_feasible, grid_of, parse_budget, parse_family_space
from .store import (
    StorageSettings,
    check_unchanged,
    fail_stale_running,
    open_storage,
    open_study,
    retry,
    stored_config,
)
from .store import from_config as storage_from_config

log = logging.getLogger("hgsearch")


@dataclass(frozen=True)
class Plan:
    """Everything a sweep needs besides the data, validated before anything runs."""

    settings: Settings
    prefix: str
    families: tuple[str, ...]
    spaces: dict[str, FamilySpace]
    budget: Budget
    n_trials: int
    replicas: int
    metric: str
    max_attempts: int
    allow_space_change: bool
    early_stop: EarlyStop
    storage: StorageSettings
    sampler: dict[str, Any]
    worker: int
    report: Any  # analysis.report.ReportSettings

    @property
    def run_folder(self) -> Path:
        s = self.settings
        return Path(s.run_dir) / f"{self.prefix}-{s.task.name}-{s.data.name}"

    def study_name(self, family: str) -> str:
        s = self.settings
        mode = "-matched" if self.budget.matched else ""
        return f"{self.prefix}-{s.task.name}-{s.data.name}-{family}{mode}"

    def fingerprint(self, family: str) -> dict[str, Any]:
        raw = self.settings.raw
        train = {k: v for k, v in raw["train"].items() if k != "seed"}
        return {
            "task": raw["task"],
            "dataset": {k: raw["dataset"][k] for k in ("name", "split_seed", "limit")},
            "family": family,
            "space": raw["space"][family],
            "budget": raw["search"]["budget"],
            "train": train,
            "replicas": self.replicas,
            "metric": self.metric,
            "fix_w_in": self.settings.arch.fix_w_in,
            "psnr_definition": DEFINITION,
        }


def make_plan(settings: Settings) -> Plan:
    raw = settings.raw
    search = raw["search"]
    d_x, d_y = settings.dims()
    families = tuple(search.get("families") or ())
    if not families:
        raise ConfigError("search.families is empty: list hourglass and/or conventional")
    spaces = {}
    for family in families:
        if family not in ("hourglass", "conventional"):
            raise ConfigError(f"unknown family {family!r} in search.families")
        if family not in (raw.get("space") or {}):
            raise ConfigError(f"space.{family} is missing: the search space has no {family} entry")
        spaces[family] = parse_family_space(family, raw["space"][family], d_x)
    budget = parse_budget(search.get("budget") or {})
    for space in spaces.values():
        check_feasible(space, budget, d_x, d_y, settings.arch.fix_w_in)
    metric = search.get("metric", "eval_psnr")
    if metric not in METRICS:
        raise ConfigError(f"search.metric={metric!r}; choose one of {', '.join(METRICS)}")
    n_trials, replicas = int(search.get("n_trials", 10)), int(search.get("replicas", 1))
    if n_trials < 1 or replicas < 1:
        raise ConfigError("search.n_trials and search.replicas must be at least 1")
    early = build(EarlyStop, search.get("early_stop") or {}, "search.early_stop")
    from ..analysis.report import settings_from as report_settings

    try:
        report = report_settings(raw.get("report") or {})
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    if report.metric not in METRICS:
        raise ConfigError(f"report.metric={report.metric!r}; choose one of {', '.join(METRICS)}")
    plan = Plan(
        settings=settings,
        prefix=str(search.get("name") or "sweep"),
        families=families,
        spaces=spaces,
        budget=budget,
        n_trials=n_trials,
        replicas=replicas,
        metric=metric,
        max_attempts=int(search.get("max_attempts") or 20 * n_trials),
        allow_space_change=bool(search.get("allow_space_change", False)),
        early_stop=early,
        storage=storage_from_config(raw["storage"]),
        sampler=dict(raw["sampler"]),
        worker=int(raw.get("worker", 0)),
        report=report,
    )
    for family in families:  # a bad sampler/space pairing fails now, not mid-sweep
        sampler_for(plan, family)
    return plan


def sampler_for(plan: Plan, family: str) -> optuna.samplers.BaseSampler:
    grid = grid_of(plan.spaces[family], plan.budget) if plan.sampler.get("name") == "grid" else None
    return make_sampler(plan.sampler, plan.study_name(family), plan.worker, grid)


@cache
def git_revision() -> str:
    here = Path(__file__).resolve().parent
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=here,
            capture_output=True,
            text=True,
            timeout=5,
        )
        if out.returncode == 0:
            return out.stdout.strip()
    except (OSError, subprocess.SubprocessError):
        pass
    from importlib.metadata import PackageNotFoundError, version

    try:
        return "v" + version("hgsearch")
    except PackageNotFoundError:  # pragma: no cover
        return "unknown"


def quiet_optuna() -> None:
    """Optuna's own per-trial lines (with tracebacks for failed trials) give way to ours."""
    import warnings

    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    optuna.logging.enable_propagation()
    optuna.logging.disable_default_handler()
    logging.getLogger("optuna").setLevel(logging.ERROR)


class Progress:
    """Per-trial callback: a bar on a TTY, otherwise a log line per trial."""

    def __init__(self, family: str, target: int, metric: str, done: int, best: float) -> None:
        self.family, self.target, self.metric = family, target, metric
        self.done, self.best = done, best
        self.exhausted: int | None = None  # the space's size, once all of it has been tried
        self.bar = None
        if sys.stderr.isatty():
            from tqdm import tqdm

            self.bar = tqdm(total=target, initial=done, desc=family, unit="trial", file=sys.stderr)

    def __call__(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        a = trial.user_attrs
        arch = f"{a.get('d_z')}x{a.get('d_h')}x{a.get('depth')} lr {a.get('lr', 0):.3g}"
        # Count from the storage: other workers may be finishing trials of the same study.
        self.done = len(trained_trials(study))
        training = len(training_trials(study))
        if trial.state == TrialState.COMPLETE and a.get("trained"):
            self.best = max(self.best, trial.values[0])
            line = (
                f"[{self.family}] trial {trial.number}: {arch}, {a['params']:,} params: "
                f"eval {a['eval_psnr']:.2f} dB, test {a['test_psnr']:.2f} dB, "
                f"{a['seconds']:.1f} s ({self.done}/{self.target} trained, best "
                f"{self.metric} {self.best:.2f})"
            )
        elif trial.state == TrialState.COMPLETE:
            line = f"[{self.family}] trial {trial.number}: {arch} already trained, result reused"
        elif trial.state == TrialState.PRUNED:
            why = a.get("violation") or a.get("pruned_reason") or "pruned"
            if "duplicate_of" in a:
                why = f"trial {a['duplicate_of']} is training it"
            line = f"[{self.family}] trial {trial.number}: skipped ({why})"
        else:
            line = f"[{self.family}] trial {trial.number}: failed ({a.get('status', 'error')})"
        if self.bar is not None:
            self.bar.n = self.done
            self.bar.set_postfix(best=f"{self.best:.2f}")
            self.bar.refresh()
            if trial.state != TrialState.COMPLETE:
                self.bar.write(line, file=sys.stderr)
        else:
            log.info(line)
        interrupt.check()  # the end of a trial: a safe point to stop at
        # Trials training in other workers will finish: starting more would overshoot.
        if self.done + training >= self.target:
            study.stop()
            return
        # A finite space whose every configuration has been tried has nothing new to give.
        space = {n: d for n, d in trial.distributions.items() if not d.single()}
        self.exhausted = exhausted(study, space)
        if self.exhausted is not None:
            study.stop()

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def exhausted_line(family: str, size: int, trained: int, target: int) -> str:
    others = size - trained
    why = f" ({others} outside the budget or the shape rule, or failed)" if others > 0 else ""
    return (
        f"[{family}] all {size} configurations of the space have been tried, {trained} "
        f"trained{why}, short of {target} trained trials: widen space.{family} or relax the "
        "budget to train more"
    )


def run_family(
    plan: Plan, family: str, storage: Any, data: Any, device: str, train_fn: Any = None
) -> optuna.Study:
    name = plan.study_name(family)
    study = open_study(
        storage,
        name,
        sampler_for(plan, family),
        plan.fingerprint(family),
        metric=plan.metric,
        allow_change=plan.allow_space_change,
    )
    stale = fail_stale_running(
        study, single_process=not plan.storage.shared, max_retry=plan.storage.max_retry
    )
    if stale:
        log.info(
            "[%s] marked %d trial(s) left running by an interrupted run as failed", family, stale
        )
    done = trained_trials(study)
    if len(done) >= plan.n_trials:
        log.info(
            "[%s] study %s already has %d/%d trained trials", family, name, len(done), plan.n_trials
        )
        return study
    last = next((t for t in reversed(study.get_trials(deepcopy=False)) if t.params), None)
    size = last and exhausted(
        study, {n: d for n, d in last.distributions.items() if not d.single()}
    )
    if size:
        log.warning(exhausted_line(family, size, len(done), plan.n_trials))
        return study
    best = max((t.values[0] for t in done), default=-math.inf)
    log.info("[%s] study %s: %d/%d trained trials so far", family, name, len(done), plan.n_trials)
    s = plan.settings
    objective = Objective(
        space=plan.spaces[family],
        budget=plan.budget,
        data=data,
        train_settings=s.train,
        fix_w_in=s.arch.fix_w_in,
        replicas=plan.replicas,
        metric=plan.metric,
        early_stop=plan.early_stop,
        device=device,
        target=plan.n_trials,
        log_dir=plan.run_folder / "trials" / family,
        meta={
            "task": s.task.name,
            "dataset": s.data.name,
            "git_rev": git_revision(),
            "worker": plan.worker,
            "host": socket.gethostname(),
            "pid": os.getpid(),
        },
    )
    if train_fn is not None:
        objective.train_fn = train_fn
    progress = Progress(family, plan.n_trials, plan.metric, len(done), best)
    catch: tuple[type[BaseException], ...] = (Diverged,)
    try:
        import torch

        catch += (torch.cuda.OutOfMemoryError,)
    except AttributeError:  # pragma: no cover
        pass
    try:
        study.optimize(
            objective,
            n_trials=plan.max_attempts,
            callbacks=[progress],
            catch=catch,
            gc_after_trial=False,
        )
    except KeyboardInterrupt:
        # Optuna failed the interrupted trial; queue it again so a grid point is not lost.
        # (An interrupt noticed between trials leaves this worker's last trial finished.)
        mine = [
            t for t in study.get_trials(deepcopy=False) if t.user_attrs.get("pid") == os.getpid()
        ]
        last = max(mine, key=lambda t: t.number, default=None)
        if last is not None and last.state == TrialState.FAIL and "status" not in last.user_attrs:
            retry(study, last, plan.storage.max_retry)
        raise
    finally:
        progress.close()
    trained = len(trained_trials(study))
    if trained < plan.n_trials and progress.exhausted is not None:
        log.warning(exhausted_line(family, progress.exhausted, trained, plan.n_trials))
    elif trained < plan.n_trials and plan.sampler.get("name") != "grid":
        log.warning(
            "[%s] stopped after %d attempts with %d/%d trained trials: the space yields "
            "few new feasible configurations (widen it or relax the budget)",
            family,
            plan.max_attempts,
            trained,
            plan.n_trials,
        )
    return study


def set_threads(threads: int | None, workers: int = 1) -> None:
    """CPU threads for this process: several workers on one host must not oversubscribe the
    cores (spinning OpenMP threads slow everything down many times over)."""
    import torch

    n = int(threads) if threads else max(1, (os.cpu_count() or 1) // workers)
    torch.set_num_threads(n)


def cmd_sweep(overrides: list[str]) -> int:
    from .cli import settings_from
    from .workers import multirun

    if "-m" in overrides or "--multirun" in overrides:
        return multirun(overrides)
    return run_sweep(settings_from(overrides), overrides)


def run_sweep(settings: Settings, overrides: list[str]) -> int:
    from . import workers as local
    from .data import load
    from .store import redact
    from .tasks import prepare
    from .train import precision_note, resolve_device

    plan = make_plan(settings)
    n_workers = int(settings.raw.get("workers", 1))
    if n_workers < 1:
        raise ConfigError(f"workers must be at least 1, got {n_workers}")
    if n_workers > 1 and not plan.storage.shared:
        raise ConfigError(
            "SQLite allows one writing process at a time, so workers>1 cannot share it: use "
            "storage=journal (processes on one host) or storage=postgres (many machines)"
        )
    device = resolve_device(settings.device)
    if note := precision_note(settings.train, device):
        log.warning(note)
    set_threads(settings.raw.get("threads"), n_workers)
    storage = open_storage(plan.storage, create=True)
    quiet_optuna()
    for family in plan.families:  # before anything runs, so a refusal leaves nothing behind
        name = plan.study_name(family)
        check_unchanged(
            name, stored_config(storage, name), plan.fingerprint(family), plan.allow_space_change
        )
    where = plan.storage.url if plan.storage.kind == "journal" else plan.storage.resolved_url()
    log.info(
        "sweep %s: %s on %s, families %s, %d trained trials each, device %s, storage %s",
        plan.prefix,
        settings.task.name,
        settings.data.name,
        ", ".join(plan.families),
        plan.n_trials,
        device,
        redact(where),
    )
    with interrupt.handled():  # Ctrl-C and SIGTERM stop cleanly, see search/interrupt.py
        children = local.spawn(overrides, n_workers) if n_workers > 1 else []
        try:
            with interrupt.interruptible():
                data = prepare(load(settings.data), settings.task, device)
            studies = [run_family(plan, f, storage, data, str(device)) for f in plan.families]
            interrupt.check()
        except BaseException:
            local.stop(children)
            raise
        finally:
            local.wait(children)
        if plan.worker == 0:
            report(plan, studies)
        interrupt.check()
    return 0


def report(plan: Plan, studies: list[optuna.Study]) -> None:
    from ..analysis.report import NothingToReport, report_studies
    from .cli import UserError

    try:
        report_studies(studies, plan.run_folder, plan.report)
    except NothingToReport as exc:
        raise UserError(str(exc)) from None


def cmd_status(overrides: list[str]) -> int:
    from .cli import settings_from
    from .status import print_status

    settings = settings_from(overrides)
    storage = open_storage(storage_from_config(settings.raw["storage"]), create=False)
    quiet_optuna()
    print_status(storage)
    return 0


def cmd_frontier(overrides: list[str]) -> int:
    from .cli import UserError, settings_from
    from .store import check_metric, study_names

    settings = settings_from(overrides)
    plan = make_plan(settings)
    storage = open_storage(plan.storage, create=False)
    quiet_optuna()
    names = [plan.study_name(f) for f in plan.families]
    present = set(study_names(storage))
    missing = [n for n in names if n not in present]
    if len(missing) == len(names):
        raise UserError(
            f"no study named {' or '.join(names)} in the storage: run "
            f"`hgsearch sweep` with the same overrides first"
        )
    for name in names:
        if name in present:
            check_metric(name, stored_config(storage, name))
    studies = [optuna.load_study(study_name=n, storage=storage) for n in names if n in present]
    report(plan, studies)
    return 0
