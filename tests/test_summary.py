"""summary.md, budgets.csv and frontier.csv of one scripted study agree on every "within a
budget" figure, and no sentence compares a model with itself."""

from __future__ import annotations

import re

import pandas as pd
import pytest

from hgsearch.search.cli import main

SMOKE = ["experiment=smoke", "device=cpu"]
NUMBER = r"([\d.,]+[kM]?)"


def size(text: str) -> float:
    """'2.5M' -> 2.5e6, '200k' -> 2e5, '24,576' -> 24576 (analysis.report.size_text's forms)."""
    scale = {"k": 1e3, "M": 1e6}.get(text[-1], 1.0)
    return float(text.rstrip("kM").replace(",", "")) * scale


def best_within(frontier: pd.DataFrame, family: str, budget: float) -> float:
    fit = frontier[(frontier["family"] == family) & (frontier["size"] <= budget)]
    return round(float(fit["mean"].max()), 2)


@pytest.mark.parametrize(
    "mode",
    [
        ["search.budget.targets=[20000,30000,40000]", "search.budget.max_params=null"],
        ["search.budget.max_params=40000"],
    ],
    ids=["budget-matched", "free sizes"],
)
def test_every_within_budget_figure_agrees(tmp_path, capsys, fake_training, mode):
    args = [*SMOKE, f"run_dir={tmp_path}", "search.n_trials=8", *mode,
            "report.budgets=[15000,20000,30000,40000]"]  # fmt: skip
    assert main(["sweep", *args]) == 0
    folder = tmp_path / "smoke-gen_classify-digits"
    summary = (folder / "summary.md").read_text()
    frontier = pd.read_csv(folder / "frontier.csv")
    budgets = pd.read_csv(folder / "budgets.csv")
    assert set(frontier["family"]) == {"hourglass", "conventional"}

    within = re.findall(
        rf"within {NUMBER} parameters: hourglass ([\d.]+) dB, conventional ([\d.]+) dB "
        r"\(hourglass minus conventional ([+-][\d.]+) dB\)",
        summary,
    )
    assert within, summary
    for limit, hg, conv, gain in within:
        b = size(limit)
        assert float(hg) == best_within(frontier, "hourglass", b)
        assert float(conv) == best_within(frontier, "conventional", b)
        assert float(gain) == pytest.approx(float(hg) - float(conv), abs=0.011)
    # The table of the best configuration within each budget: the same step function.
    for _, row in budgets.iterrows():
        fit = frontier[(frontier["family"] == row["family"]) & (frontier["size"] <= row["budget"])]
        if fit.empty:
            assert pd.isna(row.get("mean"))
        else:
            assert row["mean"] == pytest.approx(fit["mean"].max(), abs=1e-9)
            assert row["size"] <= row["budget"]  # a model within its budget, by definition
    # Sizes: a sweep's frontier sizes are the budgets it was built for, or exact counts.
    if "targets" in mode[0]:
        assert set(frontier["size"]) <= {20000, 30000, 40000}
    else:
        assert (frontier["size"] == frontier["params"]).all()

    reach = re.findall(
        rf"(\w+) reaches ([\d.]+) dB within {NUMBER} parameters; (\w+) needs {NUMBER} "
        r"\(([\d.]+)x the parameters, ([\d.]+) dB\)",
        summary,
    )
    for leader, metric, at, other, needs, ratio, got in reach:
        assert leader != other and size(needs) > size(at)  # never a model against itself
        assert float(ratio) == pytest.approx(size(needs) / size(at), abs=0.006)
        assert float(ratio) != 1.0 and float(got) >= float(metric)
        assert (
            best_within(frontier, other, size(at)) < float(metric)
            or size(at) < frontier[frontier["family"] == other]["size"].min()
        )
    never = re.findall(
        rf"(\w+) never reaches the ([\d.]+) dB that (\w+) reaches within {NUMBER} parameters: "
        rf"its best is ([\d.]+) dB within {NUMBER}",
        summary,
    )
    for other, metric, leader, _, best, _ in never:
        assert other != leader and float(best) < float(metric)
        assert float(best) == round(frontier[frontier["family"] == other]["mean"].max(), 2)
    assert "1.00x" not in summary
