"""The study loop of one family: open or resume its study, run trials until the goal says it
is done (search/goal.py), show progress, and leave an interrupted trial queued for the next run.
"""

from __future__ import annotations

import logging
import math
import os
import socket
import subprocess
import time
from functools import cache
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import TrialState

from . import interrupt
from .goal import trained_trials, training_trials
from .objective import Diverged, Objective
from .plan import Plan
from .progress import Progress, done_line
from .resume import clear_stale, open_study, retry

log = logging.getLogger("hgsearch")


@cache
def git_revision() -> str:
    """The code's git revision, or the installed version."""
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
    from .. import __version__

    return "v" + __version__


def quiet_optuna() -> None:
    """Optuna's own per-trial lines (with tracebacks for failed trials) give way to ours."""
    import warnings

    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    optuna.logging.enable_propagation()
    optuna.logging.disable_default_handler()
    logging.getLogger("optuna").setLevel(logging.ERROR)


def waiting_on_others(study: optuna.Study, storage: Any, goal: Any) -> bool:
    """Wait while other workers train the trials the target counts on; True when one of them
    was given up (its worker died) and there is work for this worker again."""
    while len(trained_trials(study)) < goal.target:
        if not training_trials(study):
            return True  # nothing in flight and the target unmet: train more
        interrupt.check()
        time.sleep(min(5.0, storage.heartbeat_interval))
        clear_stale(study, storage)
    return False


def run_family(
    plan: Plan,
    family: str,
    storage: Any,
    data: Any,
    device: str,
    train_fn: Any = None,
    pack_fn: Any = None,
) -> optuna.Study:
    """Run (or resume) one family's study until its goal says it is done."""
    c = plan.config
    name = plan.study_name(family)
    study = open_study(
        storage,
        name,
        plan.sampler(family),
        plan.fingerprint(family),
        metric=c.search.metric,
        allow_change=c.search.allow_space_change,
    )
    stale = clear_stale(study, c.storage)
    if stale:
        log.info(
            "[%s] marked %d trial(s) left running by an interrupted run as failed", family, stale
        )
    targets = c.search.budget.targets
    derives = "arch" not in plan.space(family).dims  # a budget fixes a width of the sample
    if targets and derives and not study.trials and c.sampler.name != "grid":
        # A new budget-matched study starts with one trial per budget (the rest of each
        # configuration sampled), so every budget gets a model however few trials there are.
        for target in targets:
            study.enqueue_trial({"budget": target}, skip_if_exists=True)
    goal = plan.goal
    done = plan.goal.done(study)
    trained = trained_trials(study)
    if done is not None:
        message = done_line(family, done, goal.target, 0)
        if message:
            log.warning(message)
        else:
            log.info("[%s] study %s already has %d/%d trained trials", family, name,
                     len(trained), goal.target)  # fmt: skip
        return study
    best = max((t.values[0] for t in trained), default=-math.inf)
    log.info("[%s] study %s: %d/%d trained trials so far", family, name, len(trained), goal.target)
    objective = Objective(
        space=plan.space(family),
        budget=c.search.budget,
        data=data,
        train_settings=c.train,
        fix_w_in=c.arch.fix_w_in,
        replicas=c.search.replicas,
        metric=c.search.metric,
        early_stop=c.search.early_stop,
        device=device,
        goal=goal,
        log_dir=plan.run_folder / "trials" / family,
        weights_dir=plan.run_folder / "weights" / family,
        save=c.search.save,
        lrs=c.search.lrs.get(family) if c.search.lrs else None,
        meta={
            "task": c.task.name,
            "dataset": c.data.name,
            "git_rev": git_revision(),
            "worker": c.worker,
            "host": socket.gethostname(),
            "pid": os.getpid(),
        },
    )
    if train_fn is not None:  # tests inject fakes
        objective.train_fn = train_fn
        objective.pack_fn = pack_fn or getattr(train_fn, "pack", objective.pack_fn)
    progress = Progress(family, plan, len(trained), best)
    objective.on_epoch = progress.epoch
    catch: tuple[type[BaseException], ...] = (Diverged,)
    try:
        import torch

        catch += (torch.cuda.OutOfMemoryError,)
    except AttributeError:  # pragma: no cover
        pass
    try:
        while True:
            study.optimize(
                objective,
                n_trials=goal.max_attempts - progress.attempts,
                callbacks=[progress],
                catch=catch,
                gc_after_trial=False,
            )
            # The target may count trials other workers are training: wait for them. A dead
            # worker's trial goes stale (heartbeat, or its pid on this host) and is queued
            # again, for this worker to train.
            stopped = progress.finished
            if not (stopped and stopped.why == "target" and c.storage.shared):
                break
            if not waiting_on_others(study, c.storage, goal):
                break
            progress.finished = None
    except KeyboardInterrupt:
        # Optuna failed the interrupted trial; queue it again so a grid point is not lost.
        # (An interrupt noticed between trials leaves this worker's last trial finished.)
        mine = [
            t for t in study.get_trials(deepcopy=False) if t.user_attrs.get("pid") == os.getpid()
        ]
        last = max(mine, key=lambda t: t.number, default=None)
        if last is not None and last.state == TrialState.FAIL and "status" not in last.user_attrs:
            retry(study, last, c.storage.max_retry)
        raise
    finally:
        progress.close()
    finished = progress.finished or goal.done(study, progress.attempts)
    message = finished and done_line(family, finished, goal.target, progress.attempts)
    if message and not (finished.why == "attempts" and c.sampler.name == "grid"):
        log.warning(message)
    return study
