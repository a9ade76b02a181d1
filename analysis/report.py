"""Stored studies -> frontier table, comparison sentences, plots and exports in the run folder.

Every figure "within a budget" comes from analysis/compare.py's one definition, so the plot,
`frontier.csv`, `budgets.csv` and each sentence of `summary.md` agree; a sentence is written
only when it says something (no model compared with itself, no ratio of 1.00x).
"""

from __future__ import annotations

import logging
import math
import os
from pathlib import Path

import pandas as pd

from ..models import FAMILIES
from .compare import best_under_budgets, gain_at_matched_size, size_to_reach
from .frontier import best_per_size, configurations, paper_frontier, pareto_set, with_size
from .interactive import frontier_figure, write_html
from .load import runs_frame, trials_frame
from .plot import METRIC_LABELS, human_params
from .reference import reference_for
from .settings import ReportSettings

log = logging.getLogger("hgsearch")

TASK_TITLES = {
    "gen_classify": "Generative classification",
    "denoise": "Denoising",
    "superres": "Super-resolution x2",
}
DATASET_TITLES = {
    "mnist5k": "MNIST (5k embedded)",
    "digits": "digits (8x8)",
    "mnist": "MNIST",
    "fashion_mnist": "Fashion-MNIST",
    "cifar10": "CIFAR-10",
    "imagenet32": "ImageNet-32",
}


class NothingToReport(Exception):
    """The studies hold no trained trial yet."""


def title(task: str, dataset: str, metric: str) -> str:
    """'Generative classification, MNIST (5k embedded) - test PSNR (dB)'."""
    what = f"{TASK_TITLES.get(task, task)}, {DATASET_TITLES.get(dataset, dataset)}"
    return f"{what} — {METRIC_LABELS.get(metric, metric)}"


def size_text(size: float) -> str:
    """A budget (a round number) compactly, an exact count in full."""
    return human_params(size) if size % 1000 == 0 else f"{size:,.0f}"


def frontier_table(frontier: pd.DataFrame) -> str:
    lines = [
        f"{'family':<13} {'size':>10} {'params':>11}  {'d_z':>5} {'d_h':>5} {'depth':>5}  "
        f"{'lr':>8}  {'mean':>7} {'std':>6} {'seeds':>5}"
    ]
    for _, r in frontier.sort_values(["family", "size"]).iterrows():
        lines.append(
            f"{r['family']:<13} {size_text(r['size']):>10} {r['params']:>11,.0f}  "
            f"{int(r['d_z']):>5} {int(r['d_h']):>5} {int(r['depth']):>5}  {r['lr']:>8.2g}  "
            f"{r['mean']:>7.2f} {r['std']:>6.2f} {int(r['n']):>5}"
        )
    return "\n".join(lines)


def lr_table(configs: pd.DataFrame, frontier: pd.DataFrame) -> str:
    """Each frontier architecture's learning rates, the chosen one marked (only when an
    architecture was trained at several)."""
    keys = ["family", "d_z", "d_h", "depth"]
    rows = configs.merge(frontier[keys].drop_duplicates(), on=keys)
    if rows.empty or rows.groupby(keys)["lr"].nunique().max() < 2:
        return ""
    chosen = set(map(tuple, frontier[[*keys, "lr"]].to_numpy().tolist()))
    lines = [f"{'family':<13} {'d_z':>5} {'d_h':>5} {'depth':>5}  {'lr':>8}  {'mean':>7} "
             f"{'std':>6} {'seeds':>5}"]  # fmt: skip
    for _, r in rows.sort_values([*keys, "lr"]).iterrows():
        mark = " <- frontier" if tuple(r[[*keys, "lr"]].tolist()) in chosen else ""
        lines.append(
            f"{r['family']:<13} {int(r['d_z']):>5} {int(r['d_h']):>5} {int(r['depth']):>5}  "
            f"{r['lr']:>8.2g}  {r['mean']:>7.2f} {r['std']:>6.2f} {int(r['n']):>5}{mark}"
        )
    return "\n".join(lines)


