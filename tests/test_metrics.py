"""PSNR and SSIM are the paper's: torchmetrics on evaluation batches of 128 in split order,
averaged with batch-size weights; the mean of per-image PSNRs is kept apart."""

from __future__ import annotations

import math

import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset
from torchmetrics.functional.image import (
    peak_signal_noise_ratio,
    structural_similarity_index_measure,
)

from hgsearch.models import MLPSpec, build_model
from hgsearch.search.metrics import EVAL_BATCH, batch_psnr, image_mse, image_psnr
from hgsearch.search.settings import TaskSettings, TrainSettings
from hgsearch.search.tasks import prepare
from hgsearch.search.train import evaluate, train


def paper_way(model, x, y, shape):
    """The authors' evaluation loop, written independently: a DataLoader of 128 in order,
    torchmetrics per batch, batch-size-weighted means."""
    c, h, w = shape
    psnr = ssim = 0.0
    with torch.no_grad():
        for xb, yb in DataLoader(TensorDataset(x, y), batch_size=128, shuffle=False):
            pred = model(xb).view(-1, c, h, w)
            target = yb.view(-1, c, h, w)
            psnr += peak_signal_noise_ratio(pred, target, data_range=1.0).item() * len(xb)
            ssim += structural_similarity_index_measure(pred, target).item() * len(xb)
    return psnr / len(x), ssim / len(x)


@pytest.mark.parametrize("n", [1, 127, 128, 300, 1000])
def test_batch_psnr_equals_torchmetrics_per_batch(n):
    g = torch.Generator().manual_seed(n)
    target = torch.rand(n, 64, generator=g)
    pred = target + 0.1 * torch.randn(n, 64, generator=g) * torch.rand(n, 1, generator=g)
    pred = pred.clamp(0, 1)
    expected = (
        sum(
            peak_signal_noise_ratio(p, t, data_range=1.0).item() * len(p)
            for p, t in zip(pred.split(128), target.split(128), strict=True)
        )
        / n
    )
    assert batch_psnr(image_mse(pred, target)).item() == pytest.approx(expected, abs=1e-4)


def test_hand_computed_case():
    # Three 4-pixel images off by 0.1, 0.2, 0.1 everywhere (MSE .01, .04, .01), batches of 2:
    # batch PSNRs 10 log10(1/.025) and 20 dB, weighted 2:1; per-image PSNRs 20, 13.98, 20.
    target = torch.full((3, 4), 0.5)
    pred = target + torch.tensor([0.1, 0.2, 0.1])[:, None]
    mse = image_mse(pred, target)
    paper = (2 * 10 * math.log10(40) + 20) / 3
    assert batch_psnr(mse, batch=2).item() == pytest.approx(paper, abs=1e-4)  # 17.3471 dB
    assert image_psnr(mse).item() == pytest.approx((40 + 10 * math.log10(25)) / 3, abs=1e-4)
    # One pooled batch is not the mean of its images' PSNRs.
    assert batch_psnr(mse, batch=3).item() == pytest.approx(10 * math.log10(1 / 0.02), abs=1e-4)


@pytest.mark.parametrize("task", ["gen_classify", "denoise", "superres"])
def test_trained_model_scores_as_the_paper_computes(digits_splits, task):
    """On the same trained model, the recorded test/eval PSNR and SSIM equal the authors' loop
    (digits: 180 images, batches of 128 and 52, so the weighting matters)."""
    data = prepare(digits_splits, TaskSettings(task))
    spec = MLPSpec("hourglass", data.d_x, data.d_y, 96, 16, 2)
    result = train(spec, data, TrainSettings(epochs=2, batch_size=64, lr=3e-3))
    model = build_model(spec)
    model.load_state_dict(result.state)
    model.eval()
    test_psnr, test_ssim = paper_way(model, data.test.x, data.test.y, data.image_shape)
    eval_psnr, _ = paper_way(model, data.eval.x, data.eval.y, data.image_shape)
    assert result.test_psnr == pytest.approx(test_psnr, abs=1e-4)
    assert result.eval_psnr == pytest.approx(eval_psnr, abs=1e-4)
    assert result.test_ssim == pytest.approx(test_ssim, abs=1e-5)
    # The per-image mean is recorded apart and is not the same number.
    assert result.test_psnr_image > result.test_psnr + 0.05


def test_evaluate_does_not_depend_on_the_forward_chunk(digits_splits):
    data = prepare(digits_splits, TaskSettings("superres"))
    spec = MLPSpec("hourglass", data.d_x, data.d_y, 96, 16, 2)
    model = build_model(spec).eval()
    a = evaluate(model, data.test.x, data.test.y, data.image_shape, chunk=EVAL_BATCH)
    b = evaluate(model, data.test.x, data.test.y, data.image_shape, chunk=8 * EVAL_BATCH)
    assert a == pytest.approx(b, abs=1e-5)
    assert set(a) == {"mse", "psnr", "psnr_image", "ssim"}
