"""One process with 2 logical CPUs training under MirroredStrategy (run by the harness).

Usage: python mirrored.py OUT_DIR FLAVOR[,FLAVOR]

For each flavour: plain training, energy tracking with a budget, pruning,
quantization-aware training and distillation under the strategy; reports
whether the per-device copies of every variable (weights, masks, quantization
ranges) agree, what each feature reached, what the all-reduce helpers return
with a single worker, and where the chief-only writer wrote.
"""

from __future__ import annotations

import sys
from pathlib import Path

import tensorflow as tf
from _common import digits_flat, emit, listing, replica_copies

STRATEGY = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])

from _tasks import train_distilled, train_plain, train_pruned, train_qat  # noqa: E402

import tfgreen  # noqa: E402
from tfgreen.distribute import (  # noqa: E402
    all_reduce,
    any_worker,
    check_strategy,
    chief_writes,
    strategy_of,
    worker_info,
)


def run(flavor: str, out: Path) -> dict:
    plain, model = train_plain(STRATEGY, flavor)
    plain["check"] = check_strategy(model)
    plain["same_strategy"] = strategy_of(model) is STRATEGY
    plain["copies"] = replica_copies(model)
    plain["total"] = all_reduce(0.5, strategy=STRATEGY)
    plain["any"] = any_worker(True, STRATEGY)
    with chief_writes(out / flavor / "model.keras", STRATEGY) as target:
        model.save(target)
        plain["model_target"] = str(target)
    plain["listing"] = listing(out / flavor)
    (x, y), _ = digits_flat()
    tracker = tfgreen.callbacks.EnergyTracker()
    budget = tfgreen.callbacks.EnergyBudget(max_kwh=1e-12, tracker=tracker, verbose=0)
    history = model.fit(x, y, batch_size=64, epochs=3, verbose=0, callbacks=[tracker, budget])
    energy = {
        "energy_kwh": tracker.energy_kwh,
        "worker_energy_kwh": tracker.worker_energy_kwh,
        "logged": sorted(k for k in history.history if "energy" in k),
        "epochs_run": len(history.history["loss"]),
        "stopped_epoch": budget.stopped_epoch,
    }
    return {
        "plain": plain,
        "energy": energy,
        "prune": train_pruned(STRATEGY, flavor)[0],
        "qat": train_qat(STRATEGY, flavor)[0],
        "distill": train_distilled(STRATEGY, flavor)[0],
    }


def main() -> None:
    out = Path(sys.argv[1])
    result = {"info": worker_info(STRATEGY)}
    for flavor in sys.argv[2].split(","):
        result[flavor] = run(flavor, out)
    emit(result)


if __name__ == "__main__":
    main()
