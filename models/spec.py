"""A model's absolute dimensions, checked against its family's shape rule at construction.

Plain data (no torch): the configuration, the search space and the parameter formula use it
without loading the model code.
"""

from __future__ import annotations

from dataclasses import dataclass

from .family import SpecError, family


@dataclass(frozen=True)
class MLPSpec:
    """Absolute dimensions of one model; invariants are checked at construction."""

    family: str
    d_x: int
    d_y: int
    d_z: int
    d_h: int
    depth: int
    fix_w_in: bool = False

    def __post_init__(self) -> None:
        rules = family(self.family)
        for name in ("d_x", "d_y", "d_z", "d_h", "depth"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise SpecError(f"{name} must be a positive integer, got {value!r}")
        rules.check(self)
