"""Image-quality metrics on images in [0, 1], computed the way the paper computes them.

The paper (its `utils/train_eval.py`) reads an evaluation split in order, in batches of 128
images whatever the training batch size, and for each batch takes torchmetrics'
`peak_signal_noise_ratio(pred, target, data_range=1.0)` — the PSNR of the batch's *pooled*
MSE — and `structural_similarity_index_measure(pred, target)` with torchmetrics' defaults; the
reported value is the mean of the batch values weighted by batch size. That is not the mean of
per-image PSNRs (on generative classification the per-image mean is 5-10 dB higher), so the
per-image mean is kept under its own name, `psnr_image`, and never mixed with `psnr`.

All functions take per-image squared errors or image batches and return tensors (no host sync).
"""

from __future__ import annotations

import torch

EVAL_BATCH = 128  # the paper's evaluation batch, on every task
# Recorded on every study: a study stored under another definition is not resumed.
DEFINITION = "psnr: pooled MSE per eval batch of 128, batch-size-weighted mean (paper)"


def image_mse(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """(B, D), (B, D) -> (B,) mean squared error of each flattened image."""
    return (pred.float() - target.float()).square().mean(dim=1)


def batch_psnr(mse: torch.Tensor, batch: int = EVAL_BATCH) -> torch.Tensor:
    """(N,) per-image MSE in split order -> the paper's PSNR in dB (data range 1).

    Consecutive runs of `batch` images (the last may be shorter) pool their MSE; each run's
    PSNR is weighted by its size. Images of one split all have the same size, so a run's pooled
    MSE is the mean of its per-image MSEs.
    """
    n = mse.shape[0]
    sizes = torch.full(((n + batch - 1) // batch,), batch, dtype=mse.dtype, device=mse.device)
    sizes[-1] = n - batch * (len(sizes) - 1)
    index = torch.arange(n, device=mse.device) // batch
    pooled = torch.zeros_like(sizes).index_add_(0, index, mse.to(sizes.dtype)) / sizes
    return (-10.0 * torch.log10(pooled) * sizes).sum() / n


def image_psnr(mse: torch.Tensor) -> torch.Tensor:
    """(N,) per-image MSE -> the mean of per-image PSNRs in dB (`psnr_image`; not the paper's).

    A perfect image (MSE 0) counts as 100 dB rather than infinity.
    """
    return (-10.0 * torch.log10(mse.clamp_min(1e-10))).mean()


def batch_ssim(
    pred: torch.Tensor, target: torch.Tensor, shape: tuple[int, int, int]
) -> torch.Tensor:
    """SSIM of one evaluation batch of flattened images, torchmetrics' defaults (Gaussian
    window 11, sigma 1.5, data range taken from the batch), as the paper reports it."""
    from torchmetrics.functional.image import structural_similarity_index_measure

    c, h, w = shape
    return structural_similarity_index_measure(
        pred.float().reshape(-1, c, h, w), target.float().reshape(-1, c, h, w)
    )
