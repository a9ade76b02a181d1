from __future__ import annotations

import csv
from pathlib import Path

import optuna
import pytest
from omegaconf import OmegaConf
from optuna.trial import FixedTrial

from hgsearch.models import count_params
from hgsearch.search.config import parse as from_config
from hgsearch.search.errors import ConfigError
from hgsearch.search.plan import make_plan
from hgsearch.search.space import (
    Infeasible,
    check_feasible,
    grid_of,
    parse_budget,
    parse_family_space,
    sample,
)
from tests.conftest import compose_cfg

REFERENCE = Path(__file__).resolve().parents[1] / "analysis" / "data" / "paper_frontiers.csv"


def plan_for(overrides):
    raw = OmegaConf.to_container(compose_cfg(overrides), resolve=True)
    return make_plan(from_config(raw))


def test_ranges_choices_and_per_input():
    space = parse_family_space(
        "hourglass",
        {
            "d_z": {"choices": [1, 2], "per_input": True},
            "d_h": {"low": 4, "high": 64, "log": True},
            "depth": {"low": 1, "high": 9, "step": 2},
            "lr": [0.001],
        },
        d_x=64,
    )
    assert space.dims["d_z"].choices == (64, 128)
    assert space.dims["d_h"].log and space.dims["depth"].step == 2
    cand = sample(
        FixedTrial({"d_z": 128, "d_h": 16, "depth": 3, "lr": 0.001}),
        space,
        parse_budget({}),
        64,
        64,
        False,
    )
    assert (cand.spec.d_z, cand.spec.d_h, cand.spec.depth) == (128, 16, 3)


@pytest.mark.parametrize(
    ("raw", "needle"),
    [
        ({"d_z": {"low": 10}, "lr": [0.1]}, "needs choices, or low and high"),
        ({"d_z": {"low": 10, "high": 5}, "lr": [0.1]}, "low <= high"),
        ({"width": [3], "lr": [0.1]}, "not a search key"),
        ({"d_z": [10]}, "needs an lr entry"),
        ({"d_h": {"choices": [2], "per_input": True}, "lr": [0.1]}, "d_z only"),
    ],
)
def test_bad_space_entries(raw, needle):
    with pytest.raises(ConfigError, match=needle):
        parse_family_space("hourglass", raw, d_x=64)


def test_infeasible_configurations_are_reported_not_built():
    space = parse_family_space(
        "hourglass", {"d_z": [65], "d_h": [80], "depth": [1], "lr": [0.01]}, 64
    )
    with pytest.raises(Infeasible, match="shape"):
        sample(
            FixedTrial({"d_z": 65, "d_h": 80, "depth": 1, "lr": 0.01}),
            space,
            parse_budget({}),
            64,
            64,
            False,
        )
    space = parse_family_space(
        "hourglass", {"d_z": [65], "d_h": [8], "depth": [1], "lr": [0.01]}, 64
    )
    with pytest.raises(Infeasible, match="above max_params"):
        sample(
            FixedTrial({"d_z": 65, "d_h": 8, "depth": 1, "lr": 0.01}),
            space,
            parse_budget({"max_params": 5000}),
            64,
            64,
            False,
        )


@pytest.mark.parametrize("family", ["hourglass", "conventional"])
def test_budget_matched_derives_the_width(family):
    raw = (
        {"d_h": [8, 16], "depth": [1, 2], "lr": [0.01]}
        if family == "hourglass"
        else {"depth": [1, 2], "lr": [0.01]}
    )
    space = parse_family_space(family, raw, 64)
    budget = parse_budget({"targets": [50000, 80000], "tolerance": 0.02})
    for target in (50000, 80000):
        params = {"depth": 2, "lr": 0.01, "budget": target}
        if family == "hourglass":
            params["d_h"] = 8
        cand = sample(FixedTrial(params), space, budget, 64, 64, False)
        assert abs(cand.params - target) <= 0.02 * target
        assert cand.params == count_params(cand.spec).trainable
    assert "budget" in grid_of(space, budget) and space.derived not in grid_of(space, budget)


