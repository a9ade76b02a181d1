"""Pure DataFrame -> DataFrame frontier extraction; no I/O, no plotting.

The paper's procedure (per family): group runs by configuration (architecture and learning
rate), average over seeds; for each parameter count keep the best learning rate; sort by
parameters and keep the points that strictly improve on every smaller model (the monotone upper
envelope). Also the plain Pareto set: no other point has fewer-or-equal parameters and a
higher-or-equal metric with one of them strict.
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


def configurations(df: pd.DataFrame, metric: str) -> pd.DataFrame:
    """Mean and std of `metric` over the runs of each (architecture, lr, params)."""
    runs = _usable(df, metric)
    keys = [*ARCH, "lr", "params"]
    if runs.empty:
        return pd.DataFrame(columns=[*keys, "mean", "std", "n"])
    g = runs.groupby(keys, dropna=False, sort=False)[metric]
    out = g.agg(mean="mean", std="std", n="count").reset_index()
    out["std"] = out["std"].fillna(0.0)
    return out


def envelope(points: pd.DataFrame, value: str = "mean") -> pd.DataFrame:
    """Sort by params and keep each point that strictly beats every smaller model.

    At one parameter count only its best point can qualify.
    """
    if points.empty:
        return points
    ordered = points.sort_values(["params", value], ascending=[True, False], kind="mergesort")
    best_per_size = ordered.drop_duplicates("params", keep="first")
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
