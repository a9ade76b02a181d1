"""Train one model on one task: a single linear function, no Optuna.

Data stays on the device as whole tensors; each epoch is a fresh permutation sliced into
batches; in fp32 each step is `ManualStep` (backward written out, preallocated buffers), in
bf16 autograd under autocast; the loss is accumulated on the device and checked once per epoch
(no per-step host syncs). Each evaluated epoch's history entry carries the seconds its
training steps took. The weights with the lowest eval MSE are kept, and test metrics are
reported for them.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass, field

import torch

from ..models import MLPSpec, build_model
from .errors import DeviceError
from .metrics import EVAL_BATCH, batch_psnr, batch_ssim, image_mse, image_psnr
from .settings import TrainSettings
from .step import ManualStep
from .tasks import TaskData

Report = Callable[[int, dict[str, float]], None]


@dataclass
class TrainResult:
    """`*_psnr` is the paper's batch PSNR, `*_psnr_image` the mean of per-image PSNRs."""

    status: str  # "ok" or "diverged"
    eval_mse: float
    eval_psnr: float
    eval_ssim: float
    test_psnr: float
    test_ssim: float
    best_epoch: int
    epochs_run: int
    seconds: float
    device: str
    history: list[dict[str, float]] = field(default_factory=list)
    eval_psnr_image: float = float("nan")
    test_psnr_image: float = float("nan")
    state: dict[str, torch.Tensor] | None = field(default=None, repr=False)  # the kept weights


