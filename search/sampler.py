"""Samplers, always constructed explicitly (Optuna 5 changed the multi-objective defaults)."""

from __future__ import annotations

import zlib
from typing import Any

import optuna

from .settings import ConfigError

SAMPLERS = ("tpe", "nsga2", "gp", "random", "grid")


def sampler_seed(raw: dict[str, Any], study_name: str, worker: int) -> int:
    """The configured seed, or one derived from the study name; distinct per worker.

    The grid sampler must get the same seed in every worker, so its seed ignores `worker`.
    """
    base = raw.get("seed")
    base = zlib.crc32(study_name.encode()) if base is None else int(base)
    return base if raw.get("name") == "grid" else base + 7919 * worker


def make_sampler(
    raw: dict[str, Any], study_name: str, worker: int, grid: dict[str, list] | None = None
) -> optuna.samplers.BaseSampler:
    name = raw.get("name")
    seed = sampler_seed(raw, study_name, worker)
    startup = int(raw.get("n_startup_trials", 5))
    if name == "tpe":
        return optuna.samplers.TPESampler(
            seed=seed,
            multivariate=True,
            group=True,
            n_startup_trials=startup,
            constant_liar=True,
        )
    if name == "nsga2":
        return optuna.samplers.NSGAIISampler(
            seed=seed, population_size=int(raw.get("population_size", 20))
        )
    if name == "gp":
        return optuna.samplers.GPSampler(seed=seed, n_startup_trials=startup)
    if name == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if name == "grid":
        if grid is None:
            raise ConfigError("the grid sampler needs a space of choices")
        return optuna.samplers.GridSampler(grid, seed=seed)
    raise ConfigError(
        f"unknown sampler {name!r}; choose one of {', '.join(SAMPLERS)} (sampler=...)"
    )
