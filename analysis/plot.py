"""Matplotlib helpers: each takes an Axes and data, draws, and returns the artists.

Families are drawn in the order given, with the label and colour their registry entry holds.
Sizes on the x axis follow the one definition of analysis/compare.py (the budget a model was
built for in a budget-matched sweep, its exact trainable count otherwise).
"""

from __future__ import annotations

import pandas as pd
from matplotlib.ticker import FixedLocator, FuncFormatter, LogLocator, NullFormatter

from ..models import FAMILIES

METRIC_LABELS = {
    "test_psnr": "test PSNR (dB)",
    "eval_psnr": "eval PSNR (dB)",
    "test_ssim": "test SSIM",
    "eval_ssim": "eval SSIM",
}


def style(family: str) -> tuple[str, str | None]:
    """(label, colour) of a family; an unregistered name gets matplotlib's next colour."""
    f = FAMILIES.get(family)
    return (f.label, f.color) if f else (family, None)


def human_params(v: float) -> str:
    """1500000 -> 1.5M, 200000 -> 200k, 950 -> 950."""
    if v >= 1e6:
        return f"{v / 1e6:.3g}M"
    if v >= 1e3:
        return f"{v / 1e3:.3g}k"
    return f"{v:g}"


def params_axis(ax, ticks: list[float] | None = None) -> None:
    """Log-scaled size axis: labelled at `ticks` (the budgets of a budget-matched sweep), else
    at 1, 2, 3, 5 per decade, without overlaps."""
    ax.set_xscale("log")
    fmt = FuncFormatter(lambda v, _: human_params(v))
    low, high = ax.get_xlim()
    if ticks:
        ax.xaxis.set_major_locator(FixedLocator(sorted(ticks)))
    elif high < 10 * low:  # less than a decade: label more of it
        ax.xaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 1.5, 2.0, 3.0, 4.0, 5.0, 7.0)))
    else:
        ax.xaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 3.0, 5.0)))
    ax.xaxis.set_major_formatter(fmt)
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set_xlabel("parameter budget" if ticks else "trainable parameters")


def frontier_plot(
    ax,
    trials: pd.DataFrame,
    frontier: pd.DataFrame,
    metric: str,
    families: list[str],
    reference: pd.DataFrame | None = None,
    budgets: list[float] | None = None,
) -> list:
    """Every trained trial faint; each family's frontier as a step line with points, a ±std
    band where it averages several seeds; the paper's published points hollow."""
    artists = []
    for family in families:
        label, color = style(family)
        runs = trials[(trials["family"] == family) & trials["trained"]]
        if not runs.empty:
            artists.append(
                ax.scatter(runs["size"], runs[metric], s=12, color=color, alpha=0.25, linewidths=0)
            )
            color = color or artists[-1].get_facecolor()[0]
        f = frontier[frontier["family"] == family].sort_values("size")
        if f.empty:
            continue
        seeds = int(f["n"].min())
        note = "1 seed" if f["n"].max() <= 1 else f"mean ± std of {seeds}+ seeds"
        artists += ax.plot(
            f["size"],
            f["mean"],
            "-o",
            drawstyle="steps-post",
            color=color,
            ms=4,
            label=f"{label} ({note})",
        )
        if f["n"].max() > 1:
            artists.append(
                ax.fill_between(
                    f["size"],
                    f["mean"] - f["std"],
                    f["mean"] + f["std"],
                    step="post",
                    color=color,
                    alpha=0.2,
                    linewidth=0,
                )
            )
        if reference is not None:
            r = reference[reference["family"] == family].sort_values("params")
            if not r.empty:
                artists += ax.plot(
                    r["params"],
                    r["psnr_db"],
                    "o",
                    mfc="none",
                    color=color,
                    alpha=0.8,
                    label=f"{label.split(' (')[0]}, published (paper)",
                )
    params_axis(ax, budgets)
    ax.set_ylabel(METRIC_LABELS.get(metric, metric))
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(loc="upper left", bbox_to_anchor=(1.02, 1.0), fontsize=8, frameon=False)
    return artists


def scaling_plot(axes, points: pd.DataFrame, families: list[str], budgets=None) -> list:
    """d_z, d_h and depth of the given points (the frontier, or the best configuration per
    budget) against size, one Axes per quantity."""
    artists = []
    for ax, key in zip(axes, ("d_z", "d_h", "depth"), strict=True):
        for family in families:
            f = points[points["family"] == family].sort_values("size")
            if f.empty:
                continue
            label, color = style(family)
            artists += ax.plot(
                f["size"], f[key].astype(float), "-o", ms=4, color=color, label=label
            )
        params_axis(ax, budgets)
        if key != "depth":
            ax.set_yscale("log")
            ax.yaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
            ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
            ax.yaxis.set_minor_formatter(NullFormatter())
        ax.set_ylabel(key)
        titles = {"d_z": "residual width d_z", "d_h": "block hidden width d_h"}
        ax.set_title(titles.get(key, "depth (blocks)"), fontsize=9)
        ax.grid(True, which="both", alpha=0.3)
    axes[0].legend(fontsize=7)
    return artists


def progress_plot(ax, trials: pd.DataFrame, metric: str, families: list[str]) -> list:
    """Best metric so far against trained trials, per family."""
    artists = []
    for family in families:
        runs = trials[(trials["family"] == family) & trials["trained"]].sort_values("number")
        if runs.empty:
            continue
        label, color = style(family)
        best = runs[metric].cummax().to_numpy()
        artists += ax.plot(
            range(1, len(best) + 1), best, "-", drawstyle="steps-post", color=color, label=label
        )
    ax.set_xlabel("trained trials")
    ax.set_ylabel(f"best {METRIC_LABELS.get(metric, metric)}")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    return artists
