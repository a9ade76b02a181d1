"""R models of one architecture as one batched model (a *pack*): every weight stacked on a
leading replica axis, each block's products batched over replicas, BatchNorm statistics kept
per replica. Replica r computes exactly what its own ResidualMLP would (up to float rounding).

    x (R, B, d_x) --bmm W_in (R, d_z, d_x)--> z_0 (R, B, d_z)
    z_{i+1} = z_i + bmm(relu(bmm(BN_r(z_i), W_down_i^T)), W_up_i^T)      BN_r: over B, per r
    y_hat = sigmoid(bmm(z_L, W_out^T)) (R, B, d_y)

A batch shared by all replicas (evaluation) may be given as (B, d_x).
"""

from __future__ import annotations

import torch
from torch import nn

from .mlp import MLPSpec, ResidualMLP

EPS, MOMENTUM = 1e-5, 0.1  # nn.BatchNorm1d's defaults


class PackedNorm(nn.Module):
    """Affine-free BatchNorm1d for R replicas at once: (R, B, C), statistics over B."""

    def __init__(self, replicas: int, channels: int) -> None:
        super().__init__()
        self.register_buffer("running_mean", torch.zeros(replicas, 1, channels))
        self.register_buffer("running_var", torch.ones(replicas, 1, channels))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        if not self.training:
            return (z - self.running_mean) * torch.rsqrt(self.running_var + EPS)
        var, mean = torch.var_mean(z, dim=1, keepdim=True, correction=0)
        with torch.no_grad():  # nn.BatchNorm1d's update: unbiased variance in the running one
            b = z.shape[1]
            self.running_mean.lerp_(mean, MOMENTUM)
            self.running_var.lerp_(var * (b / (b - 1)), MOMENTUM)
        return (z - mean) * torch.rsqrt(var + EPS)


class PackedMLP(nn.Module):
    """The pack of `models` (each a ResidualMLP of the same spec), weights copied in."""

    def __init__(self, models: list[ResidualMLP]) -> None:
        super().__init__()
        spec = models[0].spec
        if any(m.spec != spec for m in models):
            raise ValueError("a pack holds replicas of one architecture")
        self.spec, self.replicas = spec, len(models)

        def stack(weights: list[torch.Tensor], trainable: bool = True) -> nn.Parameter:
            return nn.Parameter(torch.stack([w.detach() for w in weights]), trainable)

        self.w_in = stack([m.w_in.weight for m in models], not spec.fix_w_in)
        self.down = nn.ParameterList(
            stack([m.blocks[i].down.weight for m in models]) for i in range(spec.depth)
        )
        self.up = nn.ParameterList(
            stack([m.blocks[i].up.weight for m in models]) for i in range(spec.depth)
        )
        self.norms = nn.ModuleList(PackedNorm(self.replicas, spec.d_z) for _ in range(spec.depth))
        for i, norm in enumerate(self.norms):
            for r, m in enumerate(models):
                norm.running_mean[r, 0] = m.blocks[i].norm.running_mean
                norm.running_var[r, 0] = m.blocks[i].norm.running_var
        self.w_out = stack([m.w_out.weight for m in models])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # (R, B, d_x) or a shared (B, d_x) -> (R, B, d_z)
        z = torch.matmul(x, self.w_in.transpose(1, 2))
        for norm, down, up in zip(self.norms, self.down, self.up, strict=True):
            a = torch.relu(torch.bmm(norm(z), down.transpose(1, 2)))  # (R, B, d_h)
            z = torch.baddbmm(z, a, up.transpose(1, 2))
        return torch.sigmoid(torch.bmm(z, self.w_out.transpose(1, 2)))  # (R, B, d_y)

    def replica_state(self, r: int) -> dict[str, torch.Tensor]:
        """Replica r's weights and statistics, named as its ResidualMLP's state dict."""
        state = {"w_in.weight": self.w_in[r], "w_out.weight": self.w_out[r]}
        for i in range(self.spec.depth):
            norm = self.norms[i]
            state[f"blocks.{i}.norm.running_mean"] = norm.running_mean[r, 0]
            state[f"blocks.{i}.norm.running_var"] = norm.running_var[r, 0]
            state[f"blocks.{i}.norm.num_batches_tracked"] = torch.tensor(0)  # unused: momentum
            state[f"blocks.{i}.down.weight"] = self.down[i][r]
            state[f"blocks.{i}.up.weight"] = self.up[i][r]
        return {k: v.detach().clone() for k, v in state.items()}

    def load_replica_state(self, r: int, state: dict[str, torch.Tensor]) -> None:
        with torch.no_grad():
            self.w_in[r].copy_(state["w_in.weight"])
            self.w_out[r].copy_(state["w_out.weight"])
            for i in range(self.spec.depth):
                self.norms[i].running_mean[r, 0].copy_(state[f"blocks.{i}.norm.running_mean"])
                self.norms[i].running_var[r, 0].copy_(state[f"blocks.{i}.norm.running_var"])
                self.down[i][r].copy_(state[f"blocks.{i}.down.weight"])
                self.up[i][r].copy_(state[f"blocks.{i}.up.weight"])


def unpack(pack: PackedMLP, r: int, spec: MLPSpec | None = None) -> ResidualMLP:
    """Replica r as its own ResidualMLP (e.g. to save or evaluate it alone)."""
    model = ResidualMLP(spec or pack.spec)
    model.load_state_dict(pack.replica_state(r))
    return model
