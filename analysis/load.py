"""Stored studies -> one tidy DataFrame, one row per trial: the one module that turns Optuna
trials into rows. Columns are the trial record's fields (search/record.py), so a field renamed
there is renamed here, never a silent NaN column.
"""

from __future__ import annotations

import dataclasses
import typing
from collections.abc import Iterable

import pandas as pd

from ..search import record

HINTS = typing.get_type_hints(record.TrialRecord)
# Scalar fields become columns; lists and dicts (per-seed values, per-epoch PSNR) stay stored.
SCALARS = [
    f.name
    for f in dataclasses.fields(record.TrialRecord)
    if typing.get_origin(HINTS[f.name]) is not list and "dict" not in str(HINTS[f.name])
]
INTS = [n for n in SCALARS if "int" in str(HINTS[n]) and n not in ("worker", "pid")]
FLOATS = [n for n in SCALARS if "float" in str(HINTS[n])]
COLUMNS = ["study", "number", "state", *SCALARS, "n_seeds", "datetime_complete"]


def trials_frame(studies: Iterable) -> pd.DataFrame:
    """Every trial of every study (also of a study still being written).

    `trained` marks finished trials that trained a model; the frontier uses only those
    (pruned, failed, running and reused trials keep their rows for the record).
    """
    rows = []
    for study in studies:
        for t in study.get_trials(deepcopy=False):
            r = record.read(t)
            row = {k: getattr(r, k) for k in SCALARS}
            row.update(
                study=study.study_name,
                number=t.number,
                state=t.state.name.lower(),
                trained=r.trained and t.state.name == "COMPLETE",
                n_seeds=len(r.seeds) if r.seeds else None,
                datetime_complete=t.datetime_complete,
            )
            rows.append(row)
    frame = pd.DataFrame(rows, columns=COLUMNS)
    for col in INTS:
        frame[col] = pd.to_numeric(frame[col], errors="coerce").astype("Int64")
    for col in FLOATS:
        frame[col] = pd.to_numeric(frame[col], errors="coerce").astype(float)
    frame["trained"] = frame["trained"].astype(bool)
    return frame


def runs_frame(studies: Iterable, trials: pd.DataFrame | None = None) -> pd.DataFrame:
    """One row per trained replica (seed x learning rate): what the paper's frontier
    procedure averages. A trial that trained several (search.lrs, packs) stores each; one that
    did not is its own row (its metrics the mean over its seeds, `n_seeds` of them)."""
    trials = trials_frame(studies) if trials is None else trials
    studies = {s.study_name: s for s in studies}
    rows = []
    for _, row in trials[trials["trained"]].iterrows():
        trial = studies[row["study"]].get_trials(deepcopy=False)[row["number"]]
        replicas = record.read(trial).replicas
        if not replicas:
            rows.append({**row.to_dict(), "seed": None})
            continue
        for rep in replicas:
            if rep.get("status") != "ok":
                continue
            metrics = {k: rep.get(k) for k in record.RECORDED}
            stds = {f"{k}_std": float("nan") for k in record.RECORDED if f"{k}_std" in row}
            rows.append({**row.to_dict(), **metrics, **stds, "lr": rep["lr"],
                         "seed": rep["seed"], "n_seeds": 1})  # fmt: skip
    return pd.DataFrame(rows, columns=[*trials.columns, "seed"])
