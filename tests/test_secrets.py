"""No password reaches a human or a file: every URL shape through the one function that shows
URLs, and a real sweep on PostgreSQL with the password in its URL, every output channel
grepped (stdout, stderr, the run folder's files, trial logs, study and trial attributes,
Hydra's multirun folders)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import optuna
import pytest

from hgsearch.search.urls import redact, secrets_of, shown

SECRET = "S3cr3tPW"
SHAPES = [
    ("postgresql://u:S3cr3tPW@h:5432/db", "postgresql://h:5432/db"),
    ("postgresql+psycopg2://u:S3cr3tPW@h/db", "postgresql+psycopg2://h/db"),
    ("postgresql://:S3cr3tPW@h/db", "postgresql://h/db"),  # no user
    ("postgresql://u:S3cr3t%40PW@h/db", "postgresql://h/db"),  # percent-encoded "@"
    ("postgresql://u:S3cr3t@PW@h/db", "postgresql://h/db"),  # a raw "@" in the password
    ("postgresql://u:S3c/r3tPW@h/db", "postgresql://h/db"),  # a "/" in the password
    ("postgresql://u:S3c:r3t:PW@h/db", "postgresql://h/db"),  # colons in the password
    ("postgresql://u@h/db?password=S3cr3tPW", "postgresql://h/db?password=***"),
    ("postgresql://h/db?sslmode=require&password=S3cr3tPW", "sslmode=require&password=***"),
    ("mysql+pymysql://u:S3cr3tPW@h:3306/db?charset=utf8", "mysql+pymysql://h:3306/db"),
    ("postgresql://u:S3cr3tPW@h1:5432,h2:5433/db", "postgresql://h1:5432,h2:5433/db"),
    ("redis://:S3cr3tPW@h:6379/0", "redis://h:6379/0"),
    ("postgresql://u:S3cr3tPW@[::1]:5432/db", "postgresql://[::1]:5432/db"),
    ("postgresql://u:S3cr3tPW@h/db?password=S3cr3tPW", "postgresql://h/db?password=***"),
]


def leaks(text: str, url: str) -> list[str]:
    return [s for s in [*secrets_of(url), SECRET] if len(s) > 3 and s in text]


@pytest.mark.parametrize(("url", "seen"), SHAPES, ids=[u for u, _ in SHAPES])
def test_every_url_shape_is_shown_without_its_secret(url, seen):
    assert secrets_of(url)  # the shape does carry a secret
    assert seen in shown(url) and not leaks(shown(url), url)
    message = f"cannot open the study storage {url}: connection refused; retried {url}."
    text = redact(message, url)
    assert not leaks(text, url) and seen in text
    assert text.endswith("connection refused; retried " + shown(url) + ".")  # sentence kept
    # A driver's message without the URL still loses the literal password.
    for secret in secrets_of(url):
        assert secret not in redact(f"FATAL: password {secret} rejected", url)


def files_text(folder: Path) -> str:
    out = []
    for path in folder.rglob("*"):
        if path.is_file() and path.stat().st_size < 50_000_000:
            out.append(path.read_bytes().decode("latin-1"))
    return "\n".join(out)


@pytest.mark.slow
@pytest.mark.postgres
def test_a_sweep_with_the_password_in_its_url_leaks_it_nowhere(postgres, tmp_path):
    password = postgres.password
    url = (
        f"postgresql+psycopg2://{postgres.user}:{password}@{postgres.host}:{postgres.port}/"
        f"{postgres.database}"
    )
    env = {k: v for k, v in os.environ.items() if k != "PGPASSWORD"}  # only the URL has it
    hg = [sys.executable, "-m", "hgsearch"]
    run_dir = tmp_path / "runs"
    common = ["experiment=smoke", "device=cpu", "threads=1", f"run_dir={run_dir}"]
    sweep = subprocess.run(
        [*hg, "sweep", *common, f"storage.url={url}", "search.n_trials=2"],
        capture_output=True, text=True, timeout=300, env=env,
    )  # fmt: skip
    assert sweep.returncode == 0, sweep.stderr[-2000:]
    status = subprocess.run(
        [*hg, "status", *common, f"storage.url={url}"],
        capture_output=True, text=True, timeout=120, env=env,
    )  # fmt: skip
    assert status.returncode == 0 and "smoke-gen_classify-digits-hourglass" in status.stdout
    wrong = subprocess.run(  # a wrong port: the error line names the URL
        [*hg, "status", *common, f"storage.url={url.replace(str(postgres.port), '1')}"],
        capture_output=True, text=True, timeout=120, env=env,
    )  # fmt: skip
    assert wrong.returncode == 2 and len(wrong.stderr.strip().splitlines()) == 1
    multirun = subprocess.run(  # Hydra would write the URL into its multirun folders
        [*hg, "sweep", "-m", "worker=0", *common, f"storage.url={url}"],
        capture_output=True, text=True, timeout=120, env=env,
    )  # fmt: skip
    assert multirun.returncode == 2 and "PGPASSWORD" in multirun.stderr
    with_env = subprocess.run(  # the password in PGPASSWORD: -m works, its folders are clean
        [*hg, "sweep", "-m", "worker=0", *common, *postgres.overrides(), "search.n_trials=2"],
        capture_output=True, text=True, timeout=300, env={**env, "PGPASSWORD": password},
    )  # fmt: skip
    assert with_env.returncode == 0, with_env.stderr[-2000:]
    assert list(run_dir.glob("hydra/multirun-*/worker0/.hydra/overrides.yaml"))
    printed = "".join(p.stdout + p.stderr for p in (sweep, status, wrong, multirun, with_env))
    assert password not in printed
    assert password not in files_text(run_dir)  # reports, trial logs, weights, Hydra's files
    storage = optuna.storages.RDBStorage(url)
    for summary in optuna.get_all_study_summaries(storage):
        study = optuna.load_study(study_name=summary.study_name, storage=storage)
        attrs = [study.user_attrs, storage.get_study_system_attrs(study._study_id)]
        attrs += [t.user_attrs for t in study.trials] + [t.system_attrs for t in study.trials]
        assert password not in json.dumps(attrs, default=str)
