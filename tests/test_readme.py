"""What the README shows is executed (or, for sweeps that need a GPU or full data, composed)."""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from hgsearch.search.config import parse as from_config
from hgsearch.search.plan import make_plan
from tests.conftest import compose_cfg

README = (Path(__file__).resolve().parents[1] / "README.md").read_text()
COMMANDS = [
    shlex.split(m) for m in re.findall(r"^ {4}(hgsearch [^#\n]*?)\s*(?:#.*)?$", README, re.M)
]


def test_readme_shows_the_two_commands():
    assert "pip install torch==2.13.0 && pip install -e . && hgsearch sweep" in README
    test_cmd = "pip install torch==2.13.0 && pip install -e '.[dev]' && python -m pytest"
    assert test_cmd in README
    ci = (Path(__file__).resolve().parents[1] / ".ci" / "run").read_text()
    assert test_cmd in ci
    assert len(COMMANDS) >= 6


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    """One folder for all the README's commands, in their order (train save=, then load=)."""
    return tmp_path_factory.mktemp("readme")


@pytest.mark.parametrize("argv", COMMANDS, ids=[" ".join(c[1:3]) for c in COMMANDS])
def test_readme_command(argv, folder):
    command, overrides = argv[1], argv[2:]
    overrides = [o for o in overrides if not o.startswith("dataset.root=")]
    if command in ("sweep", "frontier", "status"):
        raw = OmegaConf.to_container(compose_cfg(overrides), resolve=True)
        make_plan(from_config(raw))  # every documented key exists and validates
        return
    if command == "train":
        overrides = [re.sub(r"^train\.epochs=\d+$", "train.epochs=1", o) for o in overrides]
        overrides += ["dataset.limit=300", f"run_dir={folder}"]
    proc = subprocess.run(
        [sys.executable, "-m", "hgsearch", command, *overrides],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=folder,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    record = json.loads(proc.stdout.strip().splitlines()[-1])
    assert record["params"] > 0
    if command == "params" and "arch.d_z=3546" in overrides:
        assert record["params"] == 22_070_304


def test_readme_links_resolve():
    """Every figure and document the README points to is in the repository."""
    root = Path(__file__).resolve().parents[1]
    targets = re.findall(r"\]\(((?:docs|conf)/[^)#]+)\)", README)
    assert "docs/figures/quick-frontier.png" in targets
    for target in targets:
        assert (root / target).exists(), target
