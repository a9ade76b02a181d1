"""The README's bad-input table, walked end to end through the installed command."""

from __future__ import annotations

import hashlib
import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import optuna
import pytest
import torch

from hgsearch.search.goal import trained_trials
from hgsearch.search.internals import CONFIG_KEY, study_config
from hgsearch.search.plan import make_plan
from hgsearch.search.study import run_family
from tests.fakes import FakeTrainer

HG = [sys.executable, "-m", "hgsearch"]  # the installed command's module
SMOKE = ["experiment=smoke", "device=cpu", "threads=1"]

CASES = [
    (["train", "task=inpaint"], "unknown task 'inpaint'"),
    (["sweep", "dataset=svhn"], "unknown dataset 'svhn'"),
    (["train", "arch=mixer"], "unknown arch 'mixer'"),
    (["sweep", "sampler=cmaes"], "unknown sampler 'cmaes'"),
    (["sweep", "experiment=paper_mnist_gcc"], "unknown experiment"),
    (["sweep", "storage=redis"], "unknown storage 'redis'"),
    (["params", "arch.d_z=100", "arch.d_h=100"], "hourglass needs d_h < d_z"),
    (["sweep", "search.budget.min_params=50000", "search.budget.max_params=20000"], "empty budget"),
    (["sweep", "search.budget.max_params=100"], "impossible budget"),
    (
        ["train", "dataset=mnist", "dataset.root={empty}", "dataset.download=false"],
        "no MNIST-style idx files",
    ),  # fmt: skip
    (["train", "dataset=mnist", "dataset.root={broken}"], "header promises"),
    (["train", "dataset=cifar10", "dataset.root={pickles}"], "dataset.allow_pickle=true"),
    (["sweep", "storage.url=sqlite:////sys/hgsearch-test.db"], "read-only place"),
    (["sweep", "space.hourglass.depth={choices:[1,3]}"], "different search space"),
    (["sweep", "workers=2"], "SQLite allows one writing process"),
    (["train", "device=cuda"], "no CUDA GPU is visible"),
    (["train", "train.epochs=-1"], "train.epochs must be positive"),
    (["status", "storage=postgres", "storage.port=1"], "Connection refused"),
]


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def existing(tmp_path_factory):
    """A run folder whose study existed before any bad command."""
    root = tmp_path_factory.mktemp("bad")
    subprocess.run(
        [*HG, "sweep", *SMOKE, f"run_dir={root}"], check=True, capture_output=True, timeout=300
    )
    (root / "empty").mkdir()
    broken = root / "broken"
    broken.mkdir()
    for stem in ("train-images-idx3-ubyte", "t10k-images-idx3-ubyte"):
        (broken / stem).write_bytes(bytes([0, 0, 8, 3]) + (10).to_bytes(4, "big") * 3 + b"x")
    for stem in ("train-labels-idx1-ubyte", "t10k-labels-idx1-ubyte"):
        (broken / stem).write_bytes(bytes([0, 0, 8, 1]) + (10).to_bytes(4, "big") + b"\0" * 10)
    pickles = root / "cifar-10-batches-py"
    pickles.mkdir()
    (pickles / "data_batch_1").write_bytes(b"\x80\x04N.")
    return root


@pytest.mark.slow
@pytest.mark.parametrize(("args", "needle"), CASES, ids=[" ".join(c[0]) for c in CASES])
def test_bad_input_table(existing, args, needle):
    if "device=cuda" in args and torch.cuda.is_available():
        pytest.skip("a GPU is present")
    db = existing / "hgsearch.db"
    before = digest(db)
    places = {"{empty}": existing / "empty", "{broken}": existing / "broken", "{pickles}": existing}
    for key, value in places.items():
        args = [a.replace(key, str(value)) for a in args]
    proc = subprocess.run(
        [*HG, args[0], *SMOKE, f"run_dir={existing}", *args[1:]],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PGPASSWORD": "not-the-password"},
    )
    err = proc.stderr.strip()
    assert proc.returncode == 2, (proc.returncode, err[-1500:])
    assert needle in err
    assert "Traceback" not in err and len(err.splitlines()) == 1, err
    assert "not-the-password" not in proc.stdout + proc.stderr
    assert digest(db) == before  # the existing study is untouched


