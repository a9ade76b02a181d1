"""A trial's replicas: its seeds times its learning rates, trained as packs or one at a time,
and the paper's frontier point read from them (the best learning rate of the mean over seeds).
"""

from __future__ import annotations

import logging
import math
import statistics
from collections.abc import Callable, Iterator
from dataclasses import replace
from typing import Any

import torch

from ..models import MLPSpec
from .pack import Replica, pack_size
from .record import RECORDED
from .settings import TrainSettings
from .tasks import TaskData
from .train import Report, TrainResult

log = logging.getLogger("hgsearch")


def use_pack(settings: TrainSettings, count: int) -> bool:
    """`train.pack`: true always, false never, auto when there are several replicas."""
    return settings.pack == "true" or (settings.pack == "auto" and count > 1)


def _chunks(items: list[Replica], size: int) -> Iterator[list[Replica]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def run(
    spec: MLPSpec,
    data: TaskData,
    settings: TrainSettings,
    replicas: list[Replica],
    device: str,
    report: Report | None,
    train_fn: Callable[..., TrainResult],
    pack_fn: Callable[..., list[TrainResult]],
) -> list[TrainResult]:
    """Results in the order of `replicas`; `report` follows the first pack (or model).

    Packs are split into chunks that fit (`train.pack_max`, or on a GPU its free memory); a
    chunk that runs out of GPU memory is halved and tried again.
    """
    if not use_pack(settings, len(replicas)):
        return [
            train_fn(spec, data, replace(settings, lr=r.lr, seed=r.seed), device,
                     report if i == 0 else None)
            for i, r in enumerate(replicas)
        ]  # fmt: skip
    size = min(len(replicas), pack_size(spec, data, settings, device))
    results: list[TrainResult] = []
    pending = list(_chunks(replicas, size))
    while pending:
        chunk = pending.pop(0)
        try:
            results += pack_fn(spec, data, settings, chunk, device, report if not results else None)
        except torch.cuda.OutOfMemoryError:
            if len(chunk) == 1:
                raise
            torch.cuda.empty_cache()
            half = (len(chunk) + 1) // 2
            log.warning("a pack of %d replicas ran out of GPU memory: trying %d", len(chunk), half)
            pending = [chunk[:half], chunk[half:], *pending]
    return results


def records(replicas: list[Replica], results: list[TrainResult]) -> list[dict[str, Any]]:
    """Every replica's result, as stored on the trial."""
    return [
        {"seed": rep.seed, "lr": rep.lr, "status": r.status, "best_epoch": r.best_epoch,
         **{k: getattr(r, k) for k in RECORDED}}
        for rep, r in zip(replicas, results, strict=True)
    ]  # fmt: skip


def ok(result: TrainResult, metric: str) -> bool:
    return result.status == "ok" and math.isfinite(getattr(result, metric))


def best_lr(
    replicas: list[Replica], results: list[TrainResult], metric: str
) -> tuple[float, list[TrainResult]] | None:
    """The learning rate whose seeds all finished with the best mean `metric`, and their
    results; None when every rate had a seed diverge."""
    by_lr: dict[float, list[TrainResult]] = {}
    for rep, r in zip(replicas, results, strict=True):
        by_lr.setdefault(rep.lr, []).append(r)
    fine = {lr: rs for lr, rs in by_lr.items() if all(ok(r, metric) for r in rs)}
    if not fine:
        return None
    lr = max(fine, key=lambda k: statistics.fmean(getattr(r, metric) for r in fine[k]))
    return lr, fine[lr]


def summary(results: list[TrainResult]) -> dict[str, Any]:
    """Mean, std and per-seed values of every recorded metric over the seeds of one lr."""
    out: dict[str, Any] = {}
    for key in RECORDED:
        values = [getattr(r, key) for r in results]
        out[key] = statistics.fmean(values)
        finite = all(math.isfinite(v) for v in values)
        std = statistics.stdev(values) if len(values) > 1 and finite else 0.0
        out[f"{key}_std"] = std if finite else float("nan")
        out[f"{key}_seeds"] = values
    out["seconds"] = sum(r.seconds for r in results)
    out["device"] = results[0].device
    out["best_epoch"] = results[0].best_epoch
    return out
