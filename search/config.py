"""The boundary between Hydra and the code: the composed config becomes one typed `Config`.

It is parsed once, at the entry point; nothing below receives a DictConfig or a raw dict. Every
group is a frozen dataclass; a key that no dataclass has is refused in one line naming the
nearest valid one, a value of the wrong type or range in one line naming the key and the fix.
"""

from __future__ import annotations

import dataclasses
import re
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ..analysis.settings import OVERLAYS, PLOT_FORMATS, ReportSettings
from ..models import BASELINE, CANDIDATE, FAMILIES, MLPSpec, family
from .data import IMAGE_SHAPES, DataSettings
from .errors import ConfigError, unknown_key
from .record import METRICS
from .settings import (
    DECAYS,
    FLIPS,
    SAMPLERS,
    SAVE_MODES,
    TASK_NAMES,
    EarlyStop,
    SamplerSettings,
    StorageSettings,
    TaskSettings,
    TrainSettings,
)
from .space import Budget, FamilySpace, parse_budget, parse_family_space


@dataclass(frozen=True)
class ArchSettings:
    """One model (`hgsearch train`, `params`); a width left null is the family's to fill."""

    family: str = CANDIDATE
    d_z: int | None = None
    d_h: int | None = None
    depth: int = 4
    fix_w_in: bool = False


@dataclass(frozen=True)
class SearchSettings:
    name: str | None = None  # study-name prefix
    families: tuple[str, ...] = (CANDIDATE, BASELINE)
    n_trials: int = 10
    replicas: int = 1
    metric: str = "eval_psnr"
    max_attempts: int | None = None
    allow_space_change: bool = False
    save: str = "best"  # weights kept: best per family and budget, all, none
    # Learning rates every trial trains (seeds x lrs, as packs), per family; None: space.*.lr
    # samples one per trial. The trial's value is the best lr's mean over seeds (the paper's).
    lrs: Mapping[str, tuple[float, ...]] | None = None
    budget: Budget = field(default_factory=Budget)
    early_stop: EarlyStop = field(default_factory=EarlyStop)


@dataclass(frozen=True)
class Config:
    task: TaskSettings
    data: DataSettings
    arch: ArchSettings
    train: TrainSettings
    search: SearchSettings
    spaces: Mapping[str, FamilySpace]  # every family of the `space` group, parsed
    sampler: SamplerSettings
    storage: StorageSettings
    report: ReportSettings
    device: str = "auto"
    threads: int | None = None
    workers: int = 1
    worker: int = 0
    run_dir: str = "runs"
    verbosity: int = 1  # 0 warnings and results, 1 a line per trial, 2 a line per epoch too
    save: str | None = None  # `hgsearch train`: write the trained weights here
    load: str | None = None  # `hgsearch train`: evaluate these weights instead of training

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return IMAGE_SHAPES[self.data.name]

    def dims(self) -> tuple[int, int]:
        """(d_x, d_y) for this dataset and task, known without loading any data."""
        c, h, w = self.image_shape
        return self.task.input_size(self.image_shape), c * h * w

    def spec(self) -> MLPSpec:
        """The one model of the `arch` group."""
        a = self.arch
        d_x, d_y = self.dims()
        given = {"d_z": a.d_z, "d_h": a.d_h, "depth": a.depth}
        values = family(a.family).complete({k: v for k, v in given.items() if v}, d_y)
        for key in ("d_z", "d_h"):
            if key not in values:
                raise ConfigError(f"arch.{key} is not set: give it, e.g. arch.{key}=785")
        return MLPSpec(a.family, d_x, d_y, values["d_z"], values["d_h"], a.depth, a.fix_w_in)


# --- the typed builder ----------------------------------------------------------------------


def _kind(hint: Any) -> str:
    return getattr(hint, "__name__", str(hint).replace("typing.", ""))


