from __future__ import annotations

import itertools

import pytest
import torch

from hgsearch.models import (
    FAMILIES,
    MLPSpec,
    SpecError,
    build_model,
    count_params,
    trainable_params,
    width_for_budget,
)

# The paper's run names give exact trainable counts (trainable W_in).
PAPER_COUNTS = [
    (MLPSpec("hourglass", 3072, 3072, 3546, 8, 5), 22_070_304),
    (MLPSpec("conventional", 3072, 3072, 3072, 3075, 1), 37_767_168),
    (MLPSpec("hourglass", 784, 784, 785, 4, 10), 1_293_680),
    (MLPSpec("hourglass", 196, 784, 785, 115, 2), 1_130_400),
    (MLPSpec("conventional", 784, 784, 784, 785, 1), 2_460_192),
]


@pytest.mark.parametrize(("spec", "expected"), PAPER_COUNTS)
def test_paper_counts(spec, expected):
    assert count_params(spec).trainable == expected
    assert count_params(spec).total == expected


def _numel(model, trainable_only):
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


@pytest.mark.parametrize(
    ("family", "d_z", "d_h", "depth", "fix"),
    [
        (f, dz, dh, L, fix)
        for (f, dz, dh), L, fix in itertools.product(
            [
                ("hourglass", 40, 7),
                ("hourglass", 33, 1),
                ("conventional", 24, 50),
                ("isotropic", 30, 30),
            ],
            [1, 3],
            [0, 1],  # fmt: skip
        )
    ],
)
def test_count_matches_numel(family, d_z, d_h, depth, fix):
    spec = MLPSpec(family, 17, 24, d_z, d_h, depth, bool(fix))
    model = build_model(spec)
    counts = count_params(spec)
    assert counts.trainable == _numel(model, trainable_only=True)
    assert counts.total == _numel(model, trainable_only=False)
    assert counts.total - counts.trainable == (17 * d_z if fix else 0)


@pytest.mark.parametrize(
    ("kwargs", "needle"),
    [
        (dict(family="hourglass", d_z=10, d_h=10), "d_h < d_z"),
        (dict(family="hourglass", d_z=10, d_h=11), "d_h < d_z"),
        (dict(family="conventional", d_z=24, d_h=24), "d_h > d_z"),
        (dict(family="conventional", d_z=30, d_h=40), "d_z = d_y"),
        (dict(family="mixer", d_z=30, d_h=4), "unknown family"),
        (dict(family="hourglass", d_z=30, d_h=0), "positive integer"),
    ],
)
def test_spec_rejects_bad_shapes(kwargs, needle):
    base = dict(d_x=8, d_y=24, depth=1)
    with pytest.raises(SpecError, match=needle):
        MLPSpec(**{**base, **kwargs})


def test_structure_matches_paper():
    model = build_model(MLPSpec("hourglass", 12, 10, 20, 5, 2))
    assert all(m.bias is None for m in model.modules() if isinstance(m, torch.nn.Linear))
    norms = [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm1d)]
    assert len(norms) == 2 and all(not n.affine for n in norms)
    out = model(torch.randn(6, 12))
    assert out.shape == (6, 10) and out.min() >= 0 and out.max() <= 1


GIVEN = {
    "hourglass": {"d_h": 8, "depth": 2},
    "conventional": {"depth": 2},
    "isotropic": {"depth": 2},
}


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_width_for_budget_hits_target(family):
    """The budget-fixed width gives the count closest to the budget: one unit more or less is
    never closer (checked on the one formula, for every registered family)."""
    fam = FAMILIES[family]
    for budget in (5e4, 2e5, 1e6, 3.3e6):
        w = width_for_budget(family, budget, GIVEN[family], d_x=64, d_y=64)

        def count(width):
            dims = fam.complete({**GIVEN[family], fam.derived: width}, 64)
            return trainable_params(64, 64, dims["d_z"], dims["d_h"], dims["depth"])

        assert abs(count(w) - budget) <= abs(count(w + 1) - budget)
        assert abs(count(w) - budget) <= abs(count(w - 1) - budget)


def test_isotropic_counts():
    spec = MLPSpec("isotropic", 784, 784, 1000, 1000, 3)
    assert count_params(spec).trainable == 784 * 1000 + 2 * 3 * 1000 * 1000 + 784 * 1000
    with pytest.raises(SpecError, match="d_h = d_z"):
        MLPSpec("isotropic", 784, 784, 1000, 999, 3)
