"""The residual MLP of "Rethinking the shape convention of an MLP", shared by every family.

Symbols: d_x input size, d_y output size, d_z residual-stream width, d_h hidden width inside a
block, depth = number of blocks L.

    x (B, d_x) --W_in--> z_0 (B, d_z)                         W_in: d_z x d_x (may be fixed)
    z_{i+1} = z_i + W_up_i relu(W_down_i BN(z_i))             block i, i = 0..L-1
    y_hat = sigmoid(W_out z_L) (B, d_y)                       W_out: d_y x d_z

    hourglass     (wide-narrow-wide):   d_z --W_down--> d_h --W_up--> d_z   with d_h < d_z
    conventional  (narrow-wide-narrow): d_z --W_down--> d_h --W_up--> d_z   with d_h > d_z = d_y
    isotropic     (no bottleneck):      d_z --W_down--> d_h --W_up--> d_z   with d_h = d_z

The shape rules live in models/family.py, the parameter formula in models/budget.py.

BN is an affine-free BatchNorm1d on the residual branch only. No biases, no residual scaling,
PyTorch's default nn.Linear init everywhere.
"""

from __future__ import annotations

import torch
from torch import nn

from .spec import MLPSpec


class Block(nn.Module):
    """z + W_up relu(W_down BN(z)); (B, d_z) -> (B, d_z)."""

    def __init__(self, d_z: int, d_h: int) -> None:
        super().__init__()
        self.norm = nn.BatchNorm1d(d_z, affine=False)
        self.down = nn.Linear(d_z, d_h, bias=False)
        self.up = nn.Linear(d_h, d_z, bias=False)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return z + self.up(torch.relu(self.down(self.norm(z))))


class ResidualMLP(nn.Module):
    """W_in, `depth` residual blocks, W_out and a sigmoid; the same module for every family."""

    def __init__(self, spec: MLPSpec) -> None:
        super().__init__()
        self.spec = spec
        self.w_in = nn.Linear(spec.d_x, spec.d_z, bias=False)
        self.w_in.weight.requires_grad_(not spec.fix_w_in)
        self.blocks = nn.ModuleList(Block(spec.d_z, spec.d_h) for _ in range(spec.depth))
        self.w_out = nn.Linear(spec.d_z, spec.d_y, bias=False)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """(B, d_x) -> z_0 (B, d_z). With a fixed W_in this can be computed once per input."""
        return self.w_in(x)

    def head(self, z0: torch.Tensor) -> torch.Tensor:
        """z_0 (B, d_z) -> y_hat (B, d_y)."""
        z = z0
        for block in self.blocks:
            z = block(z)
        return torch.sigmoid(self.w_out(z))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.embed(x))


def build_model(spec: MLPSpec) -> ResidualMLP:
    """The one factory: the families share the module, their specs differ."""
    return ResidualMLP(spec)
