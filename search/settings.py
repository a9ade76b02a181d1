"""The groups of the typed configuration, as plain frozen dataclasses (no torch, no Optuna):
the task, the training recipe, the early-stopping rule, the sampler and the storage. The
modules that use them import them from here; search/config.py builds them from the composed
config."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .errors import ConfigError, StorageError
from .urls import shown, sqlite_url

TASK_NAMES = ("gen_classify", "denoise", "superres")
# Training-set variants per `flips`, as the axes of (N, C, H, W) to flip (the paper's order):
# x2 is {none, horizontal+vertical}, x4 {none, horizontal, vertical, both}.
FLIPS: dict[int, list[tuple[int, ...]]] = {1: [()], 2: [(), (2, 3)], 4: [(), (3,), (2,), (2, 3)]}


@dataclass(frozen=True)
class TaskSettings:
    name: str = "gen_classify"
    sigma: float = 0.25  # denoising noise level
    noise_seed: int = 1234  # eval/test noise is drawn once from this seed
    flips: int = 1  # training-set augmentation, see FLIPS

    def input_size(self, image_shape: tuple[int, int, int]) -> int:
        """d_x for images of this (C, H, W): super-resolution sees them at half size."""
        c, h, w = image_shape
        return c * (h // 2) * (w // 2) if self.name == "superres" else c * h * w


@dataclass(frozen=True)
class TrainSettings:
    epochs: int = 20
    batch_size: int = 128
    lr: float = 1e-3
    weight_decay: float = 0.01
    eval_every: int = 1  # epochs between evaluations (the last epoch is always evaluated)
    bf16: bool = False  # bf16 autocast, CUDA only
    seed: int = 0
    decay: str = "step"  # linear decay to 0 stepped per "step" or per "epoch" (paper: MNIST)
    pack: str = "auto"  # train a trial's replicas as one batched model: auto | true | false
    pack_max: int | None = None  # most replicas in one pack (None: as memory allows)


DECAYS = ("step", "epoch")
SAVE_MODES = ("best", "all", "none")  # search.save: weights kept per family and budget


@dataclass(frozen=True)
class EarlyStop:
    enabled: bool = False
    epoch: int = 2
    margin_db: float = 1.0
    min_trials: int = 3


SAMPLERS = ("tpe", "nsga2", "gp", "random", "grid")
EXHAUSTIVE_MAX = 10_000  # default: finite spaces up to this many configurations are rated whole


@dataclass(frozen=True)
class SamplerSettings:
    """The `sampler` group; each sampler reads the options it has."""

    name: str = "tpe"
    seed: int | None = None  # None: derived from the study name, distinct per worker
    n_startup_trials: int = 5  # tpe, gp
    exhaustive_max: int = EXHAUSTIVE_MAX  # tpe
    population_size: int = 20  # nsga2

    def __post_init__(self) -> None:
        for key, low in (("n_startup_trials", 0), ("exhaustive_max", 0), ("population_size", 2)):
            if getattr(self, key) < low:
                raise ConfigError(
                    f"sampler.{key}={getattr(self, key)!r}: give a whole number >= {low}"
                )


@dataclass(frozen=True)
class StorageSettings:
    kind: str = "sqlite"
    url: str | None = None  # any Optuna storage URL; overrides the fields below
    path: str | None = None  # sqlite and journal: the file (run_dir/hgsearch.db, .journal)
    host: str = "127.0.0.1"
    port: int = 5432
    user: str = "postgres"
    database: str = "hgsearch"
    heartbeat_interval: int = 20  # seconds; RDB storages shared by several workers
    grace_period: int = 60
    max_retry: int = 2  # retries of a trial whose worker died

    @property
    def journal(self) -> bool:
        return self.kind == "journal" and not self.url

    @property
    def shared(self) -> bool:
        """Several processes may write at once (heartbeats, no stale-trial sweep by us)."""
        return self.journal or self.resolved_url().startswith(("postgresql", "mysql"))

    def resolved_url(self) -> str:
        if self.url:
            return self.url
        if self.kind == "postgres":
            return f"postgresql+psycopg2://{self.user}@{self.host}:{self.port}/{self.database}"
        if self.kind in ("sqlite", "journal") and self.path:
            return str(self.path) if self.kind == "journal" else sqlite_url(self.path)
        raise StorageError(f"storage.url is not set for storage={self.kind}")

    def where(self) -> str:
        """The storage for humans: a file path, or a URL without its secrets."""
        return str(Path(self.path).absolute()) if self.journal else shown(self.resolved_url())
