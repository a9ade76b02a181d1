from __future__ import annotations

import json
import signal
import subprocess
import sys
import time

import optuna
import pytest

from hgsearch.search.cli import main
from hgsearch.search.goal import trained_trials
from tests.conftest import compose_cfg
from tests.fakes import RECORD

GRID = [
    "experiment=smoke",
    "device=cpu",
    "threads=1",
    "sampler=grid",
    "search.families=[hourglass]",
    "search.n_trials=12",
    "search.budget.max_params=null",
    "space.hourglass.d_z={choices:[65,96,128]}",
    "space.hourglass.d_h={choices:[4,16]}",
    "space.hourglass.depth={choices:[1,2]}",
    "space.hourglass.lr={choices:[0.003]}",
]
STUDY = "smoke-gen_classify-digits-hourglass"


def launch(args, env, log_path):
    cmd = [sys.executable, "-m", "hgsearch", "sweep", *args]
    fh = open(log_path, "w")  # noqa: SIM115 - closed by the caller through the process
    return subprocess.Popen(
        cmd, stdout=fh, stderr=subprocess.STDOUT, env=env, stdin=subprocess.DEVNULL
    )


def url_with_password(server):
    return (
        f"postgresql+psycopg2://{server.user}:{server.password}@{server.host}:"
        f"{server.port}/{server.database}"
    )


def check_grid_study(study):
    trained = trained_trials(study)
    assert len(trained) == 12
    keys = [t.user_attrs["config_key"] for t in trained]
    assert len(set(keys)) == 12  # no configuration trained twice
    for t in trained:
        assert all(k in t.user_attrs for k in RECORD), t.number
    assert not study.get_trials(states=(optuna.trial.TrialState.RUNNING,))
    # Any other finished trial reused a stored result (a worker that drew a trained point of an
    # exhausted grid while the last points were still being chosen elsewhere): it trained
    # nothing and carries its source's values.
    by_number = {t.number: t for t in trained}
    for t in study.get_trials(states=(optuna.trial.TrialState.COMPLETE,)):
        if t.number not in by_number:
            assert by_number[t.user_attrs["reused_from"]].values == t.values, t.number
    return trained


@pytest.mark.slow
@pytest.mark.postgres
def test_three_workers_share_one_grid_study(postgres, tmp_path):
    name = f"{STUDY}"
    args = [*GRID, *postgres.overrides(), f"run_dir={tmp_path}", "search.name=pg3"]
    procs = [
        launch([*args, f"worker={i}"], postgres.env(), tmp_path / f"w{i}.log") for i in range(3)
    ]
    for p in procs:
        assert p.wait(timeout=600) == 0, (tmp_path / "w0.log").read_text()[-2000:]
    study = optuna.load_study(
        study_name=name.replace("smoke", "pg3"), storage=url_with_password(postgres)
    )
    trained = check_grid_study(study)
    assert len({t.user_attrs["worker"] for t in trained}) >= 2  # they really shared the work
    assert_password_nowhere(postgres, tmp_path, study)


def assert_password_nowhere(server, folder, study):
    secret = server.password
    for path in folder.rglob("*"):
        if path.is_file():
            assert secret not in path.read_text(errors="replace"), path
    attrs = [study.user_attrs, study._storage.get_study_system_attrs(study._study_id)]
    for t in study.get_trials():
        attrs += [t.user_attrs, t.system_attrs, t.params]
    assert secret not in json.dumps(attrs, default=str)


