"""The commands on one model: `params` (its exact counts) and `train` (train it, or with
`load=` evaluate saved weights), each ending in one JSON line."""

from __future__ import annotations

import json
import logging
import sys
from typing import Any

from .config import Config
from .errors import ConfigError
from .memory import too_big

log = logging.getLogger("hgsearch")


def emit(record: dict[str, Any]) -> None:
    """The machine-readable last line of a command (strict JSON: NaN becomes null)."""
    clean = {k: (None if isinstance(v, float) and v != v else v) for k, v in record.items()}
    print(json.dumps(clean, allow_nan=False), flush=True)


def model_record(config: Config, spec) -> dict[str, Any]:
    """What every one-model JSON line says of the model."""
    from ..models import count_params

    counts = count_params(spec)
    return {
        "family": spec.family,
        "params": counts.trainable,
        "params_total": counts.total,
        "d_z": spec.d_z,
        "d_h": spec.d_h,
        "depth": spec.depth,
        "task": config.task.name,
        "dataset": config.data.name,
    }


def metric_record(values: dict[str, Any]) -> dict[str, float]:
    """The recorded metrics among `values` (eval_psnr, test_ssim, ...), rounded for a line."""
    keys = ("eval_psnr", "test_psnr", "eval_psnr_image", "test_psnr_image", "eval_ssim",
            "test_ssim")  # fmt: skip
    return {k: round(values[k], 5 if "ssim" in k else 4) for k in keys}


def params(config: Config) -> int:
    spec = config.spec()
    record = model_record(config, spec)
    emit({**record, "d_x": spec.d_x, "d_y": spec.d_y, "fix_w_in": spec.fix_w_in})
    return 0


class EpochProgress:
    """A per-epoch bar on a terminal, plain log lines otherwise; `report(epoch, metrics)`."""

    def __init__(self, total: int) -> None:
        self.total, self.bar = total, None

    def __enter__(self) -> EpochProgress:
        if sys.stderr.isatty():
            from tqdm import tqdm

            self.bar = tqdm(total=self.total, unit="epoch", file=sys.stderr, leave=False)
        return self

    def __call__(self, epoch: int, metrics: dict[str, float]) -> None:
        psnr = metrics.get("psnr", float("nan"))
        if self.bar is not None:
            self.bar.n = epoch
            self.bar.set_postfix(eval_psnr=f"{psnr:.2f}")
        else:
            log.info("epoch %d/%d eval PSNR %.2f dB", epoch, self.total, psnr)

    def __exit__(self, *exc: object) -> None:
        if self.bar is not None:
            self.bar.close()


def evaluate_saved(config: Config) -> int:
    """`hgsearch train load=FILE`: the saved model's metrics on the configured task and data."""
    import time

    from .data import load
    from .tasks import prepare
    from .train import evaluate, resolve_device
    from .weights import load_model

    started = time.perf_counter()
    model, meta = load_model(config.load)
    spec = model.spec
    d_x, d_y = config.dims()
    if (spec.d_x, spec.d_y) != (d_x, d_y):
        raise ConfigError(
            f"{config.load} holds a model for d_x={spec.d_x}, d_y={spec.d_y}; "
            f"{config.task.name} on {config.data.name} needs d_x={d_x}, d_y={d_y}: pass the "
            f"task= and dataset= it was trained on ({meta.get('task')}, {meta.get('dataset')})"
        )
    device = resolve_device(config.device)
    data = prepare(load(config.data), config.task, device)
    model = model.to(device)
    ev = evaluate(model, data.eval.x, data.eval.y, data.image_shape)
    te = evaluate(model, data.test.x, data.test.y, data.image_shape)
    emit(
        {
            **model_record(config, spec),
            "loaded": str(config.load),
            **metric_record(
                {
                    f"{split}_{k}": v
                    for split, m in (("eval", ev), ("test", te))
                    for k, v in m.items()
                }
            ),
            "seconds": round(time.perf_counter() - started, 2),
            "device": str(device),
        }
    )
    return 0


def train(config: Config) -> int:
    from ..models import count_params
    from .data import load
    from .tasks import prepare
    from .train import precision_note, resolve_device
    from .train import train as train_model

    if config.load:
        return evaluate_saved(config)
    spec = config.spec()  # shape errors before any data is read
    device = resolve_device(config.device)
    if why := too_big(spec, config.train.batch_size, device):
        raise ConfigError(f"{why}: lower arch widths, arch.depth or train.batch_size")
    if note := precision_note(config.train, device):
        log.warning(note)
    from .commands import set_threads

    set_threads(config.threads)
    data = prepare(load(config.data), config.task, device)
    counts = count_params(spec)
    log.info(
        "training %s (d_z=%d, d_h=%d, depth=%d; %d trainable parameters) on %s/%s, %d epochs, %s",
        spec.family,
        spec.d_z,
        spec.d_h,
        spec.depth,
        counts.trainable,
        config.task.name,
        config.data.name,
        config.train.epochs,
        device,
    )
    with EpochProgress(config.train.epochs) as bar:
        result = train_model(spec, data, config.train, device, report=bar)
    saved = None
    if config.save and result.state is not None:
        from pathlib import Path

        from .weights import save_model

        meta = {"task": config.task.name, "dataset": config.data.name, "lr": config.train.lr,
                "seed": config.train.seed, "epochs": config.train.epochs,
                "test_psnr": result.test_psnr, "eval_psnr": result.eval_psnr}  # fmt: skip
        saved = save_model(Path(config.save).expanduser(), spec, result.state, meta)
        log.info("saved the weights of epoch %d to %s", result.best_epoch, saved)
    emit(
        {
            **model_record(config, spec),
            "status": result.status,
            **metric_record(vars(result)),
            "best_epoch": result.best_epoch,
            "seconds": round(result.seconds, 2),
            "device": result.device,
            **({"weights": str(saved)} if saved else {}),
        }
    )
    if result.status != "ok":
        print(
            f"hgsearch train: training diverged (loss became NaN/inf): lower train.lr "
            f"(now {config.train.lr:g})",
            file=sys.stderr,
        )
        return 1
    return 0
