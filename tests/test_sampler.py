"""The default sampler: Optuna's TPE, rating every untried configuration of a finite space."""

from __future__ import annotations

import itertools
import re

import numpy as np
import optuna
import pytest
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.trial import TrialState

from hgsearch.search.errors import ConfigError
from hgsearch.search.sampler import ExhaustiveTPESampler, exhausted, make_sampler
from hgsearch.search.settings import SamplerSettings

SPACE = {
    "d_h": CategoricalDistribution([4, 16, 64]),
    "depth": IntDistribution(1, 4),
    "lr": FloatDistribution(0.001, 0.003, step=0.001),
}


def suggest(trial) -> tuple:
    return (
        trial.suggest_categorical("d_h", [4, 16, 64]),
        trial.suggest_int("depth", 1, 4),
        trial.suggest_float("lr", 0.001, 0.003, step=0.001),
    )


def score(config: tuple) -> list[float]:
    """A deterministic two-objective landscape: quality peaks inside the space, size grows."""
    d_h, depth, lr = config
    quality = -((np.log2(d_h) - 4) ** 2) - (depth - 3) ** 2 - 1e6 * (lr - 0.002) ** 2
    return [float(quality), float(d_h * depth)]


def configs(internal: dict[str, np.ndarray]) -> set[tuple]:
    """Configurations from arrays of TPE's internal representation (categorical: an index)."""
    columns = (internal["d_h"], internal["depth"], internal["lr"])
    return {
        (SPACE["d_h"].choices[int(a)], int(b), round(float(c), 6))
        for a, b, c in zip(*columns, strict=True)
    }


def run(sampler, n: int) -> list[tuple]:
    study = optuna.create_study(directions=["maximize", "minimize"], sampler=sampler)
    configs = []
    for _ in range(n):
        trial = study.ask()
        config = suggest(trial)
        configs.append((config[0], config[1], round(config[2], 6)))
        study.tell(trial, score(config))
    return configs


def test_tpe_tries_every_configuration_once_before_repeating_any():
    size = 3 * 4 * 3
    for seed in range(3):
        configs = run(make_sampler(SamplerSettings("tpe", seed=seed), "s", 0), size)
        assert len(set(configs)) == size  # the whole space, no repeat
    # Optuna's TPE as is (exhaustive_max=0) repeats tried configurations in the same setting
    plain = run(make_sampler(SamplerSettings("tpe", seed=0, exhaustive_max=0), "s", 0), size)
    assert len(set(plain)) < size


class Spy(ExhaustiveTPESampler):
    """Records what TPE's acquisition function rated and what it returned."""

    rated: list

    def _compute_acquisition_func(self, samples, mpe_below, mpe_above):
        values = super()._compute_acquisition_func(samples, mpe_below, mpe_above)
        self.rated.append(({k: v.copy() for k, v in samples.items()}, values.copy()))
        return values


def test_the_chosen_configuration_is_the_best_rated_untried_one():
    sampler = Spy(seed=1, multivariate=True, group=True, n_startup_trials=3, constant_liar=True)
    sampler.rated = []
    study = optuna.create_study(directions=["maximize", "minimize"], sampler=sampler)
    for _ in range(8):
        trial = study.ask()
        before = {
            (t.params["d_h"], t.params["depth"], round(t.params["lr"], 6))
            for t in study.trials
            if t.number != trial.number
        }
        config = suggest(trial)
        study.tell(trial, score(config))
        if len(study.trials) <= 3:
            continue  # start-up trials are random
        samples, values = sampler.rated[-1]
        rated = configs(samples)
        everything = set(itertools.product([4, 16, 64], range(1, 5), (0.001, 0.002, 0.003)))
        assert rated == everything - before  # every untried configuration, nothing else
        best = int(np.argmax(values))
        assert config[:2] == (
            SPACE["d_h"].choices[int(samples["d_h"][best])],
            samples["depth"][best],
        )
        assert config[2] == pytest.approx(samples["lr"][best])
    assert len(sampler.rated) == 5


def add(study, params: dict, state: TrialState) -> None:
    values = [0.0, 1.0] if state == TrialState.COMPLETE else None
    study.add_trial(
        optuna.trial.create_trial(params=params, distributions=SPACE, state=state, values=values)
    )


