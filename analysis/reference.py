"""The paper's published frontier points, shipped as data (analysis/data/paper_frontiers.csv)."""

from __future__ import annotations

from importlib import resources

import pandas as pd


def paper_frontiers() -> pd.DataFrame:
    """Columns: task, dataset, split, family, params_millions, psnr_db, d_z, d_h, depth, params."""
    with resources.files(__package__).joinpath("data/paper_frontiers.csv").open() as fh:
        frame = pd.read_csv(fh)
    frame["params"] = frame["params_millions"] * 1e6
    return frame


def reference_for(task: str, dataset: str, metric: str) -> pd.DataFrame | None:
    """The published points for this task, dataset and metric (`eval_psnr` or `test_psnr`:
    the split must match too), or None when the paper has none."""
    split, _, kind = metric.partition("_")
    if kind != "psnr":
        return None
    frame = paper_frontiers()
    match = frame[
        (frame["task"] == task) & (frame["dataset"] == dataset) & (frame["split"] == split)
    ]
    return None if match.empty else match
