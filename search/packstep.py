"""One training step of a pack with its backward pass written out (search/step.py's method for
R replicas at once): batched products write into buffers allocated once, weight gradients go
straight into each stacked weight's `.grad`, the residual add rides in `baddbmm`. A test holds
its gradients and running statistics to autograd's on the same pack.

Activations are kept batch-major, (B, R, C): viewed as (B, R*C), every replica's BatchNorm is
one fused `native_batch_norm` (its statistics over B for each (replica, channel) pair), while
the products take the (R, B, C) transposed view, which BLAS reads without a copy. (A reduction
over B of an (R, B, C) tensor is ~10x slower on a CPU.)

Per replica r:
Forward:   n_i = BN(z_i)    a_i = relu(n_i W_down^T)    z_{i+1} = z_i + a_i W_up^T
           y_hat = sigmoid(z_L W_out^T)     loss_r = mean((y_hat - y)^2) over (B, d_y)
Backward:  g = 2 (y_hat - y) y_hat (1 - y_hat) / (B d_y)      dW_out = g^T z_L    dz = g W_out
           per block, last first: dW_up = dz^T a_i   da = (dz W_up) * [a_i > 0]
           dW_down = da^T n_i    dz += BN'(da W_down)    dW_in = dz^T x (when W_in trains)
"""

from __future__ import annotations

import torch

from ..models.packed import EPS, MOMENTUM, PackedMLP
from .step import workspace

relu_backward = torch.ops.aten.threshold_backward.grad_input  # one pass, no mask tensor


class PackStep:
    """`step(x, y)` -> (R,) losses for x (R, B, d_x), y (R, B, d_y), B at most `batch_size`;
    the gradients are left in the pack's `.grad` for the optimizer."""

    def __init__(self, pack: PackedMLP, batch_size: int) -> None:
        self.pack = pack
        spec, r = pack.spec, pack.replicas
        w = pack.w_out

        def buffer(cols: int) -> torch.Tensor:  # batch-major: (B, R, cols)
            return torch.empty(batch_size, r, cols, device=w.device, dtype=w.dtype)

        self.z, self.a, self.y_hat, self.dz, self.da, self.dn = workspace(pack, spec, buffer)

    @torch.no_grad()
    def step(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        p, b, r = self.pack, x.shape[1], self.pack.replicas
        d_z = p.spec.d_z

        def rows(buffers: list[torch.Tensor]) -> list[torch.Tensor]:
            return [t[:b] for t in buffers]

        def rbc(t: torch.Tensor) -> torch.Tensor:  # (B, R, C) -> the (R, B, C) view
            return t.transpose(0, 1)

        z, a = rows(self.z), rows(self.a)
        n = []  # BN(z_i), as native_batch_norm returns them
        torch.bmm(x, p.w_in.transpose(1, 2), out=rbc(z[0]))
        saved = []
        for i, norm in enumerate(p.norms):
            out, mean, rstd = torch.native_batch_norm(
                z[i].view(b, r * d_z), None, None, norm.running_mean.view(-1),
                norm.running_var.view(-1), True, MOMENTUM, EPS,
            )  # fmt: skip
            n.append(out.view(b, r, d_z))
            saved.append((mean, rstd))
            torch.bmm(rbc(n[i]), p.down[i].transpose(1, 2), out=rbc(a[i])).relu_()
            torch.baddbmm(rbc(z[i]), rbc(a[i]), p.up[i].transpose(1, 2), out=rbc(z[i + 1]))
        y_hat = torch.bmm(rbc(z[-1]), p.w_out.transpose(1, 2), out=rbc(self.y_hat[:b]))
        y_hat.sigmoid_()  # (R, B, d_y) view

        g = y_hat - y
        losses = g.square().mean(dim=(1, 2))
        g.mul_(y_hat).mul_(1.0 - y_hat).mul_(2.0 / (b * y.shape[2]))
        torch.bmm(g.transpose(1, 2), rbc(z[-1]), out=p.w_out.grad)
        dz, da, dn = self.dz[:b], self.da[:b], self.dn[:b]
        torch.bmm(g, p.w_out, out=rbc(dz))
        train_w_in = p.w_in.requires_grad
        for i in reversed(range(p.spec.depth)):
            torch.bmm(rbc(dz).transpose(1, 2), rbc(a[i]), out=p.up[i].grad)
            torch.bmm(rbc(dz), p.up[i], out=rbc(da))
            relu_backward(da, a[i], 0, grad_input=da)  # in place: da where a_i > 0, else 0
            torch.bmm(rbc(da).transpose(1, 2), rbc(n[i]), out=p.down[i].grad)
            if i == 0 and not train_w_in:
                break  # dz_0 would only serve W_in's gradient
            torch.bmm(rbc(da), p.down[i], out=rbc(dn))
            mean, rstd = saved[i]
            grad = torch.ops.aten.native_batch_norm_backward(
                dn.view(b, r * d_z), z[i].view(b, r * d_z), None, None, None, mean, rstd,
                True, EPS, [True, False, False],
            )[0]  # fmt: skip
            dz.add_(grad.view(b, r, d_z))
        if train_w_in:
            torch.bmm(rbc(dz).transpose(1, 2), x, out=p.w_in.grad)
        return losses
