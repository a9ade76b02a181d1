"""The study loop of one family: open or resume its study, run trials until the goal says it
is done (search/goal.py), show progress, and leave an interrupted trial queued for the next run.
"""

from __future__ import annotations

import logging
import math
import os
import socket
import subprocess
import sys
from functools import cache
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import TrialState

from . import interrupt, record
from .goal import Done, trained_trials
from .objective import Diverged, Objective
from .plan import Plan
from .store import fail_stale_running, open_study, retry

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


def done_line(family: str, done: Done, target: int, attempts: int) -> str | None:
    """What to tell the user when a study stops short of its target (None when it met it)."""
    if done.why == "target":
        return None
    if done.why == "space":
        others = (done.size or 0) - done.trained
        why = f" ({others} outside the budget or the shape rule, or failed)" if others > 0 else ""
        return (
            f"[{family}] all {done.size} configurations of the space have been tried, "
            f"{done.trained} trained{why}, short of {target} trained trials: widen "
            f"space.{family} or relax the budget to train more"
        )
    return (
        f"[{family}] stopped after {attempts} attempts with {done.trained}/{target} trained "
        f"trials: the space yields few new feasible configurations (widen it or relax the "
        f"budget)"
    )


class Progress:
    """What a sweep shows while it works: a line per finished trial (above the bars on a
    terminal), a bar of trained trials against the target with the best so far once there is
    one, an inner bar of the running trial's epochs; with `verbosity` 2 a line per epoch too,
    with 0 neither lines nor bars (warnings and the report only)."""

    def __init__(self, family: str, plan: Plan, done: int, best: float) -> None:
        self.family, self.plan = family, plan
        self.target, self.metric = plan.goal.target, plan.config.search.metric
        self.epochs = plan.config.train.epochs
        self.verbosity = plan.config.verbosity
        self.done, self.best = done, best
        self.finished: Done | None = None  # why this run stopped, once the goal says so
        self.attempts = 0
        self.bar = self.inner = None
        if sys.stderr.isatty() and self.verbosity > 0:
            from tqdm import tqdm

            self.bar = tqdm(
                total=self.target, initial=done, desc=family, unit="trial", file=sys.stderr
            )
            self._postfix()

    def _postfix(self) -> None:
        if self.bar is not None and math.isfinite(self.best):
            self.bar.set_postfix_str(f"best {self.metric} {self.best:.2f}")

    def epoch(self, epoch: int, metrics: dict[str, float]) -> None:
        """After each evaluated epoch of the running trial (its first seed)."""
        psnr = metrics.get("psnr", float("nan"))
        if self.bar is not None:
            if self.inner is None:
                from tqdm import tqdm

                self.inner = tqdm(
                    total=self.epochs, desc="  epochs", unit="epoch", leave=False,
                    file=sys.stderr, position=1,
                )  # fmt: skip
            self.inner.n = epoch
            self.inner.set_postfix_str(f"eval PSNR {psnr:.2f} dB")
            self.inner.refresh()
        elif self.verbosity >= 2:
            log.info("[%s]   epoch %d/%d: eval PSNR %.2f dB", self.family, epoch, self.epochs,
                     psnr)  # fmt: skip

    def line(self, trial: optuna.trial.FrozenTrial) -> str:
        r = record.read(trial)
        arch = f"{r.arch} lr {r.lr or 0:.3g}"
        head = f"[{self.family}] trial {trial.number}:"
        if trial.state == TrialState.COMPLETE and r.trained:
            return (
                f"{head} {arch}, {r.params:,} params: eval {r.eval_psnr:.2f} dB, test "
                f"{r.test_psnr:.2f} dB, {r.seconds:.1f} s ({self.done}/{self.target} trained, "
                f"best {self.metric} {self.best:.2f})"
            )
        if trial.state == TrialState.COMPLETE:
            return f"{head} {arch} already trained, result reused"
        if trial.state == TrialState.PRUNED:
            why = r.violation or r.pruned_reason or "pruned"
            if r.duplicate_of is not None:
                why = f"trial {r.duplicate_of} is training it"
            return f"{head} skipped ({why})"
        return f"{head} failed ({r.status or 'error'})"

    def __call__(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        self.attempts += 1
        if self.inner is not None:
            self.inner.close()
            self.inner = None
        # Count from the storage: other workers may be finishing trials of the same study.
        self.done = len(trained_trials(study))
        if trial.state == TrialState.COMPLETE and trial.user_attrs.get("trained"):
            self.best = max(self.best, trial.values[0])
        line = self.line(trial)
        if self.bar is not None:
            self.bar.n = self.done
            self._postfix()
            self.bar.refresh()
            self.bar.write(line, file=sys.stderr)
        elif self.verbosity > 0:
            log.info(line)
        interrupt.check()  # the end of a trial: a safe point to stop at
        self.finished = self.plan.goal.done(study, self.attempts)
        if self.finished is not None:
            study.stop()

    def close(self) -> None:
        for bar in (self.inner, self.bar):
            if bar is not None:
                bar.close()


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
    stale = fail_stale_running(
        study, single_process=not c.storage.shared, max_retry=c.storage.max_retry
    )
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
        study.optimize(
            objective,
            n_trials=goal.max_attempts,
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
            retry(study, last, c.storage.max_retry)
        raise
    finally:
        progress.close()
    finished = progress.finished or goal.done(study, progress.attempts)
    message = finished and done_line(family, finished, goal.target, progress.attempts)
    if message and not (finished.why == "attempts" and c.sampler.name == "grid"):
        log.warning(message)
    return study
