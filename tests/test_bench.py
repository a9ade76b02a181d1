"""The benchmark's own arithmetic and its baseline: a wrong floor or a usual loop that trains on
different data would make every figure it prints meaningless."""

from __future__ import annotations

import importlib.util
import sys

import numpy as np
import pytest
import torch

from hgsearch.models import MLPSpec, count_params
from hgsearch.search.sampler import make_sampler
from hgsearch.search.settings import SamplerSettings, TaskSettings
from hgsearch.search.tasks import prepare, prototype_table
from tests.conftest import ROOT


def load_script(name: str, file: str):
    """A script of bench/ imported as the module `name`."""
    spec = importlib.util.spec_from_file_location(name, ROOT / "bench" / file)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def bench():
    return load_script("bench", "bench.py")


@pytest.mark.parametrize(
    "spec",
    [
        MLPSpec("hourglass", 784, 784, 785, 115, 4),
        MLPSpec("hourglass", 784, 784, 785, 115, 4, fix_w_in=True),
        MLPSpec("conventional", 784, 784, 784, 785, 1),
        MLPSpec("hourglass", 192, 768, 400, 60, 3),
    ],
)
def test_step_flops_match_the_parameter_count(bench, spec):
    # Every trainable matrix: forward, weight-gradient and input-gradient GEMMs (2*B*size
    # FLOPs each), except that W_in needs no input gradient; a fixed W_in runs forward only,
    # and the first block's W_down then needs no input gradient either.
    w_in = spec.d_x * spec.d_z
    trainable = count_params(spec).trainable
    expected = 2 * bench.BATCH * (3 * trainable - w_in)
    if spec.fix_w_in:
        expected = 2 * bench.BATCH * (3 * trainable + w_in - spec.d_z * spec.d_h)
    assert bench.step_flops(spec) == expected


@pytest.mark.parametrize("n", [4000, 1437, 256, 257, 129])
def test_epoch_batches_are_the_trainers(bench, n):
    # The floor runs an epoch's GEMMs at the batch sizes the trainer steps through: all of
    # them full but a short last one, except a last batch of one, which the trainer drops.
    batches = bench.epoch_batches(n)
    assert batches[:-1] == [bench.BATCH] * (len(batches) - 1)
    assert sum(batches) == (n - 1 if n % bench.BATCH == 1 else n)
    assert bench.steps_per_epoch(n) == len(batches)
    assert bench.step_flops(MLPSpec("hourglass", 784, 784, 785, 115, 4), 32) * 4 == (
        bench.step_flops(MLPSpec("hourglass", 784, 784, 785, 115, 4))
    )


def test_floor_step_runs_every_gemm_at_its_shape(bench, monkeypatch):
    spec = MLPSpec("hourglass", 64, 64, 65, 8, 2)
    seen = []
    real_mm = torch.mm

    def spy(a, b, out):
        seen.append((a.shape[0], a.shape[1], b.shape[1]))
        return real_mm(a, b, out=out)

    step = bench.floor_step(spec, torch.device("cpu"), torch.float32)
    short = bench.floor_step(spec, torch.device("cpu"), torch.float32, batch=29)
    monkeypatch.setattr(torch, "mm", spy)
    step()
    assert seen == [(m, k, n) for _, m, k, n in bench.step_gemms(spec)]
    assert len(seen) == 3 * (2 * spec.depth + 2) - 1
    seen.clear()
    short()
    assert seen == [(m, k, n) for _, m, k, n in bench.step_gemms(spec, 29)]
    assert all(bench.BATCH not in shape and 29 in shape for shape in seen)


def test_usual_loop_feeds_the_same_pairs_as_the_trainer(bench, digits_splits):
    data = prepare(digits_splits, TaskSettings("gen_classify"), "cpu")
    protos, _ = prototype_table(digits_splits.train)
    ds = bench.PerSampleDataset(digits_splits.train.images, digits_splits.train.labels, protos)
    assert len(ds) == data.n_train
    for i in (0, 7, len(ds) - 1):
        x, y = ds[i]
        assert torch.equal(x, data.train.x[i]) and torch.equal(y, data.train.y[i])


def test_plain_loop_trains_on_the_trainers_data(bench, digits_splits):
    data = prepare(digits_splits, TaskSettings("gen_classify"), "cpu")
    spec = MLPSpec("hourglass", 64, 64, 65, 8, 2)
    epoch = bench.plain_loop(spec, data, torch.device("cpu"), False, lambda: None)
    losses = [epoch() for _ in range(4)]
    assert all(np.isfinite(losses)) and losses[-1] < 0.8 * losses[0]


