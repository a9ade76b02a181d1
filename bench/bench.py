"""Benchmarks of the trainer against the machine's limit and against the usual training loop.

    python bench/bench.py [--quick] [--rounds 5] [--json runs/bench.json] [--device cpu|cuda]

Prints a table and writes JSON. Measured in one run on one machine:
  1. compute floor: the GEMMs of one training step at the real shapes, timed alone, and the
     machine's large-matmul FLOP/s;
  2. trainer efficiency: our time per step vs that floor (floor / step), and its FLOP/s;
  3. against the usual loop: a per-sample Dataset (PIL image -> ToTensor on every access, as
     torchvision's MNIST does), a DataLoader, per-batch device copies, a per-step scheduler and
     .item() every step, as a ratio of wall time per epoch; its DataLoader alone, and what a
     trainer running exactly at the floor would gain over it; and a plain loop in between
     (data on the device as ours, the step through autograd and the default AdamW);
  4. fixed W_in: time per epoch (adjacent pairs) and final PSNR, trainable vs fixed W_in;
  5. search efficiency: trials the default sampler (conf/sampler/tpe.yaml, through the tool's
     own sampler factory) needs to reach 99% of the hypervolume of an exhaustive grid over the
     same space, as a fraction of the grid's size; GP and random sampling for comparison;
  6. sweep throughput: trials per hour with one trial at a time and with several concurrent
     trials on the same device (on a CPU the threads are split between them);
  7. on a GPU: 2-4 in bf16.

Shared machines are noisy: the floor, our step, the plain and the usual loop are measured in
adjacent one-epoch windows (the floor as an epoch's floor steps, at the epoch's own batch
sizes), repeated in rounds.
Each headline figure is the best of its windows (timeit's convention): none gets more or
shorter chances to catch a quiet moment. The paired figures compare the windows of each
adjacent set, so a slow drift in the machine's speed cancels out; their median and quartiles
show how far one run can be trusted.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import statistics
import sys
import time
import warnings
from contextlib import nullcontext
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from hgsearch.models import BASELINE, CANDIDATE, MLPSpec, build_model, count_params  # noqa: E402
from hgsearch.search.data import DataSettings, load  # noqa: E402
from hgsearch.search.settings import TaskSettings, TrainSettings
from hgsearch.search.tasks import prepare, prototype_table  # noqa: E402
from hgsearch.search.train import train  # noqa: E402

SHAPES = [(CANDIDATE, 785, 115, 4), (CANDIDATE, 785, 270, 4), (BASELINE, 784, 785, 1)]
BATCH = 128


def best_of(fn, repeat: int, sync, warm_up: bool = True) -> float:
    """Fewest seconds of fn() over `repeat` runs, after one warm-up run unless told not to."""
    if warm_up:
        fn()
        sync()
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        sync()
        best = min(best, time.perf_counter() - start)
    return best


def layers(spec: MLPSpec) -> list[tuple[int, int, str]]:
    """(in, out, kind) of every matrix, in forward order."""
    blocks = [(spec.d_z, spec.d_h, "down"), (spec.d_h, spec.d_z, "up")] * spec.depth
    return [(spec.d_x, spec.d_z, "in"), *blocks, (spec.d_z, spec.d_y, "out")]


def step_gemms(spec: MLPSpec, batch: int = BATCH) -> list[tuple[str, int, int, int]]:
    """(what, m, k, n) of every GEMM one training step on `batch` rows needs, an
    (m x k) @ (k x n) each.

    W_in needs no input gradient (the data does not require grad); a fixed W_in needs no
    weight gradient either, and then nothing needs the gradient at z_0, the first block's
    input.
    """
    out = []
    for i, (k, n, kind) in enumerate(layers(spec)):
        out.append(("forward", batch, k, n))
        if not (kind == "in" and spec.fix_w_in):
            out.append(("weight-grad", n, batch, k))
        if kind != "in" and not (i == 1 and spec.fix_w_in):
            out.append(("input-grad", batch, n, k))
    return out


def step_flops(spec: MLPSpec, batch: int = BATCH) -> int:
    return sum(2 * m * k * n for _, m, k, n in step_gemms(spec, batch))


def floor_step(spec: MLPSpec, device, dtype, sync=lambda: None, batch: int = BATCH):
    """A function running exactly the GEMMs of one training step on `batch` rows, at the real
    shapes, each in whichever operand layout (row- or column-major A and B) the library runs
    fastest."""
    g = torch.Generator(device="cpu").manual_seed(0)

    def operand(rows, cols, transposed):
        t = (
            torch.randn(cols, rows, generator=g)
            if transposed
            else torch.randn(rows, cols, generator=g)
        )
        t = t.to(device=device, dtype=dtype)
        return t.t() if transposed else t

    def gemm(a, b, out):
        return lambda: torch.mm(a, b, out=out)

    ops = []
    for _, m, k, n in step_gemms(spec, batch):
        out = torch.empty(m, n, device=device, dtype=dtype)
        variants = [
            gemm(operand(m, k, ta), operand(k, n, tb), out)
            for ta in (False, True)
            for tb in (False, True)
        ]
        ops.append(min(variants, key=lambda op: best_of(op, 3, sync)))

    def step():
        for op in ops:
            op()

    return step


def large_matmul_flops(device, dtype, sync) -> float:
    n = 4096 if device.type == "cuda" else 2048
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    return 2 * n**3 / best_of(lambda: a @ b, 10, sync)


def epoch_batches(n: int) -> list[int]:
    """The batch sizes of one training epoch over n pairs, as the trainer runs them (a last
    batch of one is dropped: BatchNorm cannot train on it)."""
    return [BATCH] * (n // BATCH) + ([n % BATCH] if n % BATCH > 1 else [])


def steps_per_epoch(n: int) -> int:
    return len(epoch_batches(n))


def trainer_epochs(spec, data, device, bf16, epochs: int) -> list[float]:
    """Seconds of each epoch's training steps in one call of our trainer (the trainer times
    them itself, after its once-per-epoch host sync; evaluation is not included)."""
    settings = TrainSettings(epochs=epochs, batch_size=BATCH, eval_every=1, bf16=bf16)
    result = train(spec, data, settings, device)
    return [h["epoch_seconds"] for h in result.history]


def to_tensor(image) -> torch.Tensor:
    """torchvision's ToTensor: PIL image (H, W[, C]) uint8 -> (C, H, W) float in [0, 1]."""
    array = np.array(image, copy=True)
    t = torch.from_numpy(array).view(image.size[1], image.size[0], len(image.getbands()))
    return t.permute(2, 0, 1).contiguous().float().div(255)


