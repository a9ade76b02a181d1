"""The Optuna internals hgsearch leans on (search/internals.py): each test fails loudly when
Optuna moves them, and the dashboard serves what they store."""

from __future__ import annotations

import json
import threading
import urllib.request
from wsgiref.simple_server import WSGIRequestHandler, make_server

import optuna
import pytest

from hgsearch.search.cli import main
from hgsearch.search.internals import report_intermediate, set_study_config, study_config

SMOKE = ["experiment=smoke", "device=cpu"]


def test_intermediate_values_reach_a_multi_objective_trial(tmp_path):
    study = optuna.create_study(
        storage=f"sqlite:///{tmp_path}/s.db", directions=["maximize", "minimize"]
    )
    trial = study.ask()
    with pytest.raises(NotImplementedError):  # why the storage is called directly
        trial.report(1.0, 1)
    report_intermediate(trial, 1, 12.5)
    report_intermediate(trial, 2, 14.0)
    study.tell(trial, (14.0, 10.0))
    assert study.trials[0].intermediate_values == {1: 12.5, 2: 14.0}
    report_intermediate(optuna.trial.FixedTrial({}), 1, 1.0)  # no storage: nothing to do


def test_study_config_is_a_system_attribute(tmp_path):
    study = optuna.create_study(storage=f"sqlite:///{tmp_path}/s.db")
    assert study_config(study) is None
    set_study_config(study, {"a": 1})
    again = optuna.load_study(study_name=study.study_name, storage=f"sqlite:///{tmp_path}/s.db")
    assert study_config(again) == {"a": 1} and "hgsearch_config" not in again.user_attrs
    old = optuna.create_study(storage=f"sqlite:///{tmp_path}/s.db")
    old.set_user_attr("hgsearch_config", {"b": 2})  # where versions before 0.2 kept it
    assert study_config(old) == {"b": 2}


class Quiet(WSGIRequestHandler):
    def log_message(self, *args):  # no access log on the test's stderr
        pass


def test_dashboard_serves_the_learning_curves(tmp_path, fake_training):
    """optuna-dashboard, on loopback, shows each trial's per-epoch eval PSNR of a smoke sweep,
    and the stored configuration does not widen the studies' rows."""
    from optuna_dashboard import wsgi

    assert main(["sweep", *SMOKE, f"run_dir={tmp_path}", "train.epochs=3"]) == 0
    storage = f"sqlite:///{tmp_path}/hgsearch.db"
    server = make_server("127.0.0.1", 0, wsgi(storage), handler_class=Quiet)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{server.server_port}"
    try:

        def get(path):
            with urllib.request.urlopen(base + path, timeout=30) as response:
                return json.loads(response.read())

        studies = get("/api/studies")["study_summaries"]
        assert {s["study_name"] for s in studies} == {
            "smoke-gen_classify-digits-hourglass",
            "smoke-gen_classify-digits-conventional",
        }
        for s in studies:
            assert len(json.dumps(s.get("user_attrs", []))) < 200  # compact rows
            detail = get(f"/api/studies/{s['study_id']}?after=0")
            trained = [t for t in detail["trials"] if t["state"] == "Complete"]
            assert trained
            for t in trained:
                steps = [v["step"] for v in t["intermediate_values"]]
                assert steps == [1, 2, 3]
    finally:
        server.shutdown()
        server.server_close()
