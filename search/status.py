"""`hgsearch status`: the studies in a storage, trial counts by state, best trial per study."""

from __future__ import annotations

from collections import Counter

import optuna

from . import record
from .goal import trained_trials
from .resume import study_names


def status_rows(storage: optuna.storages.BaseStorage) -> list[dict]:
    rows = []
    for name in study_names(storage):
        study = optuna.load_study(study_name=name, storage=storage)
        trials = study.get_trials(deepcopy=False)
        states = Counter(t.state.name.lower() for t in trials)
        trained = trained_trials(study)
        metric = (study.metric_names or ["metric"])[0]
        best = max(trained, key=lambda t: t.values[0], default=None)
        row = {
            "study": name,
            "trained": len(trained),
            "reused": states["complete"] - len(trained),
            "pruned": states["pruned"],
            "failed": states["fail"],
            "running": states["running"],
            "metric": metric,
        }
        if best is not None:
            r = record.read(best)
            row.update(
                best=best.values[0],
                best_trial=best.number,
                best_arch=r.arch,
                best_lr=r.lr,
                best_params=r.params,
                test_psnr=r.test_psnr,
            )
        rows.append(row)
    return rows


def print_status(storage: optuna.storages.BaseStorage) -> None:
    rows = status_rows(storage)
    if not rows:
        print("no studies in this storage yet: run `hgsearch sweep`")
        return
    width = max(len(r["study"]) for r in rows)
    print(f"{'study':<{width}}  trained reused pruned failed running  best (d_z x d_h x depth)")
    for r in rows:
        best = "-"
        if "best" in r:
            best = (
                f"{r['metric']} {r['best']:.2f} dB, test {r['test_psnr']:.2f} dB: "
                f"{r['best_arch']} lr {r['best_lr']:.3g}, {r['best_params']:,} params "
                f"(trial {r['best_trial']})"
            )
        print(
            f"{r['study']:<{width}}  {r['trained']:7d} {r['reused']:6d} {r['pruned']:6d} "
            f"{r['failed']:6d} {r['running']:7d}  {best}"
        )