def comparison_lines(frontier: pd.DataFrame, metric: str, candidate: str, baseline: str):
    """The candidate against the baseline, in sentences that are true and informative."""
    have = set(frontier["family"])
    if not {candidate, baseline} <= have:
        return [
            f"comparison needs both {candidate} and {baseline} on a frontier; have: "
            f"{', '.join(sorted(have)) or 'none'}"
        ]
    unit = " dB" if "psnr" in metric else ""
    out = []
    for _, r in gain_at_matched_size(frontier, candidate, baseline).iterrows():
        out.append(
            f"within {size_text(r['size'])} parameters: {candidate} {r[candidate]:.2f}{unit}, "
            f"{baseline} {r[baseline]:.2f}{unit} ({candidate} minus {baseline} "
            f"{r['gain']:+.2f}{unit})"
        )
    for leader, other in ((candidate, baseline), (baseline, candidate)):
        best = frontier[frontier["family"] == other].sort_values("mean").iloc[-1]
        never_said = False
        reach = size_to_reach(frontier, leader, other)
        # Of the leader's points that the same model of the other family is the first to
        # reach, only the closest (the highest) is worth a sentence.
        reach = reach[reach["other_size"].isna() | ~reach.duplicated("other_size", keep="last")]
        for _, r in reach.iterrows():
            if math.isnan(r["other_size"]):
                if not never_said:  # once: the lowest level it misses
                    out.append(
                        f"{other} never reaches the {r['metric']:.2f}{unit} that {leader} "
                        f"reaches within {size_text(r['size'])} parameters: its best is "
                        f"{best['mean']:.2f}{unit} within {size_text(best['size'])}"
                    )
                    never_said = True
            elif r["other_size"] > r["size"]:
                out.append(
                    f"{leader} reaches {r['metric']:.2f}{unit} within {size_text(r['size'])} "
                    f"parameters; {other} needs {size_text(r['other_size'])} "
                    f"({r['ratio']:.2f}x the parameters, {r['other_metric']:.2f}{unit})"
                )
    return out


def _overlay(settings: ReportSettings, task: str, dataset: str) -> pd.DataFrame | None:
    if settings.overlay == "false":
        return None
    ref = reference_for(task, settings.overlay_dataset or dataset, settings.metric)
    if ref is None and settings.overlay == "true":
        log.info(
            "the paper published no %s frontier for %s on %s: no overlay",
            settings.metric,
            task,
            dataset,
        )
    return ref


def _write(path: Path, write) -> Path:
    """Write through a temporary file renamed into place: a killed report leaves no torn file."""
    tmp = path.with_name(f".{path.name}.tmp")
    write(tmp)
    os.replace(tmp, path)
    return path


def _save(fig, folder: Path, stem: str, formats: tuple[str, ...]) -> list[Path]:
    return [
        _write(folder / f"{stem}.{fmt}", lambda p, f=fmt: fig.savefig(p, format=f, dpi=150,
               bbox_inches="tight"))
        for fmt in formats
    ]  # fmt: skip


