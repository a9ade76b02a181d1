from __future__ import annotations

import optuna
import pytest
from optuna.trial import FixedTrial

from hgsearch.search.goal import Goal, trained_trials
from hgsearch.search.objective import Objective, early_stop_reason
from hgsearch.search.settings import EarlyStop, TaskSettings, TrainSettings
from hgsearch.search.space import parse_budget, parse_family_space
from hgsearch.search.tasks import prepare
from tests.fakes import FakeTrainer

SPACE = {"d_z": [65, 96], "d_h": [4, 16, 32], "depth": [1, 2], "lr": [0.003, 0.01]}


@pytest.fixture(scope="module")
def data(digits_splits):
    return prepare(digits_splits, TaskSettings("gen_classify"))


def make_objective(data, fake, replicas=1, budget=None, early=None, space=SPACE):
    return Objective(
        space=parse_family_space("hourglass", space, 64),
        budget=parse_budget(budget or {}),
        data=data,
        train_settings=TrainSettings(epochs=3, batch_size=64),
        replicas=replicas,
        early_stop=early or EarlyStop(),
        train_fn=fake,
        pack_fn=fake.pack,
    )


def test_fixed_trial_with_fake_trainer(data):
    fake = FakeTrainer()
    trial = FixedTrial({"d_z": 96, "d_h": 16, "depth": 2, "lr": 0.003})
    value, params = make_objective(data, fake, replicas=3)(trial)
    assert params == 64 * 96 + 2 * 2 * 96 * 16 + 64 * 96
    assert [seed for _, _, seed in fake.calls] == [0, 1, 2]
    assert all(lr == 0.003 for _, lr, _ in fake.calls)
    a = trial.user_attrs
    assert (
        a["trained"] and a["params"] == params and a["d_h"] == 16 and len(a["eval_psnr_seeds"]) == 3
    )
    assert value == pytest.approx(sum(a["eval_psnr_seeds"]) / 3) and a["eval_psnr_std"] > 0


def test_fixed_trial_infeasible_is_pruned_untrained(data):
    fake = FakeTrainer()
    trial = FixedTrial({"d_z": 65, "d_h": 32, "depth": 2, "lr": 0.003})
    with pytest.raises(optuna.TrialPruned):
        make_objective(data, fake, budget={"max_params": 5000})(trial)
    assert fake.calls == [] and "above max_params" in trial.user_attrs["violation"]


def test_resuggested_configuration_is_reused_not_retrained(data):
    fake = FakeTrainer()
    tiny = {"d_z": [65], "d_h": [4, 16], "depth": [1], "lr": [0.003]}
    objective = make_objective(data, fake, space=tiny)
    study = optuna.create_study(
        directions=["maximize", "minimize"], sampler=optuna.samplers.RandomSampler(seed=0)
    )
    study.optimize(objective, n_trials=12)
    assert len(fake.calls) == 2  # two distinct configurations, each trained once
    assert len(trained_trials(study)) == 2
    reused = [t for t in study.trials if "reused_from" in t.user_attrs]
    assert len(reused) == 10
    for t in reused:
        source = study.trials[t.user_attrs["reused_from"]]
        assert t.values == source.values


def test_early_stop_rule_itself():
    rule = EarlyStop(enabled=True, epoch=2, margin_db=1.0, min_trials=2)
    finished = [(100, {"2": 20.0}), (200, {"2": 22.0}), (10_000, {"2": 30.0})]
    assert early_stop_reason(rule, 2, 20.5, 250, finished) is not None  # 22 - 1 > 20.5
    assert early_stop_reason(rule, 2, 21.5, 250, finished) is None
    assert early_stop_reason(rule, 2, 10.0, 150, finished) is None  # one peer only
    assert early_stop_reason(rule, 3, 10.0, 250, finished) is None  # not the checkpoint
    assert early_stop_reason(EarlyStop(), 2, 0.0, 250, finished) is None  # off by default


def _early_study(data, curve_for_last):
    """Three strong small trials finish, then a larger one follows `curve_for_last`."""
    fake = FakeTrainer(
        curve=lambda spec: (
            curve_for_last if spec.d_z == 96 and spec.d_h == 32 else [25.0, 28.0, 30.0]
        )
    )
    space = {
        "arch": {"configs": [[65, 4, 1], [65, 16, 1], [65, 32, 1], [96, 32, 2]]},
        "lr": [0.003],
    }
    objective = make_objective(data, fake, early=EarlyStop(True, 2, 1.0, 3), space=space)
    study = optuna.create_study(directions=["maximize", "minimize"])
    for arch in ("65x4x1", "65x16x1", "65x32x1", "96x32x2"):
        study.enqueue_trial({"arch": arch, "lr": 0.003})
    study.optimize(objective, n_trials=4)
    return study, fake


def test_early_stopping_fires_when_clearly_behind(data):
    study, fake = _early_study(data, [20.0, 21.0, 40.0])
    last = study.trials[-1]
    assert last.state == optuna.trial.TrialState.PRUNED
    assert "below" in last.user_attrs["pruned_reason"]
    assert last.user_attrs["epoch_psnr"] == {"1": 20.0, "2": 21.0}  # partial record kept
    assert last.user_attrs["d_z"] == 96


def test_early_stopping_does_not_fire_when_close(data):
    study, _ = _early_study(data, [24.0, 27.5, 31.0])
    assert all(t.state == optuna.trial.TrialState.COMPLETE for t in study.trials)


def test_target_counts_only_trials_that_are_training(data, tmp_path):
    """Workers share a target: a running trial that is still choosing (or about to reuse a
    stored result) must not make another worker stop one trained trial short; one that is
    training must."""
    fake = FakeTrainer()
    tiny = {"d_z": [65], "d_h": [4, 16], "depth": [1], "lr": [0.003]}
    objective = make_objective(data, fake, space=tiny)
    objective.goal = Goal(target=2, max_attempts=100)
    study = optuna.create_study(
        storage=f"sqlite:///{tmp_path / 'study.db'}", directions=["maximize", "minimize"]
    )

    def run(d_h):
        study.enqueue_trial({"d_z": 65, "d_h": d_h, "depth": 1, "lr": 0.003})
        trial = study.ask()
        try:
            study.tell(trial, objective(trial))
        except optuna.TrialPruned:
            study.tell(trial, state=optuna.trial.TrialState.PRUNED)
        return study.trials[trial.number]

    assert run(4).user_attrs["trained"]
    deciding = study.ask()  # another worker's trial, configuration chosen, not training
    deciding.set_user_attr("config_key", study.trials[0].user_attrs["config_key"])
    assert run(16).user_attrs["trained"]  # 1 trained + 0 training < 2: goes on
    assert len(fake.calls) == 2

    objective.goal = Goal(target=3, max_attempts=100)
    training = study.ask()  # another worker's trial that has started training
    training.set_user_attr("seeds", [0])
    pruned = run(4)
    assert pruned.state == optuna.trial.TrialState.PRUNED
    assert pruned.user_attrs["violation"] == "the study reached its target"
    assert len(fake.calls) == 2
