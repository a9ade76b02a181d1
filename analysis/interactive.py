"""The frontier as an interactive page (plotly): hover a point for its shape, learning rate,
parameters and PSNR; click legend entries to hide a family. One self-contained HTML file
(plotly.js inside), so it opens offline."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from matplotlib.colors import to_hex

from .plot import METRIC_LABELS, style

HOVER = (
    "trial %{customdata[0]}<br>d_z %{customdata[1]}, d_h %{customdata[2]}, depth "
    "%{customdata[3]}<br>lr %{customdata[4]:.3g}<br>%{customdata[5]:,} parameters<br>"
    "%{y:.2f}<extra>%{fullData.name}</extra>"
)


def frontier_figure(
    trials: pd.DataFrame,
    frontier: pd.DataFrame,
    metric: str,
    families: list[str],
    title: str,
    reference: pd.DataFrame | None = None,
):
    """A plotly Figure: every trained trial, each family's frontier, the paper's points."""
    import plotly.graph_objects as go

    fig = go.Figure()
    columns = ["number", "d_z", "d_h", "depth", "lr", "params"]
    for family in families:
        label, color = style(family)
        color = to_hex(color) if color else None  # matplotlib names -> CSS
        runs = trials[(trials["family"] == family) & trials["trained"]]
        if not runs.empty:
            fig.add_trace(
                go.Scatter(
                    x=runs["size"], y=runs[metric], mode="markers", name=f"{label}: trials",
                    legendgroup=family, marker={"color": color, "opacity": 0.35, "size": 7},
                    customdata=runs[columns].astype(float).to_numpy(), hovertemplate=HOVER,
                )
            )  # fmt: skip
        f = frontier[frontier["family"] == family].sort_values("size")
        if not f.empty:
            fig.add_trace(
                go.Scatter(
                    x=f["size"], y=f["mean"], mode="lines+markers", line_shape="hv",
                    name=f"{label}: frontier", legendgroup=family,
                    line={"color": color}, marker={"color": color, "size": 9},
                    customdata=f.assign(number=-1)[columns].astype(float).to_numpy(),
                    hovertemplate=HOVER.replace("trial %{customdata[0]}<br>", "frontier<br>"),
                )
            )  # fmt: skip
        if reference is not None:
            r = reference[reference["family"] == family]
            if not r.empty:
                fig.add_trace(
                    go.Scatter(
                        x=r["params"], y=r["psnr_db"], mode="markers",
                        name=f"{label}: published (paper)", legendgroup=family,
                        marker={"color": color, "symbol": "circle-open", "size": 9},
                        hovertemplate="paper: d_z %{customdata[0]}, d_h %{customdata[1]}, depth "
                        "%{customdata[2]}<br>%{x:,.0f} parameters<br>%{y:.2f} dB<extra></extra>",
                        customdata=r[["d_z", "d_h", "depth"]].to_numpy(),
                    )
                )  # fmt: skip
    fig.update_layout(
        title=title,
        xaxis={"type": "log", "title": "parameters (budget or exact count)"},
        yaxis={"title": METRIC_LABELS.get(metric, metric)},
        template="plotly_white",
        legend={"x": 1.02, "y": 1},
    )
    return fig


def write_html(fig, path: Path) -> Path:
    fig.write_html(str(path), include_plotlyjs=True, full_html=True)
    return path