def _coerce(value: Any, hint: Any, where: str) -> Any:
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        (inner,) = (a for a in args if a is not type(None))
        return _coerce(value, inner, where)
    if dataclasses.is_dataclass(hint):
        return build(hint, value, where)
    if origin is tuple:
        if isinstance(value, str) or not isinstance(value, list | tuple):
            raise ConfigError(f"{where}={value!r} must be a list, e.g. {where}=[a,b]")
        return tuple(_coerce(v, args[0], f"{where}[{i}]") for i, v in enumerate(value))
    if hint is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{where}={value!r} must be true or false")
        return value
    if hint is int:
        try:
            number = float(value)
            if isinstance(value, bool) or number != int(number):
                raise ValueError
        except (TypeError, ValueError, OverflowError):
            raise ConfigError(f"{where}={value!r} must be a whole number") from None
        return int(number)
    if hint is float:
        try:
            if isinstance(value, bool):
                raise ValueError
            return float(value)
        except (TypeError, ValueError):
            raise ConfigError(f"{where}={value!r} must be a number") from None
    if hint is str:
        if isinstance(value, dict | list | tuple):
            raise ConfigError(f"{where} must be a single value, got {value!r}")
        return str(value)
    return value  # Any


def build(cls: type, values: Any, section: str) -> Any:
    """A settings dataclass from a config section: unknown keys, wrong types refused."""
    if values is None:
        values = {}
    if not isinstance(values, Mapping):
        raise ConfigError(f"{section} must be a group of keys, got {values!r}")
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls) if f.init]
    for key in values:
        if key not in names:
            raise unknown_key(section, str(key), names)
    return cls(**{k: _coerce(v, hints[k], f"{section}.{k}") for k, v in values.items()})


def _positive(section: str, **values: float | None) -> None:
    for key, value in values.items():
        if value is not None and not value > 0:
            raise ConfigError(f"{section}.{key} must be positive, got {value}")


def _choice(where: str, value: str, choices: typing.Iterable[str]) -> None:
    choices = list(choices)
    if value not in choices:
        raise ConfigError(f"{where}={value!r}; choose one of {', '.join(choices)}")


# --- the parse -----------------------------------------------------------------------------

NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._=+-]{0,79}")
GROUPS = ("task", "dataset", "arch", "train", "search", "space", "sampler", "storage", "report")
SCALARS = {
    "device": str,
    "threads": int | None,
    "workers": int,
    "worker": int,
    "run_dir": str,
    "verbosity": int,
    "save": str | None,
    "load": str | None,
}


