"""Samplers, always constructed explicitly (Optuna 5 changed the multi-objective defaults)."""

from __future__ import annotations

import itertools
import math
import zlib
from typing import Any

import numpy as np
import optuna
from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)
from optuna.trial import TrialState

from .errors import ConfigError
from .settings import EXHAUSTIVE_MAX, SAMPLERS, SamplerSettings


def sampler_seed(settings: SamplerSettings, study_name: str, worker: int) -> int:
    """The configured seed, or one derived from the study name; distinct per worker.

    The grid sampler must get the same seed in every worker, so its seed ignores `worker`.
    """
    base = zlib.crc32(study_name.encode()) if settings.seed is None else settings.seed
    return base if settings.name == "grid" else base + 7919 * worker


def _steps(dist: BaseDistribution) -> int | None:
    """How many values a distribution allows; None when it is continuous."""
    if isinstance(dist, CategoricalDistribution):
        return len(dist.choices)
    if isinstance(dist, IntDistribution | FloatDistribution) and dist.step is not None:
        return int(round((dist.high - dist.low) / dist.step)) + 1
    return None


def _index(dist: BaseDistribution, value: Any) -> int:
    """Position of a value among the distribution's values; ValueError when it is not one of
    them (e.g. stored under an earlier, different space)."""
    internal = dist.to_internal_repr(value)  # a categorical's index; raises if not a choice
    if isinstance(dist, CategoricalDistribution):
        return int(internal)
    index = int(round((internal - dist.low) / dist.step))  # type: ignore[attr-defined]
    if not 0 <= index < _steps(dist) or not math.isclose(  # type: ignore[operator]
        dist.low + index * dist.step,  # type: ignore[attr-defined]
        internal,
        rel_tol=1e-9,
        abs_tol=1e-12,
    ):
        raise ValueError(f"{value!r} is not a value of {dist}")
    return index


def _internal(dist: BaseDistribution, index: np.ndarray) -> np.ndarray:
    if isinstance(dist, CategoricalDistribution):
        return index.astype(float)
    return dist.low + index * dist.step  # type: ignore[attr-defined]


def space_size(space: dict[str, BaseDistribution]) -> int | None:
    """How many configurations a space holds; None when it is empty or continuous."""
    sizes = [_steps(d) for d in space.values()]
    return None if not sizes or None in sizes else math.prod(sizes)  # type: ignore[arg-type]


def tried(
    study: optuna.Study, space: dict[str, BaseDistribution], skip: int | None = None
) -> set[tuple[int, ...]] | None:
    """The configurations of a finite `space` that the study's trials have had, as index
    tuples in sorted parameter order: finished, pruned (outside the budget or the shape
    rule), failed or running in any worker, not queued (a queued trial runs next anyway).
    None when trials vary other parameters too, so that `space` is only part of one."""
    names = sorted(space)
    states = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL, TrialState.RUNNING)
    seen = set()
    for t in study.get_trials(deepcopy=False, states=states):
        if t.number == skip or not t.params:
            continue
        if {n for n, d in t.distributions.items() if not d.single()} != set(names):
            return None
        try:
            seen.add(tuple(_index(space[n], t.params[n]) for n in names))
        except ValueError:  # a value the current space no longer has
            continue
    return seen


def exhausted(study: optuna.Study, space: dict[str, BaseDistribution]) -> int | None:
    """The size of `space` when every one of its configurations has been tried and no trial
    is queued (e.g. an interrupted one, queued again), else None."""
    size = space_size(space)
    if size is None or study.get_trials(deepcopy=False, states=(TrialState.WAITING,)):
        return None
    done = tried(study, space)
    return size if done is not None and len(done) >= size else None


