"""The research question in numbers: hourglass vs conventional on their frontiers.

Only measured points are used, no interpolation: a frontier is read as a step function, "the
best metric reached with at most P parameters".
"""

from __future__ import annotations

import numpy as np
import pandas as pd


def _curve(frontier: pd.DataFrame, family: str) -> tuple[np.ndarray, np.ndarray]:
    size = "size" if "size" in frontier else "params"
    f = frontier[frontier["family"] == family].sort_values(size)
    return f[size].to_numpy(dtype=float), f["mean"].to_numpy(dtype=float)


def _best_within(params: np.ndarray, metric: np.ndarray, budget: float) -> float:
    fit = metric[params <= budget]
    return float(fit.max()) if len(fit) else float("nan")


def gain_at_matched_params(frontier: pd.DataFrame) -> pd.DataFrame:
    """At each frontier size P where both families have a model of at most P parameters:
    the best hourglass and best conventional metric within P, and their difference."""
    hp, hm = _curve(frontier, "hourglass")
    cp, cm = _curve(frontier, "conventional")
    if len(hp) == 0 or len(cp) == 0:
        return pd.DataFrame(columns=["params", "hourglass", "conventional", "gain"])
    sizes = np.unique(np.concatenate([hp, cp]))
    sizes = sizes[sizes >= max(hp.min(), cp.min())]
    h = np.array([_best_within(hp, hm, p) for p in sizes])
    c = np.array([_best_within(cp, cm, p) for p in sizes])
    return pd.DataFrame(
        {"params": sizes.astype(int), "hourglass": h, "conventional": c, "gain": h - c}
    )


def params_at_matched_metric(frontier: pd.DataFrame) -> pd.DataFrame:
    """For each conventional frontier point: the smallest measured hourglass frontier model
    that reaches at least the same metric (NaN where none does).

    The paper's style: "22.31 dB with 66M parameters where the conventional model needs 75M".
    """
    hp, hm = _curve(frontier, "hourglass")
    cp, cm = _curve(frontier, "conventional")
    rows = []
    for p_conv, m in zip(cp, cm, strict=True):
        reach = hp[hm >= m]
        p_h = float(reach.min()) if len(reach) else float("nan")
        rows.append(
            {
                "metric": m,
                "conventional_params": int(p_conv),
                "hourglass_params": p_h,
                "hourglass_metric": float(hm[hp == p_h][0]) if len(reach) else np.nan,
                "ratio": p_h / p_conv,
            }
        )
    return pd.DataFrame(
        rows,
        columns=["metric", "conventional_params", "hourglass_params", "hourglass_metric", "ratio"],
    )


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
            rows.append(
                {
                    "family": family,
                    "budget": budget,
                    **{k: best[k] for k in ("d_z", "d_h", "depth", "lr", "params", "mean", "std")},
                }
            )
    return pd.DataFrame(rows)