def _families(trials: pd.DataFrame, settings: ReportSettings) -> list[str]:
    """Candidate first, baseline second, then any other family, registry order."""
    present = set(trials.loc[trials["trained"], "family"].dropna())
    order = [settings.candidate, settings.baseline, *FAMILIES]
    ordered = [f for f in dict.fromkeys(order) if f in present]
    return ordered + sorted(present - set(ordered))


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
    trials = with_size(trials)
    runs = with_size(runs_frame(studies, trials))  # one row per seed x lr: what is averaged
    families = _families(trials, settings)
    frontier = paper_frontier(runs, metric)
    pareto = pareto_set(trials, metric)
    configs = configurations(runs, metric)
    keys = ["family", "d_z", "d_h", "depth"]  # an architecture (a trial may train many lrs)
    points = frontier[keys].drop_duplicates().assign(on_frontier=True)
    on = trials[keys].merge(points, on=keys, how="left")
    trials = trials.assign(
        on_frontier=on["on_frontier"].fillna(False).astype(bool).to_numpy()
        & trials["trained"].to_numpy(),
        on_pareto=trials.index.isin(pareto.index),
    )
    task, dataset = trials["task"].dropna().iloc[0], trials["dataset"].dropna().iloc[0]
    matched = trials.loc[trials["trained"], "budget_target"].notna().all()
    budgets = list(settings.budgets or (sorted(set(configs["size"])) if matched else []))
    paths: dict[str, list[Path]] = {}
    paths["trials_csv"] = [_write(folder / "trials.csv", lambda p: trials.to_csv(p, index=False))]
    paths["frontier_csv"] = [
        _write(folder / "frontier.csv", lambda p: frontier.to_csv(p, index=False))
    ]
    paths["runs_csv"] = [_write(folder / "runs.csv", lambda p: runs.to_csv(p, index=False))]

    try:  # parquet too, where pyarrow is installed
        import pyarrow  # noqa: F401

        paths["trials_parquet"] = [
            _write(folder / "trials.parquet", lambda p: trials.to_parquet(p, index=False))
        ]
    except ImportError:
        pass

    reference = _overlay(settings, task, dataset)
    heading = title(task, dataset, metric)
    fig, ax = plt.subplots(figsize=(8, 4.5))
    frontier_plot(ax, trials, frontier, metric, families, reference, budgets if matched else None)
    ax.set_title(heading, fontsize=10)
    paths["frontier_plot"] = _save(fig, folder, "frontier", settings.formats)
    plt.close(fig)
    page = frontier_figure(trials, frontier, metric, families, heading, reference)
    paths["frontier_html"] = [_write(folder / "frontier.html", lambda p: write_html(page, p))]
    fig, axes = plt.subplots(1, 3, figsize=(12, 3.6))
    scaling_plot(axes, best_per_size(trials, metric) if matched else frontier, families,
                 budgets if matched else None)  # fmt: skip
    what = "best configuration per budget" if matched else "along the frontier"
    fig.suptitle(f"Shapes {what}: {heading}", fontsize=10)
    fig.tight_layout()
    paths["scaling_plot"] = _save(fig, folder, "scaling", settings.formats)
    plt.close(fig)
    fig, ax = plt.subplots(figsize=(6, 3.6))
    progress_plot(ax, trials, metric, families)
    ax.set_title("search progress", fontsize=10)
    paths["progress_plot"] = _save(fig, folder, "progress", settings.formats)
    plt.close(fig)

    comparison = comparison_lines(frontier, metric, settings.candidate, settings.baseline)
    table = frontier_table(frontier)
    sizes = (
        "a model's size is the budget it was built for (its exact count is within the "
        "tolerance of it)"
        if matched
        else "a model's size is its exact trainable parameter count"
    )
    lines = [
        f"# {heading}",
        "",
        f"Studies: {names}",
        "",
        f"Trained trials: {int(trials['trained'].sum())} (of {len(trials)} in total); "
        f'frontier metric: {metric}; {sizes}. "Within B" means a size of at most B, '
        f"everywhere below.",
        "",
        "## Frontier (paper procedure)",
        "",
        "```",
        table,
        "```",
        "",
        f"## {settings.candidate} vs {settings.baseline}",
        "",
    ] + [f"- {c}" for c in comparison]
    lrs = lr_table(configs, frontier)
    if lrs:
        lines += ["", "## Learning rates of the frontier architectures (mean ± std over seeds)",
                  "", "```", lrs, "```"]  # fmt: skip
    if budgets:
        best = best_under_budgets(configs, budgets)
        lines += [
            "",
            "## Best configuration within each budget",
            "",
            "```",
            best.to_string(index=False),
            "```",
        ]
        paths["budgets_csv"] = [
            _write(folder / "budgets.csv", lambda p: best.to_csv(p, index=False))
        ]
    text = "\n".join(lines) + "\n"
    paths["summary"] = [_write(folder / "summary.md", lambda p: p.write_text(text))]

    print(table)
    if lrs:
        print(lrs)
    for c in comparison:
        print(c)
    print(f"wrote {', '.join(str(p) for ps in paths.values() for p in ps)}")
    return paths