class PerSampleDataset(torch.utils.data.Dataset):
    """How research code usually feeds images (torchvision's MNIST + ToTensor): each access
    makes a PIL image from the stored uint8 array, converts it to a float tensor and builds
    its target (the class prototype for generative classification)."""

    def __init__(self, images: np.ndarray, labels: np.ndarray, prototypes: torch.Tensor):
        self.images, self.labels, self.prototypes = images, labels, prototypes

    def __len__(self):
        return len(self.labels)

    def __getitem__(self, i):
        from PIL import Image

        c = self.images.shape[1]
        array = self.images[i, 0] if c == 1 else self.images[i].transpose(1, 2, 0)
        x = to_tensor(Image.fromarray(array)).flatten()
        return x, self.prototypes[int(self.labels[i])]


def usual_loop(spec, splits, device, sync):
    """The usual loop: DataLoader, per-batch copies, a per-step scheduler and .item() every
    step. Returns two functions: one epoch of training, and one epoch of the DataLoader alone
    (its image preparation)."""
    torch.manual_seed(0)
    model = build_model(spec).to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.01)
    total = 10**6
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda step: 1.0 - step / total)
    protos, _ = prototype_table(splits.train)
    loader = torch.utils.data.DataLoader(
        PerSampleDataset(splits.train.images, splits.train.labels, protos),
        batch_size=BATCH,
        shuffle=True,
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
            sched.step()
            losses.append(loss.item())
        sync()
        return sum(losses) / len(losses)

    def load_only():
        for x, y in loader:
            x, y = x.to(device), y.to(device)
        sync()

    return epoch, load_only


def plain_loop(spec, data, device, bf16, sync):
    """A plain PyTorch loop over the same data, already on the device as whole tensors: a
    random permutation sliced into batches, autograd, the default AdamW, no host sync inside
    an epoch. It sits between the usual loop and ours: it feeds data as ours does but runs the
    step the common way. Returns one epoch of training, which returns its mean loss."""
    torch.manual_seed(0)
    model = build_model(spec).to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.01)
    gen = torch.Generator(device=device).manual_seed(0)
    autocast = torch.autocast("cuda", dtype=torch.bfloat16) if bf16 else nullcontext()
    n, steps = data.n_train, steps_per_epoch(data.n_train)

    def epoch():
        model.train()
        perm = torch.randperm(n, device=device, generator=gen)
        total = torch.zeros((), device=device)
        for i in range(steps):
            xb, yb = data.train_batch(perm[i * BATCH : (i + 1) * BATCH])
            with autocast:
                loss = torch.nn.functional.mse_loss(model(xb).float(), yb)
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += loss.detach()
        return total.item() / steps  # the epoch's one host sync

    return epoch