@pytest.mark.parametrize(
    ("budget", "needle"),
    [
        ({"max_params": 100}, "impossible budget"),
        ({"min_params": 1e12}, "impossible budget"),
        ({"min_params": 5, "max_params": 1}, "empty budget"),
        ({"targets": []}, "non-empty list"),
    ],
)
def test_impossible_or_empty_budgets_are_refused(budget, needle):
    space = parse_family_space(
        "hourglass", {"d_z": [65], "d_h": [8], "depth": [1], "lr": [0.01]}, 64
    )
    with pytest.raises(ConfigError, match=needle):
        check_feasible(space, parse_budget(budget), 64, 64, False)


def reference_configs(task, dataset, family):
    with REFERENCE.open() as fh:
        return {
            f"{r['d_z']}x{r['d_h']}x{r['depth']}"
            for r in csv.DictReader(fh)
            if (r["task"], r["dataset"], r["family"]) == (task, dataset, family)
        }


# The learning rates the paper searched, per preset and family (from its result files).
PAPER_LRS = {
    "paper_mnist_gc": ([1e-4, 5e-4, 1e-3, 5e-3], [3e-4, 5e-4, 7e-4, 1e-3]),
    "paper_mnist_denoise": (
        [5e-5, 1e-4, 3e-4, 5e-4, 7e-4, 1e-3, 3e-3],
        [1e-4, 3e-4, 5e-4, 7e-4, 1e-3],
    ),
    "paper_mnist_sr": ([1e-4, 5e-4, 1e-3, 5e-3], [3e-4, 5e-4, 7e-4, 1e-3]),
    "paper_imagenet32_denoise": ([1e-4, 3e-4, 5e-4, 7e-4],) * 2,
    "paper_imagenet32_sr": ([1e-4, 3e-4, 5e-4, 7e-4],) * 2,
}


@pytest.mark.parametrize(
    ("preset", "task", "dataset"),
    [
        ("paper_mnist_gc", "gen_classify", "mnist"),
        ("paper_mnist_denoise", "denoise", "mnist"),
        ("paper_mnist_sr", "superres", "mnist"),
        ("paper_imagenet32_denoise", "denoise", "imagenet32"),
        ("paper_imagenet32_sr", "superres", "imagenet32"),
    ],
)
def test_paper_grids_enumerate_the_paper_architectures(preset, task, dataset):
    plan = plan_for([f"experiment={preset}"])
    assert plan.config.task.name == task and plan.config.data.name == dataset
    assert plan.config.sampler.name == "grid" and plan.config.search.replicas == 5
    # The paper steps its linear decay per epoch on MNIST, per step on ImageNet-32, and its
    # MNIST-denoising figure plots eval PSNR (the others test PSNR).
    assert plan.config.train.decay == ("epoch" if dataset == "mnist" else "step")
    denoise_mnist = preset == "paper_mnist_denoise"
    assert plan.config.report.metric == ("eval_psnr" if denoise_mnist else "test_psnr")
    for family, lrs in zip(("hourglass", "conventional"), PAPER_LRS[preset], strict=True):
        grid = grid_of(plan.space(family), plan.config.search.budget)
        assert set(grid["arch"]) == reference_configs(task, dataset, family)
        assert len(grid["arch"]) == len(set(grid["arch"]))
        # A trial is an architecture; it trains every rate of the paper's grid (as a pack).
        assert set(grid) == {"arch"} and list(plan.config.search.lrs[family]) == lrs
        assert plan.goal.target >= len(grid["arch"])
        # The grid sampler enumerates exactly that product, once each.
        sampler = optuna.samplers.GridSampler(grid, seed=0)
        study = optuna.create_study(directions=["maximize", "minimize"], sampler=sampler)
        seen = set()

        def objective(trial, grid=grid, seen=seen):
            seen.add(trial.suggest_categorical("arch", grid["arch"]))
            return 0.0, 0.0

        study.optimize(objective, n_trials=10_000)
        assert len(seen) == len(study.trials) == len(grid["arch"])
