"""`hgsearch <command> [hydra overrides...]`: the thin shell around the library.

Configs are composed with Hydra's compose API from the `conf` package, so the installed command
finds them from any working directory. User mistakes end in one line on stderr and exit code 2.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

USAGE = """usage: hgsearch <command> [key=value ...]

commands:
  sweep     search both families under parameter budgets (resumes a stored study)
  status    list the studies in a storage with trial counts and the best trial per family
  frontier  Pareto frontiers, comparison numbers, plots and tables from stored studies
  train     train one model and print one JSON line with its metrics
  params    print the exact parameter counts of one model as JSON

Overrides use Hydra syntax, e.g. `hgsearch train arch=conventional arch.d_h=905 train.epochs=5`.
Groups: task, dataset, arch, train, sampler, storage, search, experiment.
"""

log = logging.getLogger("hgsearch")


class UserError(Exception):
    """Raised for input the user must fix; printed as one line."""


def conf_dir() -> Path:
    from .. import conf

    return Path(conf.__file__).resolve().parent


def compose(overrides: list[str]) -> dict[str, Any]:
    """Compose conf/config.yaml with overrides into plain, resolved containers."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from hydra.errors import HydraException, MissingConfigException
    from omegaconf import OmegaConf
    from omegaconf.errors import OmegaConfBaseException

    try:
        with initialize_config_dir(config_dir=str(conf_dir()), version_base="1.3"):
            cfg = hydra_compose("config", overrides=overrides)
        out = OmegaConf.to_container(cfg, resolve=True)
    except MissingConfigException as exc:
        group = (exc.missing_cfg_file or "").split("/")[0]
        if exc.options and group:
            wanted = next((o.split("=", 1)[1] for o in overrides if o.startswith(f"{group}=")), "?")
            raise UserError(
                f"unknown {group} {wanted!r}; choose one of: {', '.join(sorted(exc.options))}"
            ) from None
        raise UserError(_first_line(exc)) from None
    except (HydraException, OmegaConfBaseException, ValueError) as exc:
        raise UserError(_first_line(exc)) from None
    return out  # type: ignore[return-value]


def _first_line(exc: BaseException) -> str:
    text = " ".join(line.strip() for line in str(exc).strip().splitlines() if line.strip())
    return text or type(exc).__name__


def settings_from(overrides: list[str]):
    from .settings import from_config

    return from_config(compose(overrides))


def emit(record: dict[str, Any]) -> None:
    """The machine-readable last line of a command (strict JSON: NaN becomes null)."""
    clean = {k: (None if isinstance(v, float) and v != v else v) for k, v in record.items()}
    print(json.dumps(clean, allow_nan=False), flush=True)


def cmd_params(overrides: list[str]) -> int:
    from ..models import count_params

    s = settings_from(overrides)
    spec = s.spec()
    counts = count_params(spec)
    emit(
        {
            "family": spec.family,
            "params": counts.trainable,
            "params_total": counts.total,
            "d_x": spec.d_x,
            "d_y": spec.d_y,
            "d_z": spec.d_z,
            "d_h": spec.d_h,
            "depth": spec.depth,
            "fix_w_in": spec.fix_w_in,
            "task": s.task.name,
            "dataset": s.data.name,
        }
    )
    return 0