WINDOWS = 3  # timed windows of each kind per round


def measure_shape(spec, splits, data, device, dtype, bf16, sync, rounds: int) -> dict:
    """Floor, our trainer, the plain loop and the usual loop in interleaved one-epoch windows.

    Each round runs `WINDOWS` sets of adjacent windows: an epoch's floor steps (its full
    batches and its short last one), one
    epoch of our trainer (the second of a two-epoch run, so first-touch costs stay out), one
    epoch of the plain loop, one epoch of the usual loop. The headline figures are the best
    window of each kind (timeit's convention); the paired figures compare the windows of one
    set, seconds apart, so a slow drift in the machine's speed cancels out of them, and their
    median and quartiles show the noise.
    """
    batches = epoch_batches(data.n_train)
    floors = {b: floor_step(spec, device, dtype, sync, b) for b in set(batches)}
    plain = plain_loop(spec, data, device, bf16, sync)
    usual, load_only = usual_loop(spec, splits, device, sync)
    steps = steps_per_epoch(data.n_train)

    def floor_epoch():
        for b in batches:
            floors[b]()

    floor_epoch(), plain(), usual(), load_only()  # warm-up: thread pools, allocator, DataLoader
    trainer_epochs(spec, data, device, bf16, 1)
    sets, loads = [], []
    for _ in range(rounds):
        for _ in range(WINDOWS):
            floor = best_of(floor_epoch, 1, sync, warm_up=False)
            epoch = trainer_epochs(spec, data, device, bf16, 2)[-1]
            plain_s = best_of(plain, 1, sync, warm_up=False)
            usual_s = best_of(usual, 1, sync, warm_up=False)
            sets.append((floor, epoch, plain_s, usual_s))
        loads.append(best_of(load_only, 1, sync, warm_up=False))
    floor, epoch, plain_s, usual_s = (min(t[i] for t in sets) for i in range(4))
    return {
        "floor": floor / steps,
        "step": epoch / steps,
        "per_epoch": epoch,
        "plain_epoch": plain_s,
        "usual_epoch": usual_s,
        "usual_loading": min(loads),
        "steps": steps,
        "epoch_flops": sum(step_flops(spec, b) for b in batches),
        "paired_efficiency": [f / e for f, e, _, _ in sets],
        "paired_plain_efficiency": [f / p for f, _, p, _ in sets],
        "paired_speedup": [u / e for _, e, _, u in sets],
        "paired_speedup_over_plain": [p / e for _, e, p, _ in sets],
    }


def fixed_w_in(spec, data, device, bf16, epochs: int, rounds: int) -> dict:
    """Trainable against fixed W_in in adjacent pairs of epochs (each the second of a
    two-epoch run), `WINDOWS` pairs per round: the best epoch of each and the per-pair
    speedups; and the test PSNR of each after `epochs` epochs."""
    specs = {
        fix: MLPSpec(spec.family, spec.d_x, spec.d_y, spec.d_z, spec.d_h, spec.depth, fix)
        for fix in (False, True)
    }
    pairs = [
        tuple(trainer_epochs(specs[fix], data, device, bf16, 2)[-1] for fix in (False, True))
        for _ in range(rounds * WINDOWS)
    ]
    result = {}
    for fix, s in specs.items():
        r = train(s, data, TrainSettings(epochs=epochs, batch_size=BATCH, bf16=bf16), device)
        result["fixed" if fix else "trainable"] = {
            "epoch_seconds": min(p[fix] for p in pairs),
            "test_psnr": r.test_psnr,
            "trainable_params": count_params(s).trainable,
        }
    result["speedup"] = result["trainable"]["epoch_seconds"] / result["fixed"]["epoch_seconds"]
    result["paired_speedup"] = [t / f for t, f in pairs]
    return result


