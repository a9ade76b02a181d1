"""The research question in numbers: hourglass vs conventional on their frontiers.

Frontiers are interpolated linearly in log(parameters), only inside the range both cover.
"""

from __future__ import annotations

import numpy as np
import pandas as pd


def _curve(frontier: pd.DataFrame, family: str) -> tuple[np.ndarray, np.ndarray]:
    f = frontier[frontier["family"] == family].sort_values("params")
    return f["params"].to_numpy(dtype=float), f["mean"].to_numpy(dtype=float)


def gain_at_matched_params(frontier: pd.DataFrame) -> pd.DataFrame:
    """Hourglass minus conventional metric at each conventional frontier size both cover."""
    hp, hm = _curve(frontier, "hourglass")
    cp, cm = _curve(frontier, "conventional")
    if len(hp) == 0 or len(cp) == 0:
        return pd.DataFrame(columns=["params", "hourglass", "conventional", "gain"])
    lo, hi = max(hp.min(), cp.min()), min(hp.max(), cp.max())
    sizes = np.unique(np.concatenate([cp, hp]))
    sizes = sizes[(sizes >= lo) & (sizes <= hi)]
    h = np.interp(np.log(sizes), np.log(hp), hm) if len(hp) > 1 else np.full(len(sizes), hm[0])
    c = np.interp(np.log(sizes), np.log(cp), cm) if len(cp) > 1 else np.full(len(sizes), cm[0])
    return pd.DataFrame({"params": sizes.astype(int), "hourglass": h, "conventional": c,
                         "gain": h - c})


def params_at_matched_metric(frontier: pd.DataFrame) -> pd.DataFrame:
    """For each conventional frontier point: the hourglass size that reaches the same metric.

    The paper's style: "22.31 dB with 66M parameters where the conventional model needs 75M".
    The envelope is increasing, so metric -> params inverts by interpolation; NaN where the
    hourglass frontier never reaches that metric, or starts above it.
    """
    hp, hm = _curve(frontier, "hourglass")
    cp, cm = _curve(frontier, "conventional")
    rows = []
    for p_conv, m in zip(cp, cm, strict=True):
        if len(hp) and hm.min() <= m <= hm.max():
            p_h = float(np.exp(np.interp(m, hm, np.log(hp)))) if len(hp) > 1 else hp[0]
        else:
            p_h = float("nan")
        rows.append({"metric": m, "conventional_params": int(p_conv), "hourglass_params": p_h,
                     "ratio": p_h / p_conv})
    return pd.DataFrame(rows, columns=["metric", "conventional_params", "hourglass_params",
                                       "ratio"])


def best_under_budgets(configs: pd.DataFrame, budgets: list[float]) -> pd.DataFrame:
    """Per family and budget, the configuration with the best mean metric within the budget."""
    rows = []
    for family, group in configs.groupby("family", sort=True):
        for budget in budgets:
            fit = group[group["params"] <= budget]
            if fit.empty:
                rows.append({"family": family, "budget": budget})
                continue
            best = fit.loc[fit["mean"].idxmax()]
            rows.append({"family": family, "budget": budget, **{k: best[k] for k in (
                "d_z", "d_h", "depth", "lr", "params", "mean", "std")}})
    return pd.DataFrame(rows)
