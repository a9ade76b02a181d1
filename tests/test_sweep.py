from __future__ import annotations

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest
from omegaconf import OmegaConf

from hgsearch.search.cli import main
from hgsearch.search.config import parse as from_config
from hgsearch.search.goal import trained_trials
from hgsearch.search.plan import make_plan
from hgsearch.search.resume import study_names
from hgsearch.search.store import open_storage
from hgsearch.search.study import run_family
from hgsearch.search.tasks import prepare
from tests.conftest import compose_cfg
from tests.fakes import RECORD, FakeTrainer

SMOKE = ["experiment=smoke", "device=cpu"]


def plan_for(tmp_path, overrides):
    raw = OmegaConf.to_container(
        compose_cfg([*SMOKE, f"run_dir={tmp_path}", *overrides]), resolve=True
    )
    return make_plan(from_config(raw))


@pytest.mark.parametrize("sampler", ["tpe", "nsga2", "gp", "random", "grid"])
def test_no_trained_trial_breaks_budget_or_shape(tmp_path, digits_splits, sampler):
    """Many samples per sampler over a space where shapes and budgets often fail."""
    space = [
        "space.hourglass.d_z={choices:[40,65,96,128]}",
        "space.hourglass.d_h={choices:[4,16,48,100,150]}",
        "space.hourglass.depth={choices:[1,2,3,4]}",
        "space.conventional.d_h={choices:[32,80,128,192,256]}",
        "space.conventional.depth={choices:[1,2,3]}",
    ]
    plan = plan_for(
        tmp_path,
        [
            f"sampler={sampler}",
            # The GP sampler fits a model per trial (seconds each): fewer attempts suffice.
            f"search.n_trials={8 if sampler == 'gp' else 15}",
            "search.budget.min_params=8000",
            "search.budget.max_params=60000",
            f"search.max_attempts={16 if sampler == 'gp' else 40}",
            *space,
        ],
    )
    storage = optuna.storages.InMemoryStorage()  # the samplers are under test, not the storage
    data = prepare(digits_splits, plan.config.task)
    for family in plan.families:
        fake = FakeTrainer(max_params=60000, min_params=8000)  # asserts inside every call
        study = run_family(plan, family, storage, data, "cpu", train_fn=fake)
        trials = study.get_trials()
        assert len(fake.calls) == len(trained_trials(study)) > 0
        assert any("violation" in t.user_attrs for t in trials)  # the space did produce misses
        keys = [t.user_attrs["config_key"] for t in trained_trials(study)]
        assert len(keys) == len(set(keys))  # never trained twice
        if sampler == "tpe":  # tries each configuration once until the space is used up
            size = 80 if family == "hourglass" else 15
            tried = [tuple(sorted(t.params.items())) for t in trials if t.params][:size]
            assert len(tried) == len(set(tried)) and not any(
                "reused_from" in t.user_attrs for t in trials[:size]
            )
        for t in trained_trials(study):
            a = t.user_attrs
            assert 8000 <= a["params"] <= 60000
            assert a["d_h"] < a["d_z"] if family == "hourglass" else a["d_h"] > a["d_z"] == 64


def test_a_used_up_space_ends_the_sweep_with_why(tmp_path, digits_splits, caplog):
    """The smoke space holds 6 conventional configurations, 4 of them within the budget: asked
    for 20 trained trials, the sweep stops after the 6th trial instead of reusing results up to
    its attempt limit, says why, and a rerun adds nothing."""
    plan = plan_for(tmp_path, ["search.n_trials=20"])
    storage = optuna.storages.InMemoryStorage()
    data = prepare(digits_splits, plan.config.task)
    fake = FakeTrainer()
    with caplog.at_level("WARNING", logger="hgsearch"):
        study = run_family(plan, "conventional", storage, data, "cpu", train_fn=fake)
    trials = study.get_trials()
    assert len(trials) == 6 and len(fake.calls) == 4
    assert not any("reused_from" in t.user_attrs for t in trials)
    assert "all 6 configurations of the space have been tried, 4 trained (2 outside" in caplog.text
    assert "attempts" not in caplog.text
    caplog.clear()
    with caplog.at_level("WARNING", logger="hgsearch"):
        again = run_family(plan, "conventional", storage, data, "cpu", train_fn=fake)
    assert len(again.get_trials()) == 6 and len(fake.calls) == 4
    assert "all 6 configurations" in caplog.text


