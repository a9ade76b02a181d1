"""Matplotlib helpers: each takes an Axes and data, draws, and returns the artists."""

from __future__ import annotations

import pandas as pd
from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

COLORS = {"hourglass": "tab:red", "conventional": "tab:blue"}
LABELS = {
    "hourglass": "Hourglass (wide-narrow-wide)",
    "conventional": "Conventional (narrow-wide-narrow)",
}


def _params_axis(ax) -> None:
    """Log-scaled parameter axis labelled in plain units (1.5M, 200k) without overlaps."""
    ax.set_xscale("log")
    fmt = FuncFormatter(lambda v, _: f"{v / 1e6:g}M" if v >= 1e6 else f"{v / 1e3:g}k")
    ax.xaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 3.0, 5.0)))
    ax.xaxis.set_major_formatter(fmt)
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set_xlabel("trainable parameters")


def frontier_plot(
    ax,
    trials: pd.DataFrame,
    frontier: pd.DataFrame,
    metric: str,
    reference: pd.DataFrame | None = None,
    best: pd.DataFrame | None = None,
) -> list:
    """All trained trials faint, each family's frontier with a +-std band, log-scaled params;
    with `best`, also the best configuration per budget (budget-matched sweeps)."""
    artists = []
    for family in ("hourglass", "conventional"):
        color = COLORS[family]
        runs = trials[(trials["family"] == family) & trials["trained"]]
        if not runs.empty:
            artists.append(
                ax.scatter(
                    runs["params"].astype(float),
                    runs[metric],
                    s=12,
                    color=color,
                    alpha=0.25,
                    linewidths=0,
                )
            )
        f = frontier[frontier["family"] == family].sort_values("params")
        if not f.empty:
            x = f["params"].astype(float)
            artists += ax.plot(x, f["mean"], "-o", color=color, ms=4, label=LABELS[family])
            artists.append(
                ax.fill_between(
                    x,
                    f["mean"] - f["std"],
                    f["mean"] + f["std"],
                    color=color,
                    alpha=0.2,
                    linewidth=0,
                )
            )
        if best is not None:
            b = best[best["family"] == family].sort_values("size")
            if len(b) > 1:
                artists += ax.plot(
                    b["params"].astype(float),
                    b["mean"],
                    ":",
                    color=color,
                    label=f"{family}, best per budget",
                )
        if reference is not None:
            r = reference[reference["family"] == family].sort_values("params")
            if not r.empty:
                artists += ax.plot(
                    r["params"],
                    r["psnr_db"],
                    "--",
                    color=color,
                    alpha=0.7,
                    label=f"{family}, published (paper)",
                )
    _params_axis(ax)
    ax.set_ylabel(metric.replace("_", " ").replace("psnr", "PSNR (dB)").replace("ssim", "SSIM"))
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    return artists


def scaling_plot(axes, frontier: pd.DataFrame) -> list:
    """Best d_z, d_h and depth per budget for each family (one Axes per quantity): the
    frontier's points, or in a budget-matched sweep the best configuration per budget."""
    artists = []
    for ax, key in zip(axes, ("d_z", "d_h", "depth"), strict=True):
        for family in ("hourglass", "conventional"):
            f = frontier[frontier["family"] == family].sort_values("params")
            if f.empty:
                continue
            artists += ax.plot(
                f["params"].astype(float),
                f[key].astype(float),
                "-o",
                ms=4,
                color=COLORS[family],
                label=family,
            )
        _params_axis(ax)
        if key != "depth":
            ax.set_yscale("log")
            ax.yaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
            ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
            ax.yaxis.set_minor_formatter(NullFormatter())
        ax.set_ylabel(key)
        ax.set_title(
            {
                "d_z": "residual width d_z",
                "d_h": "bottleneck / hidden width d_h",
                "depth": "depth (blocks)",
            }[key],
            fontsize=9,
        )
        ax.grid(True, which="both", alpha=0.3)
    axes[0].legend(fontsize=8)
    return artists


def progress_plot(ax, trials: pd.DataFrame, metric: str) -> list:
    """Best metric so far against trained trials, per family."""
    artists = []
    for family in ("hourglass", "conventional"):
        runs = trials[(trials["family"] == family) & trials["trained"]].sort_values("number")
        if runs.empty:
            continue
        best = runs[metric].cummax().to_numpy()
        artists += ax.plot(
            range(1, len(best) + 1),
            best,
            "-",
            drawstyle="steps-post",
            color=COLORS[family],
            label=family,
        )
    ax.set_xlabel("trained trials")
    ax.set_ylabel(f"best {metric}")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    return artists
