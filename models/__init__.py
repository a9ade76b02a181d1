"""The two MLP families and their exact parameter counts."""

from .budget import ParamCount, count_params, width_for_budget
from .mlp import FAMILIES, MLPSpec, ResidualMLP, SpecError, build_model

__all__ = [
    "FAMILIES",
    "MLPSpec",
    "ParamCount",
    "ResidualMLP",
    "SpecError",
    "build_model",
    "count_params",
    "width_for_budget",
]
