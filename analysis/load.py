"""Stored studies -> one tidy DataFrame, one row per trial. The only module that knows Optuna's
column names and our user attributes.
"""

from __future__ import annotations

from collections.abc import Iterable

import pandas as pd

INT_ATTRS = ("d_z", "d_h", "depth", "params", "params_total")
FLOAT_ATTRS = (
    "budget_target",
    "lr",
    "eval_psnr",
    "test_psnr",
    "eval_ssim",
    "test_ssim",
    "eval_psnr_image",
    "test_psnr_image",
    "eval_psnr_std",
    "test_psnr_std",
    "seconds",
)
TEXT_ATTRS = ("family", "task", "dataset", "fix_w_in", "device", "violation", "reused_from")
COLUMNS = [
    "study",
    "number",
    "state",
    "trained",
    *TEXT_ATTRS,
    *INT_ATTRS,
    *FLOAT_ATTRS,
    "n_seeds",
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
                    **{k: a.get(k) for k in (*TEXT_ATTRS, *INT_ATTRS, *FLOAT_ATTRS)},
                    "study": study.study_name,
                    "number": t.number,
                    "state": t.state.name.lower(),
                    "trained": bool(a.get("trained")) and t.state.name == "COMPLETE",
                    "n_seeds": len(a.get("seeds", [])) or None,
                    "datetime_complete": t.datetime_complete,
                }
            )
    frame = pd.DataFrame(rows, columns=COLUMNS)
    for col in INT_ATTRS:
        frame[col] = pd.to_numeric(frame[col], errors="coerce").astype("Int64")
    for col in FLOAT_ATTRS:
        frame[col] = pd.to_numeric(frame[col], errors="coerce").astype(float)
    frame["trained"] = frame["trained"].astype(bool)
    return frame
