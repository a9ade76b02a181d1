from __future__ import annotations

import optuna
import pandas as pd

from hgsearch.search.cli import main

SMOKE = ["experiment=smoke", "device=cpu"]
PNG = b"\x89PNG\r\n\x1a\n"


def test_frontier_without_a_database(tmp_path, capsys):
    assert main(["frontier", *SMOKE, f"run_dir={tmp_path}"]) == 2
    err = capsys.readouterr().err
    assert "no study database at" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "hgsearch.db").exists()  # reading never creates one


def test_frontier_on_an_empty_study(tmp_path, capsys):
    optuna.create_study(
        storage=f"sqlite:///{tmp_path}/hgsearch.db",
        study_name="smoke-gen_classify-digits-hourglass",
        directions=["maximize", "minimize"],
    )
    assert main(["frontier", *SMOKE, f"run_dir={tmp_path}"]) == 2
    err = capsys.readouterr().err
    assert "no trained trials yet" in err and "Traceback" not in err


def test_frontier_with_one_trial_and_one_family(tmp_path, capsys, fake_training):
    args = [*SMOKE, f"run_dir={tmp_path}", "search.families=[hourglass]", "search.n_trials=1"]
    assert main(["sweep", *args]) == 0
    capsys.readouterr()
    assert main(["frontier", *args]) == 0
    out = capsys.readouterr().out
    assert "comparison needs both hourglass and conventional" in out
    folder = tmp_path / "smoke-gen_classify-digits"
    assert (folder / "frontier.png").read_bytes()[:8] == PNG


def test_sweep_writes_every_report_file(tmp_path, capsys, fake_training):
    args = [
        *SMOKE,
        f"run_dir={tmp_path}",
        "report.formats=[png,svg,pdf]",
        "report.budgets=[20000,40000]",
    ]
    assert main(["sweep", *args]) == 0
    out = capsys.readouterr().out
    folder = tmp_path / "smoke-gen_classify-digits"
    for stem in ("frontier", "scaling", "progress"):
        assert (folder / f"{stem}.png").read_bytes()[:8] == PNG
        assert (folder / f"{stem}.svg").read_text().lstrip().startswith("<?xml")
        assert (folder / f"{stem}.pdf").read_bytes()[:4] == b"%PDF"
    trials = pd.read_csv(folder / "trials.csv")
    assert {"on_frontier", "on_pareto", "family", "params", "test_psnr"} <= set(trials.columns)
    assert trials["on_frontier"].any() and not trials.loc[~trials["trained"], "on_frontier"].any()
    frontier = pd.read_csv(folder / "frontier.csv")
    assert set(frontier["family"]) == {"hourglass", "conventional"}
    assert len(frontier) == trials["on_frontier"].sum()
    summary = (folder / "summary.md").read_text()
    assert "## Frontier (paper procedure)" in summary and "Best configuration within" in summary
    assert (folder / "budgets.csv").exists()
    assert f"wrote {folder}/trials.csv" in out


def test_bad_report_settings(tmp_path, capsys):
    assert main(["sweep", *SMOKE, f"run_dir={tmp_path}", "report.formats=[gif]"]) == 2
    assert "report.formats" in capsys.readouterr().err


def test_three_families_sweep_and_report(tmp_path, capsys, fake_training):
    """A family added to the registry sweeps and reports like the others: three curves."""
    args = [*SMOKE, f"run_dir={tmp_path}", "search.families=[hourglass,conventional,isotropic]"]
    assert main(["sweep", *args]) == 0
    folder = tmp_path / "smoke-gen_classify-digits"
    frontier = pd.read_csv(folder / "frontier.csv")
    assert set(frontier["family"]) == {"hourglass", "conventional", "isotropic"}
    iso = frontier[frontier["family"] == "isotropic"]
    assert (iso["d_h"] == iso["d_z"]).all()
    assert (folder / "frontier.png").read_bytes()[:8] == PNG
    summary = (folder / "summary.md").read_text()
    assert "isotropic" in summary and "## hourglass vs conventional" in summary
    families = {spec.family for spec, _, _ in fake_training.calls}
    assert families == {"hourglass", "conventional", "isotropic"}
    # Any two families can be compared.
    capsys.readouterr()
    assert main(["frontier", *args, "report.candidate=isotropic", "report.baseline=hourglass"]) == 0
    out = capsys.readouterr().out
    assert "isotropic minus hourglass" in out