class ExhaustiveTPESampler(optuna.samplers.TPESampler):
    """Optuna's TPE that, in a finite space, rates every untried configuration.

    Plain TPE draws `n_ei_candidates` configurations from its model of the good trials and
    keeps the one with the best ratio of good to bad density; in a small discrete space that
    draw often lands on a configuration already tried (whose stored result the sweep then
    reuses, a trial spent on nothing new). Here, when the configuration being sampled is
    finite (choices, integer ranges, stepped floats) with at most `exhaustive_max` points, the
    same ratio is evaluated on every configuration not yet tried (finished, pruned or running
    in any worker) and the best is taken; the random start-up trials, too, are drawn among the
    untried configurations. The model and its good/bad split are TPE's own; a continuous or
    larger space, or one with nothing untried left, is sampled exactly as by TPESampler.
    """

    def __init__(self, *, exhaustive_max: int = EXHAUSTIVE_MAX, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.exhaustive_max = exhaustive_max
        self.startup = kwargs.get("n_startup_trials", 10)  # TPESampler's default
        self._untried: dict[str, np.ndarray] | None = None

    def untried(
        self, study: optuna.Study, trial: Any, space: dict[str, BaseDistribution]
    ) -> dict[str, np.ndarray] | None:
        """Every untried configuration of `space` (internal representation, one array per
        parameter), or None where the rule does not apply or nothing is left untried."""
        size = space_size(space)
        if size is None or size > self.exhaustive_max:
            return None
        done = tried(study, space, skip=trial.number)
        if done is None or len(done) >= size:
            return None
        names = sorted(space)
        ranges = (range(_steps(space[n])) for n in names)  # type: ignore[arg-type]
        index = np.array([p for p in itertools.product(*ranges) if p not in done])
        return {n: _internal(space[n], index[:, i]) for i, n in enumerate(names)}

    def _sample_relative(
        self, study: optuna.Study, trial: Any, search_space: dict[str, BaseDistribution]
    ) -> dict[str, Any]:
        states = (TrialState.COMPLETE, TrialState.PRUNED)
        if search_space and len(study.get_trials(deepcopy=False, states=states)) < self.startup:
            # a start-up trial: random, as in TPE, but among the untried configurations only
            untried = self.untried(study, trial, search_space)
            if untried is not None:
                pick = self._rng.rng.randint(len(next(iter(untried.values()))))
                return {n: search_space[n].to_external_repr(v[pick]) for n, v in untried.items()}
        return super()._sample_relative(study, trial, search_space)

    def _sample(
        self, study: optuna.Study, trial: Any, search_space: dict[str, BaseDistribution]
    ) -> dict[str, Any]:
        self._untried = self.untried(study, trial, search_space)
        try:
            return super()._sample(study, trial, search_space)
        finally:
            self._untried = None

    def _compute_acquisition_func(self, samples, mpe_below, mpe_above):  # type: ignore[no-untyped-def]
        # TPESampler._sample picks its result from this same `samples` dict by the returned
        # values, so replacing the drawn candidates here makes it choose among the untried.
        if self._untried is not None:
            samples.clear()
            samples.update(self._untried)
        return super()._compute_acquisition_func(samples, mpe_below, mpe_above)


def make_sampler(
    settings: SamplerSettings, study_name: str, worker: int, grid: dict[str, list] | None = None
) -> optuna.samplers.BaseSampler:
    name = settings.name
    seed = sampler_seed(settings, study_name, worker)
    startup = settings.n_startup_trials
    if name == "tpe":
        return ExhaustiveTPESampler(
            exhaustive_max=settings.exhaustive_max,
            seed=seed,
            multivariate=True,
            group=True,
            n_startup_trials=startup,
            constant_liar=True,
        )
    if name == "nsga2":
        return optuna.samplers.NSGAIISampler(seed=seed, population_size=settings.population_size)
    if name == "gp":
        return optuna.samplers.GPSampler(seed=seed, n_startup_trials=startup)
    if name == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if name == "grid":
        if grid is None:
            raise ConfigError("the grid sampler needs a space of choices")
        return optuna.samplers.GridSampler(grid, seed=seed)
    raise ConfigError(
        f"unknown sampler {name!r}; choose one of {', '.join(SAMPLERS)} (sampler=...)"
    )
