"""The package as users get it: one namespace (a user's own `models/`, `search/`, `conf/` never
collide with ours), a wheel that holds every config, families named only in their registry,
no import cycles, modules of a readable size."""

from __future__ import annotations

import ast
import json
import re
import shutil
import subprocess
import sys
import venv
from pathlib import Path

import pytest

from tests.conftest import ROOT

PACKAGES = {"hgsearch": "hgsearch", "models": "hgsearch.models", "search": "hgsearch.search",
            "analysis": "hgsearch.analysis"}  # fmt: skip


def modules() -> dict[str, Path]:
    """Every module of the installed package, by its dotted name."""
    out = {}
    for folder, package in PACKAGES.items():
        for path in sorted((ROOT / folder).glob("*.py")):
            name = package if path.stem == "__init__" else f"{package}.{path.stem}"
            out[name] = path
    return out


def imports_of(name: str, path: Path, known: set[str]) -> set[str]:
    """The project modules `name` imports anywhere in it (function-level imports included)."""
    package = name if path.stem == "__init__" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                target = ".".join([*base, node.module] if node.module else base)
            else:
                target = node.module or ""
            candidates = [target] + [f"{target}.{a.name}" for a in node.names]
        elif isinstance(node, ast.Import):
            candidates = [a.name for a in node.names]
        else:
            continue
        found |= {c for c in candidates if c in known and c != name}
    return found


def test_no_import_cycle_among_the_projects_modules():
    mods = modules()
    graph = {name: imports_of(name, path, set(mods)) for name, path in mods.items()}
    # Package __init__ files re-export their modules; an edge into a package is an edge into
    # the modules it imports, so cycles through re-exports are found too.
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                cycle = stack[stack.index(nxt) :] + [nxt]
                pytest.fail("import cycle: " + " -> ".join(cycle))
            if nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node)
    assert len(graph) > 20


def test_modules_stay_readable():
    """About 300 lines at most: a longer file is usually two concepts."""
    long = {n: len(p.read_text().splitlines()) for n, p in modules().items()}
    assert {n: lines for n, lines in long.items() if lines > 320} == {}


def test_families_are_named_only_in_their_registry():
    """A family is one object in models/family.py; code elsewhere names none."""
    from hgsearch.models import FAMILIES

    pattern = re.compile("|".join(f"[\"']{name}[\"']" for name in FAMILIES))
    hits = [
        f"{path.relative_to(ROOT)}:{i}: {line.strip()}"
        for name, path in modules().items()
        if name != "hgsearch.models.family"
        for i, line in enumerate(path.read_text().splitlines(), start=1)
        if pattern.search(line)
    ]
    assert hits == []


def _venv_with_the_wheel(tmp: Path) -> Path:
    """A fresh virtual environment with the project's wheel installed (not editable). Its
    dependencies come from this interpreter's site-packages (no download in a test)."""
    dist, source = tmp / "dist", tmp / "source"
    # From a clean copy: a build/ folder left in the tree could carry stale modules.
    shutil.copytree(
        ROOT,
        source,
        ignore=shutil.ignore_patterns(
            ".git", "build", "dist", "runs", "*.egg-info", ".venv", "__pycache__", ".*_cache"
        ),
    )
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
         "-w", str(dist), str(source)],
        check=True, capture_output=True, timeout=300,
    )  # fmt: skip
    (wheel,) = dist.glob("hgsearch-*.whl")
    env = tmp / "venv"
    venv.EnvBuilder(system_site_packages=True, with_pip=False).create(env)
    py = env / "bin" / "python"
    subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(py), "install", "--no-deps", "-q",
         str(wheel)],
        check=True, capture_output=True, timeout=300,
    )  # fmt: skip
    return env


@pytest.mark.slow
def test_wheel_works_in_a_project_with_its_own_models_search_and_conf(tmp_path):
    env = _venv_with_the_wheel(tmp_path)
    hg, py = env / "bin" / "hgsearch", env / "bin" / "python"
    project = tmp_path / "project"  # a typical ML project's own packages
    for pkg in ("models", "search", "conf"):
        (project / pkg).mkdir(parents=True)
        (project / pkg / "__init__.py").write_text("raise ImportError('the user package')\n")
    (project / "conf" / "config.yaml").write_text("defaults: [nothing]\n")

    def run(*args, exe=hg):
        return subprocess.run(
            [str(exe), *args], cwd=project, capture_output=True, text=True, timeout=600
        )

    where = run("-c", "import hgsearch; print(hgsearch.__file__)", exe=py)
    assert str(env) in where.stdout, where  # the wheel, not the source tree
    params = run("params")
    assert params.returncode == 0, params.stderr
    assert json.loads(params.stdout.splitlines()[-1])["params"] > 0
    sweep = run(
        "sweep", "experiment=smoke", "workers=2", "storage=journal", "search.n_trials=2",
        "device=cpu", f"run_dir={project / 'runs'}",
    )  # fmt: skip
    assert sweep.returncode == 0, sweep.stderr[-3000:]
    assert "started 1 more worker process" in sweep.stderr
    # The worker imports the package by its own module path, never the project's `search`.
    assert "exited with an error" not in sweep.stderr and "Traceback" not in sweep.stderr
    assert (project / "runs" / "smoke-gen_classify-digits" / "frontier.png").exists()
    # Every config is package data: the SLURM launcher's too.
    slurm = run(
        "-c",
        "from hydra import compose, initialize_config_module\n"
        "with initialize_config_module('hgsearch.conf', version_base='1.3'):\n"
        "    cfg = compose('config', overrides=['hydra/launcher=slurm'],"
        " return_hydra_config=True)\n"
        "print(cfg.hydra.launcher._target_)",
        exe=py,
    )
    assert slurm.returncode == 0 and "SlurmLauncher" in slurm.stdout, slurm.stderr[-2000:]
    cfg = run("sweep", "-m", "hydra/launcher=slurm", "worker=0,1", "--cfg", "job")
    assert cfg.returncode == 0 and "worker: 0" in cfg.stdout, cfg.stderr[-2000:]
