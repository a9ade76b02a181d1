"""Stored trials -> tidy tables, frontiers, comparisons, plots; `report_studies` is the entry."""

from .report import NothingToReport, ReportSettings, report_studies

__all__ = ["NothingToReport", "ReportSettings", "report_studies"]
