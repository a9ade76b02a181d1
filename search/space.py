"""Search spaces and parameter budgets: from config data to a feasible architecture, or a reason.

A family's space has entries for d_z, d_h, depth and lr (see conf/space/). Parameter counts are
exact and cheap, so a sampled configuration is checked against the family's shape rule and the
budget before anything is trained; in budget-matched mode one width is derived from the budget.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..models import MLPSpec, SpecError, count_params, family, trainable_params, width_for_budget
from .errors import ConfigError, unknown_key

INT_KEYS = ("d_z", "d_h", "depth")
KEYS = (*INT_KEYS, "lr", "arch")


@dataclass(frozen=True)
class Dim:
    """One entry: choices, a range, or explicit (d_z, d_h, depth) architectures."""

    name: str
    choices: tuple | None = None
    low: float | None = None
    high: float | None = None
    log: bool = False
    step: float | None = None

    def values(self) -> list:
        """All values, for a grid; only entries with choices have them."""
        if self.choices is None:
            raise ConfigError(
                f"the grid sampler needs choices for every entry, but {self.name} is a range: "
                f"write {self.name}: {{choices: [...]}} or pick another sampler"
            )
        return list(self.choices)

    def bounds(self) -> tuple[float, float]:
        if self.choices is not None:
            nums = [float(c) for c in self.choices]
            return min(nums), max(nums)
        return float(self.low), float(self.high)  # type: ignore[arg-type]


@dataclass(frozen=True)
class Budget:
    min_params: float | None = None
    max_params: float | None = None
    targets: tuple[float, ...] | None = None
    tolerance: float = 0.05

    @property
    def matched(self) -> bool:
        return bool(self.targets)


@dataclass(frozen=True)
class FamilySpace:
    family: str
    dims: dict[str, Dim]

    @property
    def derived(self) -> str:
        """The width a budget target fixes (the family decides)."""
        return family(self.family).derived


@dataclass(frozen=True)
class Candidate:
    spec: MLPSpec
    lr: float | None  # None: the trial trains every learning rate of search.lrs
    params: int
    params_total: int
    target: float | None = None

    @property
    def key(self) -> str:
        s, lr = self.spec, "*" if self.lr is None else f"{self.lr:.6g}"
        return f"{s.family}|{s.d_z}|{s.d_h}|{s.depth}|{lr}|{int(s.fix_w_in)}"


class Infeasible(Exception):
    """A sampled configuration that must not be trained; the message says why."""


def arch_label(d_z: int, d_h: int, depth: int) -> str:
    return f"{d_z}x{d_h}x{depth}"


def parse_dim(name: str, raw: Any, family: str, d_x: int) -> Dim:
    where = f"space.{family}.{name}"
    if not isinstance(raw, dict):
        raw = {"choices": raw if isinstance(raw, list) else [raw]}
    raw = dict(raw)
    per_input = bool(raw.pop("per_input", False))
    if per_input and name != "d_z":
        raise ConfigError(f"{where}: per_input applies to d_z only")
    scale = d_x if per_input else 1
    if "configs" in raw:
        if name != "arch":
            raise ConfigError(f"{where}: configs belong under an `arch` entry")
        configs = raw.pop("configs")
        try:
            labels = tuple(arch_label(*(int(v) for v in c)) for c in configs)
        except (TypeError, ValueError):
            raise ConfigError(f"{where}.configs must be a list of [d_z, d_h, depth]") from None
        return Dim(name, choices=labels)
    if "choices" in raw:
        choices = raw.pop("choices")
        if not choices:
            raise ConfigError(f"{where}.choices is empty")
        if name in INT_KEYS:
            choices = [int(round(float(c) * scale)) for c in choices]
        else:
            choices = [float(c) for c in choices]
        extra = sorted(set(raw))
        if extra:
            raise ConfigError(f"{where}: unexpected key {extra[0]} beside choices")
        return Dim(name, choices=tuple(choices))
    try:
        low, high = float(raw.pop("low")) * scale, float(raw.pop("high")) * scale
    except KeyError:
        raise ConfigError(f"{where} needs choices, or low and high") from None
    log, step = bool(raw.pop("log", False)), raw.pop("step", None)
    if raw:
        raise ConfigError(f"{where}: unknown key {sorted(raw)[0]}")
    if not 0 < low <= high:
        raise ConfigError(f"{where}: need 0 < low <= high, got low={low}, high={high}")
    if log and step not in (None, 1):
        raise ConfigError(f"{where}: log ranges take no step")
    if name in INT_KEYS:
        low, high = int(round(low)), int(round(high))
    return Dim(name, low=low, high=high, log=log, step=None if step is None else float(step))


def parse_family_space(name: str, raw: dict[str, Any], d_x: int, lrs: bool = False) -> FamilySpace:
    """A family's space; with `lrs` the trial trains every learning rate of search.lrs, so the
    space has no lr entry."""
    unknown = sorted(set(raw) - set(KEYS))
    if unknown:
        raise ConfigError(f"space.{name}.{unknown[0]} is not a search key; use {', '.join(KEYS)}")
    fam = family(name)
    fixed = sorted(set(raw) & set(INT_KEYS) - set(fam.sampled))
    if fixed:
        raise ConfigError(
            f"space.{name}.{fixed[0]}: {name} does not sample {fixed[0]} ({fam.rule}); "
            f"its space takes {', '.join(fam.sampled)} and lr"
        )
    dims = {name_: parse_dim(name_, value, name, d_x) for name_, value in raw.items()}
    if lrs and "lr" in dims:
        raise ConfigError(
            f"space.{name}.lr and search.lrs both set the learning rate: drop one (search.lrs "
            f"trains every rate in each trial; an lr entry samples one per trial)"
        )
    if not lrs and "lr" not in dims:
        raise ConfigError(
            f"space.{name} needs an lr entry (choices or a range), or give search.lrs"
        )
    if "arch" in dims and any(k in dims for k in INT_KEYS):
        raise ConfigError(f"space.{name}: give either arch configs or d_z/d_h/depth, not both")
    return FamilySpace(name, dims)


def parse_budget(raw: dict[str, Any]) -> Budget:
    for key in raw:
        if key not in ("min_params", "max_params", "targets", "tolerance"):
            raise unknown_key("search.budget", str(key), Budget.__dataclass_fields__)

    def num(key: str) -> float | None:
        value = raw.get(key)
        if value is None:
            return None
        try:
            value = float(value)
        except (TypeError, ValueError):
            raise ConfigError(f"search.budget.{key}={value!r} is not a number") from None
        if value <= 0:
            raise ConfigError(f"search.budget.{key} must be positive, got {value}")
        return value

    targets = raw.get("targets")
    if targets is not None:
        if not isinstance(targets, list) or not targets:
            raise ConfigError("search.budget.targets must be a non-empty list of parameter counts")
        try:
            targets = tuple(float(t) for t in targets)
        except (TypeError, ValueError):
            raise ConfigError("search.budget.targets must hold numbers") from None
        if min(targets) <= 0:
            raise ConfigError("search.budget.targets must be positive")
    budget = Budget(
        num("min_params"), num("max_params"), targets, float(raw.get("tolerance", 0.05))
    )
    if budget.min_params and budget.max_params and budget.min_params > budget.max_params:
        raise ConfigError(
            f"empty budget: search.budget.min_params={budget.min_params:.0f} is above "
            f"max_params={budget.max_params:.0f}"
        )
    if not 0 < budget.tolerance < 1:
        raise ConfigError("search.budget.tolerance must be between 0 and 1")
    return budget


def suggest(trial: Any, dim: Dim) -> Any:
    if dim.choices is not None:
        return trial.suggest_categorical(dim.name, list(dim.choices))
    if dim.name in INT_KEYS:
        step = int(dim.step) if dim.step else 1
        return trial.suggest_int(dim.name, int(dim.low), int(dim.high), step=step, log=dim.log)
    return trial.suggest_float(dim.name, dim.low, dim.high, log=dim.log, step=dim.step)


def grid_of(space: FamilySpace, budget: Budget) -> dict[str, list]:
    """The GridSampler search space: every entry's choices (and the budget targets)."""
    grid = {
        name: dim.values()
        for name, dim in space.dims.items()
        if not (budget.matched and name == space.derived)
    }
    if budget.matched:
        grid["budget"] = list(budget.targets)  # type: ignore[arg-type]
    return grid


