"""The Optuna objective: sample a configuration, check it, train it (per seed), record, return.

Returns (metric averaged over seeds, trainable parameters). A configuration outside the budget
or breaking its family's shape rule is recorded and pruned, never trained. A configuration the
study has already trained is not trained again: its stored result is reused. Early stopping is
our own rule, because Optuna's pruners do not work in multi-objective studies.
"""

from __future__ import annotations

import json
import math
import statistics
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import TrialState

from .interrupt import deferred, interruptible
from .space import Budget, Candidate, FamilySpace, Infeasible, sample
from .tasks import TaskData
from .train import TrainResult, TrainSettings, train

METRICS = ("eval_psnr", "test_psnr", "eval_ssim", "test_ssim")  # choices of search/report.metric
# Recorded on every trained trial; `*_psnr_image` (mean of per-image PSNRs) only for the record.
RECORDED = (*METRICS, "eval_psnr_image", "test_psnr_image")
TARGET_REACHED = "the study reached its target"  # a pruned trial's violation: nothing tried


class Diverged(Exception):
    """Training produced NaN/inf: the trial fails, the sweep goes on."""


@dataclass(frozen=True)
class EarlyStop:
    enabled: bool = False
    epoch: int = 2
    margin_db: float = 1.0
    min_trials: int = 3


def early_stop_reason(
    rule: EarlyStop, epoch: int, psnr: float, params: int, finished: list[tuple[int, dict]]
) -> str | None:
    """Why a run should stop now, or None.

    It stops when, at the checkpoint epoch, its eval PSNR is more than margin_db below the best
    that at least min_trials finished trials of equal or smaller size reached at that epoch.
    """
    if not rule.enabled or epoch != rule.epoch:
        return None
    peers = [hist[str(epoch)] for p, hist in finished if p <= params and str(epoch) in hist]
    if len(peers) < rule.min_trials:
        return None
    best = max(peers)
    if psnr < best - rule.margin_db:
        return (
            f"eval PSNR {psnr:.2f} dB at epoch {epoch} is more than {rule.margin_db} dB below "
            f"{best:.2f} dB reached by a finished trial of at most {params} parameters"
        )
    return None


def set_constraint(trial: Any, value: float) -> None:
    """Optuna 5 stores constraints on the trial; 4.x reads them from a user attr."""
    if hasattr(trial, "set_constraint"):
        # A retried trial inherits the constraint of the one it repeats (same configuration,
        # same value), and Optuna warns that it keeps the old one: nothing to warn about.
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="The constraint value is ignored")
            trial.set_constraint("budget", value)
    else:  # pragma: no cover - Optuna 4.x
        trial.set_user_attr("constraint", [value])


def trained_trials(study: optuna.Study) -> list[optuna.trial.FrozenTrial]:
    """Finished trials that trained a model (not reused, not pruned)."""
    return [
        t
        for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
        if t.user_attrs.get("trained")
    ]


def training_trials(study: optuna.Study) -> list[optuna.trial.FrozenTrial]:
    """RUNNING trials that have started training (each records its seeds first).

    A trial still choosing its configuration, or about to reuse a stored result or step aside
    for a twin, is not counted: counting it would let workers stop one trial short.
    """
    return [
        t
        for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
        if "seeds" in t.user_attrs
    ]


