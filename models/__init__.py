"""The MLP families and their exact parameter counts."""

from .budget import ParamCount, count_params, trainable_params, width_for_budget
from .family import BASELINE, CANDIDATE, FAMILIES, Family, SpecError, family
from .mlp import MLPSpec, ResidualMLP, build_model

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