def sample(
    trial: Any, space: FamilySpace, budget: Budget, d_x: int, d_y: int, fix_w_in: bool
) -> Candidate:
    """Suggest a configuration; raise Infeasible when it must not be trained."""
    dims = space.dims
    values: dict[str, Any] = {}
    target = None
    if "arch" in dims:
        d_z, d_h, depth = (int(v) for v in str(suggest(trial, dims["arch"])).split("x"))
        values.update(d_z=d_z, d_h=d_h, depth=depth)
    else:
        for name in INT_KEYS:
            if name in dims and not (budget.matched and name == space.derived):
                values[name] = int(suggest(trial, dims[name]))
    if budget.matched and "arch" not in dims:
        target = float(trial.suggest_categorical("budget", list(budget.targets)))
        values[space.derived] = width_for_budget(
            space.family, target, values, d_x=d_x, d_y=d_y, fix_w_in=fix_w_in
        )
    lr = float(suggest(trial, dims["lr"])) if "lr" in dims else None
    values = family(space.family).complete(values, d_y)
    missing = [k for k in INT_KEYS if k not in values]
    if missing:
        raise ConfigError(f"space.{space.family} gives no {missing[0]}")
    try:
        spec = MLPSpec(
            space.family, d_x, d_y, values["d_z"], values["d_h"], values["depth"], fix_w_in
        )
    except SpecError as exc:
        if target is None:
            raise Infeasible(f"shape: {exc}") from None
        # The budget fixed the width that breaks the rule: say so, in keys a sweep has.
        fam, derived = family(space.family), space.derived
        given = ", ".join(f"{k} {values[k]}" for k in fam.sampled if k != derived)
        raise Infeasible(
            f"shape: {space.family} with {given} cannot meet the budget {target:,.0f}: it "
            f"gives {derived}={values[derived]}, and {space.family} needs {fam.rule}"
        ) from None
    counts = count_params(spec)
    p = counts.trainable
    if target is not None and abs(p - target) > budget.tolerance * target:
        raise Infeasible(
            f"budget: {p} parameters is not within {budget.tolerance:.0%} of {target:.0f}"
        )
    if budget.min_params is not None and p < budget.min_params:
        raise Infeasible(f"budget: {p} parameters is below min_params={budget.min_params:.0f}")
    if budget.max_params is not None and p > budget.max_params:
        raise Infeasible(f"budget: {p} parameters is above max_params={budget.max_params:.0f}")
    return Candidate(spec, lr, p, counts.total, target)


