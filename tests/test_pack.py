"""Packs: a trial's replicas (seeds x learning rates) trained as one batched model give each
replica exactly what it gets alone, and stay independent."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from hgsearch.models import MLPSpec, build_model, count_params
from hgsearch.models.packed import PackedMLP, unpack
from hgsearch.search.pack import Replica, train_pack
from hgsearch.search.replicas import run
from hgsearch.search.settings import TaskSettings, TrainSettings
from hgsearch.search.tasks import prepare
from hgsearch.search.train import train

SPEC = MLPSpec("hourglass", 64, 64, 96, 16, 2)
SETTINGS = TrainSettings(epochs=3, batch_size=64, lr=3e-3)


@pytest.fixture(scope="module", params=["gen_classify", "denoise"])
def data(request, digits_splits):
    return prepare(digits_splits, TaskSettings(request.param))


def test_packed_forward_is_each_models_forward():
    models = []
    for seed in range(3):
        torch.manual_seed(seed)
        models.append(build_model(SPEC))
    pack = PackedMLP(models)
    x = torch.rand(3, 32, 64)
    out = pack(x)  # one training-mode step moves each replica's running statistics once
    for r, model in enumerate(models):
        torch.testing.assert_close(out[r], model.train()(x[r]))
    pack.eval()
    shared = torch.rand(10, 64)
    for r, model in enumerate(models):
        # the running statistics moved the same way in both
        torch.testing.assert_close(pack(shared)[r], model.eval()(shared))
        torch.testing.assert_close(unpack(pack, r).eval()(shared), model(shared))
    assert (
        sum(p.numel() for p in pack.parameters() if p.requires_grad)
        == 3 * count_params(SPEC).trainable
    )


def test_a_pack_equals_its_one_model_runs(data):
    """3 seeds x 2 learning rates, 3 epochs: replica by replica the eval PSNR of six one-model
    runs within 1e-3 dB (what the trainer draws for a seed, it draws for the replica)."""
    reps = [Replica(seed, lr) for seed in (0, 1, 2) for lr in (3e-3, 1e-3)]
    packed = train_pack(SPEC, data, SETTINGS, reps)
    for rep, got in zip(reps, packed, strict=True):
        alone = train(SPEC, data, dataclasses.replace(SETTINGS, lr=rep.lr, seed=rep.seed))
        assert got.eval_psnr == pytest.approx(alone.eval_psnr, abs=1e-3)
        assert got.test_psnr == pytest.approx(alone.test_psnr, abs=1e-3)
        assert got.best_epoch == alone.best_epoch and got.status == "ok"
        model = build_model(SPEC)
        model.load_state_dict(got.state)  # a replica's weights load into its own model
    assert len({r.eval_psnr for r in packed}) == len(reps)  # the replicas differ


@pytest.mark.parametrize("bad_lr", [10.0, float("inf")])
def test_a_diverging_replica_leaves_the_others_alone(digits_splits, bad_lr):
    data = prepare(digits_splits, TaskSettings("gen_classify"))
    good = [Replica(0, 3e-3), Replica(2, 1e-3)]
    alone = train_pack(SPEC, data, SETTINGS, good)
    mixed = train_pack(SPEC, data, SETTINGS, [good[0], Replica(1, bad_lr), good[1]])
    for a, b in zip(alone, [mixed[0], mixed[2]], strict=True):
        assert (a.eval_psnr, a.test_psnr, a.test_ssim) == (b.eval_psnr, b.test_psnr, b.test_ssim)
    if bad_lr == float("inf"):
        assert mixed[1].status == "diverged"


def test_chunks_and_out_of_memory_halving(digits_splits):
    data = prepare(digits_splits, TaskSettings("gen_classify"))
    reps = [Replica(seed, lr) for seed in (0, 1) for lr in (3e-3, 1e-3, 5e-4)]
    whole = run(SPEC, data, SETTINGS, reps, "cpu", None, train, train_pack)
    capped = dataclasses.replace(SETTINGS, pack_max=4)
    chunked = run(SPEC, data, capped, reps, "cpu", None, train, train_pack)
    sizes = []

    def tight(spec, data, settings, chunk, device, report):
        sizes.append(len(chunk))
        if len(chunk) > 2:
            raise torch.cuda.OutOfMemoryError("simulated")
        return train_pack(spec, data, settings, chunk, device, report)

    halved = run(SPEC, data, SETTINGS, reps, "cpu", None, train, tight)
    assert sizes == [6, 3, 2, 1, 3, 2, 1]
    for a, b, c in zip(whole, chunked, halved, strict=True):
        assert a.eval_psnr == b.eval_psnr == c.eval_psnr
    one_by_one = run(SPEC, data, dataclasses.replace(SETTINGS, pack="false"), reps, "cpu", None,
                     train, train_pack)  # fmt: skip
    for a, b in zip(whole, one_by_one, strict=True):
        assert a.eval_psnr == pytest.approx(b.eval_psnr, abs=1e-3)


@pytest.mark.slow
def test_paper_preset_runs_as_packs_and_reports_every_rate(tmp_path, capsys):
    """The paper preset's trials train the paper's learning-rate grid x seeds as packs (a
    smoke version: digits, two architectures per family, one epoch)."""
    import optuna
    import pandas as pd

    from hgsearch.search.cli import main
    from hgsearch.search.goal import trained_trials

    args = [
        "experiment=paper_mnist_gc", "dataset=digits", "train.epochs=1", "search.replicas=2",
        "space.hourglass.arch.configs=[[96,16,2],[96,4,2]]",
        "space.conventional.arch.configs=[[64,96,1],[64,128,1]]",
        "device=cpu", f"run_dir={tmp_path}",
    ]  # fmt: skip
    assert main(["sweep", *args]) == 0
    storage = f"sqlite:///{tmp_path}/hgsearch.db"
    study = optuna.load_study(
        study_name="paper_mnist_gc-gen_classify-digits-hourglass", storage=storage
    )
    trials = trained_trials(study)
    assert len(trials) == 2
    for t in trials:
        reps = t.user_attrs["replicas"]
        assert {(r["seed"], r["lr"]) for r in reps} == {
            (s, lr) for s in (0, 1) for lr in (1e-4, 5e-4, 1e-3, 5e-3)
        }
        assert t.user_attrs["lr"] in {1e-4, 5e-4, 1e-3, 5e-3}  # the best rate by eval PSNR
    folder = tmp_path / "paper_mnist_gc-gen_classify-digits"
    runs = pd.read_csv(folder / "runs.csv")
    assert len(runs) == 2 * 2 * 4 + 2 * 2 * 4  # every seed x lr of every trial
    summary = (folder / "summary.md").read_text()
    assert "Learning rates of the frontier architectures" in summary and "<- frontier" in summary
    capsys.readouterr()
    assert main(["frontier", *args]) == 0
    assert "<- frontier" in capsys.readouterr().out


@pytest.mark.parametrize(
    "spec",
    [MLPSpec("hourglass", 20, 24, 30, 7, 3), MLPSpec("conventional", 20, 24, 24, 40, 2),
     MLPSpec("hourglass", 20, 24, 30, 7, 2, fix_w_in=True)],
    ids=["hourglass", "conventional", "fixed-w_in"],
)  # fmt: skip
@pytest.mark.parametrize("rows", [16, 11], ids=["full-batch", "short-batch"])
def test_written_out_pack_step_matches_autograd(spec, rows):
    from hgsearch.search.packstep import PackStep

    def pack():
        models = []
        for seed in range(3):
            torch.manual_seed(seed)
            models.append(build_model(spec))
        return PackedMLP(models).train()

    reference, manual = pack(), pack()
    g = torch.Generator().manual_seed(1)
    x, y = torch.rand(3, rows, spec.d_x, generator=g), torch.rand(3, rows, spec.d_y, generator=g)
    losses_ref = (reference(x) - y).square().mean(dim=(1, 2))
    losses_ref.sum().backward()
    losses = PackStep(manual, 16).step(x, y)
    torch.testing.assert_close(losses, losses_ref.detach())
    for (name, p), q in zip(reference.named_parameters(), manual.parameters(), strict=True):
        if p.requires_grad:
            scale = p.grad.abs().max().item()
            torch.testing.assert_close(q.grad, p.grad, rtol=1e-4, atol=1e-4 * scale, msg=name)
    for (name, b), c in zip(reference.named_buffers(), manual.buffers(), strict=True):
        torch.testing.assert_close(c, b, rtol=1e-5, atol=1e-6, msg=name)


@pytest.mark.gpu
def test_a_pack_trains_on_cuda_in_fp32_and_bf16(digits_splits):
    """On the GPU a replica of a pack equals its one-model run there (both draw from the GPU's
    generators), and a bf16 pack trains."""
    gpu = prepare(digits_splits, TaskSettings("denoise"), "cuda")
    reps = [Replica(0, 3e-3), Replica(1, 1e-3)]
    packed = train_pack(SPEC, gpu, SETTINGS, reps, "cuda")
    for rep, got in zip(reps, packed, strict=True):
        alone = train(SPEC, gpu, dataclasses.replace(SETTINGS, lr=rep.lr, seed=rep.seed), "cuda")
        assert got.status == "ok" and got.eval_psnr == pytest.approx(alone.eval_psnr, abs=1e-2)
    half = train_pack(SPEC, gpu, dataclasses.replace(SETTINGS, bf16=True), reps, "cuda")
    assert all(r.status == "ok" and r.eval_psnr > packed[0].eval_psnr - 2 for r in half)