@dataclass
class Objective:
    space: FamilySpace
    budget: Budget
    data: TaskData
    train_settings: TrainSettings
    fix_w_in: bool = False
    replicas: int = 1
    metric: str = "eval_psnr"
    early_stop: EarlyStop = field(default_factory=EarlyStop)
    device: str = "cpu"
    train_fn: Callable[..., TrainResult] = train
    log_dir: Path | None = None
    meta: dict[str, Any] = field(default_factory=dict)  # recorded on every trial
    on_result: Callable[[Any, dict[str, Any]], None] | None = None
    target: int | None = None  # the study's total of trained trials (shared by all workers)

    def __call__(self, trial: Any) -> tuple[float, float]:
        for key, value in self.meta.items():
            trial.set_user_attr(key, value)
        # Another worker may have filled the study since this one last looked.
        if self._target_reached(trial):
            trial.set_user_attr("violation", TARGET_REACHED)
            raise optuna.TrialPruned(TARGET_REACHED)
        try:
            cand = sample(
                trial, self.space, self.budget, self.data.d_x, self.data.d_y, self.fix_w_in
            )
        except Infeasible as exc:
            trial.set_user_attr("violation", str(exc))
            set_constraint(trial, 1.0)
            raise optuna.TrialPruned(str(exc)) from None
        set_constraint(trial, 0.0)
        self._record_arch(trial, cand)
        twin = self._running_twin(trial, cand)
        if twin is not None:  # another worker is training this configuration right now
            trial.set_user_attr("duplicate_of", twin.number)
            raise optuna.TrialPruned(f"trial {twin.number} is training this configuration")
        previous = self._already_trained(trial, cand)
        if previous is not None and self._target_reached(trial):
            # Reusing a result adds nothing once the target is met or about to be (e.g. an
            # exhausted grid whose last points are training in other workers).
            trial.set_user_attr("violation", TARGET_REACHED)
            raise optuna.TrialPruned(TARGET_REACHED)
        if previous is not None:
            trial.set_user_attr("trained", False)
            trial.set_user_attr("reused_from", previous.number)
            for key in (*RECORDED, "seconds"):
                if key in previous.user_attrs:
                    trial.set_user_attr(key, previous.user_attrs[key])
            return tuple(previous.values)  # type: ignore[return-value]
        return self._train(trial, cand)

    def _record_arch(self, trial: Any, cand: Candidate) -> None:
        s = cand.spec
        for key, value in (
            ("family", s.family),
            ("d_z", s.d_z),
            ("d_h", s.d_h),
            ("depth", s.depth),
            ("lr", cand.lr),
            ("fix_w_in", s.fix_w_in),
            ("params", cand.params),
            ("params_total", cand.params_total),
            ("config_key", cand.key),
            ("budget_target", cand.target),
        ):
            trial.set_user_attr(key, value)

    def _already_trained(self, trial: Any, cand: Candidate) -> optuna.trial.FrozenTrial | None:
        study = getattr(trial, "study", None)
        if study is None:
            return None
        for t in trained_trials(study):
            if t.user_attrs.get("config_key") == cand.key:
                return t
        return None

    def _target_reached(self, trial: Any) -> bool:
        """Trained trials, plus those training now in other workers (they will finish), meet
        the study's target. A retried trial inherits its seeds: it must not count itself."""
        study = getattr(trial, "study", None)
        if not self.target or study is None:
            return False
        others = [t for t in training_trials(study) if t.number != trial.number]
        return len(trained_trials(study)) + len(others) >= self.target

    def _running_twin(self, trial: Any, cand: Candidate) -> optuna.trial.FrozenTrial | None:
        """An earlier RUNNING trial with the same configuration (shared storages only).

        Each trial records its key before this check, so of two workers that sampled the same
        configuration at once, the later-numbered one sees the earlier one and steps aside.
        """
        study = getattr(trial, "study", None)
        if study is None:
            return None
        for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
            if t.number < trial.number and t.user_attrs.get("config_key") == cand.key:
                return t
        return None

    def _finished_histories(self, trial: Any) -> list[tuple[int, dict]]:
        study = getattr(trial, "study", None)
        if study is None or not self.early_stop.enabled:
            return []
        return [
            (t.user_attrs["params"], t.user_attrs.get("epoch_psnr", {}))
            for t in trained_trials(study)
        ]

    def _train(self, trial: Any, cand: Candidate) -> tuple[float, float]:
        finished = self._finished_histories(trial)
        epoch_psnr: dict[str, float] = {}

        def report(epoch: int, metrics: dict[str, float]) -> None:
            epoch_psnr[str(epoch)] = round(metrics["psnr"], 4)
            reason = early_stop_reason(
                self.early_stop, epoch, metrics["psnr"], cand.params, finished
            )
            if reason:
                with deferred():  # storage writes inside the training run
                    trial.set_user_attr("epoch_psnr", epoch_psnr)
                    trial.set_user_attr("pruned_reason", reason)
                    trial.set_user_attr("trained", False)
                raise optuna.TrialPruned(reason)

        results: list[TrainResult] = []
        seeds = [self.train_settings.seed + r for r in range(self.replicas)]
        trial.set_user_attr("seeds", seeds)
        for i, seed in enumerate(seeds):
            settings = replace(self.train_settings, lr=cand.lr, seed=seed)
            with interruptible():  # Ctrl-C stops training at once (search/interrupt.py)
                result = self.train_fn(
                    cand.spec, self.data, settings, self.device, report if i == 0 else None
                )
            results.append(result)
            if result.status != "ok" or not math.isfinite(getattr(result, self.metric)):
                trial.set_user_attr("status", "diverged")
                trial.set_user_attr("epoch_psnr", epoch_psnr)
                self._log(trial, cand, results)
                raise Diverged(f"training diverged (seed {seed}, lr {cand.lr:g})")
        record = self._summary(results)
        record["epoch_psnr"] = epoch_psnr
        for key, value in record.items():
            trial.set_user_attr(key, value)
        trial.set_user_attr("status", "ok")
        trial.set_user_attr("trained", True)
        self._log(trial, cand, results)
        if self.on_result is not None:
            self.on_result(trial, record)
        return record[self.metric], float(cand.params)

    @staticmethod
    def _summary(results: list[TrainResult]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        nan = float("nan")
        for key in RECORDED:
            values = [getattr(r, key) for r in results]
            out[key] = statistics.fmean(values)
            finite = all(math.isfinite(v) for v in values)
            out[f"{key}_std"] = (
                statistics.stdev(values) if len(values) > 1 and finite else 0.0 if finite else nan
            )
            out[f"{key}_seeds"] = values
        out["seconds"] = sum(r.seconds for r in results)
        out["device"] = results[0].device
        out["best_epoch"] = results[0].best_epoch
        return out

    def _log(self, trial: Any, cand: Candidate, results: list[TrainResult]) -> None:
        if self.log_dir is None:
            return
        self.log_dir.mkdir(parents=True, exist_ok=True)
        path = self.log_dir / f"trial_{trial.number:05d}.jsonl"
        with path.open("w") as fh:
            fh.write(
                json.dumps({"trial": trial.number, "config": cand.key, "params": cand.params})
                + "\n"
            )
            for seed, r in zip(trial.user_attrs.get("seeds", []), results, strict=False):
                for h in r.history:
                    fh.write(json.dumps({"seed": seed, **h}) + "\n")
                fh.write(
                    json.dumps(
                        {
                            "seed": seed,
                            "status": r.status,
                            "eval_psnr": r.eval_psnr,
                            "test_psnr": r.test_psnr,
                            "seconds": r.seconds,
                        }
                    )
                    + "\n"
                )
