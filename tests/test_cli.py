from __future__ import annotations

import json
import subprocess
import sys

import pytest
import yaml

from hgsearch.search.cli import main

PAPER_PARAMS = [
    (
        "dataset=imagenet32 task=denoise arch=hourglass arch.d_z=3546 arch.d_h=8 arch.depth=5",
        22_070_304,
    ),
    ("dataset=imagenet32 task=denoise arch=conventional arch.d_h=3075 arch.depth=1", 37_767_168),
    (
        "dataset=mnist task=gen_classify arch=hourglass arch.d_z=785 arch.d_h=4 arch.depth=10",
        1_293_680,
    ),
    (
        "dataset=mnist task=superres arch=hourglass arch.d_z=785 arch.d_h=115 arch.depth=2",
        1_130_400,
    ),
    ("dataset=mnist task=gen_classify arch=conventional arch.d_h=785 arch.depth=1", 2_460_192),
]


def run_cli(capsys, *args):
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def last_json(out):
    return json.loads(out.strip().splitlines()[-1])


@pytest.mark.parametrize(("overrides", "expected"), PAPER_PARAMS)
def test_params_reproduces_paper_counts(capsys, overrides, expected):
    code, out, _ = run_cli(capsys, "params", *overrides.split())
    record = last_json(out)
    assert code == 0 and record["params"] == expected and record["params_total"] == expected


def test_params_fixed_w_in_reports_both_counts(capsys):
    code, out, _ = run_cli(
        capsys, "params", "dataset=mnist", "task=gen_classify", "arch.fix_w_in=true"
    )
    record = last_json(out)
    assert record["params_total"] - record["params"] == 785 * 784


def test_train_prints_one_json_line(capsys):
    code, out, err = run_cli(
        capsys, "train", "experiment=smoke", "task=denoise", "train.epochs=2", "device=cpu"
    )
    record = last_json(out)
    assert code == 0
    for key in (
        "family",
        "params",
        "params_total",
        "eval_psnr",
        "test_psnr",
        "test_ssim",
        "seconds",
        "device",
    ):
        assert key in record
    assert record["device"] == "cpu" and record["family"] == "hourglass"
    assert record["test_psnr"] > 10 and len(out.strip().splitlines()) == 1


def test_train_reports_the_papers_psnr_and_the_per_image_mean_apart(capsys):
    code, out, _ = run_cli(
        capsys,
        "train",
        "dataset=mnist5k",
        "task=gen_classify",
        "arch.d_z=785",
        "arch.d_h=16",
        "arch.depth=1",
        "train.epochs=1",
        "device=cpu",
    )
    record = last_json(out)
    assert code == 0
    # Generative classification: the per-image mean sits above the batch PSNR (by ~1 dB after
    # one epoch, 5-10 dB once trained).
    assert record["test_psnr_image"] > record["test_psnr"] + 0.5
    assert record["eval_psnr_image"] > record["eval_psnr"] + 0.5


def test_bf16_on_a_cpu_says_it_trains_in_fp32(capsys, caplog):
    args = ["train", "experiment=smoke", "train.epochs=1", "device=cpu"]
    code, _, _ = run_cli(capsys, *args, "train.bf16=true")
    assert code == 0
    assert "train.bf16=true applies on CUDA only: training in fp32 on cpu" in caplog.text
    caplog.clear()
    code, _, _ = run_cli(capsys, *args)
    assert code == 0 and "bf16" not in caplog.text


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["params", "arch=foo"], "unknown arch 'foo'; choose one of: conventional, hourglass"),
        (["params", "dataset=svhn"], "unknown dataset 'svhn'"),
        (["params", "task=inpaint"], "unknown task 'inpaint'"),
        (["params", "experiment=nope"], "unknown experiment 'nope'"),
        (["params", "arch.d_h=900"], "hourglass needs d_h < d_z"),
        (["params", "arch=conventional", "arch.d_h=700"], "conventional needs d_h > d_z"),
        (["params", "train.epochs=abc"], "train.epochs='abc' must be a whole number"),
        (["params", "train.epochs=0"], "train.epochs must be positive"),
        (["params", "arch.nope=1"], "arch.nope"),
        (["train", "dataset=mnist", "dataset.root=/nonexistent"], "is not a folder"),
        (["train", "dataset=cifar10", "dataset.download=false"], "dataset.root"),
        (["frobnicate"], "unknown command 'frobnicate'"),
        (["train", "experiment=smoke", "device=tpu"], "device='tpu' is not a device"),
    ],
)
def test_bad_input_is_one_line(capsys, args, needle):
    code, out, err = run_cli(capsys, *args)
    assert code == 2
    assert needle in err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err


