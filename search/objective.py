"""The Optuna objective: sample a configuration, check it, train it (per seed), record, return.

Returns (metric averaged over seeds, trainable parameters). A configuration outside the budget
or breaking its family's shape rule is recorded and pruned, never trained. A configuration the
study has already trained is not trained again: its stored result is reused. Early stopping is
our own rule, because Optuna's pruners do not work in multi-objective studies.
"""

from __future__ import annotations

import json
import logging
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import TrialState

from . import record
from .goal import Goal, trained_trials
from .internals import report_intermediate
from .interrupt import deferred, interruptible
from .memory import too_big
from .pack import Replica, train_pack
from .record import RECORDED
from .replicas import best_lr, records
from .replicas import run as run_replicas
from .replicas import summary as replica_summary
from .settings import EarlyStop, TrainSettings
from .space import Budget, Candidate, FamilySpace, Infeasible, sample
from .tasks import TaskData
from .train import TrainResult, train
from .weights import save_model

log = logging.getLogger("hgsearch")

TARGET_REACHED = "the study reached its target"  # a pruned trial's violation: nothing tried


class Diverged(Exception):
    """Training produced NaN/inf: the trial fails, the sweep goes on."""


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
    meta: dict[str, Any] = field(default_factory=dict)  # TrialRecord fields for every trial
    goal: Goal | None = None  # the study's target, shared by all workers
    on_epoch: Callable[[int, dict[str, float]], None] | None = None  # e.g. a progress bar
    weights_dir: Path | None = None
    save: str = "best"  # best | all | none (search.save)
    lrs: tuple[float, ...] | None = None  # every trial trains these (search.lrs)
    pack_fn: Callable[..., list[TrainResult]] = train_pack

    def __call__(self, trial: Any) -> tuple[float, float]:
        record.write(trial, **self.meta)
        # Another worker may have filled the study since this one last looked.
        if self._target_met(trial):
            record.write(trial, violation=TARGET_REACHED)
            raise optuna.TrialPruned(TARGET_REACHED)
        try:
            cand = sample(
                trial, self.space, self.budget, self.data.d_x, self.data.d_y, self.fix_w_in
            )
        except Infeasible as exc:
            record.write(trial, violation=str(exc))
            set_constraint(trial, 1.0)
            raise optuna.TrialPruned(str(exc)) from None
        copies = self.replicas * len(self.lrs or (None,))
        if why := too_big(cand.spec, self.train_settings.batch_size, self.device,
                          min(copies, self.train_settings.pack_max or copies)):  # fmt: skip
            record.write(trial, violation=why)
            set_constraint(trial, 1.0)
            raise optuna.TrialPruned(why)
        set_constraint(trial, 0.0)
        self._record_arch(trial, cand)
        twin = self._running_twin(trial, cand)
        if twin is not None:  # another worker is training this configuration right now
            record.write(trial, duplicate_of=twin.number)
            raise optuna.TrialPruned(f"trial {twin.number} is training this configuration")
        previous = self._already_trained(trial, cand)
        if previous is not None and self._target_met(trial):
            # Reusing a result adds nothing once the target is met or about to be (e.g. an
            # exhausted grid whose last points are training in other workers).
            record.write(trial, violation=TARGET_REACHED)
            raise optuna.TrialPruned(TARGET_REACHED)
        if previous is not None:
            old = record.read(previous)
            record.write(
                trial,
                trained=False,
                reused_from=previous.number,
                seconds=old.seconds,
                **{key: getattr(old, key) for key in RECORDED},
            )
            return tuple(previous.values)  # type: ignore[return-value]
        return self._train(trial, cand)

    def _record_arch(self, trial: Any, cand: Candidate) -> None:
        s = cand.spec
        record.write(
            trial,
            family=s.family,
            d_z=s.d_z,
            d_h=s.d_h,
            depth=s.depth,
            lr=cand.lr,
            fix_w_in=s.fix_w_in,
            params=cand.params,
            params_total=cand.params_total,
            config_key=cand.key,
            budget_target=cand.target,
        )

    def _already_trained(self, trial: Any, cand: Candidate) -> optuna.trial.FrozenTrial | None:
        study = getattr(trial, "study", None)
        if study is None:
            return None
        for t in trained_trials(study):
            if record.read(t).config_key == cand.key:
                return t
        return None

    def _target_met(self, trial: Any) -> bool:
        study = getattr(trial, "study", None)
        if self.goal is None or study is None:
            return False
        return self.goal.target_met(study, exclude=trial.number)

    def _running_twin(self, trial: Any, cand: Candidate) -> optuna.trial.FrozenTrial | None:
        """An earlier RUNNING trial with the same configuration (shared storages only).

        Each trial records its key before this check, so of two workers that sampled the same
        configuration at once, the later-numbered one sees the earlier one and steps aside.
        """
        study = getattr(trial, "study", None)
        if study is None:
            return None
        for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
            if t.number < trial.number and record.read(t).config_key == cand.key:
                return t
        return None

    def _finished_histories(self, trial: Any) -> list[tuple[int, dict]]:
        study = getattr(trial, "study", None)
        if study is None or not self.early_stop.enabled:
            return []
        out = []
        for t in trained_trials(study):
            r = record.read(t)
            out.append((r.params, r.epoch_psnr or {}))
        return out

    def _train(self, trial: Any, cand: Candidate) -> tuple[float, float]:
        finished = self._finished_histories(trial)
        epoch_psnr: dict[str, float] = {}

        def report(epoch: int, metrics: dict[str, float]) -> None:
            epoch_psnr[str(epoch)] = round(metrics["psnr"], 4)
            if self.on_epoch is not None:
                self.on_epoch(epoch, metrics)
            with deferred():  # a storage write inside the training run
                report_intermediate(trial, epoch, metrics["psnr"])
            reason = early_stop_reason(
                self.early_stop, epoch, metrics["psnr"], cand.params, finished
            )
            if reason:
                with deferred():  # storage writes inside the training run
                    record.write(trial, epoch_psnr=epoch_psnr, pruned_reason=reason, trained=False)
                raise optuna.TrialPruned(reason)

        seeds = [self.train_settings.seed + r for r in range(self.replicas)]
        lrs = self.lrs or (cand.lr,)
        reps = [Replica(seed, lr) for lr in lrs for seed in seeds]
        record.write(trial, seeds=seeds, lrs=list(self.lrs) if self.lrs else None)
        # Claim, then look: two workers that both saw one slot left both claimed it before
        # looking again, so at least one of them sees the other and steps aside.
        if self._target_met(trial):
            record.write(trial, violation=TARGET_REACHED)
            raise optuna.TrialPruned(TARGET_REACHED)
        with interruptible():  # Ctrl-C stops training at once (search/interrupt.py)
            results = run_replicas(
                cand.spec, self.data, self.train_settings, reps, self.device, report,
                self.train_fn, self.pack_fn,
            )  # fmt: skip
        stored = records(reps, results) if len(reps) > 1 else None
        chosen = best_lr(reps, results, self.metric)
        if chosen is None or (self.lrs is None and len(chosen[1]) < len(seeds)):
            record.write(trial, status="diverged", epoch_psnr=epoch_psnr, replicas=stored)
            self._log(trial, cand, reps, results)
            raise Diverged(f"training diverged ({', '.join(f'lr {lr:g}' for lr in lrs)})")
        lr, best = chosen
        summary = {**replica_summary(best), "seconds": sum(r.seconds for r in results)}
        record.write(trial, lr=lr, replicas=stored)
        cand = replace(cand, lr=lr)
        record.write(trial, **summary, epoch_psnr=epoch_psnr, status="ok", trained=True)
        # After the record: a log or weights file is optional, a failure to write one a warning.
        try:
            self._log(trial, cand, reps, results)
            saved = self._keep(trial, cand, summary[self.metric], best[0])
            record.write(trial, weights=saved and str(saved))
        except OSError as exc:
            message = f"could not write the trial's files: {exc.strerror or exc} ({exc.filename})"
            log.warning("trial %d: %s", trial.number, message)
            record.write(trial, warning=message)
        return summary[self.metric], float(cand.params)

    def _keep(self, trial: Any, cand: Candidate, value: float, result: TrainResult):
        """Save the weights (of the first seed) as `save` says; returns the file or None."""
        if self.weights_dir is None or self.save == "none" or result.state is None:
            return None
        meta = {"trial": trial.number, "lr": cand.lr, "seed": self.train_settings.seed,
                **{k: getattr(result, k) for k in RECORDED}}  # fmt: skip
        if self.save == "all":
            return save_model(self.weights_dir / f"trial_{trial.number:05d}.pt", cand.spec,
                              result.state, meta)  # fmt: skip
        # best: the best trained model of its size (budget) so far, this one included
        study = getattr(trial, "study", None)
        same = [
            t.values[0]
            for t in (trained_trials(study) if study is not None else [])
            if record.read(t).budget_target == cand.target
        ]
        if same and max(same) > value:
            return None
        name = "best.pt" if cand.target is None else f"best-{cand.target:.0f}.pt"
        return save_model(self.weights_dir / name, cand.spec, result.state, meta)

    def _log(self, trial: Any, cand: Candidate, reps: list[Replica], results: list[TrainResult]):
        """One JSON line per evaluated epoch and per replica's result, under log_dir."""
        if self.log_dir is None:
            return
        lines = [{"trial": trial.number, "config": cand.key, "params": cand.params}]
        for rep, r in zip(reps, results, strict=False):
            lines += [{"seed": rep.seed, "lr": rep.lr, **h} for h in r.history]
            lines.append(
                {
                    "seed": rep.seed,
                    "lr": rep.lr,
                    "status": r.status,
                    "eval_psnr": r.eval_psnr,
                    "test_psnr": r.test_psnr,
                    "seconds": r.seconds,
                }
            )
        self.log_dir.mkdir(parents=True, exist_ok=True)
        path = self.log_dir / f"trial_{trial.number:05d}.jsonl"
        path.write_text("".join(json.dumps(line) + "\n" for line in lines))
