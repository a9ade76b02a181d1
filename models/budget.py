"""Exact parameter counts and budget-matched widths.

P = [d_z*d_x if W_in trainable] + 2*depth*d_z*d_h + d_y*d_z (BatchNorm is affine-free, no biases).
Because P is linear in d_z for a hourglass (given d_h, depth) and linear in d_h for a
conventional model (given depth), a target budget fixes that width directly.
"""

from __future__ import annotations

from dataclasses import dataclass

from .mlp import MLPSpec


@dataclass(frozen=True)
class ParamCount:
    trainable: int
    total: int


def count_params(spec: MLPSpec) -> ParamCount:
    """Trainable (without a fixed W_in) and total parameters, analytically."""
    w_in = spec.d_z * spec.d_x
    rest = 2 * spec.depth * spec.d_z * spec.d_h + spec.d_y * spec.d_z
    return ParamCount(trainable=rest + (0 if spec.fix_w_in else w_in), total=rest + w_in)


def width_for_budget(
    family: str,
    budget: float,
    *,
    d_x: int,
    d_y: int,
    depth: int,
    d_h: int | None = None,
    fix_w_in: bool = False,
) -> int:
    """The free width that makes the trainable count closest to `budget`.

    hourglass: d_z from (d_h, depth); conventional (d_z = d_y): d_h from depth.
    The result may break the family's shape rule; MLPSpec decides.
    """
    w_in = 0 if fix_w_in else d_x
    if family == "hourglass":
        if d_h is None:
            raise ValueError("hourglass budget matching needs d_h")
        return max(1, round(budget / (w_in + 2 * depth * d_h + d_y)))
    if family == "conventional":
        fixed = d_y * (w_in + d_y)
        return max(1, round((budget - fixed) / (2 * depth * d_y)))
    raise ValueError(f"unknown family {family!r}")
