"""Stored studies -> frontier table, comparison numbers, plots and exports in the run folder."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from .compare import best_under_budgets, gain_at_matched_params, params_at_matched_metric
from .frontier import best_per_size, configurations, paper_frontier, pareto_set, size_column
from .load import trials_frame
from .reference import reference_for

log = logging.getLogger("hgsearch")


class NothingToReport(Exception):
    """The studies hold no trained trial yet."""


@dataclass(frozen=True)
class ReportSettings:
    metric: str = "test_psnr"
    overlay: str = "auto"  # auto | true | false
    formats: tuple[str, ...] = ("png",)
    budgets: tuple[float, ...] | None = None


def _fmt_params(p: float) -> str:
    return f"{p:,.0f}"


def frontier_table(frontier: pd.DataFrame) -> str:
    lines = [
        f"{'family':<13} {'params':>11}  {'d_z':>5} {'d_h':>5} {'depth':>5}  {'lr':>8}  "
        f"{'mean':>7} {'std':>6}"
    ]
    for _, r in frontier.sort_values(["family", "params"]).iterrows():
        lines.append(
            f"{r['family']:<13} {_fmt_params(r['params']):>11}  {int(r['d_z']):>5} "
            f"{int(r['d_h']):>5} {int(r['depth']):>5}  {r['lr']:>8.2g}  "
            f"{r['mean']:>7.2f} {r['std']:>6.2f}"
        )
    return "\n".join(lines)


def comparison_lines(frontier: pd.DataFrame, metric: str) -> list[str]:
    families = set(frontier["family"])
    if families != {"hourglass", "conventional"}:
        return [
            f"comparison needs both families on a frontier; have: "
            f"{', '.join(sorted(families)) or 'none'}"
        ]
    unit = " dB" if "psnr" in metric else ""
    out = []
    for _, r in gain_at_matched_params(frontier).iterrows():
        out.append(
            f"with at most {_fmt_params(r['params'])} parameters: hourglass "
            f"{r['hourglass']:.2f}{unit}, conventional {r['conventional']:.2f}{unit} "
            f"(hourglass minus conventional {r['gain']:+.2f}{unit})"
        )
    for _, r in params_at_matched_metric(frontier).iterrows():
        if np.isnan(r["hourglass_params"]):
            out.append(
                f"conventional {r['metric']:.2f}{unit} with "
                f"{_fmt_params(r['conventional_params'])} parameters: no hourglass model "
                f"on the frontier reaches it"
            )
        else:
            out.append(
                f"hourglass {r['hourglass_metric']:.2f}{unit} with "
                f"{_fmt_params(r['hourglass_params'])} parameters where conventional needs "
                f"{_fmt_params(r['conventional_params'])} for {r['metric']:.2f}{unit} "
                f"({r['ratio']:.2f}x the parameters)"
            )
    return out


def _overlay(settings: ReportSettings, task: str, dataset: str) -> pd.DataFrame | None:
    if settings.overlay in (False, "false", "none"):
        return None
    ref = reference_for(task, dataset, settings.metric)
    if ref is None and settings.overlay in (True, "true"):
        log.info(
            "the paper published no %s frontier for %s on %s: no overlay",
            settings.metric,
            task,
            dataset,
        )
    return ref


def _save(fig, folder: Path, stem: str, formats: tuple[str, ...]) -> list[Path]:
    paths = []
    for fmt in formats:
        path = folder / f"{stem}.{fmt}"
        fig.savefig(path, dpi=150, bbox_inches="tight")
        paths.append(path)
    return paths


def report_studies(studies: list, folder: Path, settings: ReportSettings | None = None) -> dict:
    """Write CSVs, Markdown summary and plots for these studies; print the table. Returns paths."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from .plot import frontier_plot, progress_plot, scaling_plot

    settings = settings or ReportSettings()
    metric = settings.metric
    trials = trials_frame(studies)
    names = ", ".join(s.study_name for s in studies)
    if not trials["trained"].any():
        raise NothingToReport(
            f"no trained trials yet in {names}: nothing to plot; run "
            f"`hgsearch sweep` with the same overrides"
        )
    folder.mkdir(parents=True, exist_ok=True)
    frontier = paper_frontier(trials, metric)
    pareto = pareto_set(trials, metric)
    configs = configurations(trials, metric)
    keys = ["family", "d_z", "d_h", "depth", "lr"]
    on = trials[keys].merge(frontier[keys].assign(on_frontier=True), on=keys, how="left")
    trials = trials.assign(
        on_frontier=on["on_frontier"].fillna(False).astype(bool).to_numpy()
        & trials["trained"].to_numpy(),
        on_pareto=trials.index.isin(pareto.index),
    )
    task, dataset = trials["task"].dropna().iloc[0], trials["dataset"].dropna().iloc[0]
    paths: dict[str, list[Path]] = {}
    paths["trials_csv"] = [folder / "trials.csv"]
    trials.to_csv(paths["trials_csv"][0], index=False)
    paths["frontier_csv"] = [folder / "frontier.csv"]
    frontier.to_csv(paths["frontier_csv"][0], index=False)
    try:
        import pyarrow  # noqa: F401

        paths["trials_parquet"] = [folder / "trials.parquet"]
        trials.to_parquet(paths["trials_parquet"][0], index=False)
    except ImportError:
        pass

    reference = _overlay(settings, task, dataset)
    matched = size_column(trials) == "budget_target"
    best = best_per_size(trials, metric) if matched else None
    fig, ax = plt.subplots(figsize=(7, 4.5))
    frontier_plot(ax, trials, frontier, metric, reference, best)
    ax.set_title(f"{task} on {dataset}: {metric} vs trainable parameters")
    paths["frontier_plot"] = _save(fig, folder, "frontier", settings.formats)
    plt.close(fig)
    fig, axes = plt.subplots(1, 3, figsize=(12, 3.6))
    scaling_plot(axes, best if matched else frontier)
    what = "best configuration per budget" if matched else "along the frontier"
    fig.suptitle(f"Scaling pattern, {what} ({task}, {dataset})")
    fig.tight_layout()
    paths["scaling_plot"] = _save(fig, folder, "scaling", settings.formats)
    plt.close(fig)
    fig, ax = plt.subplots(figsize=(6, 3.6))
    progress_plot(ax, trials, metric)
    ax.set_title("search progress")
    paths["progress_plot"] = _save(fig, folder, "progress", settings.formats)
    plt.close(fig)

    comparison = comparison_lines(frontier, metric)
    table = frontier_table(frontier)
    budgets = list(settings.budgets or [])
    lines = [
        f"# {task} on {dataset}",
        "",
        f"Studies: {names}",
        "",
        f"Trained trials: {int(trials['trained'].sum())} "
        f"(of {len(trials)} in total); frontier metric: {metric}.",
        "",
        "## Frontier (paper procedure)",
        "",
        "```",
        table,
        "```",
        "",
        "## Hourglass vs conventional",
        "",
    ] + [f"- {c}" for c in comparison]
    if budgets:
        best = best_under_budgets(configs, budgets)
        lines += [
            "",
            "## Best configuration under each budget",
            "",
            "```",
            best.to_string(index=False),
            "```",
        ]
        paths["budgets_csv"] = [folder / "budgets.csv"]
        best.to_csv(paths["budgets_csv"][0], index=False)
    paths["summary"] = [folder / "summary.md"]
    paths["summary"][0].write_text("\n".join(lines) + "\n")

    print(table)
    for c in comparison:
        print(c)
    print(f"wrote {', '.join(str(p) for ps in paths.values() for p in ps)}")
    return paths


def settings_from(raw: dict) -> ReportSettings:
    formats = tuple(raw.get("formats") or ("png",))
    bad = [f for f in formats if f not in ("png", "svg", "pdf")]
    if bad:
        raise ValueError(f"report.formats: {bad[0]!r} is not one of png, svg, pdf")
    budgets = raw.get("budgets")
    return ReportSettings(
        metric=str(raw.get("metric", "test_psnr")),
        overlay=str(raw.get("overlay", "auto")).lower(),
        formats=formats,
        budgets=tuple(float(b) for b in budgets) if budgets else None,
    )
