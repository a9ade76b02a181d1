"""Image-quality metrics on images in [0, 1]: PSNR (data range 1) and SSIM.

Both are computed per image and averaged over the set.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def psnr_per_image(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """(B, D), (B, D) -> (B,) PSNR in dB with data range 1."""
    mse = (pred.float() - target.float()).pow(2).mean(dim=1)
    return -10.0 * torch.log10(mse.clamp_min(1e-10))


def _gaussian_window(size: int, sigma: float, device: torch.device) -> torch.Tensor:
    coords = torch.arange(size, device=device, dtype=torch.float32) - (size - 1) / 2
    g = torch.exp(-(coords**2) / (2 * sigma**2))
    g = g / g.sum()
    return g[:, None] * g[None, :]  # (size, size)


def ssim_per_image(
    pred: torch.Tensor, target: torch.Tensor, shape: tuple[int, int, int]
) -> torch.Tensor:
    """(B, C*H*W) flattened images -> (B,) SSIM, Gaussian window 11 (sigma 1.5), valid region.

    Images smaller than 11 pixels use the largest odd window that fits.
    """
    c, h, w = shape
    x = pred.float().reshape(-1, c, h, w)
    y = target.float().reshape(-1, c, h, w)
    size = min(11, h if h % 2 else h - 1, w if w % 2 else w - 1)
    win = _gaussian_window(size, 1.5 * size / 11, x.device).expand(c, 1, size, size)
    blur = lambda t: F.conv2d(t, win, groups=c)  # noqa: E731 - (B, C, H', W')
    mu_x, mu_y = blur(x), blur(y)
    var_x = blur(x * x) - mu_x**2
    var_y = blur(y * y) - mu_y**2
    cov = blur(x * y) - mu_x * mu_y
    c1, c2 = 0.01**2, 0.03**2
    ssim_map = ((2 * mu_x * mu_y + c1) * (2 * cov + c2)) / (
        (mu_x**2 + mu_y**2 + c1) * (var_x + var_y + c2)
    )
    return ssim_map.flatten(1).mean(dim=1)