@pytest.mark.postgres
def test_wrong_postgres_password(postgres, tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "hgsearch", "status", *postgres.overrides()],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PGPASSWORD": "wrong-password-123"},
    )
    assert proc.returncode == 2
    assert "password authentication failed" in proc.stderr
    assert "wrong-password-123" not in proc.stdout + proc.stderr
    assert postgres.password not in proc.stdout + proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


@pytest.mark.slow
def test_diverging_trials_fail_and_the_sweep_goes_on(tmp_path):
    args = [
        *SMOKE,
        f"run_dir={tmp_path}",
        "search.families=[hourglass]",
        "space.hourglass.lr={choices:[0.003,1e9]}",
        "search.n_trials=3",
    ]
    proc = subprocess.run(
        [sys.executable, "-m", "hgsearch", "sweep", *args],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr and "failed (diverged)" in proc.stderr
    study = optuna.load_study(
        study_name="smoke-gen_classify-digits-hourglass",
        storage=f"sqlite:///{tmp_path}/hgsearch.db",
    )
    assert len(trained_trials(study)) == 3
    failed = study.get_trials(states=(optuna.trial.TrialState.FAIL,))
    assert failed and all(t.user_attrs["status"] == "diverged" for t in failed)


def test_out_of_memory_fails_the_trial_and_the_sweep_goes_on(tmp_path, digits_splits):
    from omegaconf import OmegaConf

    from hgsearch.search.config import parse as from_config
    from hgsearch.search.tasks import prepare
    from tests.conftest import compose_cfg

    raw = OmegaConf.to_container(compose_cfg([*SMOKE, f"run_dir={tmp_path}"]), resolve=True)
    plan = make_plan(from_config(raw))
    fake = FakeTrainer()

    def sometimes_oom(spec, *args, **kwargs):
        if spec.d_h == 4:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory (simulated)")
        return fake(spec, *args, **kwargs)

    data = prepare(digits_splits, plan.config.task)
    study = run_family(
        plan, "hourglass", optuna.storages.InMemoryStorage(), data, "cpu", train_fn=sometimes_oom
    )
    assert len(trained_trials(study)) == 3
    assert all(t.user_attrs["d_h"] != 4 for t in trained_trials(study))


@pytest.mark.slow
def test_study_with_the_old_psnr_is_refused(existing, tmp_path):
    """A study stored before PSNR became the paper's batch PSNR is neither resumed (not even
    with search.allow_space_change) nor reported: one line with the reason and the fix."""
    db = tmp_path / "hgsearch.db"
    shutil.copy(existing / "hgsearch.db", db)
    storage = f"sqlite:///{db}"
    for name in optuna.study.get_all_study_names(storage):
        study = optuna.load_study(study_name=name, storage=storage)
        config = dict(study_config(study))
        del config["psnr_definition"]  # earlier versions stored no definition,
        study.set_user_attr(CONFIG_KEY, config)  # and kept the configuration a user attribute
        del study
    with sqlite3.connect(db) as con:
        con.execute("DELETE FROM study_system_attributes WHERE key = ?", (CONFIG_KEY,))
    con.close()
    before = digest(db)
    for args in (
        ["sweep"],
        ["sweep", "search.allow_space_change=true"],
        ["frontier"],
    ):
        proc = subprocess.run(
            [*HG, args[0], *SMOKE, f"run_dir={tmp_path}", *args[1:]],
            capture_output=True,
            text=True,
            timeout=120,
        )
        err = proc.stderr.strip()
        assert proc.returncode == 2, err[-1500:]
        assert "mean of per-image PSNRs" in err and "search.name=" in err
        assert "Traceback" not in err and len(err.splitlines()) == 1, err
        assert digest(db) == before
