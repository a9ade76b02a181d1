"""Trained weights are kept and reload: a saved model reproduces its recorded test PSNR."""

from __future__ import annotations

import json
import pickle

import optuna
import pytest
import torch

from hgsearch.search.cli import main
from hgsearch.search.goal import trained_trials
from hgsearch.search.weights import load_model

SMOKE = ["experiment=smoke", "device=cpu"]


def last_json(out):
    return json.loads(out.strip().splitlines()[-1])


def test_train_saves_and_load_reproduces(tmp_path, capsys):
    path = tmp_path / "model.pt"
    assert main(["train", *SMOKE, f"save={path}"]) == 0
    trained = last_json(capsys.readouterr().out)
    assert trained["weights"] == str(path)
    payload = torch.load(path, weights_only=True)  # plain data: no code to run
    assert payload["spec"]["family"] == "hourglass" and "w_in.weight" in payload["state_dict"]
    assert main(["train", *SMOKE, f"load={path}"]) == 0
    loaded = last_json(capsys.readouterr().out)
    for key in ("eval_psnr", "test_psnr", "test_ssim"):
        assert loaded[key] == pytest.approx(trained[key], abs=1e-4), key


def test_sweep_keeps_the_best_model_per_family_and_it_reloads(tmp_path, capsys):
    args = [*SMOKE, f"run_dir={tmp_path}", "search.n_trials=2"]
    assert main(["sweep", *args]) == 0
    folder = tmp_path / "smoke-gen_classify-digits" / "weights"
    storage = f"sqlite:///{tmp_path}/hgsearch.db"
    for family in ("hourglass", "conventional"):
        study = optuna.load_study(study_name=f"smoke-gen_classify-digits-{family}", storage=storage)
        best = max(trained_trials(study), key=lambda t: t.values[0])
        path = folder / family / "best.pt"
        assert best.user_attrs["weights"] == str(path)
        model, meta = load_model(path)
        assert meta["trial"] == best.number
        capsys.readouterr()
        assert main(["train", *SMOKE, f"load={path}"]) == 0
        again = last_json(capsys.readouterr().out)
        assert again["test_psnr"] == pytest.approx(best.user_attrs["test_psnr"], abs=1e-4)
        assert again["family"] == family


def test_sweep_save_all_and_none(tmp_path, capsys):
    assert main(["sweep", *SMOKE, f"run_dir={tmp_path}", "search.save=all",
                 "search.n_trials=2", "search.families=[hourglass]"]) == 0  # fmt: skip
    files = sorted((tmp_path / "smoke-gen_classify-digits" / "weights" / "hourglass").glob("*"))
    assert [f.name for f in files] == ["trial_00000.pt", "trial_00001.pt"]
    other = tmp_path / "none"
    assert main(["sweep", *SMOKE, f"run_dir={other}", "search.save=none",
                 "search.n_trials=1", "search.families=[hourglass]"]) == 0  # fmt: skip
    assert not (other / "smoke-gen_classify-digits" / "weights").exists()


class Boom:
    def __reduce__(self):
        return (print, ("code ran",))


def test_a_file_that_is_not_ours_is_one_line(tmp_path, capsys):
    evil = tmp_path / "evil.pt"
    evil.write_bytes(pickle.dumps({"format": "hgsearch-weights-1", "spec": Boom()}))
    assert main(["train", *SMOKE, f"load={evil}"]) == 2
    out, err = capsys.readouterr()
    assert "code ran" not in out + err
    assert "is not a weights file hgsearch can read" in err and len(err.splitlines()) == 1
    other = tmp_path / "other.pt"
    torch.save({"a": torch.zeros(2)}, other)
    assert main(["train", *SMOKE, f"load={other}"]) == 2
    assert "is not an hgsearch weights file" in capsys.readouterr().err
