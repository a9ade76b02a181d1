"""Stored studies -> one tidy DataFrame, one row per trial. The only module that knows Optuna's
column names and our user attributes.
"""

from __future__ import annotations

from collections.abc import Iterable

import pandas as pd

COLUMNS = [
    "study",
    "number",
    "state",
    "trained",
    "family",
    "task",
    "dataset",
    "d_z",
    "d_h",
    "depth",
    "lr",
    "fix_w_in",
    "params",
    "params_total",
    "budget_target",
    "eval_psnr",
    "test_psnr",
    "eval_ssim",
    "test_ssim",
    "eval_psnr_std",
    "test_psnr_std",
    "n_seeds",
    "seconds",
    "device",
    "violation",
    "reused_from",
    "datetime_complete",
]


def trials_frame(studies: Iterable) -> pd.DataFrame:
    """Every trial of every study (also of a study still being written).

    `trained` marks trials that trained a model; the frontier uses only those (pruned,
    failed, running and reused trials keep their rows for the record).
    """
    rows = []
    for study in studies:
        for t in study.get_trials(deepcopy=False):
            a = t.user_attrs
            rows.append(
                {
                    "study": study.study_name,
                    "number": t.number,
                    "state": t.state.name.lower(),
                    "trained": bool(a.get("trained")) and t.state.name == "COMPLETE",
                    **{k: a.get(k) for k in COLUMNS if k in a},
                    "n_seeds": len(a.get("seeds", [])) or None,
                    "datetime_complete": t.datetime_complete,
                }
            )
    frame = pd.DataFrame(rows, columns=COLUMNS)
    for col in ("d_z", "d_h", "depth", "params", "params_total"):
        frame[col] = pd.to_numeric(frame[col], errors="coerce").astype("Int64")
    for col in (
        "budget_target",
        "lr",
        "eval_psnr",
        "test_psnr",
        "eval_ssim",
        "test_ssim",
        "eval_psnr_std",
        "test_psnr_std",
        "seconds",
    ):
        frame[col] = pd.to_numeric(frame[col], errors="coerce").astype(float)
    frame["trained"] = frame["trained"].astype(bool)
    return frame