def hgsearch(*args, cwd=None, timeout=300):
    """The installed command, run as `python -m hgsearch` (the console script's module)."""
    return subprocess.run(
        [sys.executable, "-m", "hgsearch", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_params_from_another_folder(tmp_path):
    proc = hgsearch(
        "params", "dataset=mnist", "task=gen_classify", "arch=conventional", cwd=tmp_path
    )
    assert proc.returncode == 0, proc.stderr
    assert last_json(proc.stdout)["params"] == 2_460_192


def test_version_help_and_cfg(tmp_path):
    from hgsearch import __version__

    proc = hgsearch("--version")
    assert proc.returncode == 0 and proc.stdout.strip() == f"hgsearch {__version__}"
    sweep_help = hgsearch("sweep", "--help")
    assert sweep_help.returncode == 0 and not sweep_help.stderr.strip()
    for needle in ("search.n_trials", "config groups", "experiment ", "isotropic", "-m key=a,b"):
        assert needle in sweep_help.stdout, needle
    train_help = hgsearch("train", "--help")
    assert train_help.returncode == 0 and "arch.d_z" in train_help.stdout
    assert "one model" in train_help.stdout
    cfg = hgsearch("sweep", "experiment=smoke", "--cfg", "job")
    assert cfg.returncode == 0, cfg.stderr
    composed = yaml.safe_load(cfg.stdout)
    assert composed["search"]["name"] == "smoke" and "hourglass" in composed["space"]
    general = hgsearch()
    assert general.returncode == 2 and "hgsearch <command> --help" in general.stdout


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["sweep", "arch.dz=1"], "unknown key arch.dz; did you mean arch.d_z?"),
        (["sweep", "+arch.dz=1"], "unknown key arch.dz; did you mean arch.d_z?"),
        (["train", "+foo=1"], "unknown key foo; known keys:"),
        (["sweep", "search.budget.max_param=3"], "did you mean search.budget.max_params?"),
        (["sweep", "+search.ntrials=3"], "did you mean search.n_trials?"),
        (["sweep", "+space.isotropic.d_h={choices:[4]}"], "isotropic does not sample d_h"),
        (["sweep", "--cfg", "hydra"], "--cfg takes `job`"),
    ],
)
def test_misspelled_keys_name_the_nearest_valid_key(capsys, args, needle):
    code, _, err = run_cli(capsys, *args)
    assert code == 2 and needle in err, err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err


@pytest.mark.slow
def test_multirun_over_a_key_runs_one_study_per_value(tmp_path):
    proc = hgsearch(
        "sweep", "-m", "train.epochs=1,2", "experiment=smoke", "search.n_trials=1", "threads=1",
        f"run_dir={tmp_path}",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr
    import optuna

    names = sorted(optuna.study.get_all_study_names(f"sqlite:///{tmp_path}/hgsearch.db"))
    assert names == [
        f"smoke-train.epochs={e}-gen_classify-digits-{f}"
        for e in (1, 2)
        for f in ("conventional", "hourglass")
    ]
    for e in (1, 2):
        assert (tmp_path / f"smoke-train.epochs={e}-gen_classify-digits" / "summary.md").exists()
