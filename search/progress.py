"""What a sweep shows while it works (search/study.py runs it), and what it says when a study
stops short of its target."""

from __future__ import annotations

import logging
import math
import sys

import optuna
from optuna.trial import TrialState

from . import interrupt, record
from .goal import Done, trained_trials
from .memory import auto_threads
from .plan import Plan
from .resume import clear_stale

log = logging.getLogger("hgsearch")


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
        config = self.plan.config
        if config.threads is None and config.workers == 1:
            import torch

            torch.set_num_threads(auto_threads())  # the machine may have got busier, or quieter
        clear_stale(study, self.plan.config.storage)  # a dead worker's trial is not "training"
        self.finished = self.plan.goal.done(study, self.attempts)
        if self.finished is not None:
            study.stop()

    def close(self) -> None:
        for bar in (self.inner, self.bar):
            if bar is not None:
                bar.close()
