"""One training step of a pack with its backward pass written out (search/step.py's method for
R replicas at once): batched products write into buffers allocated once, weight gradients go
straight into each stacked weight's `.grad`, the residual add rides in `baddbmm`. A test holds
its gradients and running statistics to autograd's on the same pack.

Per replica r (every tensor below carries a leading replica axis):
Forward:   n_i = (z_i - mean_B z_i) * rstd_i    a_i = relu(n_i W_down^T)
           z_{i+1} = z_i + a_i W_up^T     y_hat = sigmoid(z_L W_out^T)
           loss_r = mean((y_hat - y)^2) over (B, d_y)
Backward:  g = 2 (y_hat - y) y_hat (1 - y_hat) / (B d_y)      dW_out = g^T z_L    dz = g W_out
           per block, last first: dW_up = dz^T a_i   da = (dz W_up) * [a_i > 0]   dW_down = da^T n_i
           dn = da W_down   dz += rstd_i (dn - mean_B dn - n_i mean_B(dn n_i))   (BatchNorm's)
           dW_in = dz^T x (when W_in trains)
"""

from __future__ import annotations

import torch

from ..models.packed import EPS, MOMENTUM, PackedMLP

relu_backward = torch.ops.aten.threshold_backward.grad_input  # one pass, no mask tensor


class PackStep:
    """`step(x, y)` -> (R,) losses: forward and backward for batches of at most `batch_size`
    rows per replica; the gradients are left in the pack's `.grad` for the optimizer."""

    def __init__(self, pack: PackedMLP, batch_size: int) -> None:
        self.pack = pack
        spec, r = pack.spec, pack.replicas
        w = pack.w_out

        def buffer(cols: int) -> torch.Tensor:
            return torch.empty(r, batch_size, cols, device=w.device, dtype=w.dtype)

        for p in pack.parameters():
            if p.requires_grad:
                p.grad = torch.zeros_like(p)
        self.z = [buffer(spec.d_z) for _ in range(spec.depth + 1)]  # z_0 .. z_L
        self.n = [buffer(spec.d_z) for _ in range(spec.depth)]  # normalised z_i
        self.a = [buffer(spec.d_h) for _ in range(spec.depth)]  # relu outputs
        self.y_hat = buffer(spec.d_y)
        self.dz, self.da, self.dn = buffer(spec.d_z), buffer(spec.d_h), buffer(spec.d_z)

    @torch.no_grad()
    def step(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        p, b = self.pack, x.shape[1]
        z, n, a = [t[:, :b] for t in self.z], [t[:, :b] for t in self.n], [t[:, :b] for t in self.a]
        torch.bmm(x, p.w_in.transpose(1, 2), out=z[0])
        rstds = []
        for i, norm in enumerate(p.norms):
            var, mean = torch.var_mean(z[i], dim=1, keepdim=True, correction=0)
            norm.running_mean.lerp_(mean, MOMENTUM)
            norm.running_var.lerp_(var * (b / (b - 1)), MOMENTUM)
            rstd = var.add_(EPS).rsqrt_()  # (R, 1, d_z)
            rstds.append(rstd)
            torch.sub(z[i], mean, out=n[i]).mul_(rstd)
            torch.bmm(n[i], p.down[i].transpose(1, 2), out=a[i]).relu_()
            torch.baddbmm(z[i], a[i], p.up[i].transpose(1, 2), out=z[i + 1])
        y_hat = torch.bmm(z[-1], p.w_out.transpose(1, 2), out=self.y_hat[:, :b]).sigmoid_()

        g = y_hat - y
        losses = g.square().mean(dim=(1, 2))
        g.mul_(y_hat).mul_(1.0 - y_hat).mul_(2.0 / (b * y.shape[2]))
        torch.bmm(g.transpose(1, 2), z[-1], out=p.w_out.grad)
        dz = torch.bmm(g, p.w_out, out=self.dz[:, :b])
        da, dn = self.da[:, :b], self.dn[:, :b]
        train_w_in = p.w_in.requires_grad
        for i in reversed(range(p.spec.depth)):
            torch.bmm(dz.transpose(1, 2), a[i], out=p.up[i].grad)
            torch.bmm(dz, p.up[i], out=da)
            relu_backward(da, a[i], 0, grad_input=da)  # in place: da where a_i > 0, else 0
            torch.bmm(da.transpose(1, 2), n[i], out=p.down[i].grad)
            if i == 0 and not train_w_in:
                break  # dz_0 would only serve W_in's gradient
            torch.bmm(da, p.down[i], out=dn)
            # BatchNorm (training mode, biased variance): rstd (dn - mean dn - n mean(dn n))
            correction = (dn * n[i]).mean(dim=1, keepdim=True)
            dn.sub_(dn.mean(dim=1, keepdim=True)).sub_(n[i] * correction).mul_(rstds[i])
            dz.add_(dn)
        if train_w_in:
            torch.bmm(dz.transpose(1, 2), x, out=p.w_in.grad)
        return losses