SEARCH_SPACE = {"d_h": [4, 16, 64, 256], "depth": [1, 2, 4], "lr": [0.001, 0.003]}


def grid_table(device, epochs: int) -> dict:
    """Every configuration of SEARCH_SPACE trained once on mnist5k: key -> (eval PSNR, params)."""
    splits = load(DataSettings("mnist5k"))
    data = prepare(splits, TaskSettings("gen_classify"), device)
    table = {}
    for d_h in SEARCH_SPACE["d_h"]:
        for depth in SEARCH_SPACE["depth"]:
            spec = MLPSpec(CANDIDATE, 784, 784, 785, d_h, depth)
            for lr in SEARCH_SPACE["lr"]:
                r = train(spec, data, TrainSettings(epochs=epochs, lr=lr), device)
                table[(d_h, depth, lr)] = (r.eval_psnr, count_params(spec).trainable)
    return table


def trials_to_target(table: dict, sampler, target: float, hv, limit: int = 300) -> int:
    """Distinct configurations trained before the grid's `target` hypervolume is reached; a
    repeated suggestion reuses the stored result, as the sweep does."""
    import optuna

    study = optuna.create_study(directions=["maximize", "minimize"], sampler=sampler)
    seen: dict = {}
    for _ in range(limit):
        trial = study.ask()
        key = tuple(trial.suggest_categorical(k, v) for k, v in SEARCH_SPACE.items())
        seen.setdefault(key, table[key])
        study.tell(trial, list(table[key]))
        if hv(list(seen.values())) >= target:
            break
    return len(seen)


def search_efficiency(device, seeds: int, epochs: int, compare: bool = True) -> dict:
    """Grid over a small discrete space on mnist5k, then the samplers replayed on its results."""
    import optuna
    from omegaconf import OmegaConf
    from optuna._hypervolume import compute_hypervolume

    from hgsearch.search.cli import conf_dir
    from hgsearch.search.sampler import make_sampler
    from hgsearch.search.settings import SamplerSettings

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    start = time.perf_counter()
    table = grid_table(device, epochs)
    grid_seconds = time.perf_counter() - start
    points = np.array([[-v, p] for v, p in table.values()])
    ref = np.array([points[:, 0].max() + 1.0, points[:, 1].max() * 1.1])

    def hv(values):
        return compute_hypervolume(np.array([[-v, p] for v, p in values]), ref)

    target = 0.99 * hv(list(table.values()))
    default = OmegaConf.to_container(OmegaConf.load(conf_dir() / "sampler" / "tpe.yaml"))
    samplers = {"tpe (default)": default}
    if compare:
        samplers |= {
            # Optuna's own TPE: 24 drawn candidates, repeats allowed, 5 start-up trials
            "tpe (plain)": {**default, "n_startup_trials": 5, "exhaustive_max": 0},
            "gp": {"name": "gp", "n_startup_trials": 5},
            "random": {"name": "random"},
        }
    out = {
        "grid_size": len(table),
        "grid_seconds": grid_seconds,
        "epochs": epochs,
        # (d_h, depth, lr) -> (eval PSNR, trainable parameters): replay other samplers on it
        "grid": [[*key, psnr, params] for key, (psnr, params) in table.items()],
    }
    for label, raw in samplers.items():
        needed = [
            trials_to_target(
                table,
                make_sampler(SamplerSettings(**{**raw, "seed": seed}), "bench", 0),
                target,
                hv,
            )
            for seed in range(seeds)
        ]
        out[label] = {
            "trained_trials_needed": needed,
            "mean_fraction": statistics.fmean(needed) / len(table),
            # standard error of that mean over the seeds
            "stderr_fraction": statistics.stdev(needed) / len(needed) ** 0.5 / len(table)
            if len(needed) > 1
            else float("nan"),
        }
    return out