def resolve_device(name: str) -> torch.device:
    """'auto' -> CUDA when present, else CPU; anything else as given."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise DeviceError(
            f"device={name!r} is not a device: use auto, cpu, cuda or cuda:N"
        ) from None
    if device.type not in ("cpu", "cuda"):
        raise DeviceError(f"device={name!r} is not supported (only cpu and cuda): use device=cpu")
    if device.type == "cuda" and not torch.cuda.is_available():
        raise DeviceError("device=cuda was asked for but no CUDA GPU is visible: use device=cpu")
    if device.type == "cuda" and (device.index or 0) >= torch.cuda.device_count():
        raise DeviceError(
            f"device={name} names a GPU that is not there ({torch.cuda.device_count()} visible): "
            f"use cuda:0 .. cuda:{torch.cuda.device_count() - 1}"
        )
    return device


def precision_note(settings: TrainSettings, device: torch.device) -> str | None:
    """A line to show when bf16 was asked for where it does not apply (it is CUDA only)."""
    if settings.bf16 and device.type != "cuda":
        return f"train.bf16=true applies on CUDA only: training in fp32 on {device}"
    return None


def decayed_lr(settings: TrainSettings, step: int, epoch: int, total_steps: int) -> float:
    """Linear decay to 0 without warm-up, as torch's LinearLR in the paper: stepped after
    every optimizer step (step 0 of `total_steps` gets the full rate), or with
    `decay="epoch"` after every epoch (all of epoch e, from 1, get lr * (1 - (e-1)/epochs))."""
    if settings.decay == "epoch":
        return settings.lr * (1.0 - (epoch - 1) / settings.epochs)
    return settings.lr * (1.0 - step / total_steps)


@torch.no_grad()
def evaluate_replicas(
    forward: Callable[[torch.Tensor], torch.Tensor],
    x: torch.Tensor,
    y: torch.Tensor,
    image_shape: tuple[int, int, int] | None = None,
    chunk: int = 4 * EVAL_BATCH,
) -> list[dict[str, float]]:
    """Metrics of a whole split read in order, as the paper does (search/metrics.py), for each
    of R replicas at once: `forward` maps (b, d_x) to (R, b, d_y).

    `mse` is the split's mean (what model selection compares), `psnr` the paper's batch PSNR,
    `psnr_image` the mean of per-image PSNRs, and with `image_shape` also `ssim` per batch of
    128. Predictions are made `chunk` rows at a time (a multiple of 128: BatchNorm in eval mode
    makes them independent of the chunking); one host sync at the end.
    """
    mse, ssim = [], x.new_zeros(())
    for start in range(0, x.shape[0], chunk):
        pred = forward(x[start : start + chunk]).float()  # (R, b, d_y)
        target = y[start : start + chunk]
        mse.append(torch.stack([image_mse(p, target) for p in pred]))
        if image_shape is not None:
            for i, t in enumerate(target.split(EVAL_BATCH)):
                p = pred[:, i * EVAL_BATCH : i * EVAL_BATCH + t.shape[0]]
                ssim = ssim + torch.stack([batch_ssim(q, t, image_shape) for q in p]) * t.shape[0]
    per_image = torch.cat(mse, dim=1)  # (R, N)
    rows = []
    for r, errors in enumerate(per_image):
        stats = [errors.mean(), batch_psnr(errors), image_psnr(errors)]
        if image_shape is not None:
            stats.append(ssim[r] / x.shape[0])
        rows.append(torch.stack(stats))
    values = torch.stack(rows).tolist()
    return [dict(zip(("mse", "psnr", "psnr_image", "ssim"), v, strict=False)) for v in values]


def evaluate(
    forward: Callable[[torch.Tensor], torch.Tensor],
    x: torch.Tensor,
    y: torch.Tensor,
    image_shape: tuple[int, int, int] | None = None,
    chunk: int = 4 * EVAL_BATCH,
) -> dict[str, float]:
    """`evaluate_replicas` of one model: `forward` maps (b, d_x) to (b, d_y)."""
    return evaluate_replicas(lambda xb: forward(xb).unsqueeze(0), x, y, image_shape, chunk)[0]


def train(
    spec: MLPSpec,
    data: TaskData,
    settings: TrainSettings,
    device: torch.device | str = "cpu",
    report: Report | None = None,
) -> TrainResult:
    """Train `spec` on `data`; `report(epoch, metrics)` is called after every evaluation.

    `report` may raise to stop the run (early stopping); the exception propagates.
    """
    started = time.perf_counter()
    device = torch.device(device)
    torch.manual_seed(settings.seed)
    model = build_model(spec).to(device)
    gen = torch.Generator(device=device).manual_seed(settings.seed)
    params = [p for p in model.parameters() if p.requires_grad]
    try:
        opt = torch.optim.AdamW(
            params, lr=settings.lr, weight_decay=settings.weight_decay, fused=True
        )
    except (RuntimeError, TypeError):  # fused kernel not available for this device
        opt = torch.optim.AdamW(params, lr=settings.lr, weight_decay=settings.weight_decay)
    bf16 = settings.bf16 and device.type == "cuda"
    autocast = torch.autocast("cuda", dtype=torch.bfloat16) if bf16 else nullcontext()

    # With a fixed W_in and a deterministic input, z_0 = W_in x is computed once: (N, d_z).
    # (Only for materialized training pairs; sets built per batch are too large to cache.)
    cached = spec.fix_w_in and data.task.deterministic and data.lazy is None
    if cached:
        with torch.no_grad():
            encode = lambda x: torch.cat([model.embed(c) for c in x.split(4096)])  # noqa: E731
            train_in, eval_in, test_in = (encode(p.x) for p in (data.train, data.eval, data.test))
        forward = model.head
        batch = lambda idx: (train_in[idx], data.train.y[idx])  # noqa: E731
    else:
        eval_in, test_in = data.eval.x, data.test.x
        forward = model
        batch = data.train_batch

    n = data.n_train
    bs = settings.batch_size
    if bf16:  # autocast needs autograd's graph
        manual = None
    else:  # fp32: the same step on preallocated buffers, backward written out
        manual = ManualStep(model, opt, bs)
    # BatchNorm cannot train on a batch of one: drop a last batch of size 1.
    steps_per_epoch = n // bs + (1 if n % bs > 1 else 0)
    total_steps = max(1, settings.epochs * steps_per_epoch)
    perturb = data.task.perturb

    def predict(x: torch.Tensor) -> torch.Tensor:
        with autocast:
            return forward(x).float()

    step = 0
    best_mse, best_state, best_epoch = math.inf, None, 0
    history: list[dict[str, float]] = []
    status = "ok"
    epoch = 0
    for epoch in range(1, settings.epochs + 1):
        epoch_start = time.perf_counter()
        model.train()
        perm = torch.randperm(n, device=device, generator=gen)
        loss_sum = torch.zeros((), device=device)
        for i in range(steps_per_epoch):
            idx = perm[i * bs : (i + 1) * bs]
            xb, yb = batch(idx)
            xb = perturb(xb, gen)
            for group in opt.param_groups:  # linear decay to 0, no warm-up
                group["lr"] = decayed_lr(settings, step, epoch, total_steps)
            if manual is not None:
                loss = manual.step(xb, yb, embedded=cached)
            else:
                with autocast:
                    loss = torch.nn.functional.mse_loss(forward(xb).float(), yb)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
            loss_sum += loss.detach()
            step += 1
        if manual is not None:
            manual.flush()  # the last step's deferred weight updates
        if not math.isfinite(loss_sum.item()):  # the epoch's one host sync
            status = "diverged"
            break
        epoch_seconds = time.perf_counter() - epoch_start  # training steps only, no evaluation
        if epoch % settings.eval_every and epoch != settings.epochs:
            continue
        model.eval()
        metrics = evaluate(predict, eval_in, data.eval.y)
        metrics["train_mse"] = loss_sum.item() / max(1, steps_per_epoch)
        metrics["epoch_seconds"] = epoch_seconds
        history.append({"epoch": epoch, **metrics})
        if not math.isfinite(metrics["mse"]):
            status = "diverged"
            break
        if metrics["mse"] < best_mse:
            best_mse, best_epoch = metrics["mse"], epoch
            best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        if report is not None:
            report(epoch, metrics)

    nan = float("nan")
    if best_state is None:
        return TrainResult(
            status, nan, nan, nan, nan, nan, 0, epoch, time.perf_counter() - started,
            str(device), history,
        )  # fmt: skip
    model.load_state_dict(best_state)
    model.eval()
    ev = evaluate(predict, eval_in, data.eval.y, data.image_shape)
    te = evaluate(predict, test_in, data.test.y, data.image_shape)
    return TrainResult(
        status=status,
        eval_mse=ev["mse"],
        eval_psnr=ev["psnr"],
        eval_ssim=ev["ssim"],
        test_psnr=te["psnr"],
        test_ssim=te["ssim"],
        eval_psnr_image=ev["psnr_image"],
        test_psnr_image=te["psnr_image"],
        state=best_state,
        best_epoch=best_epoch,
        epochs_run=epoch,
        seconds=time.perf_counter() - started,
        device=str(device),
        history=history,
    )