def param_range(space: FamilySpace, d_x: int, d_y: int, fix_w_in: bool) -> tuple[int, int]:
    """Smallest and largest trainable count the space can produce (P grows with each width)."""

    def count(values: dict[str, int]) -> int:
        full = family(space.family).complete(values, d_y)
        return trainable_params(d_x, d_y, *(int(full[k]) for k in INT_KEYS), fix_w_in)

    dims = space.dims
    if "arch" in dims:
        sizes = [
            count(dict(zip(INT_KEYS, map(int, c.split("x")), strict=True)))
            for c in dims["arch"].choices
        ]
        return min(sizes), max(sizes)
    sampled = [k for k in INT_KEYS if k in dims]
    lo = {k: int(dims[k].bounds()[0]) for k in sampled}
    hi = {k: int(dims[k].bounds()[1]) for k in sampled}
    return count(lo), count(hi)


def check_feasible(space: FamilySpace, budget: Budget, d_x: int, d_y: int, fix_w_in: bool) -> None:
    """Refuse a space or budget that no configuration can meet, before any trial runs."""
    if "arch" not in space.dims:
        needed = list(family(space.family).sampled)
        if budget.matched:
            needed = [k for k in needed if k != space.derived]
        missing = [k for k in needed if k not in space.dims]
        if missing:
            raise ConfigError(f"space.{space.family} needs an entry for {missing[0]}")
    if budget.matched and "arch" not in space.dims:
        return  # the derived width adapts; individual targets are checked per trial
    lo, hi = param_range(space, d_x, d_y, fix_w_in)
    if budget.max_params is not None and lo > budget.max_params:
        raise ConfigError(
            f"impossible budget for {space.family}: its smallest configuration has {lo} "
            f"trainable parameters, above search.budget.max_params={budget.max_params:.0f}; "
            f"raise max_params or shrink space.{space.family}"
        )
    if budget.min_params is not None and hi < budget.min_params:
        raise ConfigError(
            f"impossible budget for {space.family}: its largest configuration has {hi} "
            f"trainable parameters, below search.budget.min_params={budget.min_params:.0f}"
        )
