"""The trial record: what each trial stores, as Optuna user attributes (so `optuna trials`,
`optuna-dashboard` and `trials_dataframe()` show it), written by the objective and read by
every reader (sweep progress, status, analysis) through this one dataclass.

A field renamed here breaks its writers and readers at once (`write` refuses unknown names,
readers use attributes); a trained trial without its metrics is an error, not a NaN column.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

METRICS = ("eval_psnr", "test_psnr", "eval_ssim", "test_ssim")  # search/report metric choices
# Recorded on every trained trial; `*_psnr_image` (mean of per-image PSNRs) only for the record.
RECORDED = (*METRICS, "eval_psnr_image", "test_psnr_image")


class RecordError(ValueError):
    """A stored trial that lacks what its state promises (written by another tool?)."""


@dataclass(frozen=True)
class TrialRecord:
    # who ran it (every trial)
    task: str | None = None
    dataset: str | None = None
    git_rev: str | None = None
    worker: int | None = None
    host: str | None = None
    pid: int | None = None
    # the sampled configuration (every trial that got one)
    family: str | None = None
    d_z: int | None = None
    d_h: int | None = None
    depth: int | None = None
    lr: float | None = None
    fix_w_in: bool | None = None
    params: int | None = None
    params_total: int | None = None
    config_key: str | None = None
    budget_target: float | None = None
    # what became of it
    trained: bool = False
    status: str | None = None  # ok | diverged
    violation: str | None = None  # why it was not trained (budget, shape, target reached)
    pruned_reason: str | None = None  # early stopping
    duplicate_of: int | None = None  # another worker was training it
    reused_from: int | None = None  # a finished trial with the same configuration
    seeds: list[int] | None = None
    lrs: list[float] | None = None  # search.lrs: the rates the trial trained (lr: the best)
    replicas: list[dict] | None = None  # each seed x lr's result, when there are several
    # results, the mean over seeds (trained trials)
    eval_psnr: float | None = None
    test_psnr: float | None = None
    eval_ssim: float | None = None
    test_ssim: float | None = None
    eval_psnr_image: float | None = None
    test_psnr_image: float | None = None
    eval_psnr_std: float | None = None
    test_psnr_std: float | None = None
    eval_ssim_std: float | None = None
    test_ssim_std: float | None = None
    eval_psnr_image_std: float | None = None
    test_psnr_image_std: float | None = None
    eval_psnr_seeds: list[float] | None = None
    test_psnr_seeds: list[float] | None = None
    eval_ssim_seeds: list[float] | None = None
    test_ssim_seeds: list[float] | None = None
    eval_psnr_image_seeds: list[float] | None = None
    test_psnr_image_seeds: list[float] | None = None
    seconds: float | None = None
    device: str | None = None
    best_epoch: int | None = None
    epoch_psnr: dict[str, float] | None = None  # eval PSNR per evaluated epoch (first seed)
    weights: str | None = None  # the file its weights were saved to (search.save)
    warning: str | None = None  # an optional output (log, weights) that could not be written

    @property
    def arch(self) -> str:
        return f"{self.d_z}x{self.d_h}x{self.depth}"

    def metric(self, name: str) -> float:
        """A recorded result by name (one of RECORDED)."""
        if name not in RECORDED:
            raise KeyError(name)
        value = getattr(self, name)
        if value is None:
            raise RecordError(f"the trial has no {name}")
        return value


FIELDS = tuple(f.name for f in dataclasses.fields(TrialRecord))
# A trained trial must carry these (the rest may be absent, e.g. on a reused result).
REQUIRED_WHEN_TRAINED = (
    "family",
    "d_z",
    "d_h",
    "depth",
    "lr",
    "params",
    *RECORDED,
    "seconds",
)


def write(trial: Any, **values: Any) -> None:
    """Store these fields on the trial (None values are skipped); unknown names are refused."""
    for key, value in values.items():
        if key not in FIELDS:
            raise TypeError(f"TrialRecord has no field {key!r}")
        if value is not None:
            trial.set_user_attr(key, value)


def read(trial: Any, *, trained: bool | None = None) -> TrialRecord:
    """The record of a stored trial. With `trained=True` (or when the trial says it trained and
    finished) a missing result field raises RecordError."""
    attrs = trial.user_attrs
    record = TrialRecord(**{k: v for k, v in attrs.items() if k in FIELDS})
    state = getattr(getattr(trial, "state", None), "name", "COMPLETE")
    if trained or (trained is None and record.trained and state == "COMPLETE"):
        missing = [k for k in REQUIRED_WHEN_TRAINED if attrs.get(k) is None]
        if missing:
            raise RecordError(
                f"trial {getattr(trial, 'number', '?')} says it trained but has no "
                f"{', '.join(missing)}: it was not written by this version of hgsearch"
            )
    return record
