"""The paper's three image tasks as (input, target) pairs of flattened images in [0, 1].

gen_classify  x = image                        y = prototype of its class
denoise       x = clamp(y + sigma*N(0, I))     y = clean image   (fresh noise every pass)
superres      x = bicubic /2 (antialias off)   y = full-resolution image
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from .data import ImageSet, Splits
from .settings import FLIPS, TASK_NAMES, TaskSettings


@dataclass(frozen=True)
class Pairs:
    x: torch.Tensor  # (N, d_x) float32; clean images for denoise training (noised per batch)
    y: torch.Tensor  # (N, d_y) float32


@dataclass(frozen=True)
class TaskData:
    """Everything a training run needs, as tensors on one device."""

    task: Task
    train: Pairs | None  # materialized training pairs, or None when built per batch (`lazy`)
    eval: Pairs
    test: Pairs
    image_shape: tuple[int, int, int]  # (C, H, W) of targets
    lazy: LazyTrain | None = None

    @property
    def d_x(self) -> int:
        return self.eval.x.shape[1]

    @property
    def d_y(self) -> int:
        return self.eval.y.shape[1]

    @property
    def n_train(self) -> int:
        return self.lazy.size if self.lazy is not None else self.train.x.shape[0]

    def train_batch(self, idx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B,) indices into the (augmented) training set -> (x, y) before `perturb`."""
        if self.lazy is not None:
            return self.lazy.batch(idx)
        return self.train.x.index_select(0, idx), self.train.y.index_select(0, idx)


@dataclass(frozen=True)
class LazyTrain:
    """Training pairs built per batch from uint8 images on the device.

    For sets too large to hold as float pairs (ImageNet-32 with x4 flips would need ~60 GB):
    index i is image i % N under flip variant i // N, the order flip_augment materializes.
    """

    task: Task
    images: torch.Tensor  # (N, C, H, W) uint8, unaugmented
    labels: torch.Tensor  # (N,) int64
    prototypes: torch.Tensor | None  # (max_label + 1, d_y) for gen_classify
    flips: int

    @property
    def size(self) -> int:
        return self.images.shape[0] * self.flips

    def batch(self, idx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        n = self.images.shape[0]
        base, variant = idx % n, idx // n
        img = self.images[base].float().div_(255.0)  # (B, C, H, W)
        for k, axes in enumerate(FLIPS[self.flips]):
            for axis in axes:  # (B, C, H, W): 3 horizontal, 2 vertical
                img = torch.where((variant == k)[:, None, None, None], img.flip(axis), img)
        if self.prototypes is not None:
            y = self.prototypes[self.labels[base]]
        else:
            y = img.flatten(1)
        return self.task.make_inputs(img, None), y


@dataclass(frozen=True)
class Task:
    name: str
    sigma: float = 0.25

    @property
    def deterministic(self) -> bool:
        """True when a training input is the same on every pass (z_0 can be cached)."""
        return self.name != "denoise"

    def perturb(self, x: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
        """Training-time input of a batch: fresh noise for denoising, unchanged otherwise."""
        if self.name != "denoise":
            return x
        noise = torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)
        return (x + self.sigma * noise).clamp_(0.0, 1.0)

    def make_inputs(self, clean: torch.Tensor, noise_seed: int | None) -> torch.Tensor:
        """(N, C, H, W) clean -> (N, d_x). Denoise: fixed-seed noise, or clean when None."""
        if self.name == "superres":
            low = F.interpolate(clean, scale_factor=0.5, mode="bicubic", antialias=False)
            return low.flatten(1)
        flat = clean.flatten(1)
        if self.name == "denoise" and noise_seed is not None:
            g = torch.Generator(device="cpu").manual_seed(noise_seed)
            noise = torch.randn(flat.shape, generator=g)
            return (flat + self.sigma * noise).clamp_(0.0, 1.0)
        return flat


def make_task(settings: TaskSettings) -> Task:
    if settings.name not in TASK_NAMES:
        raise ValueError(
            f"unknown task {settings.name!r}; choose one of {', '.join(TASK_NAMES)} (task=...)"
        )
    return Task(settings.name, settings.sigma)


def flip_augment(images: ImageSet, flips: int) -> ImageSet:
    """Deterministic flips of the clean training images, stacked in FLIPS order."""
    if flips not in FLIPS:
        raise ValueError(f"train flips must be 1, 2 or 4, got {flips}")
    stacks = [np.flip(images.images, axis=a) if a else images.images for a in FLIPS[flips]]
    return ImageSet(np.concatenate(stacks), np.tile(images.labels, flips))


def _tensor(array: np.ndarray, dtype=None) -> torch.Tensor:
    """A tensor of `array`, copied only when it must be: to change its dtype, to make it
    contiguous, or because it is read-only (idx files are read into read-only arrays, which
    torch.from_numpy warns about)."""
    array = np.ascontiguousarray(array, dtype=dtype)
    return torch.from_numpy(array if array.flags.writeable else array.copy())


def _float(images: np.ndarray) -> torch.Tensor:
    return _tensor(images, np.float32).div_(255.0)


def prototype_table(train: ImageSet) -> tuple[torch.Tensor, set[int]]:
    """Row `label`: the first image of that class in the (unaugmented) training split; and
    the set of labels that have one."""
    table = torch.zeros((int(train.labels.max()) + 1, int(np.prod(train.images.shape[1:]))))
    seen: set[int] = set()
    for i, label in enumerate(train.labels.tolist()):
        if label not in seen:
            seen.add(label)
            table[label] = _float(train.images[i]).flatten()
    return table, seen


def prepare(
    splits: Splits,
    settings: TaskSettings,
    device: torch.device | str = "cpu",
    materialize_bytes: float = 4 * 2**30,
) -> TaskData:
    """Turn uint8 splits into task pairs on `device`; loaded once per study, reused per trial.

    Training pairs are materialized as float tensors when they fit in `materialize_bytes`
    (fastest); larger sets keep uint8 images and build each batch on the device.
    """
    task = make_task(settings)
    shape = tuple(splits.train.images.shape[1:])
    protos, with_proto = (
        prototype_table(splits.train) if task.name == "gen_classify" else (None, set())
    )

    def targets(s: ImageSet) -> torch.Tensor:
        if protos is None:
            return _float(s.images).flatten(1)
        missing = sorted(set(s.labels.tolist()) - with_proto)
        if missing:
            raise ValueError(f"classes {missing} have no training image to serve as prototype")
        return protos[_tensor(s.labels)]

    def pairs(s: ImageSet, noise_seed: int | None) -> Pairs:
        x = task.make_inputs(_float(s.images), noise_seed)
        return Pairs(x.to(device), targets(s).to(device))

    per_image = 4 * (settings.input_size(shape) + int(np.prod(shape)))
    n_train = len(splits.train.labels) * settings.flips
    if settings.flips not in (1, 2, 4):
        raise ValueError(f"train flips must be 1, 2 or 4, got {settings.flips}")
    if n_train * per_image <= materialize_bytes:
        train, lazy = pairs(flip_augment(splits.train, settings.flips), None), None
    else:
        train = None
        lazy = LazyTrain(
            task=task,
            images=_tensor(splits.train.images).to(device),
            labels=_tensor(splits.train.labels).to(device),
            prototypes=None if protos is None else protos.to(device),
            flips=settings.flips,
        )
    return TaskData(
        task=task,
        train=train,
        eval=pairs(splits.eval, settings.noise_seed),
        test=pairs(splits.test, settings.noise_seed + 1),
        image_shape=shape,
        lazy=lazy,
    )
