"""The sweep on a real one-node SLURM cluster (tests/slurm.py) with a real PostgreSQL study
storage (tests/pg.py): `hgsearch sweep -m hydra/launcher=slurm worker=0,1 ...` as a user runs
it, through submitit, sbatch, slurmctld and slurmd."""

from __future__ import annotations

import os
import pickle
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from hgsearch.search.goal import trained_trials
from tests.test_workers import url_with_password

pytestmark = [pytest.mark.slurm, pytest.mark.slow]


def sweep_command(slurm, postgres, tmp_path: Path, *extra: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "hgsearch",
        "sweep",
        "-m",
        *slurm.launcher_overrides(),
        f"hydra.sweep.dir={tmp_path}/multirun",  # submitit's job folders, on the shared disk
        "worker=0,1",
        "experiment=smoke",
        "device=cpu",
        "threads=1",
        f"run_dir={tmp_path}",
        *postgres.overrides(),
        *extra,
    ]


def job_logs(tmp_path: Path) -> str:
    """The submitit logs of every job, for assertion messages."""
    paths = sorted((tmp_path / "multirun" / ".submitit").glob("*/*_log.*"))
    return "".join(f"\n--- {p.name}\n{p.read_text(errors='replace')[-1500:]}" for p in paths)


def check_study(study: optuna.Study) -> list[optuna.trial.FrozenTrial]:
    """The study's trained trials, after checking that no configuration was trained twice and
    that no trial is left running or queued."""
    trained = trained_trials(study)
    keys = [t.user_attrs["config_key"] for t in trained]
    assert len(set(keys)) == len(keys), keys
    assert not study.get_trials(states=(TrialState.RUNNING, TrialState.WAITING))
    return trained


def job_state(slurm, job_id: str, timeout: float = 30) -> dict[str, str]:
    """`scontrol show job` of an ended job as a dict (ended jobs stay listed for MinJobAge
    seconds). A job's result file is written before its process exits, so wait for the end."""
    deadline = time.monotonic() + timeout
    while True:
        fields = slurm.run("scontrol", "-o", "show", "job", job_id).split()
        state = dict(f.split("=", 1) for f in fields if "=" in f)
        if state["JobState"] not in ("PENDING", "RUNNING", "COMPLETING"):
            return state
        assert time.monotonic() < deadline, f"job {job_id} is still {state['JobState']}"
        time.sleep(0.2)


def test_sbatch_runs_a_job(slurm, tmp_path):
    script = tmp_path / "job.sh"
    script.write_text(f'#!/bin/sh\necho "$SLURM_JOB_ID $SLURMD_NODENAME" > {tmp_path}/ran\n')
    out = slurm.run("sbatch", "--wait", "--parsable", f"--output={tmp_path}/%j.out", str(script))
    job_id = out.strip().split(";")[0]
    assert (tmp_path / "ran").read_text().split() == [job_id, slurm.node]
    assert job_state(slurm, job_id)["JobState"] == "COMPLETED"


