"""`hgsearch <command> [key=value ...]`: the thin shell around the library.

Configs are composed with Hydra's compose API from the `hgsearch.conf` package, so the
installed command finds them from any working directory, then parsed once into a typed
`Config`. User mistakes end in one line on stderr and exit code 2.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import DamagedStorage, UserError, first_line, machine_failure, user_errors

log = logging.getLogger("hgsearch")


@dataclass(frozen=True)
class Command:
    summary: str
    keys: str  # the main keys, for --help
    run: Callable[[list[str]], int]


def _commands() -> dict[str, Command]:
    return {
        "sweep": Command(
            "search the families under parameter budgets and report their frontiers; the same "
            "command again resumes the stored studies",
            "experiment=, search.families, search.n_trials, search.budget.targets, "
            "search.replicas, space.<family>.*, sampler=, storage=, workers=, device=, run_dir=",
            _sweep,
        ),
        "status": Command(
            "list the studies in a storage with trial counts and the best trial of each",
            "storage=, storage.url=, run_dir=",
            lambda o: _with_config(o, "status"),
        ),
        "frontier": Command(
            "Pareto frontiers, comparison, plots and tables of stored studies (the same "
            "overrides as their sweep)",
            "experiment=, report.metric, report.candidate, report.baseline, report.formats, "
            "report.budgets, run_dir=",
            lambda o: _with_config(o, "frontier"),
        ),
        "train": Command(
            "train one model and print one JSON line with its metrics",
            "arch=, arch.d_z, arch.d_h, arch.depth, arch.fix_w_in, task=, dataset=, "
            "train.epochs, train.lr, train.batch_size, device=",
            lambda o: _with_config(o, "train"),
        ),
        "params": Command(
            "print the exact parameter counts of one model as one JSON line",
            "arch=, arch.d_z, arch.d_h, arch.depth, arch.fix_w_in, task=, dataset=",
            lambda o: _with_config(o, "params"),
        ),
    }


def conf_dir() -> Path:
    from .. import conf

    return Path(conf.__file__).resolve().parent


def groups() -> dict[str, list[str]]:
    """Each config group and its options, as the conf package holds them."""
    root = conf_dir()
    return {
        d.name: sorted(p.stem for p in d.glob("*.yaml"))
        for d in sorted(root.iterdir())
        if d.is_dir() and d.name != "hydra" and any(d.glob("*.yaml"))
    }


def usage() -> str:
    lines = ["usage: hgsearch <command> [key=value ...]", "", "commands:"]
    lines += [f"  {name:<9} {c.summary}" for name, c in _commands().items()]
    lines += [
        "",
        "`hgsearch <command> --help` shows a command's keys and the config groups;",
        "`hgsearch <command> --cfg job` prints the composed configuration;",
        "`hgsearch --version` prints the version. Overrides use Hydra syntax, e.g.",
        "`hgsearch train arch=conventional arch.d_h=905 train.epochs=5`.",
    ]
    return "\n".join(lines) + "\n"


def command_help(name: str) -> str:
    c = _commands()[name]
    lines = [f"usage: hgsearch {name} [key=value ...]", "", c.summary, "", f"main keys: {c.keys}"]
    lines += ["", "config groups (group=option):"]
    lines += [f"  {g:<11} {', '.join(opts)}" for g, opts in groups().items()]
    if name == "sweep":
        lines += [
            "",
            "-m key=a,b runs one study per value (the value joins the study name and run "
            "folder); -m worker=0,1 hydra/launcher=slurm submits cluster workers.",
        ]
    return "\n".join(lines) + "\n"


def _nearest_key(key: str, overrides: list[str]) -> str:
    """The message for an override of a key the config does not have."""
    from omegaconf import OmegaConf

    from .errors import unknown_key

    rest = [o for o in overrides if not o.split("=", 1)[0].lstrip("+~").startswith(key)]
    try:
        cfg = OmegaConf.to_container(_compose_raw(rest), resolve=False)
    except Exception:  # noqa: BLE001 - only for the hint
        cfg = {}
    section, _, leaf = key.rpartition(".")
    node: Any = cfg
    for part in section.split(".") if section else []:
        node = node.get(part, {}) if isinstance(node, dict) else {}
    known = list(node) if isinstance(node, dict) else []
    return str(unknown_key(section, leaf, known))


def _compose_raw(overrides: list[str]):
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir

    with initialize_config_dir(config_dir=str(conf_dir()), version_base="1.3"):
        return hydra_compose("config", overrides=overrides)


def compose(overrides: list[str]) -> dict[str, Any]:
    """Compose conf/config.yaml with overrides into plain, resolved containers."""
    from hydra.errors import HydraException, MissingConfigException
    from omegaconf import OmegaConf
    from omegaconf.errors import OmegaConfBaseException

    try:
        out = OmegaConf.to_container(_compose_raw(overrides), resolve=True)
    except MissingConfigException as exc:
        group = (exc.missing_cfg_file or "").split("/")[0]
        if exc.options and group:
            wanted = next((o.split("=", 1)[1] for o in overrides if o.startswith(f"{group}=")), "?")
            raise UserError(
                f"unknown {group} {wanted!r}; choose one of: {', '.join(sorted(exc.options))}"
            ) from None
        raise UserError(first_line(exc)) from None
    except (HydraException, OmegaConfBaseException, ValueError) as exc:
        missing = re.search(r"Could not override '([^']+)'", str(exc))
        if missing:
            raise UserError(_nearest_key(missing.group(1), overrides)) from None
        raise UserError(first_line(exc)) from None
    return out  # type: ignore[return-value]


def config_from(overrides: list[str]):
    from .config import parse

    return parse(compose(overrides))


def _with_config(overrides: list[str], name: str) -> int:
    config = config_from(overrides)  # parsed before the heavy modules load: errors are quick
    if name in ("train", "params"):
        from . import single as module
    else:
        from . import commands as module
    return getattr(module, name)(config)


def _sweep(overrides: list[str]) -> int:
    if "-m" in overrides or "--multirun" in overrides:
        from . import commands, workers

        return workers.multirun(overrides, commands.sweep)
    config = config_from(overrides)
    from . import commands

    return commands.sweep(config, overrides)


def _print_config(overrides: list[str]) -> int:
    """`--cfg job`: the composed configuration (of the first job, with -m), checked as a run
    would check it."""
    from omegaconf import OmegaConf

    from .workers import first_job

    overrides = first_job(overrides)
    config_from(overrides)  # the same checks as a real run
    print(OmegaConf.to_yaml(_compose_raw(overrides)), end="")
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S", stream=sys.stderr
    )
    if argv[:1] in (["--version"], ["-V"]):
        from .. import __version__

        print(f"hgsearch {__version__}")
        return 0
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(usage(), end="")
        return 0 if argv else 2
    command, overrides = argv[0], argv[1:]
    # -q / -v are the `verbosity` key (0 / 2) for the hand.
    flags = {"-q": "verbosity=0", "--quiet": "verbosity=0", "-v": "verbosity=2",
             "--verbose": "verbosity=2"}  # fmt: skip
    overrides = [flags.get(o, o) for o in overrides]
    if "verbosity=0" in overrides:
        logging.getLogger("hgsearch").setLevel(logging.WARNING)
    import warnings

    # Optuna's ExperimentalWarning, matched by its text so that Optuna loads only when needed.
    warnings.filterwarnings("ignore", message=r"(?i).*\bexperimental\b")
    commands = _commands()
    if command not in commands:
        print(
            f"hgsearch: error: unknown command {command!r}; choose one of: {', '.join(commands)}",
            file=sys.stderr,
        )
        return 2
    if "-h" in overrides or "--help" in overrides:
        print(command_help(command), end="")
        return 0
    try:
        if "--cfg" in overrides:
            i = overrides.index("--cfg")
            what = overrides[i + 1 : i + 2]
            if what != ["job"]:
                raise UserError(f"--cfg takes `job` (got {' '.join(what) or 'nothing'})")
            return _print_config(overrides[:i] + overrides[i + 2 :])
        return commands[command].run(overrides)
    except user_errors() as exc:
        print(f"hgsearch {command}: error: {first_line(exc)}", file=sys.stderr)
        return 2
    except DamagedStorage as exc:
        print(f"hgsearch {command}: error: {first_line(exc)}", file=sys.stderr)
        return 1
    except Exception as exc:  # noqa: BLE001 - a known failure of the machine is one line too
        from . import store

        message = machine_failure(exc, store.current)
        if message is None:
            raise
        print(f"hgsearch {command}: error: {message}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(
            f"hgsearch {command}: interrupted; everything finished so far is stored",
            file=sys.stderr,
        )
        return 130