def test_budget_matched_mode(tmp_path, digits_splits):
    plan = plan_for(
        tmp_path,
        [
            "search.budget.targets=[20000,40000]",
            "search.budget.max_params=null",
            "search.budget.tolerance=0.05",
            "search.n_trials=4",
        ],
    )
    assert plan.study_name("hourglass").endswith("-hourglass-matched")
    storage = open_storage(plan.config.storage, create=True)
    data = prepare(digits_splits, plan.config.task)
    study = run_family(plan, "hourglass", storage, data, "cpu", train_fn=FakeTrainer())
    for t in trained_trials(study):
        target = t.user_attrs["budget_target"]
        assert abs(t.user_attrs["params"] - target) <= 0.05 * target
    # A new study starts with one trial per budget: every budget gets a model.
    assert [t.params["budget"] for t in study.trials[:2]] == [20000, 40000]
    assert {t.user_attrs["budget_target"] for t in trained_trials(study)} == {20000, 40000}
    # A depth whose budget-fixed width breaks the shape rule is said to be so, in the keys a
    # sweep has (no advice to set arch.d_h).
    conv = run_family(plan, "conventional", storage, data, "cpu", train_fn=FakeTrainer())
    why = {t.user_attrs.get("violation") for t in conv.trials} - {None}
    assert (
        "shape: conventional with depth 2 cannot meet the budget 20,000: it gives d_h=46, "
        "and conventional needs d_h > d_z = d_y" in why
    )
    assert not any("arch." in w for w in why)


def test_resume_refuses_a_changed_space_and_leaves_the_study(tmp_path, capsys, fake_training):
    args = [*SMOKE, f"run_dir={tmp_path}", "search.families=[hourglass]"]
    assert main(["sweep", *args]) == 0
    db = tmp_path / "hgsearch.db"
    before = db.read_bytes()
    capsys.readouterr()
    code = main(["sweep", *args, "space.hourglass.depth={choices:[1,3]}"])
    err = capsys.readouterr().err
    assert code == 2 and "different search space (changed: space.depth" in err
    assert len(err.strip().splitlines()) == 1
    assert db.read_bytes() == before
    assert (
        main(
            [
                "sweep",
                *args,
                "space.hourglass.depth={choices:[1,3]}",
                "search.allow_space_change=true",
            ]
        )
        == 0
    )


