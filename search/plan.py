"""A sweep's plan: the typed configuration plus what follows from it (study names, the run
folder, each family's stored fingerprint, sampler and goal), checked before anything runs."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna

from .config import Config, space_summary
from .errors import ConfigError
from .goal import Goal
from .memory import GB, available_bytes
from .metrics import DEFINITION
from .sampler import make_sampler
from .space import FamilySpace, check_feasible, grid_of


@dataclass(frozen=True)
class Plan:
    config: Config
    name_suffix: str = ""  # a multirun job's own values, e.g. "-train.epochs=2"

    @property
    def prefix(self) -> str:
        return (self.config.search.name or "sweep") + self.name_suffix

    @property
    def families(self) -> tuple[str, ...]:
        return self.config.search.families

    @property
    def goal(self) -> Goal:
        s = self.config.search
        return Goal(target=s.n_trials, max_attempts=s.max_attempts or 20 * s.n_trials)

    @property
    def run_folder(self) -> Path:
        c = self.config
        return Path(c.run_dir) / f"{self.prefix}-{c.task.name}-{c.data.name}"

    def space(self, family: str) -> FamilySpace:
        return self.config.spaces[family]

    def study_name(self, family: str) -> str:
        c = self.config
        mode = "-matched" if c.search.budget.matched else ""
        return f"{self.prefix}-{c.task.name}-{c.data.name}-{family}{mode}"

    def fingerprint(self, family: str) -> dict[str, Any]:
        """What a study stores of its configuration; resuming with another is refused."""
        c = self.config
        task = dataclasses.asdict(c.task)
        flips = task.pop("flips")
        how = ("seed", "pack", "pack_max")  # how it is computed, not what
        train = {k: v for k, v in dataclasses.asdict(c.train).items() if k not in how}
        return {
            "task": task,
            "dataset": {
                "name": c.data.name,
                "split_seed": c.data.split_seed,
                "limit": c.data.limit,
            },
            "family": family,
            "space": space_summary(self.space(family)),
            "budget": dataclasses.asdict(c.search.budget),
            "train": {**train, "flips": flips},
            "replicas": c.search.replicas,
            "lrs": list(c.search.lrs.get(family, ())) if c.search.lrs else None,
            "metric": c.search.metric,
            "fix_w_in": c.arch.fix_w_in,
            "psnr_definition": DEFINITION,
        }

    def sampler(self, family: str) -> optuna.samplers.BaseSampler:
        c = self.config
        grid = grid_of(self.space(family), c.search.budget) if c.sampler.name == "grid" else None
        return make_sampler(c.sampler, self.study_name(family), c.worker, grid)


def make_plan(config: Config, name_suffix: str = "") -> Plan:
    """The plan of a sweep: every searched family has a space that can meet the budget, and
    the sampler can take it; otherwise ConfigError now, before anything runs."""
    plan = Plan(config, name_suffix)
    d_x, d_y = config.dims()
    batch = config.train.batch_size
    need, have = (
        4 * 3 * batch * (d_x + d_y),
        available_bytes("cpu"),
    )  # the data is on the host first
    if need > have:
        raise ConfigError(
            f"train.batch_size={batch}: one batch alone needs about {need / GB:,.1f} GB, "
            f"{have / GB:,.1f} GB are available: lower it"
        )
    for family in plan.families:
        if family not in config.spaces:
            raise ConfigError(f"space.{family} is missing: the search space has no {family} entry")
        check_feasible(plan.space(family), config.search.budget, d_x, d_y, config.arch.fix_w_in)
        plan.sampler(family)
    return plan