@pytest.mark.slow
@pytest.mark.postgres
def test_killed_worker_trial_is_retried(postgres, tmp_path):
    args = [
        *GRID,
        *postgres.overrides(),
        f"run_dir={tmp_path}",
        "search.name=pgkill",
        "train.epochs=40",
        "storage.heartbeat_interval=1",
        "storage.grace_period=3",
    ]
    # One storage (one connection pool) for all the polling below: a new one per look would
    # leave connections open until the server refuses more clients.
    storage = optuna.storages.RDBStorage(url_with_password(postgres))
    procs = [
        launch([*args, f"worker={i}"], postgres.env(), tmp_path / f"w{i}.log") for i in range(3)
    ]
    victim, deadline = None, time.time() + 180
    try:
        while victim is None and time.time() < deadline:
            time.sleep(0.2)
            for i, p in enumerate(procs):
                assert p.poll() is None, (tmp_path / f"w{i}.log").read_text()[-2000:]
            try:
                study = optuna.load_study(
                    study_name="pgkill-gen_classify-digits-hourglass", storage=storage
                )
            except KeyError:
                continue
            done = trained_trials(study)
            running = [
                t
                for t in study.get_trials(states=(optuna.trial.TrialState.RUNNING,))
                if t.user_attrs.get("worker") == 1 and "config_key" in t.user_attrs
            ]
            if not (done and running):
                continue
            # Freeze worker 1, then read which trial it holds: a trial seen running a moment
            # ago may have finished since, and killing then would test nothing.
            procs[1].send_signal(signal.SIGSTOP)
            held = [
                t
                for t in study.get_trials(states=(optuna.trial.TrialState.RUNNING,))
                if t.user_attrs.get("worker") == 1 and "config_key" in t.user_attrs
            ]
            if held:
                victim = held[0]
            else:
                procs[1].send_signal(signal.SIGCONT)
        assert victim is not None, "worker 1 never ran a trial"
        procs[1].send_signal(signal.SIGKILL)
        assert procs[1].wait(timeout=30) == -signal.SIGKILL
        for p in (procs[0], procs[2]):
            assert p.wait(timeout=600) == 0
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    # A restarted worker finishes whatever the killed one left.
    again = launch([*args, "worker=1"], postgres.env(), tmp_path / "w1-again.log")
    assert again.wait(timeout=600) == 0
    study = optuna.load_study(study_name="pgkill-gen_classify-digits-hourglass", storage=storage)
    trained = check_grid_study(study)
    killed = study.trials[victim.number]
    assert killed.state == optuna.trial.TrialState.FAIL
    retried = [t for t in trained if t.system_attrs.get("failed_trial") == victim.number]
    assert len(retried) == 1
    assert retried[0].user_attrs["config_key"] == victim.user_attrs["config_key"]


@pytest.mark.slow
def test_local_workers_on_a_journal_file(tmp_path, capsys):
    # Trials long enough that the child processes join before the first worker is done.
    args = [*GRID, "storage=journal", f"run_dir={tmp_path}", "workers=3", "train.epochs=40"]
    assert main(["sweep", *args]) == 0
    storage = optuna.storages.JournalStorage(
        optuna.storages.journal.JournalFileBackend(str(tmp_path / "hgsearch.journal"))
    )
    study = optuna.load_study(study_name=STUDY, storage=storage)
    trained = check_grid_study(study)
    assert len({t.user_attrs["pid"] for t in trained}) >= 2


def test_sqlite_refuses_several_workers(tmp_path, capsys):
    assert main(["sweep", "experiment=smoke", f"run_dir={tmp_path}", "workers=2"]) == 2
    err = capsys.readouterr().err
    assert "SQLite allows one writing process" in err and "storage=journal" in err
    assert not (tmp_path / "hgsearch.db").exists()


def test_slurm_launcher_config_composes():
    from hydra import compose, initialize_config_dir

    from hgsearch.search.cli import conf_dir

    with initialize_config_dir(config_dir=str(conf_dir()), version_base="1.3"):
        cfg = compose(
            "config",
            overrides=["hydra/launcher=slurm", "storage=postgres"],
            return_hydra_config=True,
        )
    assert cfg.hydra.launcher._target_.endswith("SlurmLauncher")
    assert cfg.hydra.launcher.gpus_per_node == 1 and cfg.hydra.sweep.subdir == "worker0"
    assert cfg.storage.kind == "postgres"
    assert compose_cfg(["worker=3"]).worker == 3