def _concurrent_trial(device: str, threads: int, epochs: int, spec, barrier, queue) -> None:
    torch.set_num_threads(threads)
    data = prepare(load(DataSettings("mnist5k")), TaskSettings("gen_classify"), device)
    train(spec, data, TrainSettings(epochs=1, batch_size=BATCH), device)  # warm-up
    barrier.wait()
    start = time.perf_counter()
    train(spec, data, TrainSettings(epochs=epochs, batch_size=BATCH), device)
    queue.put(time.perf_counter() - start)


def throughput(spec, data, device, epochs: int, concurrent: int) -> dict:
    """Trials per hour: `concurrent` trials one after another in this process, against the same
    number running at once in separate processes (a CPU's threads split between them)."""
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    sync()
    start = time.perf_counter()
    for _ in range(concurrent):
        train(spec, data, TrainSettings(epochs=epochs, batch_size=BATCH), device)
    sync()
    serial = time.perf_counter() - start
    threads = max(1, torch.get_num_threads() // concurrent) if device.type == "cpu" else 1
    ctx = multiprocessing.get_context("spawn")
    barrier, queue = ctx.Barrier(concurrent), ctx.Queue()
    procs = [
        ctx.Process(
            target=_concurrent_trial, args=(str(device), threads, epochs, spec, barrier, queue)
        )
        for _ in range(concurrent)
    ]
    for p in procs:
        p.start()
    parallel = max(queue.get(timeout=3600) for _ in procs)
    for p in procs:
        p.join()
    return {
        "epochs": epochs,
        "concurrent": concurrent,
        "threads_each": threads,
        "serial_trials_per_hour": 3600 * concurrent / serial,
        "concurrent_trials_per_hour": 3600 * concurrent / parallel,
        "gain": serial / parallel,
    }


def quartiles(values: list[float]) -> str:
    if len(values) < 2:
        return f"{values[0]:.2f}-{values[0]:.2f}"
    q = statistics.quantiles(values, n=4)
    return f"{q[0]:.2f}-{q[2]:.2f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--json", default="runs/bench.json")
    parser.add_argument("--quick", action="store_true", help="skip the search-efficiency part")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved timing rounds")
    parser.add_argument("--search-seeds", type=int, default=200)
    parser.add_argument("--concurrent", type=int, default=2, help="trials at once in part 6")
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
        "rounds": args.rounds,
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
        f"{'plain s/ep':>11}{'eff':>6}{'usual s/ep':>11}{'ours s/ep':>10}{'speedup':>8}"
    )
    for family, d_z, d_h, depth in SHAPES:
        spec = MLPSpec(family, 784, 784, d_z, d_h, depth)
        m = measure_shape(spec, splits, data, device, dtype, bf16, sync, args.rounds)
        flops = m["epoch_flops"] / m["steps"]  # per step, on average
        row = {
            "model": f"{family} ({d_z}, {d_h}, {depth})",
            "floor_ms": m["floor"] * 1e3,
            "step_ms": m["step"] * 1e3,
            "efficiency": m["floor"] / m["step"],
            "gflops": flops / m["step"] / 1e9,
            "fraction_of_peak": flops / m["step"] / peak,
            "plain_epoch_s": m["plain_epoch"],
            "plain_efficiency": m["floor"] * m["steps"] / m["plain_epoch"],
            "usual_epoch_s": m["usual_epoch"],
            "ours_epoch_s": m["per_epoch"],
            "speedup": m["usual_epoch"] / m["per_epoch"],
            "speedup_over_plain": m["plain_epoch"] / m["per_epoch"],
            "usual_loading_s": m["usual_loading"],
            # what a trainer running exactly at its GEMM floor would gain over the usual loop
            "speedup_at_floor": m["usual_epoch"] / (m["floor"] * m["steps"]),
            "paired_efficiency": m["paired_efficiency"],
            "paired_speedup": m["paired_speedup"],
            "paired_plain_efficiency": m["paired_plain_efficiency"],
            "paired_speedup_over_plain": m["paired_speedup_over_plain"],
        }
        rows.append(row)
        print(
            f"{row['model']:<26}{row['floor_ms']:>9.2f}{row['step_ms']:>9.2f}"
            f"{row['efficiency']:>6.2f}{row['gflops']:>9.1f}{row['fraction_of_peak']:>7.2f}"
            f"{row['plain_epoch_s']:>11.3f}{row['plain_efficiency']:>6.2f}"
            f"{row['usual_epoch_s']:>11.3f}{row['ours_epoch_s']:>10.3f}{row['speedup']:>8.2f}"
        )
    report["trainer"] = rows
    print(
        f"paired windows ({args.rounds} rounds x {WINDOWS} adjacent floor / ours / plain / "
        "usual epochs; the table shows the best window of each kind), medians (quartiles):"
    )
    for row in rows:
        eff, speed = row["paired_efficiency"], row["paired_speedup"]
        plain, over = row["paired_plain_efficiency"], row["paired_speedup_over_plain"]
        print(
            f"  {row['model']:<26} floor/step {statistics.median(eff):.2f} ({quartiles(eff)}, "
            f"range {min(eff):.2f}-{max(eff):.2f}); plain loop {statistics.median(plain):.2f} "
            f"({quartiles(plain)}); speedup over the usual loop {statistics.median(speed):.2f} "
            f"({quartiles(speed)}), over the plain loop {statistics.median(over):.2f} "
            f"({quartiles(over)})"
        )
    for row in rows:
        share = row["usual_loading_s"] / row["usual_epoch_s"]
        print(
            f"  {row['model']:<26} the usual loop's DataLoader alone: "
            f"{row['usual_loading_s']:.3f} s/epoch, {share:.0%} of its epoch; a trainer at the "
            f"floor would be {row['speedup_at_floor']:.2f}x faster than the usual loop"
        )

    base = MLPSpec(CANDIDATE, 784, 784, 785, 115, 4)
    fw = fixed_w_in(base, data, device, bf16, 10, args.rounds)
    report["fixed_w_in"] = fw
    print(
        f"\nfixed W_in, hourglass (785, 115, 4), gen_classify: trainable "
        f"{fw['trainable']['epoch_seconds']:.3f} s/epoch ({fw['trainable']['test_psnr']:.2f} dB"
        f" after 10 epochs), fixed {fw['fixed']['epoch_seconds']:.3f} s/epoch "
        f"({fw['fixed']['test_psnr']:.2f} dB): {fw['speedup']:.2f}x faster (best epochs); "
        f"paired median {statistics.median(fw['paired_speedup']):.2f}x "
        f"(quartiles {quartiles(fw['paired_speedup'])})"
    )

    tp = throughput(base, data, device, 4, args.concurrent)
    report["throughput"] = tp
    print(
        f"\nsweep throughput, hourglass (785, 115, 4), {tp['epochs']} epochs: one trial at a "
        f"time {tp['serial_trials_per_hour']:.0f} trials/h; {tp['concurrent']} at once "
        f"({tp['threads_each']} thread(s) each on a CPU) {tp['concurrent_trials_per_hour']:.0f}"
        f" trials/h ({tp['gain']:.2f}x)"
    )

    if not args.quick:
        se = search_efficiency(device, args.search_seeds, epochs=3)
        report["search"] = se
        print(
            f"\nsearch efficiency: grid of {se['grid_size']} configurations "
            f"({se['grid_seconds']:.0f} s, {se['epochs']} epochs each); trained trials to reach "
            f"99% of the grid's hypervolume, mean over {args.search_seeds} seeds:"
        )
        for label, r in se.items():
            if isinstance(r, dict):
                needed = r["trained_trials_needed"]
                print(
                    f"  {label:<14} {statistics.fmean(needed):5.1f} trials, "
                    f"{r['mean_fraction']:.3f} +- {r['stderr_fraction']:.3f} of the grid "
                    f"(range {min(needed)}-{max(needed)})"
                )

    out = Path(args.json)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2))
    print(f"\nwrote {out}")


if __name__ == "__main__":
    main()
