"""The written-out training step against autograd on the same model."""

from __future__ import annotations

import pytest
import torch

from hgsearch.models import MLPSpec, build_model
from hgsearch.search.step import ManualStep

SPECS = [
    MLPSpec("hourglass", 20, 24, 30, 7, 3),
    MLPSpec("conventional", 20, 24, 24, 40, 2),
    MLPSpec("hourglass", 20, 24, 30, 7, 2, fix_w_in=True),
]


def twin(spec, seed=0):
    torch.manual_seed(seed)
    return build_model(spec).train()


def optimizer(model, fused=False):
    params = [p for p in model.parameters() if p.requires_grad]
    return torch.optim.AdamW(params, lr=1e-2, weight_decay=0.01, fused=fused)


def batch(rows, spec, seed):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(rows, spec.d_x, generator=g), torch.rand(rows, spec.d_y, generator=g)


def autograd_step(model, opt, x, y, embedded=False):
    out = model.head(x) if embedded else model(x)
    loss = torch.nn.functional.mse_loss(out, y)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    return loss


def assert_same_state(reference, model, rtol):
    for (name, p), q in zip(reference.named_parameters(), model.parameters(), strict=True):
        assert torch.allclose(p, q, rtol=rtol, atol=rtol * p.abs().max().item()), name
        if p.grad is not None:
            scale = p.grad.abs().max().item()
            assert torch.allclose(p.grad, q.grad, rtol=rtol, atol=rtol * scale), name
    for (name, b), c in zip(reference.named_buffers(), model.buffers(), strict=True):
        assert torch.allclose(b, c, rtol=1e-5, atol=1e-6), name


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: f"{s.family}{'-fixed' * s.fix_w_in}")
@pytest.mark.parametrize("rows", [16, 11], ids=["full-batch", "short-batch"])
def test_gradients_and_running_stats_match_autograd(spec, rows):
    reference, model = twin(spec), twin(spec)
    opt_ref, opt = optimizer(reference), optimizer(model)
    opt_ref.step = opt.step = lambda: None  # compare the gradients of one step
    x, y = batch(rows, spec, 1)
    loss_ref = autograd_step(reference, opt_ref, x, y)
    loss = ManualStep(model, opt, 16).step(x, y)
    assert torch.allclose(loss, loss_ref, rtol=1e-6)
    assert_same_state(reference, model, 1e-5)
    assert model.blocks[0].norm.num_batches_tracked.item() == 1
    if spec.fix_w_in:
        assert reference.w_in.weight.grad is None and model.w_in.weight.grad is None


@pytest.mark.parametrize("fused", [False, True], ids=["foreach", "fused-deferred"])
@pytest.mark.parametrize("spec", SPECS, ids=lambda s: f"{s.family}{'-fixed' * s.fix_w_in}")
def test_training_follows_autograd_step_for_step(spec, fused):
    """Ten AdamW steps of mixed batch sizes and a decaying learning rate land on the same
    weights, running statistics and losses; with a fixed W_in also when fed z_0 = W_in x
    directly. With a fused AdamW each update waits for the next step (or `flush`), and is
    made with the learning rate of the step that computed its gradient."""
    reference, model = twin(spec, 3), twin(spec, 3)
    opt_ref, opt = optimizer(reference), optimizer(model, fused)
    step = ManualStep(model, opt, 16)
    assert step.deferred == fused
    embedded = spec.fix_w_in
    for i in range(10):
        for group in (*opt_ref.param_groups, *opt.param_groups):
            group["lr"] = 1e-2 * (1 - i / 10)
        x, y = batch(16 if i % 3 else 9, spec, 10 + i)
        if embedded:
            with torch.no_grad():
                x = model.embed(x)
        loss_ref = autograd_step(reference, opt_ref, x, y, embedded)
        loss = step.step(x, y, embedded=embedded)
        assert torch.allclose(loss, loss_ref, rtol=1e-4)
    if fused:  # the last update is still pending
        assert not torch.allclose(reference.w_out.weight, model.w_out.weight, atol=1e-6)
        step.flush()
    assert_same_state(reference, model, 1e-4)
    step.flush()  # nothing left: a second flush changes nothing
    assert_same_state(reference, model, 1e-4)
    reference.eval(), model.eval()
    x, _ = batch(5, spec, 99)
    assert torch.allclose(reference(x), model(x), atol=1e-5)


def test_refuses_a_batchnorm_it_does_not_implement():
    model = twin(SPECS[0])
    model.blocks[0].norm.momentum = None  # cumulative averaging
    with pytest.raises(ValueError, match="BatchNorm1d"):
        ManualStep(model, optimizer(model), 8)


@pytest.mark.gpu
def test_matches_autograd_on_cuda():
    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA GPU")
    spec = SPECS[0]
    reference, model = twin(spec).cuda(), twin(spec).cuda()
    opt_ref, opt = optimizer(reference), optimizer(model)
    opt_ref.step = opt.step = lambda: None
    x, y = (t.cuda() for t in batch(16, spec, 1))
    torch.backends.cuda.matmul.allow_tf32 = False
    autograd_step(reference, opt_ref, x, y)
    ManualStep(model, opt, 16).step(x, y)
    assert_same_state(reference, model, 1e-4)


@pytest.mark.gpu
def test_deferred_fused_updates_on_cuda():
    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA GPU")
    torch.backends.cuda.matmul.allow_tf32 = False
    spec = SPECS[1]
    reference, model = twin(spec, 3).cuda(), twin(spec, 3).cuda()
    opt_ref, opt = optimizer(reference), optimizer(model, fused=True)
    step = ManualStep(model, opt, 16)
    assert step.deferred
    for i in range(5):
        x, y = (t.cuda() for t in batch(16, spec, 10 + i))
        autograd_step(reference, opt_ref, x, y)
        step.step(x, y)
    step.flush()
    assert_same_state(reference, model, 1e-4)