def test_sweep_status_frontier_and_optuna_cli(tmp_path, capsys, fake_training):
    assert main(["sweep", *SMOKE, f"run_dir={tmp_path}"]) == 0
    out = capsys.readouterr().out
    assert "hourglass minus conventional" in out or "comparison needs" in out
    storage = open_storage(plan_for(tmp_path, []).config.storage, create=False)
    names = study_names(storage)
    assert names == [
        "smoke-gen_classify-digits-conventional",
        "smoke-gen_classify-digits-hourglass",
    ]
    for name in names:
        study = optuna.load_study(study_name=name, storage=storage)
        assert len(trained_trials(study)) == 3
        assert study.metric_names == ["eval_psnr", "params"]
        a = trained_trials(study)[0].user_attrs
        for key in RECORD:
            assert key in a, key
    assert main(["status", *SMOKE, f"run_dir={tmp_path}"]) == 0
    status = capsys.readouterr().out
    assert "smoke-gen_classify-digits-hourglass" in status and "3" in status
    # The same command again: the target is a total, so nothing more is trained.
    assert main(["sweep", *SMOKE, f"run_dir={tmp_path}"]) == 0
    study = optuna.load_study(study_name=names[1], storage=storage)
    assert len(study.trials) == len([t for t in study.trials])
    assert len(trained_trials(study)) == 3
    optuna_cli = shutil.which("optuna") or str(Path(sys.executable).parent / "optuna")
    proc = subprocess.run(
        [
            optuna_cli,
            "best-trials",
            "--storage",
            f"sqlite:///{tmp_path}/hgsearch.db",
            "--study-name",
            names[1],
            "-f",
            "json",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    best = json.loads(proc.stdout)
    pareto = {t.number for t in study.best_trials}
    assert {b["number"] for b in best} == pareto and pareto


def _trial_rows(db: Path):
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as con:
        return con.execute("select number, state from trials").fetchall()


def _finished(db: Path):
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as con:
        rows = con.execute(
            "select t.trial_id, t.number, v.value from trials t join trial_values v "
            "on v.trial_id = t.trial_id where t.state = 'COMPLETE' and v.objective = 0"
        ).fetchall()
    return sorted(rows)


SLOW_SMOKE = [
    *SMOKE,
    "search.families=[hourglass]",
    "search.n_trials=4",
    "train.epochs=30",
    "space.hourglass.d_z={choices:[96,128]}",
    "space.hourglass.d_h={choices:[4,16,32]}",
    "space.hourglass.depth={choices:[2,3]}",
    "search.budget.max_params=null",
]


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGKILL])
def test_interrupted_sweep_resumes_without_loss(tmp_path, sig):
    db = tmp_path / "hgsearch.db"
    cmd = [sys.executable, "-m", "hgsearch", "sweep", *SLOW_SMOKE, f"run_dir={tmp_path}"]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    deadline = time.time() + 120
    try:
        while time.time() < deadline:  # wait for >= 2 finished trials and one running
            time.sleep(0.2)
            if db.exists():
                try:
                    rows = _trial_rows(db)
                except sqlite3.OperationalError:
                    continue
                states = [s for _, s in rows]
                if states.count("COMPLETE") >= 2 and states[-1] == "RUNNING":
                    break
        else:
            pytest.fail("the sweep never reached a running trial")
        before = _finished(db)
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    if sig == signal.SIGINT:
        assert proc.returncode == 130 and "Traceback" not in err.decode()
    else:
        assert proc.returncode == -signal.SIGKILL
    subprocess.run(cmd, check=True, capture_output=True, timeout=300, env=env)
    after = _finished(db)
    assert set(before) <= set(after)  # nothing finished was lost or changed
    storage = open_storage(plan_for(tmp_path, SLOW_SMOKE[2:]).config.storage, create=False)
    study = optuna.load_study(study_name="smoke-gen_classify-digits-hourglass", storage=storage)
    trained = trained_trials(study)
    assert len(trained) == 4
    keys = [t.user_attrs["config_key"] for t in trained]
    assert len(keys) == len(set(keys))  # no finished trial duplicated
    states = {t.state for t in study.trials}
    assert optuna.trial.TrialState.RUNNING not in states
    # The interrupted trial failed and was trained again, or (an interrupt Python swallowed in a
    # finalizer) it finished and the sweep stopped right after it. SIGKILL always fails it.
    interrupted = study.trials[rows[-1][0]]
    if sig == signal.SIGKILL or interrupted.state != optuna.trial.TrialState.COMPLETE:
        assert interrupted.state == optuna.trial.TrialState.FAIL
        if interrupted.params:  # it was stopped after (part of) its configuration was drawn
            # Trained again: its queued retry keeps what was drawn and draws the rest (a kill
            # between two suggestions leaves, say, the architecture without the lr).
            again = [t for t in trained if interrupted.params.items() <= t.params.items()]
            partial = again and set(interrupted.params) < set(again[0].params)
            assert len(again) == 1 or partial
    with sqlite3.connect(db) as con:
        assert con.execute("PRAGMA integrity_check").fetchone() == ("ok",)


def test_ctrl_c_during_a_storage_call_waits_for_a_safe_point(tmp_path, monkeypatch, capsys):
    # A real SIGINT while the objective writes to the study: the write completes, the trial stops
    # before training, is failed and queued again; nothing hangs, the exit code is 130.
    import os

    from hgsearch.search import commands as sweep
    from hgsearch.search.objective import Objective

    fake = FakeTrainer()
    real_run_family, real_record = sweep.run_family, Objective._record_arch
    monkeypatch.setattr(
        sweep, "run_family", lambda *a, **k: real_run_family(*a, **k, train_fn=fake)
    )

    def record_with_ctrl_c(self, trial, cand):
        os.kill(os.getpid(), signal.SIGINT)
        real_record(self, trial, cand)

    monkeypatch.setattr(Objective, "_record_arch", record_with_ctrl_c)
    before = signal.getsignal(signal.SIGINT)
    args = ["sweep", *SMOKE, f"run_dir={tmp_path}", "search.families=[hourglass]"]
    assert main(args) == 130
    assert "interrupted" in capsys.readouterr().err
    assert signal.getsignal(signal.SIGINT) is before  # handlers restored
    assert fake.calls == []  # stopped before training
    storage = open_storage(plan_for(tmp_path, []).config.storage, create=False)
    study = optuna.load_study(study_name="smoke-gen_classify-digits-hourglass", storage=storage)
    first = study.trials[0]
    assert first.state == optuna.trial.TrialState.FAIL
    assert first.user_attrs["config_key"]  # the write the signal arrived in was completed
    queued = study.get_trials(states=(optuna.trial.TrialState.WAITING,))
    assert [t.params for t in queued] == [first.params]
    monkeypatch.setattr(Objective, "_record_arch", real_record)
    assert main(args) == 0  # the next run trains the queued configuration first
    study = optuna.load_study(study_name=study.study_name, storage=storage)
    assert trained_trials(study)[0].params == first.params
