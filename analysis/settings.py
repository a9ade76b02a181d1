"""What a report is asked for (the `report` config group): plain data, no pandas or plotting,
so the configuration is parsed without loading the analysis."""

from __future__ import annotations

from dataclasses import dataclass

from ..models.family import BASELINE, CANDIDATE


@dataclass(frozen=True)
class ReportSettings:
    metric: str = "test_psnr"
    overlay: str = "auto"  # auto | true | false: the paper's published frontier
    overlay_dataset: str | None = None  # the paper's points of this dataset (default: the run's)
    formats: tuple[str, ...] = ("png",)
    budgets: tuple[float, ...] | None = None  # default: the budgets of a budget-matched sweep
    candidate: str = CANDIDATE  # the family the comparison asks about ...
    baseline: str = BASELINE  # ... against this one


OVERLAYS = ("auto", "true", "false")
PLOT_FORMATS = ("png", "svg", "pdf")
