"""The boundary between Hydra and the code: a composed DictConfig becomes frozen dataclasses.

Nothing below this module sees a DictConfig. Every check that can fail on user input raises
ConfigError with one line naming the key and the fix.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from ..models import MLPSpec
from .data import IMAGE_SHAPES, DataSettings
from .tasks import TASK_NAMES, Task, TaskSettings, make_task
from .train import DECAYS, TrainSettings


class ConfigError(ValueError):
    """A configuration value a user must change."""


@dataclass(frozen=True)
class ArchSettings:
    family: str = "hourglass"
    d_z: int | None = None
    d_h: int = 115
    depth: int = 4
    fix_w_in: bool = False


@dataclass(frozen=True)
class Settings:
    data: DataSettings
    task: TaskSettings
    arch: ArchSettings
    train: TrainSettings
    device: str
    run_dir: str
    raw: dict[str, Any]  # the resolved config as plain data (stored on studies)

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return IMAGE_SHAPES[self.data.name]

    def dims(self) -> tuple[int, int]:
        """(d_x, d_y) for this dataset and task, known without loading any data."""
        c, h, w = self.image_shape
        return make_task(self.task).input_shape(self.image_shape), c * h * w

    def spec(self, arch: ArchSettings | None = None) -> MLPSpec:
        a = arch or self.arch
        d_x, d_y = self.dims()
        d_z = a.d_z if a.d_z is not None else (d_y if a.family == "conventional" else None)
        if d_z is None:
            raise ConfigError("arch.d_z is not set: give the residual width, e.g. arch.d_z=785")
        return MLPSpec(a.family, d_x, d_y, d_z, a.d_h, a.depth, a.fix_w_in)

    @property
    def task_obj(self) -> Task:
        return make_task(self.task)


def build(cls: type, values: dict[str, Any], section: str) -> Any:
    """Construct a settings dataclass from a config section, naming unknown or bad keys."""
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - names)
    if unknown:
        raise ConfigError(
            f"unknown key {section}.{unknown[0]}; known keys: {', '.join(sorted(names))}"
        )
    types = {f.name: f.type for f in dataclasses.fields(cls)}
    out = {}
    for key, value in values.items():
        kind = str(types[key])
        try:
            if value is None or kind.startswith("str"):
                out[key] = value
            elif kind.startswith("bool"):
                if not isinstance(value, bool):
                    raise ValueError
                out[key] = value
            elif kind.startswith("int"):
                if isinstance(value, bool) or float(value) != int(float(value)):
                    raise ValueError
                out[key] = int(float(value))
            elif kind.startswith("float"):
                out[key] = float(value)
            else:
                out[key] = value
        except (TypeError, ValueError):
            raise ConfigError(f"{section}.{key}={value!r} is not a valid {kind}") from None
    return cls(**out)


def _positive(section: str, **values: float) -> None:
    for key, value in values.items():
        if not value > 0:
            raise ConfigError(f"{section}.{key} must be positive, got {value}")


def from_config(raw: dict[str, Any]) -> Settings:
    """Validate a resolved config (as plain containers) and build the settings."""
    data = build(DataSettings, raw["dataset"], "dataset")
    if data.name not in IMAGE_SHAPES:
        raise ConfigError(f"unknown dataset {data.name!r}; choose one of {', '.join(IMAGE_SHAPES)}")
    train_raw = dict(raw["train"])
    flips = train_raw.pop("flips", 1)
    task = build(TaskSettings, {**raw["task"], "flips": flips}, "task")
    if task.name not in TASK_NAMES:
        raise ConfigError(f"unknown task {task.name!r}; choose one of {', '.join(TASK_NAMES)}")
    if task.flips not in (1, 2, 4):
        raise ConfigError(f"train.flips must be 1, 2 or 4, got {task.flips}")
    train = build(TrainSettings, train_raw, "train")
    _positive(
        "train",
        epochs=train.epochs,
        batch_size=train.batch_size,
        lr=train.lr,
        eval_every=train.eval_every,
    )
    if train.decay not in DECAYS:
        raise ConfigError(f"train.decay={train.decay!r}; choose one of {', '.join(DECAYS)}")
    if train.batch_size < 2:
        raise ConfigError("train.batch_size must be at least 2 (BatchNorm needs a batch)")
    if not 0 <= train.weight_decay:
        raise ConfigError(f"train.weight_decay must be >= 0, got {train.weight_decay}")
    if task.sigma < 0:
        raise ConfigError(f"task.sigma must be >= 0, got {task.sigma}")
    arch = build(ArchSettings, raw["arch"], "arch")
    for key in ("threads", "workers", "worker"):
        value = raw.get(key)
        if value is None and key == "threads":
            continue
        if isinstance(value, bool) or not isinstance(value, int) or value < (key != "worker"):
            raise ConfigError(
                f"{key}={value!r} must be a whole number{' >= 0' if key == 'worker' else ' >= 1'}"
            )
    return Settings(
        data=data,
        task=task,
        arch=arch,
        train=train,
        device=str(raw.get("device", "auto")),
        run_dir=str(raw.get("run_dir", "runs")),
        raw=raw,
    )
