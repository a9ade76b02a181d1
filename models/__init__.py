"""The MLP families and their exact parameter counts.

The registry, the spec and the formula are plain Python; the torch model is loaded on first
use (`ResidualMLP`, `build_model`), so configuration and error paths start fast.
"""

from __future__ import annotations

from typing import Any

from .budget import ParamCount, count_params, trainable_params, width_for_budget
from .family import BASELINE, CANDIDATE, FAMILIES, Family, SpecError, family
from .spec import MLPSpec

__all__ = [
    "BASELINE",
    "CANDIDATE",
    "FAMILIES",
    "Family",
    "MLPSpec",
    "ParamCount",
    "ResidualMLP",
    "SpecError",
    "build_model",
    "count_params",
    "family",
    "trainable_params",
    "width_for_budget",
]


def __getattr__(name: str) -> Any:
    if name in ("ResidualMLP", "build_model"):
        from . import mlp

        return getattr(mlp, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
