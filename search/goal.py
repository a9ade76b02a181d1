"""When is a family's study done? One answer, asked at a sweep's start, at each trial's end and
by the objective before it trains.

A study is done when its trained trials, plus those other workers are training now (they will
finish), meet the target; when every configuration of a finite space has been tried; or, for
one run, when it has started `max_attempts` trials.
"""

from __future__ import annotations

from dataclasses import dataclass

import optuna
from optuna.distributions import BaseDistribution
from optuna.trial import FrozenTrial, TrialState

from .sampler import exhausted


def trained_trials(study: optuna.Study) -> list[FrozenTrial]:
    """Finished trials that trained a model (not reused, not pruned)."""
    return [
        t
        for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
        if t.user_attrs.get("trained")
    ]


def training_trials(study: optuna.Study, exclude: int | None = None) -> list[FrozenTrial]:
    """RUNNING trials that have started training (each records its seeds first), but trial
    number `exclude`. A trial still choosing its configuration, or about to reuse a stored
    result or step aside for a twin, is not counted: counting it would stop workers one short.
    """
    return [
        t
        for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
        if "seeds" in t.user_attrs and t.number != exclude
    ]


def sampled_space(trial: FrozenTrial) -> dict[str, BaseDistribution]:
    """The distributions a trial sampled from (single-valued ones left out)."""
    return {n: d for n, d in trial.distributions.items() if not d.single()}


@dataclass(frozen=True)
class Done:
    why: str  # "target" | "space" | "attempts"
    trained: int
    size: int | None = None  # the space's size, when it is used up


@dataclass(frozen=True)
class Goal:
    target: int  # trained trials the study should hold, across all workers
    max_attempts: int  # trials one run may start

    def target_met(self, study: optuna.Study, exclude: int | None = None) -> bool:
        """Trained trials plus those training elsewhere meet the target (a retried trial
        inherits its seeds, so the asking trial passes its own number as `exclude`)."""
        trained = len(trained_trials(study))
        return trained + len(training_trials(study, exclude)) >= self.target

    def done(self, study: optuna.Study, attempts: int = 0) -> Done | None:
        """Whether this run should start no more trials, and why."""
        trained = len(trained_trials(study))
        if self.target_met(study):
            return Done("target", trained)
        last = next((t for t in reversed(study.get_trials(deepcopy=False)) if t.params), None)
        size = exhausted(study, sampled_space(last)) if last is not None else None
        if size is not None:
            return Done("space", trained, size)
        if attempts >= self.max_attempts:
            return Done("attempts", trained)
        return None
