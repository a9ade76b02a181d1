"""Benchmarks of packs (several replicas of one architecture trained as one batched model).

    python bench/packs.py [--device cpu|cuda] [--rounds 3] [--replicas 8] [--json runs/packs.json]

Prints a table and writes JSON:
  1. dispatched operators per replica-step (torch profiler, top-level aten ops), for packs of
     R = 1, 5, 15: device-independent, what a GPU pays per launch;
  2. replica-steps per second, a pack of R replicas against the same R trained one at a time
     by the one-model trainer, on three paper shapes (small (785, 4, 10), middle (785, 115, 4),
     large (784, 785, 1); generative classification on mnist5k, batch 128), in adjacent
     windows, best-of and paired medians;
  3. on CUDA: the same at R = 1 and 15, the GPU's utilisation, and the projected wall-clock of
     the whole `paper_mnist_gc` preset from the measured replica-steps per second; without a
     GPU, a projection from the operator counts and a stated per-launch cost and FLOP rate,
     labelled as one, beside the same projection for one model at a time.

The machine's state is part of the result: the load average before and after, and the drift
of a reference matmul timed between the parts; a run on a busy machine is flagged (a run
beside another CPU job gave paired ratios from 0.07 to 17).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from hgsearch.models import BASELINE, CANDIDATE, MLPSpec, count_params  # noqa: E402
from hgsearch.search.data import DataSettings, load  # noqa: E402
from hgsearch.search.pack import Replica, train_pack  # noqa: E402
from hgsearch.search.settings import TaskSettings, TrainSettings
from hgsearch.search.tasks import prepare  # noqa: E402
from hgsearch.search.train import train  # noqa: E402

SHAPES = {
    "small": (CANDIDATE, 785, 4, 10),
    "middle": (CANDIDATE, 785, 115, 4),
    "large": (BASELINE, 784, 785, 1),
}
BATCH = 128
# paper_mnist_gc: its architectures (conf/space/paper_mnist_gc.yaml), 5 seeds x 4 rates each,
# 50 epochs of MNIST's 50,000 training images (391 steps of 128).
PAPER_GC = {
    CANDIDATE: [(785, 4, 10), (785, 4, 20), (785, 4, 30), (785, 4, 40), (785, 115, 4),
                  (785, 115, 6), (785, 270, 4), (785, 270, 6), (785, 350, 4), (785, 350, 6),
                  (1150, 480, 4)],
    BASELINE: [(784, 785, d) for d in (1, 2, 3, 4)] + [(784, 905, d) for d in (1, 2, 3)]
    + [(784, 1150, d) for d in (1, 2)] + [(784, 1470, 1)],
}  # fmt: skip
PAPER_REPLICAS, PAPER_EPOCHS, PAPER_STEPS = 20, 50, 391
# Stated assumptions of the projection without a GPU (a modern data-centre GPU, eager PyTorch):
LAUNCH_SECONDS = 8e-6  # per dispatched operator: Python dispatch plus a kernel launch
GPU_FLOPS = 40e12  # sustained fp32 (TF32 off) on these GEMM shapes


def spec_of(shape: tuple) -> MLPSpec:
    family, d_z, d_h, depth = shape
    return MLPSpec(family, 784, 784, d_z, d_h, depth)


def step_flops(spec: MLPSpec, batch: int = BATCH) -> int:
    """Forward, weight-gradient and input-gradient GEMMs of one training step."""
    return 6 * batch * count_params(spec).trainable


class Machine:
    """The load average and a reference matmul's time, sampled between the parts."""

    def __init__(self, device: torch.device) -> None:
        n = 1024
        self.a = torch.randn(n, n, device=device)
        self.sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
        self.samples: list[float] = []
        self.load = [os.getloadavg()[0]]
        self.sample()

    def sample(self) -> float:
        times = []
        for _ in range(5):
            self.sync()
            start = time.perf_counter()
            for _ in range(4):
                self.a @ self.a
            self.sync()
            times.append(time.perf_counter() - start)
        self.samples.append(min(times))
        return self.samples[-1]

    def summary(self) -> dict:
        self.load.append(os.getloadavg()[0])
        drift = max(self.samples) / min(self.samples)
        busy = self.load[0] > 1.0 or drift > 1.25
        return {"load_before": self.load[0], "load_after": self.load[1],
                "reference_matmul_seconds": self.samples, "drift": drift, "busy": busy}  # fmt: skip


