"""Train a pack: R replicas of one architecture (seeds x learning rates) as one batched model.

Each replica gets exactly what `train` gives that seed alone: the same initialisation (drawn
by `build_model` after `torch.manual_seed(seed)`), its own generator for the epoch's
permutation and the denoising noise, its own learning rate in the same linear decay, AdamW's
own fused kernel on its slice of every stacked weight. So replica r's results equal the
one-model run's up to float rounding, and replicas stay independent: one that diverges
(NaN/inf) is frozen and reported `diverged` while the others go on. Evaluation and model
selection (lowest eval MSE, per replica) are the one-model trainer's. Early stopping is asked
with the best replica's metrics.
"""

from __future__ import annotations

import math
import time
from contextlib import nullcontext
from dataclasses import dataclass, replace

import torch

from ..models import MLPSpec, build_model
from ..models.packed import PackedMLP
from .metrics import EVAL_BATCH
from .packstep import PackStep
from .settings import TrainSettings
from .tasks import TaskData
from .train import Report, TrainResult, decayed_lr, evaluate_replicas


@dataclass(frozen=True)
class Replica:
    seed: int
    lr: float


def replica_bytes(spec: MLPSpec, batch: int, chunk: int = 4 * EVAL_BATCH) -> int:
    """A generous estimate of one replica's memory in a pack (fp32): weights, gradients and
    AdamW's two moments, plus a training step's or an evaluation chunk's activations."""
    from ..models import count_params

    weights = 4 * count_params(spec).total * 4
    width = spec.d_x + spec.d_y + spec.depth * (4 * spec.d_z + 2 * spec.d_h)
    return weights + 4 * 2 * max(batch, chunk) * width


