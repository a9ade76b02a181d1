"""The few places where hgsearch leans on Optuna internals, kept in one module.

Each is held by a test (tests/test_internals.py) that fails loudly when Optuna moves it. Tested
with Optuna 4.5 to 5.0 (`optuna>=4.5,<6` in pyproject.toml).
"""

from __future__ import annotations

from typing import Any

import optuna

CONFIG_KEY = "hgsearch_config"  # a study's stored configuration (a system attribute)


def report_intermediate(trial: Any, step: int, value: float) -> None:
    """Store an intermediate value (eval PSNR per epoch: the dashboard's learning curves).

    `Trial.report` refuses multi-objective studies (it is there for pruners, which do not work
    on them), but the storage takes intermediate values of any trial; this is what `report`
    itself calls. Trials without a storage (`FixedTrial` in tests) are skipped.
    """
    storage, trial_id = getattr(trial, "storage", None), getattr(trial, "_trial_id", None)
    if storage is None or trial_id is None:
        return
    storage.set_trial_intermediate_value(trial_id, step, float(value))


def study_config(study: optuna.Study) -> Any:
    """The configuration stored with a study: a system attribute, so `optuna studies` stays
    readable; studies written before 0.2 kept it as a user attribute."""
    system = study._storage.get_study_system_attrs(study._study_id)
    return system.get(CONFIG_KEY, study.user_attrs.get(CONFIG_KEY))


def set_study_config(study: optuna.Study, config: Any) -> None:
    study._storage.set_study_system_attr(study._study_id, CONFIG_KEY, config)
