"""One training step of a ResidualMLP with its backward pass written out.

The model is small enough that autograd's bookkeeping (a fresh tensor for every activation and
gradient, a graph per step) is a visible share of a step on a CPU. This step runs the same
mathematics on preallocated buffers: GEMMs write into them (`out=`), weight gradients go
straight into each parameter's `.grad`, the residual add is folded into `addmm`. A test holds
its gradients and BatchNorm running statistics to autograd's.

Forward (block i):  n_i = BN(z_i)   a_i = relu(n_i W_down^T)   z_{i+1} = z_i + a_i W_up^T
                    y_hat = sigmoid(z_L W_out^T)   loss = mean((y_hat - y)^2)
Backward:           g = 2 (y_hat - y) y_hat (1 - y_hat) / numel
                    dW_out = g^T z_L   dz = g W_out
                    per block, last first: dW_up = dz^T a_i   da = (dz W_up) * [a_i > 0]
                    dW_down = da^T n_i   dz += BN'(da W_down)
                    dW_in = dz^T x (when W_in trains)
Update:             AdamW on each weight, applied just before the next step's forward reads it
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from ..models.mlp import ResidualMLP
from ..models.spec import MLPSpec

EPS = 1e-5  # nn.BatchNorm1d's defaults
MOMENTUM = 0.1
relu_backward = torch.ops.aten.threshold_backward.grad_input  # one pass, no mask tensor


Tensors = list[torch.Tensor]
Buffers = tuple[Tensors, Tensors, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]


def workspace(
    model: torch.nn.Module, spec: MLPSpec, buffer: Callable[[int], torch.Tensor]
) -> Buffers:
    """Zero `.grad` of every trainable weight of `model` (a step writes its gradients there)
    and allocate a step's buffers with `buffer(columns)`: z_0 .. z_L, the ReLU outputs, y_hat,
    dz, da and dn."""
    for p in model.parameters():
        if p.requires_grad:
            p.grad = torch.zeros_like(p)
    z = [buffer(spec.d_z) for _ in range(spec.depth + 1)]
    a = [buffer(spec.d_h) for _ in range(spec.depth)]
    return z, a, buffer(spec.d_y), buffer(spec.d_z), buffer(spec.d_h), buffer(spec.d_z)


class ManualStep:
    """`step(x, y, embedded)` -> loss: forward, backward and the AdamW update for batches of
    at most `batch_size` rows. With `embedded`, x is z_0 (a fixed W_in applied once).

    The optimizer must hold exactly the model's trainable parameters in one group; their
    `.grad` are allocated here once and overwritten every step, so its `zero_grad` is not used.
    With a fused AdamW, each weight's update is deferred to the next step, just before the
    forward pass reads that weight: it then comes to its GEMM warm from the update instead of
    cold after the whole model's update streamed through the cache (a few % of a step). The
    arithmetic is AdamW's own kernel with the step's learning rate; `flush()` applies what is
    still pending, and the model's weights are current only after it.
    """

    def __init__(self, model: ResidualMLP, optimizer: torch.optim.Optimizer, batch_size: int):
        for block in model.blocks:
            norm = block.norm
            if norm.affine or norm.eps != EPS or norm.momentum != MOMENTUM:
                raise ValueError("ManualStep implements affine-free BatchNorm1d(eps=1e-5, 0.1)")
        self.model, self.optimizer = model, optimizer
        w = model.w_out.weight
        spec = model.spec
        (group,) = optimizer.param_groups
        self.group = group
        self.deferred = bool(group.get("fused")) and not group["amsgrad"]
        # per weight: exp_avg, exp_avg_sq, step count (AdamW's state, kept here)
        self.moments = {
            p: (torch.zeros_like(p), torch.zeros_like(p), torch.zeros((), device=p.device))
            for p in (group["params"] if self.deferred else ())
        }
        self.pending_lr: float | None = None

        def buffer(cols: int) -> torch.Tensor:
            return torch.empty(batch_size, cols, device=w.device, dtype=w.dtype)

        self.z, self.a, self.y_hat, self.dz, self.da, self.dn = workspace(model, spec, buffer)

    def _update(self, p: torch.Tensor) -> None:
        """Apply p's pending AdamW update, if any."""
        if self.pending_lr is None or p not in self.moments:
            return
        exp_avg, exp_avg_sq, count = self.moments[p]
        count += 1
        beta1, beta2 = self.group["betas"]
        torch._fused_adamw_(
            [p],
            [p.grad],
            [exp_avg],
            [exp_avg_sq],
            [],
            [count],
            lr=self.pending_lr,
            beta1=beta1,
            beta2=beta2,
            weight_decay=self.group["weight_decay"],
            eps=self.group["eps"],
            amsgrad=False,
            maximize=self.group["maximize"],
        )

    @torch.no_grad()
    def flush(self) -> None:
        """Apply every pending update: the weights are then those AdamW would have."""
        for p in self.moments:
            self._update(p)
        self.pending_lr = None

    @torch.no_grad()
    def step(self, x: torch.Tensor, y: torch.Tensor, embedded: bool = False) -> torch.Tensor:
        m, b = self.model, x.shape[0]
        z = [t[:b] for t in self.z]
        a = [t[:b] for t in self.a]
        update = self._update
        if embedded:
            z[0] = x
        else:
            update(m.w_in.weight)
            torch.mm(x, m.w_in.weight.t(), out=z[0])
        saved = []
        for i, block in enumerate(m.blocks):
            norm = block.norm
            n, mean, rstd = torch.native_batch_norm(
                z[i], None, None, norm.running_mean, norm.running_var, True, MOMENTUM, EPS
            )
            norm.num_batches_tracked.add_(1)
            saved.append((n, mean, rstd))
            update(block.down.weight)
            torch.mm(n, block.down.weight.t(), out=a[i]).relu_()
            update(block.up.weight)
            torch.addmm(z[i], a[i], block.up.weight.t(), out=z[i + 1])
        update(m.w_out.weight)
        y_hat = torch.mm(z[-1], m.w_out.weight.t(), out=self.y_hat[:b]).sigmoid_()

        g = y_hat - y
        loss = g.square().mean()
        g.mul_(y_hat).mul_(1.0 - y_hat).mul_(2.0 / g.numel())
        torch.mm(g.t(), z[-1], out=m.w_out.weight.grad)
        dz = torch.mm(g, m.w_out.weight, out=self.dz[:b])
        da, dn = self.da[:b], self.dn[:b]
        train_w_in = m.w_in.weight.requires_grad and not embedded
        for i in reversed(range(len(m.blocks))):
            block, (n, mean, rstd) = m.blocks[i], saved[i]
            torch.mm(dz.t(), a[i], out=block.up.weight.grad)
            torch.mm(dz, block.up.weight, out=da)
            relu_backward(da, a[i], 0, grad_input=da)  # in place: da where a_i > 0, else 0
            torch.mm(da.t(), n, out=block.down.weight.grad)
            if i == 0 and not train_w_in:
                break  # dz_0 would only serve W_in's gradient
            torch.mm(da, block.down.weight, out=dn)
            dz.add_(
                torch.ops.aten.native_batch_norm_backward(
                    dn, z[i], None, None, None, mean, rstd, True, EPS, [True, False, False]
                )[0]
            )
        if train_w_in:
            torch.mm(dz.t(), x, out=m.w_in.weight.grad)
        if self.deferred:
            self.pending_lr = float(self.group["lr"])
        else:
            self.optimizer.step()
        return loss