@pytest.mark.postgres
def test_sweep_runs_two_workers_as_slurm_jobs(slurm, postgres, tmp_path):
    cmd = sweep_command(slurm, postgres, tmp_path, "search.n_trials=4", "search.name=slurm2")
    proc = subprocess.run(
        cmd, env={**postgres.env(), **slurm.env()}, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr[-3000:] + job_logs(tmp_path)
    # One submitit folder per array task, `<array job>_<task>`, each with a successful result.
    results = sorted((tmp_path / "multirun" / ".submitit").glob("*_*/*_result.pkl"))
    job_ids = sorted(p.parent.name for p in results)
    assert len(job_ids) == 2 and len({j.split("_")[1] for j in job_ids}) == 2, job_ids
    for path in results:
        assert pickle.loads(path.read_bytes())[0] == "success", job_logs(tmp_path)
    for job_id in job_ids:
        state = job_state(slurm, job_id)
        assert (state["JobState"], state["ExitCode"], state["NodeList"]) == (
            "COMPLETED",
            "0:0",
            slurm.node,
        )
    storage = optuna.storages.RDBStorage(url_with_password(postgres))
    workers, trained = set(), {}
    for family in ("hourglass", "conventional"):
        study = optuna.load_study(
            study_name=f"slurm2-gen_classify-digits-{family}", storage=storage
        )
        trained[family] = len(check_study(study))
        workers |= {t.user_attrs["worker"] for t in study.trials}
    assert workers == {0, 1}  # both jobs took trials
    # Worker 0 reported the studies into the shared run folder.
    assert (tmp_path / "slurm2-gen_classify-digits" / "summary.md").exists()
    # Exactly the target: a worker claims its slot (records its seeds) and then looks again,
    # so two workers that saw one slot left cannot both train it.
    assert trained == {"hourglass": 4, "conventional": 4}, trained


def _slurm_job_of(pid: int) -> str:
    """The SLURM job (array task) a worker process runs in, from its environment (the test and
    the node share one machine)."""
    environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    env = dict(e.decode().split("=", 1) for e in environ if b"=" in e)
    return f"{env['SLURM_ARRAY_JOB_ID']}_{env['SLURM_ARRAY_TASK_ID']}"


GRACE = 3  # storage.grace_period: seconds without a heartbeat before a RUNNING trial is stale


@pytest.mark.postgres
@pytest.mark.parametrize("hard", [False, True], ids=["scancel", "kill-step"])
def test_cancelled_job_trial_is_retried(slurm, postgres, tmp_path, hard):
    """`scancel` sends SIGTERM: the worker fails its trial and queues it again itself
    (search/interrupt.py). `scancel --signal=KILL <job>.0` kills the worker's process outright,
    as the OOM killer or a lost node would: only the storage heartbeat can fail its trial."""
    prefix = "slurmkill" if hard else "slurmterm"
    name = f"{prefix}-gen_classify-digits-hourglass"
    target = 5
    cmd = sweep_command(
        slurm,
        postgres,
        tmp_path,
        f"search.name={prefix}",
        "search.families=[hourglass]",
        f"search.n_trials={target}",
        "train.epochs=40",  # about half a second per trial: long enough to be caught training
        "storage.heartbeat_interval=1",
        f"storage.grace_period={GRACE}",
    )
    storage = optuna.storages.RDBStorage(url_with_password(postgres))
    log = open(tmp_path / "submit.log", "w")  # noqa: SIM115 - closed below
    submitter = subprocess.Popen(
        cmd, env={**postgres.env(), **slurm.env()}, stdout=log, stderr=subprocess.STDOUT
    )
    frozen: list[int] = []
    victim, job, before = None, None, []
    training: set[int] | None = None  # trials seen training at the previous look
    try:
        deadline = time.monotonic() + 120
        while victim is None and time.monotonic() < deadline:
            time.sleep(0.1)
            assert submitter.poll() is None, (tmp_path / "submit.log").read_text()[-3000:]
            try:
                study = optuna.load_study(study_name=name, storage=storage)
            except KeyError:
                continue
            trials = study.get_trials()
            running = [
                t for t in trials if t.state == TrialState.RUNNING and "seeds" in t.user_attrs
            ]
            # A trial that began training since the last look (0.1 s ago) is surely still
            # training: one caught while it records its result would finish, not be retried.
            fresh = [t for t in running if training is not None and t.number not in training]
            training = {t.number for t in running}
            if not (fresh and trained_trials(study)):
                continue  # nothing just started training, or nothing finished that could be lost
            mine = fresh[0].user_attrs["worker"]
            other = [
                t.user_attrs["pid"]
                for t in trials
                if "pid" in t.user_attrs and t.user_attrs["worker"] != mine
            ]
            if not other:
                continue
            # Freeze the workers, then read whether the trial is still held: one seen running a
            # moment ago may have finished since, and cancelling then would test nothing.
            frozen = [fresh[0].user_attrs["pid"], other[-1]]
            for pid in frozen:
                os.kill(pid, signal.SIGSTOP)
            frozen_at = time.monotonic()
            held = storage.get_trial(fresh[0]._trial_id)
            before = trained_trials(study)
            # The survivor, once thawed, finishes at most one trial before its next one starts
            # (where Optuna fails stale trials); if that one already met the target with the
            # victim counted as training, the survivor would stop first (see the hard case).
            if held.state == TrialState.RUNNING and len(before) + 2 < target:
                victim, job = held, _slurm_job_of(frozen[0])
            else:
                for pid in frozen:
                    os.kill(pid, signal.SIGCONT)
                frozen = []
        assert victim is not None, "no worker was caught training" + job_logs(tmp_path)
        if hard:
            slurm.run("scancel", "--signal=KILL", f"{job}.0")  # step 0: the worker itself
            # The survivor stays frozen until the victim's heartbeat is stale: otherwise it may
            # stop at the target still counting the victim's trial as training.
            time.sleep(max(0.0, frozen_at + GRACE + 1.5 - time.monotonic()))
        else:
            slurm.run("scancel", job)  # SIGCONT, SIGTERM, and SIGKILL after KillWait
        os.kill(frozen[1], signal.SIGCONT)
        deadline = time.monotonic() + 120
        while slurm.jobs() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not slurm.jobs(), "the other worker did not finish" + job_logs(tmp_path)
    finally:
        for pid in frozen:
            try:
                os.kill(pid, signal.SIGCONT)
            except ProcessLookupError:
                pass
        # Without an accounting database `sacct` cannot tell submitit that the cancelled job
        # ended, so the submitting command would wait for it forever.
        submitter.terminate()
        submitter.wait(timeout=30)
        log.close()
    ended = job_state(slurm, job)
    assert ended["JobState"] == ("FAILED" if hard else "CANCELLED"), ended
    study = optuna.load_study(study_name=name, storage=storage)
    trained = check_study(study)
    assert len(trained) == target
    retried = [t for t in trained if t.system_attrs.get("failed_trial") == victim.number]
    if not hard and study.trials[victim.number].state == TrialState.COMPLETE:
        # Rare: SIGTERM came after the training, where the worker finishes and records the
        # trial before it stops (search/interrupt.py). Nothing to retry then.
        assert study.trials[victim.number] in trained and not retried
    else:
        assert study.trials[victim.number].state == TrialState.FAIL
        assert len(retried) == 1, job_logs(tmp_path)
        assert retried[0].user_attrs["config_key"] == victim.user_attrs["config_key"]
        assert retried[0].user_attrs["worker"] != victim.user_attrs["worker"]
    for t in before:  # no finished trial is lost
        assert study.trials[t.number].state == TrialState.COMPLETE
        assert study.trials[t.number].values == t.values
