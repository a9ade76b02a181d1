"""The families, one object each in one registry: nothing outside this file names a family.

A family owns its shape rule, which widths a search samples and which one a parameter budget
fixes, how a sampled configuration becomes complete dimensions, and how it is drawn (label,
colour). Every family shares the block, the forward pass and the one parameter formula
(models/budget.py), so adding a family is a new entry here, its config and its tests.

    hourglass     d_z > d_h          free d_z, d_h, depth; a budget fixes d_z
    conventional  d_z = d_y < d_h    free d_h, depth;      a budget fixes d_h
    isotropic     d_z = d_h          free d_z, depth;      a budget fixes d_z
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

ARCH_KEYS = ("d_z", "d_h", "depth")


class SpecError(ValueError):
    """An architecture that breaks its family's shape rule."""


class Dims(Protocol):
    d_y: int
    d_z: int
    d_h: int


@dataclass(frozen=True)
class Family:
    """Defaults are the hourglass's; other families override what differs."""

    name: str
    label: str  # legend text
    color: str  # matplotlib colour
    rule: str  # the shape rule, as a reader sees it
    sampled: tuple[str, ...]  # architecture keys a search space draws
    derived: str  # the width a parameter budget fixes (one of `sampled`)

    def complete(self, values: Mapping[str, int], d_y: int) -> dict[str, int]:
        """Sampled values -> d_z, d_h, depth (the family's fixed relations filled in)."""
        return dict(values)

    def check(self, spec: Dims) -> None:
        """Raise SpecError when `spec` breaks the shape rule (message: the fix)."""


@dataclass(frozen=True)
class Hourglass(Family):
    def check(self, spec: Dims) -> None:
        if not spec.d_h < spec.d_z:
            raise SpecError(
                f"hourglass needs d_h < d_z (wide-narrow-wide), got d_h={spec.d_h}, "
                f"d_z={spec.d_z}: lower arch.d_h or raise arch.d_z"
            )


@dataclass(frozen=True)
class Conventional(Family):
    def complete(self, values: Mapping[str, int], d_y: int) -> dict[str, int]:
        return {"d_z": d_y, **{k: v for k, v in values.items() if v is not None}}

    def check(self, spec: Dims) -> None:
        if spec.d_z != spec.d_y:
            raise SpecError(
                f"conventional keeps the residual width equal to the output size "
                f"(d_z = d_y = {spec.d_y}), got d_z={spec.d_z}: drop arch.d_z or set it "
                f"to {spec.d_y}"
            )
        if not spec.d_h > spec.d_z:
            raise SpecError(
                f"conventional needs d_h > d_z (narrow-wide-narrow), got d_h={spec.d_h}, "
                f"d_z={spec.d_z}: raise arch.d_h above {spec.d_z}"
            )


@dataclass(frozen=True)
class Isotropic(Family):
    def complete(self, values: Mapping[str, int], d_y: int) -> dict[str, int]:
        out = {k: v for k, v in values.items() if v is not None}
        if "d_z" in out:
            out.setdefault("d_h", out["d_z"])
        return out

    def check(self, spec: Dims) -> None:
        if spec.d_h != spec.d_z:
            raise SpecError(
                f"isotropic keeps the block's hidden width equal to the residual width "
                f"(d_h = d_z), got d_h={spec.d_h}, d_z={spec.d_z}: drop arch.d_h"
            )


FAMILIES: dict[str, Family] = {
    f.name: f
    for f in (
        Hourglass(
            "hourglass",
            "Hourglass (wide-narrow-wide)",
            "tab:red",
            "d_h < d_z",
            ARCH_KEYS,
            "d_z",
        ),
        Conventional(
            "conventional",
            "Conventional (narrow-wide-narrow)",
            "tab:blue",
            "d_h > d_z = d_y",
            ("d_h", "depth"),
            "d_h",
        ),
        Isotropic(
            "isotropic",
            "Isotropic (no bottleneck, d_h = d_z)",
            "tab:green",
            "d_h = d_z",
            ("d_z", "depth"),
            "d_z",
        ),
    )
}
# What the research question compares by default (report.candidate, report.baseline).
CANDIDATE, BASELINE = "hourglass", "conventional"


def family(name: str) -> Family:
    """The registered family `name`, or SpecError naming the choices."""
    try:
        return FAMILIES[name]
    except KeyError:
        raise SpecError(f"unknown family {name!r}; choose one of {', '.join(FAMILIES)}") from None
