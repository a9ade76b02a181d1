from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

from hgsearch.search.cli import conf_dir

ROOT = Path(__file__).resolve().parents[1]

torch.set_num_threads(min(2, os.cpu_count() or 1))


def compose_cfg(overrides: list[str] | None = None):
    """Compose the real config with Hydra's compose API, as the CLI does."""
    from hydra import compose, initialize_config_dir

    with initialize_config_dir(config_dir=str(conf_dir()), version_base="1.3"):
        return compose("config", overrides=overrides or [])


@pytest.fixture(autouse=True)
def no_internet(monkeypatch):
    """No test downloads from the internet: every mirror is a closed loopback port (the
    download tests serve their own files on loopback)."""
    import dataclasses

    from hgsearch.search import download

    dead = {
        name: dataclasses.replace(source, mirrors=("http://127.0.0.1:9/",))
        for name, source in download.SOURCES.items()
    }
    monkeypatch.setattr(download, "SOURCES", dead)


@pytest.fixture(scope="session")
def digits_splits():
    from hgsearch.search.data import DataSettings, load

    return load(DataSettings("digits"))


@pytest.fixture(scope="session")
def postgres():
    """A real PostgreSQL server on loopback, password-protected, for the whole session."""
    from tests import pg

    if pg.bindir() is None:
        if os.environ.get("HGSEARCH_REQUIRE_POSTGRES"):
            pytest.fail("PostgreSQL server binaries are missing (apt-get install postgresql)")
        pytest.skip("PostgreSQL server binaries are not installed (apt-get install postgresql)")
    server, stop, _ = pg.start()
    yield server
    stop()


def pytest_collection_modifyitems(config, items):
    skip_gpu = pytest.mark.skip(reason="needs a CUDA GPU")
    for item in items:
        if "gpu" in item.keywords and not torch.cuda.is_available():
            item.add_marker(skip_gpu)


@pytest.fixture
def fake_training(monkeypatch):
    """Sweeps run through the CLI in this process train with the instant fake trainer."""
    from hgsearch.search import commands
    from tests.fakes import FakeTrainer

    fake = FakeTrainer()
    real = commands.run_family
    monkeypatch.setattr(commands, "run_family", lambda *a, **k: real(*a, **{**k, "train_fn": fake}))
    return fake


@pytest.fixture(scope="session")
def slurm():
    """A real one-node SLURM cluster (munged, slurmctld, slurmd) on loopback for the session."""
    from tests import slurm as cluster

    if not cluster.available():
        if os.environ.get("HGSEARCH_REQUIRE_SLURM"):
            pytest.fail("SLURM binaries are missing (apt-get install slurm-wlm munge)")
        pytest.skip("SLURM binaries are not installed (apt-get install slurm-wlm munge)")
    running, stop = cluster.start()
    yield running
    stop()
