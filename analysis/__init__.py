"""Stored trials -> tidy tables, frontiers, comparisons, plots; `report_studies` is the entry.

The report's modules (pandas, matplotlib, plotly) load on first use.
"""

from __future__ import annotations

from typing import Any

from .settings import ReportSettings

__all__ = ["NothingToReport", "ReportSettings", "report_studies"]


def __getattr__(name: str) -> Any:
    if name in ("NothingToReport", "report_studies"):
        from . import report

        return getattr(report, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