def test_to_tensor_handles_colour_images(bench):
    from PIL import Image

    rgb = np.arange(2 * 3 * 3, dtype=np.uint8).reshape(2, 3, 3)  # (H, W, C)
    t = bench.to_tensor(Image.fromarray(rgb))
    assert t.shape == (3, 2, 3)
    assert torch.equal(t, torch.from_numpy(rgb).permute(2, 0, 1).float() / 255)


def test_replay_counts_distinct_trained_configurations(bench):
    # A table where the hypervolume is only complete with every configuration: the sampler must
    # train all of them, however often it repeats itself.
    keys = [
        (d_h, depth, lr)
        for d_h in bench.SEARCH_SPACE["d_h"]
        for depth in bench.SEARCH_SPACE["depth"]
        for lr in bench.SEARCH_SPACE["lr"]
    ]
    table = {k: (float(i), float(i)) for i, k in enumerate(keys)}
    calls = []

    def hv(values):
        calls.append(len(values))
        return len(values)

    sampler = make_sampler(SamplerSettings("random", seed=0), "bench", 0)
    assert bench.trials_to_target(table, sampler, len(table), hv, limit=2000) == len(table)
    assert calls[-1] == len(table)
    sampler = make_sampler(SamplerSettings("random", seed=0), "bench", 0)
    assert bench.trials_to_target(table, sampler, 1, hv) == 1


def test_measure_shape_on_digits(bench, digits_splits):
    # One round of the real measurement on a small model: every figure is a positive time.
    data = prepare(digits_splits, TaskSettings("gen_classify"), "cpu")
    spec = MLPSpec("hourglass", 64, 64, 65, 8, 2)
    m = bench.measure_shape(
        spec, digits_splits, data, torch.device("cpu"), torch.float32, False, lambda: None, 1
    )
    times = ("floor", "step", "per_epoch", "plain_epoch", "usual_epoch", "usual_loading")
    assert all(m[k] > 0 for k in times)
    paired = [k for k in m if k.startswith("paired_")]
    assert len(paired) == 4 and all(len(m[k]) == bench.WINDOWS for k in paired)
    assert min(m["paired_efficiency"]) <= m["floor"] / m["step"] + 1e-9
    assert min(m["paired_plain_efficiency"]) <= m["floor"] * m["steps"] / m["plain_epoch"] + 1e-9


def test_fixed_w_in_on_digits(bench, digits_splits):
    data = prepare(digits_splits, TaskSettings("gen_classify"), "cpu")
    spec = MLPSpec("hourglass", 64, 64, 65, 8, 2)
    r = bench.fixed_w_in(spec, data, torch.device("cpu"), False, 2, 1)
    assert len(r["paired_speedup"]) == bench.WINDOWS and all(v > 0 for v in r["paired_speedup"])
    trainable, fixed = r["trainable"], r["fixed"]
    assert trainable["trainable_params"] - fixed["trainable_params"] == 64 * 65
    assert trainable["test_psnr"] != fixed["test_psnr"]  # two different models were trained
    assert r["speedup"] == trainable["epoch_seconds"] / fixed["epoch_seconds"]


@pytest.mark.gpu
def test_measure_shape_on_cuda_in_bf16(bench, digits_splits):
    data = prepare(digits_splits, TaskSettings("gen_classify"), "cuda")
    spec = MLPSpec("hourglass", 64, 64, 65, 8, 2)
    m = bench.measure_shape(
        spec,
        digits_splits,
        data,
        torch.device("cuda"),
        torch.bfloat16,
        True,
        torch.cuda.synchronize,
        1,
    )
    times = ("floor", "step", "per_epoch", "plain_epoch", "usual_epoch", "usual_loading")
    assert all(m[k] > 0 for k in times)


@pytest.fixture(scope="module")
def packs_bench():
    return load_script("packs_bench", "packs.py")


def test_pack_bench_counts_operators_that_fall_with_the_pack(packs_bench, digits_splits):
    """The operator count is of training steps only (setup and evaluation subtracted), and a
    pack's fall with its size (what the GPU projection rests on)."""
    data = prepare(digits_splits, TaskSettings("gen_classify"))
    spec = MLPSpec("hourglass", 64, 64, 96, 4, 6)
    one = packs_bench.count_ops(spec, data, 1, "cpu", steps=2)
    many = packs_bench.count_ops(spec, data, 15, "cpu", steps=2)
    assert 50 < one < 1000 and one / many > 8


def test_pack_bench_projection_arithmetic(packs_bench):
    """Each replica-step costs the larger of its launches and its FLOPs."""
    cheap = packs_bench.paper_gc_projection(1.0, "x")["hours"]
    dear = packs_bench.paper_gc_projection(1000.0, "y")["hours"]
    steps = 21 * 20 * 50 * 391
    assert dear == pytest.approx(steps * 1000 * packs_bench.LAUNCH_SECONDS / 3600, rel=1e-9)
    assert 0 < cheap < dear
