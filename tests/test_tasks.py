from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from hgsearch.search.data import ImageSet
from hgsearch.search.settings import TaskSettings
from hgsearch.search.tasks import flip_augment, prepare


def test_gen_classify_targets_are_class_prototypes(digits_splits):
    data = prepare(digits_splits, TaskSettings("gen_classify"))
    train = digits_splits.train
    for label in range(10):
        first = int(np.flatnonzero(train.labels == label)[0])
        proto = torch.from_numpy(train.images[first].reshape(-1)).float() / 255
        rows = np.flatnonzero(digits_splits.test.labels == label)
        assert torch.equal(data.test.y[rows[0]], proto)
        assert torch.equal(data.train.y[first], data.train.x[first])
    assert data.d_x == data.d_y == 64


def test_denoise_noise_fixed_for_eval_fresh_for_training(digits_splits):
    a = prepare(digits_splits, TaskSettings("denoise", sigma=0.25))
    b = prepare(digits_splits, TaskSettings("denoise", sigma=0.25))
    assert torch.equal(a.eval.x, b.eval.x)  # fixed by seed
    assert not torch.equal(a.eval.x, a.eval.y) and a.eval.x.min() >= 0 and a.eval.x.max() <= 1
    assert not torch.equal(a.eval.x[:10], a.test.x[:10])
    noise = (a.eval.x - a.eval.y)[(a.eval.y > 0.3) & (a.eval.y < 0.7)]
    assert 0.2 < noise.std().item() < 0.3
    g = torch.Generator().manual_seed(0)
    first, second = a.task.perturb(a.train.x[:8], g), a.task.perturb(a.train.x[:8], g)
    assert not torch.equal(first, second)  # fresh noise every pass


def test_superres_is_bicubic_without_antialias(digits_splits):
    data = prepare(digits_splits, TaskSettings("superres"))
    assert data.d_x == 16 and data.d_y == 64
    img = torch.from_numpy(digits_splits.eval.images[:5]).float() / 255
    low = F.interpolate(img, scale_factor=0.5, mode="bicubic", antialias=False, align_corners=False)
    assert torch.allclose(data.eval.x[:5], low.flatten(1))


def test_flips():
    img = np.arange(2 * 1 * 2 * 3, dtype=np.uint8).reshape(2, 1, 2, 3)
    s = ImageSet(img, np.array([0, 1]))
    assert len(flip_augment(s, 1).labels) == 2
    four = flip_augment(s, 4)
    assert len(four.labels) == 8 and four.labels.tolist() == [0, 1] * 4
    assert np.array_equal(four.images[2], img[0][:, :, ::-1])  # horizontal
    assert np.array_equal(four.images[4], img[0][:, ::-1, :])  # vertical
    assert np.array_equal(four.images[6], img[0][:, ::-1, ::-1])  # both
    two = flip_augment(s, 2)  # the paper's x2: {none, horizontal + vertical}
    assert two.labels.tolist() == [0, 1, 0, 1]
    assert np.array_equal(two.images[:2], img)
    assert np.array_equal(two.images[3], img[1][:, ::-1, ::-1])
    with pytest.raises(ValueError):
        flip_augment(s, 3)


@pytest.mark.parametrize("flips", [2, 4])
@pytest.mark.parametrize("task", ["gen_classify", "denoise", "superres"])
def test_per_batch_pairs_equal_materialized_ones(digits_splits, task, flips):
    """Large sets build batches on the fly; they must be the very pairs materialized ones are."""
    settings = TaskSettings(task, flips=flips)
    full = prepare(digits_splits, settings)
    lazy = prepare(digits_splits, settings, materialize_bytes=0)
    assert full.lazy is None and lazy.train is None and lazy.n_train == full.n_train
    idx = torch.randperm(full.n_train, generator=torch.Generator().manual_seed(0))[:300]
    (x1, y1), (x2, y2) = full.train_batch(idx), lazy.train_batch(idx)
    assert torch.allclose(x1, x2, atol=1e-6) and torch.equal(y1, y2)
    assert torch.equal(full.eval.x, lazy.eval.x) and (full.d_x, full.d_y) == (lazy.d_x, lazy.d_y)
