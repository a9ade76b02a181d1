from __future__ import annotations

import dataclasses
import math

import pytest
import torch

from hgsearch.models import FAMILIES, MLPSpec, build_model, count_params
from hgsearch.search.settings import TASK_NAMES, TaskSettings, TrainSettings
from hgsearch.search.tasks import Pairs, prepare
from hgsearch.search.train import precision_note, train

ONE_EPOCH = TrainSettings(epochs=1, batch_size=64, lr=3e-3)


SMALL = {"hourglass": {"d_z": 72, "d_h": 12}, "conventional": {"d_h": 96}, "isotropic": {"d_z": 40}}


def small_spec(family, data, fix=False):
    """A small model of every registered family (a new family adds its widths here)."""
    dims = FAMILIES[family].complete({**SMALL[family], "depth": 2}, data.d_y)
    return MLPSpec(family, data.d_x, data.d_y, dims["d_z"], dims["d_h"], 2, fix)


@pytest.mark.parametrize("task", TASK_NAMES)
@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_every_family_and_task_trains(digits_splits, family, task):
    data = prepare(digits_splits, TaskSettings(task))
    spec = small_spec(family, data)
    result = train(spec, data, ONE_EPOCH)
    assert result.status == "ok"
    assert 5 < result.test_psnr < 60 and 0 < result.test_ssim <= 1
    assert result.best_epoch == 1


@pytest.mark.parametrize("fix", [False, True])
@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_every_trainable_parameter_gets_a_gradient(digits_splits, family, fix):
    data = prepare(digits_splits, TaskSettings("denoise"))
    spec = small_spec(family, data, fix)
    model = build_model(spec)
    out = model(data.task.perturb(data.train.x[:32], None))
    torch.nn.functional.mse_loss(out, data.train.y[:32]).backward()
    for name, p in model.named_parameters():
        if p.requires_grad:
            assert p.grad is not None and p.grad.abs().sum() > 0, name
        else:
            assert name == "w_in.weight" and fix and p.grad is None
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    assert trainable == count_params(spec).trainable


def test_training_improves_and_is_reproducible(digits_splits):
    data = prepare(digits_splits, TaskSettings("gen_classify"))
    spec = small_spec("hourglass", data)
    settings = TrainSettings(epochs=4, batch_size=64, lr=3e-3, seed=3)
    a, b = train(spec, data, settings), train(spec, data, settings)
    assert a.eval_psnr == b.eval_psnr and a.test_psnr == b.test_psnr
    psnrs = [h["psnr"] for h in a.history]
    assert psnrs[-1] > psnrs[0] + 1
    # Each epoch's training time (evaluation excluded) is part of its history entry.
    assert [h["epoch"] for h in a.history] == [1, 2, 3, 4]
    assert all(0 < h["epoch_seconds"] < a.seconds for h in a.history)
    assert sum(h["epoch_seconds"] for h in a.history) < a.seconds
    c = train(spec, data, dataclasses.replace(settings, seed=4))
    assert c.test_psnr != a.test_psnr


def test_best_eval_weights_are_kept(digits_splits):
    data = prepare(digits_splits, TaskSettings("gen_classify"))
    r = train(small_spec("hourglass", data), data, TrainSettings(epochs=3, batch_size=64, lr=3e-3))
    best = min(r.history, key=lambda h: h["mse"])
    assert r.best_epoch == best["epoch"] and math.isclose(r.eval_mse, best["mse"], rel_tol=1e-5)


def test_fixed_w_in_cache_gives_the_same_training(digits_splits, monkeypatch):
    data = prepare(digits_splits, TaskSettings("superres"))
    spec = small_spec("hourglass", data, fix=True)
    settings = TrainSettings(epochs=2, batch_size=64, lr=3e-3)
    cached = train(spec, data, settings)
    uncached_task = type(data.task)  # same task, but pretend its input is random per pass
    monkeypatch.setattr(uncached_task, "deterministic", property(lambda self: False))
    plain = train(spec, data, settings)
    assert math.isclose(cached.test_psnr, plain.test_psnr, rel_tol=1e-4)


