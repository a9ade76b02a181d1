"""Pure DataFrame -> DataFrame frontier extraction; no I/O, no plotting.

The paper's procedure (per family): group runs by configuration (architecture and learning
rate), average over seeds; for each parameter count keep the best learning rate; sort by
parameters and keep the points that strictly improve on every smaller model (the monotone upper
envelope). In budget-matched sweeps the size is the budget target (the exact counts of models
built for one target differ by a few parameters), otherwise the exact parameter count.

Also the plain Pareto set: no other point has fewer-or-equal parameters and a higher-or-equal
metric with one of them strict.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

ARCH = ["family", "d_z", "d_h", "depth"]


def _usable(df: pd.DataFrame, metric: str) -> pd.DataFrame:
    ok = df[metric].notna() & np.isfinite(df[metric].astype(float)) & df["params"].notna()
    if "trained" in df:
        ok &= df["trained"].astype(bool)
    return df[ok]


def size_column(df: pd.DataFrame) -> str:
    """'budget_target' when every trained run has one (budget-matched sweep), else 'params'."""
    if "budget_target" in df:
        runs = df[df["trained"].astype(bool)] if "trained" in df else df
        if len(runs) and runs["budget_target"].notna().all():
            return "budget_target"
    return "params"


def with_size(df: pd.DataFrame) -> pd.DataFrame:
    """The trials with a `size` column: the one definition of a model's size (see
    analysis/compare.py)."""
    return df.assign(size=df[size_column(df)].astype(float))


def configurations(df: pd.DataFrame, metric: str) -> pd.DataFrame:
    """Mean and std of `metric` over the runs of each (architecture, lr, params); `size` is the
    parameter count, or the budget target in a budget-matched sweep; `n` counts seeds.

    A trial that trained several seeds stores their mean (and `<metric>_std`): one such trial
    per configuration keeps its own std.
    """
    runs = _usable(df, metric)
    keys = [*ARCH, "lr", "params"]
    if runs.empty:
        return pd.DataFrame(columns=[*keys, "size", "mean", "std", "n"])
    seeds = runs["n_seeds"].fillna(1) if "n_seeds" in runs else pd.Series(1, index=runs.index)
    own_std = runs[f"{metric}_std"] if f"{metric}_std" in runs else pd.Series(0.0, runs.index)
    runs = runs.assign(size=runs[size_column(df)].astype(float), _n=seeds, _std=own_std)
    g = runs.groupby([*keys, "size"], dropna=False, sort=False)
    out = g.agg(
        mean=(metric, "mean"), std=(metric, "std"), runs=(metric, "count"), n=("_n", "sum"),
        own=("_std", "first"),
    ).reset_index()  # fmt: skip
    out["std"] = out["std"].where(out["runs"] > 1, out["own"]).fillna(0.0)
    out["n"] = out["n"].astype(int)
    return out.drop(columns=["runs", "own"])


def envelope(points: pd.DataFrame, value: str = "mean", size: str = "size") -> pd.DataFrame:
    """Sort by size and keep each point that strictly beats every smaller model.

    At one size only its best point can qualify.
    """
    if points.empty:
        return points
    ordered = points.sort_values([size, value], ascending=[True, False], kind="mergesort")
    best_per_size = ordered.drop_duplicates(size, keep="first")
    running = best_per_size[value].cummax().shift(1, fill_value=-np.inf)
    return best_per_size[best_per_size[value] > running]


def paper_frontier(df: pd.DataFrame, metric: str) -> pd.DataFrame:
    """The paper's frontier per family: columns family, d_z, d_h, depth, lr, params, mean, std."""
    configs = configurations(df, metric)
    parts = []
    for _, group in configs.groupby("family", sort=True):
        parts.append(envelope(group))
    if not parts:
        return configs.iloc[0:0]
    return pd.concat(parts, ignore_index=True)


def pareto_set(df: pd.DataFrame, metric: str) -> pd.DataFrame:
    """Non-dominated runs per family (maximize metric, minimize params), without averaging."""
    runs = _usable(df, metric)
    keep = []
    for _, group in runs.groupby("family", sort=True):
        p = group["params"].to_numpy(dtype=float)
        m = group[metric].to_numpy(dtype=float)
        order = np.lexsort((-m, p))  # by params, then best metric first
        best, last = -np.inf, None
        for i in order:
            # Identical points do not dominate each other: a tie with the last kept one stays.
            if m[i] > best or (last is not None and (p[i], m[i]) == (p[last], m[last])):
                keep.append(group.index[i])
                best, last = m[i], i
    return runs.loc[keep]


def best_per_size(df: pd.DataFrame, metric: str) -> pd.DataFrame:
    """Per family and size, the configuration with the best mean (the budget-matched view)."""
    configs = configurations(df, metric)
    if configs.empty:
        return configs
    ordered = configs.sort_values(
        ["family", "size", "mean"], ascending=[True, True, False], kind="mergesort"
    )
    return ordered.drop_duplicates(["family", "size"], keep="first").reset_index(drop=True)