def count_ops(spec: MLPSpec, data, replicas: int, device, steps: int = 4) -> float:
    """Top-level aten operators dispatched per replica-step (a pack's training steps)."""
    from torch.profiler import ProfilerActivity, profile

    small = dataclasses.replace(data, train=type(data.train)(
        data.train.x[: steps * BATCH], data.train.y[: steps * BATCH]))  # fmt: skip
    reps = [Replica(seed, 1e-3) for seed in range(replicas)]
    settings = TrainSettings(epochs=1, batch_size=BATCH, eval_every=10**6)
    train_pack(spec, small, settings, reps, device)  # warm up
    # Count the epoch's steps only: profile a run, minus a run with no training step.
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        train_pack(spec, small, settings, reps, device)
    ops = sum(1 for e in prof.events() if e.name.startswith("aten::") and e.cpu_parent is None)
    empty = dataclasses.replace(small, train=type(data.train)(
        data.train.x[:1], data.train.y[:1]))  # fmt: skip
    with profile(activities=[ProfilerActivity.CPU]) as base:
        train_pack(spec, empty, settings, reps, device)
    rest = sum(1 for e in base.events() if e.name.startswith("aten::") and e.cpu_parent is None)
    return (ops - rest) / (steps * replicas)


def replica_steps_per_second(spec, data, replicas: int, device, rounds: int) -> dict:
    """Pack vs one at a time, in adjacent windows: training steps of one epoch each."""
    reps = [Replica(seed, lr) for seed in range(2) for lr in (1e-4, 5e-4, 1e-3, 5e-3)]
    reps = (reps * ((replicas + len(reps) - 1) // len(reps)))[:replicas]
    settings = TrainSettings(epochs=1, batch_size=BATCH, eval_every=10**6)
    steps = data.n_train // BATCH + (1 if data.n_train % BATCH > 1 else 0)
    pack_s, seq_s = [], []
    for _ in range(rounds):
        results = train_pack(spec, data, settings, reps, device)
        pack_s.append(results[0].history[-1]["epoch_seconds"])
        seq_s.append(sum(
            train(spec, data, dataclasses.replace(settings, lr=r.lr, seed=r.seed), device)
            .history[-1]["epoch_seconds"] for r in reps
        ))  # fmt: skip
    work = steps * replicas
    ratios = [s / p for s, p in zip(seq_s, pack_s, strict=True)]
    return {
        "pack_steps_per_s": work / min(pack_s),
        "sequential_steps_per_s": work / min(seq_s),
        "speedup_best": min(seq_s) / min(pack_s),
        "speedup_paired_median": statistics.median(ratios),
        "speedup_paired": ratios,
    }


def paper_gc_projection(ops_per_replica_step: float, label: str) -> dict:
    """Hours for the paper_mnist_gc preset at this many operators per replica-step."""
    total = 0.0
    for family, shapes in PAPER_GC.items():
        for d_z, d_h, depth in shapes:
            spec = MLPSpec(family, 784, 784, d_z, d_h, depth)
            per = max(ops_per_replica_step * LAUNCH_SECONDS, step_flops(spec) / GPU_FLOPS)
            total += per * PAPER_REPLICAS * PAPER_EPOCHS * PAPER_STEPS
    return {"what": label, "hours": total / 3600}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--replicas", type=int, default=8)
    parser.add_argument("--json", default="runs/packs.json")
    args = parser.parse_args()
    device = torch.device(args.device)
    machine = Machine(device)
    splits = load(DataSettings("mnist5k"))
    data = prepare(splits, TaskSettings("gen_classify"), device)
    report: dict = {"device": str(device), "threads": torch.get_num_threads()}

    ops = {}
    for name in ("small", "large"):
        spec = spec_of(SHAPES[name])
        ops[name] = {r: count_ops(spec, data, r, device) for r in (1, 5, 15)}
    report["ops_per_replica_step"] = ops
    machine.sample()
    print("dispatched operators per replica-step (top-level aten ops, training steps only)")
    for name, by_r in ops.items():
        fall = by_r[1] / by_r[15]
        print(f"  {name:<7} R=1 {by_r[1]:7.1f}  R=5 {by_r[5]:6.1f}  R=15 {by_r[15]:6.1f}  "
              f"({fall:.1f}x fewer at R=15)")  # fmt: skip

    speed = {}
    for name, shape in SHAPES.items():
        speed[name] = replica_steps_per_second(spec_of(shape), data, args.replicas, device,
                                               args.rounds)  # fmt: skip
        machine.sample()
    report["speed"] = speed
    print(f"\nreplica-steps/s, a pack of {args.replicas} vs one at a time ({device})")
    for name, s in speed.items():
        print(f"  {name:<7} pack {s['pack_steps_per_s']:7.1f}  one at a time "
              f"{s['sequential_steps_per_s']:7.1f}  speedup {s['speedup_best']:.2f}x best-of, "
              f"{s['speedup_paired_median']:.2f}x paired median")  # fmt: skip

    if device.type == "cuda":
        report["gpu"] = cuda_part(data, device, args.rounds)
    else:
        small = ops["small"]
        report["projection"] = [
            paper_gc_projection(small[15], "packs of 15 (operators of the small shape)"),
            paper_gc_projection(small[1], "one model at a time"),
        ]
        print(f"\nPROJECTION (no GPU here; {LAUNCH_SECONDS * 1e6:.0f} us per operator, "
              f"{GPU_FLOPS / 1e12:.0f} TFLOP/s): paper_mnist_gc")  # fmt: skip
        for p in report["projection"]:
            print(f"  {p['what']}: {p['hours']:.2f} h")
    report["machine"] = machine.summary()
    m = report["machine"]
    print(
        f"\nmachine: load {m['load_before']:.2f} -> {m['load_after']:.2f}, reference matmul "
        f"drift {m['drift']:.2f}x" + ("  BUSY: do not trust these figures" if m["busy"] else "")
    )
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(report, indent=2))
    print(f"wrote {args.json}")


def cuda_part(data, device, rounds: int) -> dict:
    """R = 1 vs 15 on the GPU, its utilisation, and the measured projection of paper_mnist_gc."""
    out = {}
    for name, shape in SHAPES.items():
        spec = spec_of(shape)
        out[name] = {r: replica_steps_per_second(spec, data, r, device, rounds)["pack_steps_per_s"]
                     for r in (1, 15)}  # fmt: skip
    try:
        out["utilisation_percent"] = torch.cuda.utilization(device)
    except Exception:  # noqa: BLE001 - needs pynvml
        out["utilisation_percent"] = None
    seconds = 0.0
    for family, shapes in PAPER_GC.items():
        for d_z, d_h, depth in shapes:
            spec = MLPSpec(family, 784, 784, d_z, d_h, depth)
            rate = replica_steps_per_second(spec, data, 15, device, 1)["pack_steps_per_s"]
            seconds += PAPER_REPLICAS * PAPER_EPOCHS * PAPER_STEPS / rate
    out["paper_mnist_gc_hours"] = seconds / 3600
    print(
        "\nGPU replica-steps/s R=1 vs 15: "
        + ", ".join(f"{k} {v[1]:.0f} -> {v[15]:.0f}" for k, v in out.items() if isinstance(v, dict))
    )
    print(f"paper_mnist_gc projected from measured rates: {out['paper_mnist_gc_hours']:.2f} h")
    return out


if __name__ == "__main__":
    main()