def parse(raw: Mapping[str, Any]) -> Config:
    """Validate the resolved config (plain containers) and build the typed configuration."""
    for key in raw:
        if key not in GROUPS and key not in SCALARS:
            raise unknown_key("", str(key), [*GROUPS, *SCALARS])
    data = build(DataSettings, raw.get("dataset"), "dataset")
    _choice("dataset", data.name, IMAGE_SHAPES)
    _choice("dataset.download", data.download.lower(), ("auto", "true", "false"))
    if data.limit is not None and data.limit < 2:
        raise ConfigError(f"dataset.limit={data.limit} must be at least 2 (or null for all)")
    train_raw = dict(raw.get("train") or {})
    flips = train_raw.pop("flips", 1)
    task = build(TaskSettings, {**(raw.get("task") or {}), "flips": flips}, "task")
    _choice("task", task.name, TASK_NAMES)
    if task.flips not in FLIPS:
        raise ConfigError(f"train.flips must be 1, 2 or 4, got {task.flips}")
    if task.sigma < 0:
        raise ConfigError(f"task.sigma must be >= 0, got {task.sigma}")
    train = build(TrainSettings, train_raw, "train")
    _positive("train", epochs=train.epochs, batch_size=train.batch_size, lr=train.lr)
    _positive("train", eval_every=train.eval_every)
    if train.batch_size < 2:
        raise ConfigError("train.batch_size must be at least 2 (BatchNorm needs a batch)")
    if train.weight_decay < 0:
        raise ConfigError(f"train.weight_decay must be >= 0, got {train.weight_decay}")
    _choice("train.decay", train.decay, DECAYS)
    train = dataclasses.replace(train, pack=train.pack.lower())
    _choice("train.pack", train.pack, ("auto", "true", "false"))
    _positive("train", pack_max=train.pack_max)
    arch = build(ArchSettings, raw.get("arch"), "arch")
    _choice("arch", arch.family, FAMILIES)
    scalars = {k: _coerce(raw[k], SCALARS[k], k) for k in SCALARS if k in raw}
    _positive("", threads=scalars.get("threads"), workers=scalars.get("workers", 1))
    if scalars.get("verbosity", 1) not in (0, 1, 2):
        raise ConfigError(f"verbosity={scalars['verbosity']} must be 0, 1 or 2 (-q, default, -v)")
    if scalars.get("worker", 0) < 0:
        raise ConfigError(f"worker={scalars['worker']} must be a whole number >= 0")

    search_raw = dict(raw.get("search") or {})
    budget = parse_budget(search_raw.pop("budget", None) or {})
    early = build(EarlyStop, search_raw.pop("early_stop", None), "search.early_stop")
    search = dataclasses.replace(
        build(SearchSettings, search_raw, "search"), budget=budget, early_stop=early
    )
    if search.name is not None and not NAME.fullmatch(search.name):
        raise ConfigError(
            f"search.name={search.name!r}: use 1-80 letters, digits and . _ - = + (it names "
            f"studies and a folder under run_dir)"
        )
    if not search.families:
        raise ConfigError(f"search.families is empty: list some of {', '.join(FAMILIES)}")
    for name in search.families:
        _choice("search.families", name, FAMILIES)
    search = dataclasses.replace(search, lrs=_lrs(search_raw.get("lrs"), search.families))
    _choice("search.metric", search.metric, METRICS)
    _choice("search.save", search.save, SAVE_MODES)
    _positive("search", n_trials=search.n_trials, replicas=search.replicas)
    _positive("search", max_attempts=search.max_attempts)

    config = Config(
        task=task,
        data=data,
        arch=arch,
        train=train,
        search=search,
        spaces={},
        sampler=build(SamplerSettings, raw.get("sampler"), "sampler"),
        storage=build(StorageSettings, raw.get("storage"), "storage"),
        report=build(ReportSettings, raw.get("report"), "report"),
        **scalars,
    )
    _choice("sampler", config.sampler.name, SAMPLERS)
    report = dataclasses.replace(config.report, overlay=config.report.overlay.lower())
    _choice("report.metric", report.metric, METRICS)
    _choice("report.overlay", report.overlay, OVERLAYS)
    if report.overlay_dataset is not None:
        _choice("report.overlay_dataset", report.overlay_dataset, IMAGE_SHAPES)
    for fmt in report.formats:
        _choice("report.formats", fmt, PLOT_FORMATS)
    _choice("report.candidate", report.candidate, FAMILIES)
    _choice("report.baseline", report.baseline, FAMILIES)

    d_x, _ = config.dims()
    space_raw = raw.get("space") or {}
    if not isinstance(space_raw, Mapping):
        raise ConfigError("space must map each family to its entries")
    spaces = {}
    for name, entries in space_raw.items():
        _choice("space", name, FAMILIES)
        if not isinstance(entries, Mapping):
            raise ConfigError(f"space.{name} must map d_z, d_h, depth, lr to their ranges")
        lrs = search.lrs is not None and name in search.lrs
        spaces[name] = parse_family_space(name, dict(entries), d_x, lrs)
    return dataclasses.replace(config, spaces=spaces, report=report)


def _lrs(raw: Any, families: tuple[str, ...]) -> dict[str, tuple[float, ...]] | None:
    """search.lrs as {family: rates}: a list serves every family, a mapping names them."""
    if raw is None:
        return None
    per = raw if isinstance(raw, Mapping) else {name: raw for name in families}
    out = {}
    for name, rates in per.items():
        _choice("search.lrs", str(name), FAMILIES)
        rates = _coerce(rates, tuple[float, ...], f"search.lrs.{name}")
        if not rates or min(rates) <= 0:
            raise ConfigError(f"search.lrs.{name} must be a non-empty list of positive rates")
        out[str(name)] = rates
    return out


def space_summary(space: FamilySpace) -> dict[str, Any]:
    """A space as plain data (stored with a study, compared on resume)."""
    return {
        name: {k: v for k, v in dataclasses.asdict(dim).items() if v not in (None, False)}
        for name, dim in space.dims.items()
    }
