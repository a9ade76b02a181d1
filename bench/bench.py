"""Benchmarks of the trainer against the machine's limit and against the usual training loop.

    python bench/bench.py [--quick] [--json runs/bench.json] [--device cpu|cuda]

Prints a table and writes JSON. Measured in one run on one machine:
  1. compute floor: the GEMMs of one training step at the real shapes, timed alone, and the
     machine's large-matmul FLOP/s;
  2. trainer efficiency: our time per step vs that floor (floor / step), and its FLOP/s;
  3. against the usual loop: a per-sample Dataset, a DataLoader, per-batch device copies and
     .item() every step, as a ratio of wall time per epoch;
  4. fixed W_in: time per epoch and final PSNR, trainable vs fixed W_in;
  5. search efficiency: trials the default sampler needs to reach 99% of the hypervolume of an
     exhaustive grid over the same space, as a fraction of the grid's size;
  6. on a GPU: 2-4 in bf16.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from models import MLPSpec, build_model, count_params  # noqa: E402
from search.data import DataSettings, load  # noqa: E402
from search.tasks import TaskSettings, prepare  # noqa: E402
from search.train import TrainSettings, train  # noqa: E402

SHAPES = [("hourglass", 785, 115, 4), ("hourglass", 785, 270, 4), ("conventional", 784, 785, 1)]


def timed(fn, repeat: int, sync) -> float:
    """Median seconds of fn() over `repeat` runs, after two warm-ups."""
    for _ in range(2):
        fn()
    sync()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def step_flops(spec: MLPSpec, batch: int) -> int:
    """FLOPs of one training step's GEMMs: forward, input-gradient and weight-gradient.

    W_in needs no input gradient (the data does not require grad); a fixed W_in needs none.
    """
    layers = [(spec.d_x, spec.d_z, "in")]
    layers += [(spec.d_z, spec.d_h, "down"), (spec.d_h, spec.d_z, "up")] * spec.depth
    layers += [(spec.d_z, spec.d_y, "out")]
    total = 0
    for k, n, kind in layers:
        mults = 1 if kind == "in" and spec.fix_w_in else (2 if kind == "in" else 3)
        total += mults * 2 * batch * k * n
    return total


def compute_floor(spec: MLPSpec, batch: int, device, dtype, sync, repeat: int) -> float:
    """Time exactly the matrix multiplications one training step needs, at the real shapes."""
    g = torch.Generator(device="cpu").manual_seed(0)

    def rand(*shape):
        return torch.randn(*shape, generator=g).to(device=device, dtype=dtype)

    layers = [(spec.d_x, spec.d_z, "in")]
    layers += [(spec.d_z, spec.d_h, "down"), (spec.d_h, spec.d_z, "up")] * spec.depth
    layers += [(spec.d_z, spec.d_y, "out")]
    ops = []
    for k, n, kind in layers:
        a, w, grad = rand(batch, k), rand(n, k), rand(batch, n)
        out_f, out_gi, out_gw = rand(batch, n), rand(batch, k), rand(n, k)
        ops.append(lambda a=a, w=w, o=out_f: torch.mm(a, w.t(), out=o))  # forward
        if not (kind == "in" and spec.fix_w_in):
            ops.append(lambda a=a, gr=grad, o=out_gw: torch.mm(gr.t(), a, out=o))  # dW
        if kind != "in":
            ops.append(lambda w=w, gr=grad, o=out_gi: torch.mm(gr, w, out=o))  # dX

    def step():
        for op in ops:
            op()

    return timed(step, repeat, sync)


def large_matmul_flops(device, dtype, sync) -> float:
    n = 4096 if device.type == "cuda" else 2048
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    return 2 * n**3 / timed(lambda: a @ b, 10, sync)


def trainer_step_time(spec, data, device, bf16, sync) -> tuple[float, float]:
    """Seconds per step and per epoch of our trainer, from the difference of two run lengths
    (set-up and the final evaluation cancel out)."""
    n = data.n_train
    steps = n // 128 + (1 if n % 128 > 1 else 0)

    def run(epochs):
        settings = TrainSettings(epochs=epochs, batch_size=128, eval_every=10**6, bf16=bf16)
        sync()
        start = time.perf_counter()
        train(spec, data, settings, device)
        sync()
        return time.perf_counter() - start

    run(1)  # warm-up: thread pools, kernels, allocator
    short, long = min(run(1) for _ in range(2)), min(run(4) for _ in range(2))
    per_epoch = (long - short) / 3
    return per_epoch / steps, per_epoch


class PerSampleDataset(torch.utils.data.Dataset):
    """How research code usually feeds images: convert each one on access."""

    def __init__(self, images, targets):
        self.images, self.targets = images, targets  # uint8 numpy (N, C, H, W), float targets

    def __len__(self):
        return len(self.images)

    def __getitem__(self, i):
        x = torch.tensor(self.images[i], dtype=torch.float32).div(255.0).flatten()
        return x, self.targets[i]


def usual_epoch_time(spec, splits, data, device, sync) -> float:
    """One epoch of the usual loop: DataLoader, per-batch copies, .item() every step."""
    torch.manual_seed(0)
    model = build_model(spec).to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.01)
    loader = torch.utils.data.DataLoader(
        PerSampleDataset(splits.train.images, data.train.y.cpu()), batch_size=128, shuffle=True
    )

    def epoch():
        model.train()
        losses = []
        for x, y in loader:
            x, y = x.to(device), y.to(device)
            loss = torch.nn.functional.mse_loss(model(x), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses.append(loss.item())
        return sum(losses) / len(losses)

    return timed(epoch, 3, sync)


def fixed_w_in(spec, data, device, bf16, sync, epochs: int) -> dict:
    out = {}
    for fix in (False, True):
        s = MLPSpec(spec.family, spec.d_x, spec.d_y, spec.d_z, spec.d_h, spec.depth, fix)
        step, per_epoch = trainer_step_time(s, data, device, bf16, sync)
        result = train(s, data, TrainSettings(epochs=epochs, batch_size=128, bf16=bf16), device)
        out["fixed" if fix else "trainable"] = {
            "epoch_seconds": per_epoch,
            "test_psnr": result.test_psnr,
            "trainable_params": count_params(s).trainable,
        }
    out["speedup"] = out["trainable"]["epoch_seconds"] / out["fixed"]["epoch_seconds"]
    return out


def search_efficiency(device, seeds: int, epochs: int) -> dict:
    """Grid over a small discrete space on mnist5k, then TPE replayed on the grid's results."""
    import optuna
    from optuna._hypervolume import compute_hypervolume
    from optuna.samplers import TPESampler

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    splits = load(DataSettings("mnist5k"))
    data = prepare(splits, TaskSettings("gen_classify"), device)
    space = {"d_h": [4, 16, 64, 256], "depth": [1, 2, 4], "lr": [0.001, 0.003]}
    table = {}
    start = time.perf_counter()
    for d_h in space["d_h"]:
        for depth in space["depth"]:
            spec = MLPSpec("hourglass", 784, 784, 785, d_h, depth)
            for lr in space["lr"]:
                r = train(spec, data, TrainSettings(epochs=epochs, lr=lr), device)
                table[(d_h, depth, lr)] = (r.eval_psnr, count_params(spec).trainable)
    grid_seconds = time.perf_counter() - start
    points = torch.tensor([[-v, p] for v, p in table.values()], dtype=torch.float64)
    ref = [float(points[:, 0].max()) + 1.0, float(points[:, 1].max()) * 1.1]

    def hv(values):
        pts = torch.tensor([[-v, p] for v, p in values], dtype=torch.float64).numpy()
        return compute_hypervolume(pts, __import__("numpy").array(ref))

    target = 0.99 * hv(list(table.values()))
    needed = []
    for seed in range(seeds):
        sampler = TPESampler(
            seed=seed, multivariate=True, group=True, n_startup_trials=5, constant_liar=True
        )
        study = optuna.create_study(directions=["maximize", "minimize"], sampler=sampler)
        seen = {}
        for _ in range(200):
            trial = study.ask()
            key = tuple(trial.suggest_categorical(k, v) for k, v in space.items())
            seen.setdefault(key, table[key])  # a repeated configuration is reused, not trained
            study.tell(trial, list(table[key]))
            if hv(list(seen.values())) >= target:
                break
        needed.append(len(seen))
    size = len(table)
    return {
        "grid_size": size,
        "grid_seconds": grid_seconds,
        "epochs": epochs,
        "trained_trials_needed": needed,
        "mean_fraction": statistics.fmean(needed) / size,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--json", default="runs/bench.json")
    parser.add_argument("--quick", action="store_true", help="skip the search-efficiency part")
    parser.add_argument("--search-seeds", type=int, default=10)
    args = parser.parse_args()
    device = torch.device(args.device)
    bf16 = device.type == "cuda"
    dtype = torch.bfloat16 if bf16 else torch.float32
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    torch.manual_seed(0)
    report: dict = {
        "device": str(device),
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "bf16": bf16,
    }
    print(f"device {device}, {torch.get_num_threads()} threads, torch {torch.__version__}")

    peak = large_matmul_flops(device, dtype, sync)
    report["large_matmul_gflops"] = peak / 1e9
    print(f"large matmul: {peak / 1e9:.1f} GFLOP/s")

    splits = load(DataSettings("mnist5k"))
    data = prepare(splits, TaskSettings("gen_classify"), device)
    rows = []
    print(
        f"\n{'model':<26}{'floor ms':>9}{'step ms':>9}{'eff':>6}{'GFLOP/s':>9}{'%peak':>7}"
        f"{'usual s/ep':>11}{'ours s/ep':>10}{'speedup':>8}"
    )
    for family, d_z, d_h, depth in SHAPES:
        spec = MLPSpec(family, 784, 784, d_z, d_h, depth)
        floor = compute_floor(spec, 128, device, dtype, sync, 30)
        step, per_epoch = trainer_step_time(spec, data, device, bf16, sync)
        usual = usual_epoch_time(spec, splits, data, device, sync)
        flops = step_flops(spec, 128)
        row = {
            "model": f"{family} ({d_z}, {d_h}, {depth})",
            "floor_ms": floor * 1e3,
            "step_ms": step * 1e3,
            "efficiency": floor / step,
            "gflops": flops / step / 1e9,
            "fraction_of_peak": flops / step / peak,
            "usual_epoch_s": usual,
            "ours_epoch_s": per_epoch,
            "speedup": usual / per_epoch,
        }
        rows.append(row)
        print(
            f"{row['model']:<26}{row['floor_ms']:>9.2f}{row['step_ms']:>9.2f}"
            f"{row['efficiency']:>6.2f}{row['gflops']:>9.1f}{row['fraction_of_peak']:>7.2f}"
            f"{usual:>11.3f}{per_epoch:>10.3f}{row['speedup']:>8.2f}"
        )
    report["trainer"] = rows

    fw = fixed_w_in(MLPSpec("hourglass", 784, 784, 785, 115, 4), data, device, bf16, sync, 10)
    report["fixed_w_in"] = fw
    print(
        f"\nfixed W_in, hourglass (785, 115, 4), gen_classify: trainable "
        f"{fw['trainable']['epoch_seconds']:.3f} s/epoch ({fw['trainable']['test_psnr']:.2f} dB"
        f" after 10 epochs), fixed {fw['fixed']['epoch_seconds']:.3f} s/epoch "
        f"({fw['fixed']['test_psnr']:.2f} dB): {fw['speedup']:.2f}x faster"
    )

    if not args.quick:
        se = search_efficiency(device, args.search_seeds, epochs=3)
        report["search"] = se
        print(
            f"\nsearch efficiency: grid of {se['grid_size']} configurations "
            f"({se['grid_seconds']:.0f} s, {se['epochs']} epochs each); TPE reached 99% of "
            f"the grid's hypervolume after {statistics.fmean(se['trained_trials_needed']):.1f}"
            f" trained trials on average ({se['mean_fraction']:.2f} of the grid; per seed "
            f"{se['trained_trials_needed']})"
        )

    out = Path(args.json)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2))
    print(f"\nwrote {out}")


if __name__ == "__main__":
    main()
