"""A fake trainer for search tests: deterministic, instant, and it checks what it is given."""

from __future__ import annotations

import math

from hgsearch.models import FAMILIES, count_params
from hgsearch.search.record import REQUIRED_WHEN_TRAINED
from hgsearch.search.train import TrainResult

# What every trained trial records (user attrs); the sweep and worker tests check it.
RECORD = (*REQUIRED_WHEN_TRAINED, "params_total", "device", "seeds", "git_rev")


class FakeTrainer:
    """PSNR grows with log(params); records every spec it was asked to train."""

    def __init__(self, max_params=None, min_params=None, curve=None):
        self.calls = []
        self.max_params, self.min_params = max_params, min_params
        self.curve = curve  # optional: spec -> list of per-epoch PSNR values

    def __call__(self, spec, data, settings, device="cpu", report=None):
        p = count_params(spec).trainable
        # Budgets and shape rules must hold before training is ever called.
        FAMILIES[spec.family].check(spec)
        assert self.max_params is None or p <= self.max_params
        assert self.min_params is None or p >= self.min_params
        self.calls.append((spec, settings.lr, settings.seed))
        # Learning rates: best at 1e-3, lower the further away (a trial over search.lrs has a
        # best one); seeds differ a little.
        psnr = (
            10
            + 2 * math.log(p)
            + (0.5 if spec.family == "hourglass" else 0)
            + 0.01 * settings.seed
            - 0.1 * abs(math.log10(settings.lr) + 3)
        )
        history = []
        per_epoch = self.curve(spec) if self.curve else [psnr] * settings.epochs
        for epoch, value in enumerate(per_epoch, start=1):
            history.append({"epoch": epoch, "psnr": value, "mse": 10 ** (-value / 10)})
            if report is not None:
                report(epoch, {"psnr": value, "mse": 10 ** (-value / 10)})
        return TrainResult(
            "ok",
            10 ** (-psnr / 10),
            psnr,
            0.9,
            psnr - 0.1,
            0.89,
            1,
            settings.epochs,
            0.01,
            "cpu",
            history,
            eval_psnr_image=psnr + 3,
            test_psnr_image=psnr + 2.9,
        )

    def pack(self, spec, data, settings, replicas, device="cpu", report=None):
        """The pack trainer's contract: one result per replica, in order (report: the first)."""
        from dataclasses import replace

        return [
            self(spec, data, replace(settings, lr=r.lr, seed=r.seed), device,
                 report if i == 0 else None)
            for i, r in enumerate(replicas)
        ]  # fmt: skip
