"""The research question in numbers: a candidate family against a baseline on their frontiers.

Only measured points are used, no interpolation. One definition of "within a budget B" serves
every table, sentence and plot: a model's *size* is at most B, where the size is the budget a
model was built for in a budget-matched sweep (the exact counts of models built for one budget
differ by a few parameters) and its exact trainable count otherwise (analysis/frontier.py).
A frontier read this way is a step function: the best metric reached within B.
"""

from __future__ import annotations

import numpy as np
import pandas as pd


def within(points: pd.DataFrame, budget: float) -> pd.DataFrame:
    """The points whose size is within `budget` (the one definition)."""
    return points[points["size"] <= budget]


def _curve(frontier: pd.DataFrame, family: str) -> pd.DataFrame:
    return frontier[frontier["family"] == family].sort_values("size")


def best_within(points: pd.DataFrame, family: str, budget: float) -> pd.Series | None:
    """The best point of `family` within `budget` (by mean metric), or None."""
    fit = within(points[points["family"] == family], budget)
    return None if fit.empty else fit.loc[fit["mean"].idxmax()]


def gain_at_matched_size(frontier: pd.DataFrame, candidate: str, baseline: str) -> pd.DataFrame:
    """At each frontier size B where both families have a model within B: the best candidate
    and baseline metric within B, and the candidate's gain."""
    c, b = _curve(frontier, candidate), _curve(frontier, baseline)
    columns = ["size", candidate, baseline, "gain"]
    if c.empty or b.empty:
        return pd.DataFrame(columns=columns)
    sizes = np.unique(np.concatenate([c["size"], b["size"]]))
    sizes = sizes[sizes >= max(c["size"].min(), b["size"].min())]
    rows = []
    for size in sizes:
        mc, mb = best_within(c, candidate, size)["mean"], best_within(b, baseline, size)["mean"]
        rows.append({"size": size, candidate: mc, baseline: mb, "gain": mc - mb})
    return pd.DataFrame(rows, columns=columns)


def size_to_reach(frontier: pd.DataFrame, leader: str, other: str) -> pd.DataFrame:
    """For each frontier point of `leader`: the smallest frontier size at which `other` reaches
    at least the same metric (NaN where it never does), and the ratio of the sizes.

    The paper's style: "22.31 dB with 66M parameters where the conventional model needs 75M".
    """
    a, b = _curve(frontier, leader), _curve(frontier, other)
    rows = []
    for _, p in a.iterrows():
        reach = b[b["mean"] >= p["mean"]]
        first = reach.iloc[0] if len(reach) else None
        rows.append(
            {
                "metric": p["mean"],
                "size": p["size"],
                "other_size": np.nan if first is None else first["size"],
                "other_metric": np.nan if first is None else first["mean"],
                "ratio": np.nan if first is None else first["size"] / p["size"],
            }
        )
    return pd.DataFrame(rows, columns=["metric", "size", "other_size", "other_metric", "ratio"])


def best_under_budgets(configs: pd.DataFrame, budgets: list[float]) -> pd.DataFrame:
    """Per family and budget, the configuration with the best mean metric within the budget."""
    rows = []
    for family, group in configs.groupby("family", sort=True):
        for budget in budgets:
            best = best_within(group, family, budget)
            row = {"family": family, "budget": budget}
            if best is not None:
                keys = ("d_z", "d_h", "depth", "lr", "params", "size", "mean", "std", "n")
                row.update({k: best[k] for k in keys if k in best})
            rows.append(row)
    return pd.DataFrame(rows)