def test_untried_leaves_out_finished_pruned_failed_and_running_trials_of_every_worker():
    sampler = ExhaustiveTPESampler(seed=0)
    study = optuna.create_study(directions=["maximize", "minimize"], sampler=sampler)
    add(study, {"d_h": 4, "depth": 1, "lr": 0.001}, TrialState.COMPLETE)
    add(study, {"d_h": 16, "depth": 2, "lr": 0.002}, TrialState.PRUNED)  # e.g. over budget
    add(study, {"d_h": 64, "depth": 4, "lr": 0.003}, TrialState.RUNNING)  # another worker
    add(study, {"d_h": 64, "depth": 3, "lr": 0.003}, TrialState.FAIL)  # e.g. diverged
    trial = study.ask()
    study.enqueue_trial({"d_h": 4, "depth": 4, "lr": 0.002})  # queued: not tried yet
    left = sampler.untried(study, study.trials[trial.number], SPACE)
    assert trial.number == 4 and left is not None
    points = configs(left)
    assert len(points) == 36 - 4
    gone = {(4, 1, 0.001), (16, 2, 0.002), (64, 4, 0.003), (64, 3, 0.003)}
    assert gone & points == set()
    assert (4, 4, 0.002) in points
    assert exhausted(study, SPACE) is None


def test_a_space_is_exhausted_once_every_configuration_was_tried():
    study = optuna.create_study(directions=["maximize", "minimize"])
    small = {"d_h": CategoricalDistribution([4, 16]), "depth": IntDistribution(1, 2)}
    params = [{"d_h": a, "depth": b} for a in (4, 16) for b in (1, 2)]
    states = [TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL, TrialState.COMPLETE]
    for p, state in zip(params, states, strict=True):
        assert exhausted(study, small) is None
        values = [0.0, 1.0] if state == TrialState.COMPLETE else None
        trial = optuna.trial.create_trial(params=p, distributions=small, state=state, values=values)
        study.add_trial(trial)
    assert exhausted(study, small) == 4
    # the space changed (search.allow_space_change): depth 1 is no longer in it, so two of
    # its four configurations (depth 3) are untried
    moved = {"d_h": CategoricalDistribution([4, 16]), "depth": IntDistribution(2, 3)}
    assert exhausted(study, moved) is None
    study.enqueue_trial(params[2])  # an interrupted trial queued again must still run
    assert exhausted(study, small) is None
    assert exhausted(study, {**small, "lr": FloatDistribution(0.001, 0.003)}) is None


def test_continuous_large_and_partial_spaces_are_left_to_plain_tpe():
    sampler = ExhaustiveTPESampler(seed=0, exhaustive_max=30)
    study = optuna.create_study(directions=["maximize", "minimize"], sampler=sampler)
    add(study, {"d_h": 4, "depth": 1, "lr": 0.001}, TrialState.COMPLETE)
    trial = study.ask()
    assert sampler.untried(study, trial, SPACE) is None  # 36 configurations > 30
    sampler.exhaustive_max = 36
    assert sampler.untried(study, trial, SPACE) is not None
    continuous = {**SPACE, "lr": FloatDistribution(0.001, 0.003, log=True)}
    assert sampler.untried(study, trial, continuous) is None
    part = {"d_h": SPACE["d_h"]}  # one parameter of a three-parameter configuration
    assert sampler.untried(study, trial, part) is None


@pytest.mark.parametrize(
    ("raw", "needle"),
    [
        ({"name": "tpe", "n_startup_trials": "abc"}, "sampler.n_startup_trials='abc'"),
        ({"name": "tpe", "exhaustive_max": -1}, "sampler.exhaustive_max=-1"),
        ({"name": "nsga2", "population_size": 1}, "give a whole number >= 2"),
        ({"name": "gp", "n_startup_trials": 2.5}, "sampler.n_startup_trials=2.5"),
    ],
)
def test_bad_sampler_options_are_config_errors(raw, needle):
    from hgsearch.search.config import build

    with pytest.raises(ConfigError, match=re.escape(needle)):
        build(SamplerSettings, raw, "sampler")