def pack_size(spec: MLPSpec, data: TaskData, settings: TrainSettings, device) -> int:
    """How many replicas one pack may hold: `train.pack_max`, and on a GPU what 80% of its
    free memory holds; on a CPU no other cap (its memory is the machine's)."""
    cap = settings.pack_max or 1 << 30
    device = torch.device(device)
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        cap = min(cap, int(0.8 * free) // replica_bytes(spec, settings.batch_size))
    return max(1, cap)


class PackAdamW:
    """AdamW's fused kernel, called per replica on its slice of each stacked weight, with that
    replica's learning rate; a frozen replica is skipped. The slices are views taken once (the
    step writes gradients in place), so a replica costs one dispatched operator per step."""

    def __init__(self, params: list[torch.nn.Parameter], settings: TrainSettings, r: int):
        self.wd = settings.weight_decay
        moments = [(torch.zeros_like(p), torch.zeros_like(p)) for p in params]
        self.counts = torch.zeros(r, device=params[0].device)  # AdamW's step count, per replica
        self.views = [
            (
                [p[i] for p in params],
                [p.grad[i] for p in params],
                [m[i] for m, _ in moments],
                [v[i] for _, v in moments],
                [self.counts[i]] * len(params),
            )
            for i in range(r)
        ]

    @torch.no_grad()
    def step(self, lrs: list[float], frozen: list[bool]) -> None:
        self.counts += 1  # a frozen replica's count no longer matters
        for (weights, grads, exp_avg, exp_avg_sq, steps), lr, stop in zip(
            self.views, lrs, frozen, strict=True
        ):
            if stop:
                continue
            torch._fused_adamw_(
                weights,
                grads,
                exp_avg,
                exp_avg_sq,
                [],
                steps,
                lr=lr,
                beta1=0.9,
                beta2=0.999,
                weight_decay=self.wd,
                eps=1e-8,
                amsgrad=False,
                maximize=False,
            )


def train_pack(
    spec: MLPSpec,
    data: TaskData,
    settings: TrainSettings,
    replicas: list[Replica],
    device: torch.device | str = "cpu",
    report: Report | None = None,
) -> list[TrainResult]:
    """Train every replica of `replicas`; one TrainResult each, in their order."""
    started = time.perf_counter()
    device = torch.device(device)
    models = []
    for rep in replicas:
        torch.manual_seed(rep.seed)
        models.append(build_model(spec))
    pack = PackedMLP(models).to(device)
    del models
    n_rep = len(replicas)
    gens = [torch.Generator(device=device).manual_seed(rep.seed) for rep in replicas]
    params = [p for p in pack.parameters() if p.requires_grad]
    bf16 = settings.bf16 and device.type == "cuda"
    autocast = torch.autocast("cuda", dtype=torch.bfloat16) if bf16 else nullcontext()

    n, bs = data.n_train, settings.batch_size
    stepper = None if bf16 else PackStep(pack, bs)  # allocates the gradients, once
    for p in params:
        if p.grad is None:
            p.grad = torch.zeros_like(p)
    opt = PackAdamW(params, settings, n_rep)
    steps_per_epoch = n // bs + (1 if n % bs > 1 else 0)  # as `train`: no batch of one
    total_steps = max(1, settings.epochs * steps_per_epoch)
    perturb = data.task.perturb
    unit = replace(settings, lr=1.0)

    def predict(x: torch.Tensor) -> torch.Tensor:
        with autocast:
            return pack(x).float()

    frozen = [False] * n_rep
    status = ["ok"] * n_rep
    best_mse = [math.inf] * n_rep
    best_state: list[dict | None] = [None] * n_rep
    best_epoch = [0] * n_rep
    histories: list[list[dict[str, float]]] = [[] for _ in replicas]
    step, epoch = 0, 0
    for epoch in range(1, settings.epochs + 1):
        epoch_start = time.perf_counter()
        pack.train()
        perms = torch.stack([torch.randperm(n, device=device, generator=g) for g in gens])
        loss_sum = torch.zeros(n_rep, device=device)
        for i in range(steps_per_epoch):
            idx = perms[:, i * bs : (i + 1) * bs]  # (R, B): each replica its own order
            xb, yb = data.train_batch(idx.reshape(-1))  # one gather for the whole pack
            xb, yb = xb.view(n_rep, -1, xb.shape[-1]), yb.view(n_rep, -1, yb.shape[-1])
            if not data.task.deterministic:  # fresh noise, from each replica's generator
                xb = torch.stack([perturb(x, g) for x, g in zip(xb, gens, strict=True)])
            if stepper is not None:  # fp32: the backward written out, buffers allocated once
                losses = stepper.step(xb, yb)
            else:  # bf16 autocast needs autograd's graph
                with autocast:
                    pred = pack(xb).float()
                losses = (pred - yb).square().mean(dim=(1, 2))  # (R,): each its own mean
                for p in params:
                    p.grad.zero_()  # in place: the optimizer holds views of these tensors
                losses.sum().backward()
            scale = decayed_lr(unit, step, epoch, total_steps)  # the decay, lr 1
            opt.step([rep.lr * scale for rep in replicas], frozen)
            loss_sum += losses.detach()
            step += 1
        sums = loss_sum.tolist()  # the epoch's one host sync
        for r in range(n_rep):
            if not frozen[r] and not math.isfinite(sums[r]):
                frozen[r], status[r] = True, "diverged"
        epoch_seconds = time.perf_counter() - epoch_start
        if all(frozen):
            break
        if epoch % settings.eval_every and epoch != settings.epochs:
            continue
        pack.eval()
        metrics = evaluate_replicas(predict, data.eval.x, data.eval.y)
        for r, m in enumerate(metrics):
            if frozen[r]:
                continue
            m.update(train_mse=sums[r] / max(1, steps_per_epoch), epoch_seconds=epoch_seconds)
            histories[r].append({"epoch": epoch, **m})
            if not math.isfinite(m["mse"]):
                frozen[r], status[r] = True, "diverged"
            elif m["mse"] < best_mse[r]:
                best_mse[r], best_epoch[r] = m["mse"], epoch
                best_state[r] = pack.replica_state(r)
        alive = [r for r in range(n_rep) if not frozen[r]]
        if report is not None and alive:
            report(epoch, max((metrics[r] for r in alive), key=lambda m: m["psnr"]))

    for r, state in enumerate(best_state):
        if state is not None:
            pack.load_replica_state(r, state)
    pack.eval()
    ev = evaluate_replicas(predict, data.eval.x, data.eval.y, data.image_shape)
    te = evaluate_replicas(predict, data.test.x, data.test.y, data.image_shape)
    seconds = time.perf_counter() - started
    nan = float("nan")
    out = []
    for r in range(n_rep):
        kept = best_state[r] is not None
        out.append(
            TrainResult(
                status=status[r],
                eval_mse=ev[r]["mse"] if kept else nan,
                eval_psnr=ev[r]["psnr"] if kept else nan,
                eval_ssim=ev[r]["ssim"] if kept else nan,
                test_psnr=te[r]["psnr"] if kept else nan,
                test_ssim=te[r]["ssim"] if kept else nan,
                best_epoch=best_epoch[r],
                epochs_run=epoch,
                seconds=seconds / n_rep,
                device=str(device),
                history=histories[r],
                eval_psnr_image=ev[r]["psnr_image"] if kept else nan,
                test_psnr_image=te[r]["psnr_image"] if kept else nan,
                state=best_state[r],
            )
        )
    return out