def test_deferred_updates_train_exactly_as_immediate_ones(digits_splits, monkeypatch):
    # The trainer's fused AdamW updates each weight just before its next use; what it
    # evaluates and keeps must be the weights of updating right away.
    import hgsearch.search.train as trainer
    from hgsearch.search.step import ManualStep

    data = prepare(digits_splits, TaskSettings("gen_classify"))
    spec = small_spec("hourglass", data)
    settings = TrainSettings(epochs=3, batch_size=64, lr=3e-3)
    deferred = train(spec, data, settings)

    class Immediate(ManualStep):
        def __init__(self, *args):
            super().__init__(*args)
            assert self.deferred
            self.deferred = False

    monkeypatch.setattr(trainer, "ManualStep", Immediate)
    immediate = train(spec, data, settings)
    assert [h["mse"] for h in deferred.history] == [h["mse"] for h in immediate.history]
    assert (deferred.eval_mse, deferred.test_psnr) == (immediate.eval_mse, immediate.test_psnr)


def test_bf16_is_noted_only_where_it_does_not_apply():
    bf16, fp32 = TrainSettings(bf16=True), TrainSettings()
    assert precision_note(bf16, torch.device("cpu")) == (
        "train.bf16=true applies on CUDA only: training in fp32 on cpu"
    )
    assert precision_note(bf16, torch.device("cuda:1")) is None
    assert precision_note(fp32, torch.device("cpu")) is None


def test_nan_loss_reports_diverged(digits_splits):
    data = prepare(digits_splits, TaskSettings("gen_classify"))
    x = data.train.x.clone()
    x[5, 3] = float("nan")
    broken = dataclasses.replace(data, train=Pairs(x, data.train.y))
    r = train(small_spec("hourglass", broken), broken, TrainSettings(epochs=3, batch_size=64))
    assert r.status == "diverged" and math.isnan(r.test_psnr) and r.epochs_run == 1


def test_report_can_stop_a_run(digits_splits):
    data = prepare(digits_splits, TaskSettings("gen_classify"))
    seen = []

    class Stop(Exception):
        pass

    def report(epoch, metrics):
        seen.append((epoch, metrics["psnr"]))
        if epoch == 2:
            raise Stop

    with pytest.raises(Stop):
        train(
            small_spec("hourglass", data),
            data,
            TrainSettings(epochs=5, batch_size=64),
            report=report,
        )
    assert [e for e, _ in seen] == [1, 2]


@pytest.mark.gpu
def test_cuda_bf16(digits_splits):
    data = prepare(digits_splits, TaskSettings("denoise"), "cuda")
    r = train(
        small_spec("hourglass", data),
        data,
        TrainSettings(epochs=2, batch_size=64, bf16=True),
        "cuda",
    )
    assert r.status == "ok" and r.device.startswith("cuda") and r.test_psnr > 10


def test_training_on_per_batch_pairs_matches(digits_splits):
    settings = TrainSettings(epochs=2, batch_size=64, lr=3e-3)
    full = prepare(digits_splits, TaskSettings("superres", flips=2))
    lazy = prepare(digits_splits, TaskSettings("superres", flips=2), materialize_bytes=0)
    spec = small_spec("hourglass", full, fix=True)  # the z_0 cache is skipped when lazy
    a, b = train(spec, full, settings), train(spec, lazy, settings)
    assert math.isclose(a.test_psnr, b.test_psnr, rel_tol=1e-4)


def test_linear_decay_per_step_or_per_epoch():
    """torch's LinearLR as the paper uses it: per step (ImageNet-32), or per epoch (MNIST)."""
    from hgsearch.search.train import decayed_lr

    step = TrainSettings(epochs=4, lr=1.0, decay="step")
    assert [decayed_lr(step, s, 1 + s // 10, 40) for s in (0, 1, 20, 39)] == pytest.approx([
        1.0, 0.975, 0.5, 0.025,
    ])  # fmt: skip
    epoch = TrainSettings(epochs=4, lr=1.0, decay="epoch")
    assert [decayed_lr(epoch, s, 1 + s // 10, 40) for s in (0, 9, 10, 39)] == pytest.approx([
        1.0, 1.0, 0.75, 0.25,
    ])  # fmt: skip