def cmd_train(overrides: list[str]) -> int:
    from ..models import count_params
    from .data import load
    from .tasks import prepare
    from .train import precision_note, resolve_device, train

    s = settings_from(overrides)
    spec = s.spec()  # shape errors before any data is read
    device = resolve_device(s.device)
    if note := precision_note(s.train, device):
        log.warning(note)
    from .sweep import set_threads

    set_threads(s.raw.get("threads"))
    splits = load(s.data)
    data = prepare(splits, s.task, device)
    if data.d_x != spec.d_x:  # pragma: no cover - guarded by IMAGE_SHAPES
        raise UserError(f"data gives d_x={data.d_x}, expected {spec.d_x}")
    counts = count_params(spec)
    log.info(
        "training %s (d_z=%d, d_h=%d, depth=%d; %d trainable parameters) on %s/%s, %d epochs, %s",
        spec.family,
        spec.d_z,
        spec.d_h,
        spec.depth,
        counts.trainable,
        s.task.name,
        s.data.name,
        s.train.epochs,
        device,
    )
    with progress(total=s.train.epochs, unit="epoch") as bar:
        result = train(spec, data, s.train, device, report=bar)
    emit(
        {
            "family": spec.family,
            "params": counts.trainable,
            "params_total": counts.total,
            "d_z": spec.d_z,
            "d_h": spec.d_h,
            "depth": spec.depth,
            "task": s.task.name,
            "dataset": s.data.name,
            "status": result.status,
            "eval_psnr": round(result.eval_psnr, 4),
            "test_psnr": round(result.test_psnr, 4),
            "eval_psnr_image": round(result.eval_psnr_image, 4),
            "test_psnr_image": round(result.test_psnr_image, 4),
            "eval_ssim": round(result.eval_ssim, 5),
            "test_ssim": round(result.test_ssim, 5),
            "best_epoch": result.best_epoch,
            "seconds": round(result.seconds, 2),
            "device": result.device,
        }
    )
    if result.status != "ok":
        print(
            f"hgsearch train: training diverged (loss became NaN/inf): lower train.lr "
            f"(now {s.train.lr:g})",
            file=sys.stderr,
        )
        return 1
    return 0


class progress:
    """A tqdm bar on a TTY, plain log lines otherwise; called as report(epoch, metrics)."""

    def __init__(self, total: int, unit: str) -> None:
        self.total, self.unit, self.bar = total, unit, None

    def __enter__(self) -> progress:
        if sys.stderr.isatty():
            from tqdm import tqdm

            self.bar = tqdm(total=self.total, unit=self.unit, file=sys.stderr, leave=False)
        return self

    def __call__(self, step: int, metrics: dict[str, float]) -> None:
        if self.bar is not None:
            self.bar.n = step
            self.bar.set_postfix(eval_psnr=f"{metrics.get('psnr', float('nan')):.2f}")
        else:
            log.info(
                "%s %d/%d eval PSNR %.2f dB",
                self.unit,
                step,
                self.total,
                metrics.get("psnr", float("nan")),
            )

    def __exit__(self, *exc: object) -> None:
        if self.bar is not None:
            self.bar.close()


def _commands() -> dict[str, Callable[[list[str]], int]]:
    from . import sweep

    return {
        "train": cmd_train,
        "params": cmd_params,
        "sweep": sweep.cmd_sweep,
        "status": sweep.cmd_status,
        "frontier": sweep.cmd_frontier,
    }


def user_errors() -> tuple[type[BaseException], ...]:
    """Exceptions that mean 'fix your input', each printed as one line."""
    from ..models import SpecError
    from .data import DataError
    from .settings import ConfigError
    from .store import StorageError
    from .train import DeviceError

    return (UserError, SpecError, DataError, ConfigError, StorageError, DeviceError)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S", stream=sys.stderr
    )
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(USAGE, end="")
        return 0 if argv else 2
    command, overrides = argv[0], argv[1:]
    import warnings

    from optuna.exceptions import ExperimentalWarning

    warnings.filterwarnings("ignore", category=ExperimentalWarning)
    commands = _commands()
    if command not in commands:
        print(
            f"hgsearch: error: unknown command {command!r}; choose one of: {', '.join(commands)}",
            file=sys.stderr,
        )
        return 2
    try:
        return commands[command](overrides)
    except user_errors() as exc:
        print(f"hgsearch {command}: error: {_first_line(exc)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(
            f"hgsearch {command}: interrupted; everything finished so far is stored",
            file=sys.stderr,
        )
        return 130


if __name__ == "__main__":  # pragma: no cover
    # Import by name so exception classes are the same objects as in the library modules.
    from .cli import main as _main

    sys.exit(_main())
