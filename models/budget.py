"""The one parameter formula, and the width that meets a budget.

P = [d_z*d_x if W_in trainable] + 2*depth*d_z*d_h + d_y*d_z   (BatchNorm is affine-free, no
biases). A family's budget-fixed width is found on this formula by bisection (P grows with
every width), so no family carries a second copy of it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from .family import family
from .spec import MLPSpec


@dataclass(frozen=True)
class ParamCount:
    trainable: int
    total: int


def trainable_params(
    d_x: int, d_y: int, d_z: int, d_h: int, depth: int, fix_w_in: bool = False
) -> int:
    """The formula: trainable parameters of a ResidualMLP with these dimensions."""
    return (0 if fix_w_in else d_z * d_x) + 2 * depth * d_z * d_h + d_y * d_z


def count_params(spec: MLPSpec) -> ParamCount:
    """Trainable (without a fixed W_in) and total parameters, analytically."""
    dims = (spec.d_x, spec.d_y, spec.d_z, spec.d_h, spec.depth)
    return ParamCount(
        trainable=trainable_params(*dims, spec.fix_w_in), total=trainable_params(*dims)
    )


def width_for_budget(
    name: str,
    budget: float,
    given: Mapping[str, int],
    *,
    d_x: int,
    d_y: int,
    fix_w_in: bool = False,
) -> int:
    """The family's budget-fixed width that makes the trainable count closest to `budget`,
    the other sampled widths being `given` (e.g. hourglass: d_h and depth fix d_z).

    The result may break the family's shape rule; MLPSpec decides.
    """
    fam = family(name)

    def count(width: int) -> int:
        dims = fam.complete({**given, fam.derived: width}, d_y)
        return trainable_params(d_x, d_y, dims["d_z"], dims["d_h"], dims["depth"], fix_w_in)

    low, high = 1, 2
    while count(high) < budget:  # P grows with the width: bracket the budget, then bisect
        low, high = high, 2 * high
    while high - low > 1:
        mid = (low + high) // 2
        low, high = (mid, high) if count(mid) < budget else (low, mid)
    return min((low, high), key=lambda w: (abs(count(w) - budget), w))
