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

TASK_NAMES = ("gen_classify", "denoise", "superres")


@dataclass(frozen=True)
class TaskSettings:
    name: str = "gen_classify"
    sigma: float = 0.25  # denoising noise level
    noise_seed: int = 1234  # eval/test noise is drawn once from this seed
    flips: int = 1  # training-set augmentation: 1 none, 2 +horizontal, 4 +vertical +both


@dataclass(frozen=True)
class Pairs:
    x: torch.Tensor  # (N, d_x) float32; clean images for denoise training (noised per batch)
    y: torch.Tensor  # (N, d_y) float32


@dataclass(frozen=True)
class TaskData:
    """Everything a training run needs, as tensors on one device."""

    task: Task
    train: Pairs
    eval: Pairs
    test: Pairs
    image_shape: tuple[int, int, int]  # (C, H, W) of targets

    @property
    def d_x(self) -> int:
        return self.train.x.shape[1]

    @property
    def d_y(self) -> int:
        return self.train.y.shape[1]


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

    def input_shape(self, image_shape: tuple[int, int, int]) -> int:
        c, h, w = image_shape
        return c * (h // 2) * (w // 2) if self.name == "superres" else c * h * w

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
    """Deterministic flips of the clean training images: x1 none, x2 +h, x4 +h, v, both."""
    variants = {1: [()], 2: [(), (3,)], 4: [(), (3,), (2,), (2, 3)]}
    if flips not in variants:
        raise ValueError(f"train flips must be 1, 2 or 4, got {flips}")
    stacks = [np.flip(images.images, axis=a) if a else images.images for a in variants[flips]]
    return ImageSet(np.concatenate(stacks), np.tile(images.labels, flips))


def _float(images: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(images)).float().div_(255.0)


def prepare(splits: Splits, settings: TaskSettings, device: torch.device | str = "cpu") -> TaskData:
    """Turn uint8 splits into task pairs on `device`; loaded once per study, reused per trial."""
    task = make_task(settings)
    train_set = flip_augment(splits.train, settings.flips)
    shape = tuple(splits.train.images.shape[1:])

    def targets(s: ImageSet) -> torch.Tensor:
        if task.name != "gen_classify":
            return _float(s.images).flatten(1)
        # Prototype of a class: its first image in the (unaugmented) training split.
        protos = {}
        for i, label in enumerate(splits.train.labels.tolist()):
            protos.setdefault(label, i)
        missing = sorted(set(s.labels.tolist()) - set(protos))
        if missing:
            raise ValueError(f"classes {missing} have no training image to serve as prototype")
        table = _float(splits.train.images).flatten(1)
        index = torch.tensor([protos[int(lbl)] for lbl in s.labels.tolist()], dtype=torch.long)
        return table[index]

    def pairs(s: ImageSet, noise_seed: int | None) -> Pairs:
        x = task.make_inputs(_float(s.images), noise_seed)
        return Pairs(x.to(device), targets(s).to(device))

    return TaskData(
        task=task,
        train=pairs(train_set, None),
        eval=pairs(splits.eval, settings.noise_seed),
        test=pairs(splits.test, settings.noise_seed + 1),
        image_shape=shape,
    )
