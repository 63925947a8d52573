"""One worker of a 2-process MultiWorkerMirroredStrategy cluster (run by the harness).

Usage: python multi_worker.py OUT_DIR FLAVOR[,FLAVOR]

tf_keras: plain training, pruning, quantization-aware training, distillation,
energy tracking and an energy budget under the strategy; chief-only writing of
a model, an export and a report. Reports what each worker saw (digests,
all-reduced figures, files left behind) for the tests to compare across
workers. Keras 3: records tfgreen's refusal and the upstream `fit` failure
(keras-team/keras#20585).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import tensorflow as tf
from _common import barrier, digits_flat, emit, listing

STRATEGY = tf.distribute.MultiWorkerMirroredStrategy()

from _tasks import BATCH, train_distilled, train_plain, train_pruned, train_qat  # noqa: E402

import tfgreen  # noqa: E402
from tfgreen._io import atomic_write_bytes, atomic_write_text  # noqa: E402
from tfgreen.distribute import (  # noqa: E402
    UnsupportedStrategyError,
    all_reduce,
    any_worker,
    check_strategy,
    chief_writes,
    worker_info,
)
from tfgreen.models import small_mlp  # noqa: E402

INFO = worker_info(STRATEGY)
# Worker 1 claims a huge CPU power, worker 0 a tiny one: an epoch costs worker 0
# about 1e-6 kWh (far under BUDGET_KWH), worker 1 about 1e-2 kWh (far over), so
# only the cluster's total can make worker 0 stop.
CPU_WATTS = [0.01, 1000000.0]
BUDGET_KWH = 1e-4


def reduce_helpers() -> dict:
    own = 0.25 + INFO["task_id"]
    return {
        "own": own,
        "total": all_reduce(own, strategy=STRATEGY),
        "mean": all_reduce(own, "mean", STRATEGY),
        "any_task1": any_worker(INFO["task_id"] == 1, STRATEGY),
        "any_none": any_worker(False, STRATEGY),
    }


def energy() -> dict:
    (x, y), _ = digits_flat()
    with STRATEGY.scope():
        model = small_mlp("tf_keras", hidden=(32,), seed=0)
        model.compile("adam", "sparse_categorical_crossentropy")
    tracker = tfgreen.callbacks.EnergyTracker(
        tracking_mode="process", cpu_watts=CPU_WATTS[INFO["task_id"]]
    )
    history = model.fit(x, y, batch_size=BATCH, epochs=2, verbose=0, callbacks=[tracker])
    result = {
        "energy_kwh": tracker.energy_kwh,
        "worker_energy_kwh": tracker.worker_energy_kwh,
        "logged_energy_kwh": history.history["energy_kwh"],
        "logged_worker_energy_kwh": history.history["worker_energy_kwh"],
    }
    tracker = tfgreen.callbacks.EnergyTracker(
        tracking_mode="process", cpu_watts=CPU_WATTS[INFO["task_id"]]
    )
    budget = tfgreen.callbacks.EnergyBudget(max_kwh=BUDGET_KWH, tracker=tracker, verbose=0)
    history = model.fit(x, y, batch_size=BATCH, epochs=4, verbose=0, callbacks=[tracker, budget])
    result["budget"] = {
        "max_kwh": BUDGET_KWH,
        "epochs_run": len(history.history["loss"]),
        "stopped_epoch": budget.stopped_epoch,
        "energy_kwh": tracker.energy_kwh,
        "worker_energy_kwh": tracker.worker_energy_kwh,
    }
    return result


def write_files(out: Path, model, stripped, tflite: bytes) -> dict:
    written = {}
    with chief_writes(out / "model.keras", STRATEGY) as target:
        model.save(target)
        written["model"] = str(target)
    with chief_writes(out / "pruned.tflite", STRATEGY) as target:
        report = tfgreen.export_tflite(stripped, target, target="cpu")
        written["export"] = str(report.path)
    with chief_writes(out / "qat.tflite", STRATEGY) as target:
        atomic_write_bytes(target, tflite)
    with chief_writes(out / "report.json", STRATEGY) as target:
        atomic_write_text(target, json.dumps({"task_id": INFO["task_id"]}))
    barrier(STRATEGY)  # every worker has finished writing
    written["listing"] = listing(out)
    written["report"] = json.loads((out / "report.json").read_text())
    return written


def run_tf_keras(out: Path) -> dict:
    plain, model = train_plain(STRATEGY, "tf_keras")
    plain["check"] = check_strategy(model)
    pruned, stripped = train_pruned(STRATEGY, "tf_keras")
    qat, tflite = train_qat(STRATEGY, "tf_keras")
    return {
        "plain": plain,
        "prune": pruned,
        "qat": qat,
        "distill": train_distilled(STRATEGY, "tf_keras")[0],
        "reduce": reduce_helpers(),
        "energy": energy(),
        "files": write_files(out / "tf_keras", model, stripped, tflite),
    }


def refuse_keras3() -> dict:
    (x, y), _ = digits_flat()
    with STRATEGY.scope():
        model = small_mlp("keras3", hidden=(32,), seed=0)
        model.compile("adam", "sparse_categorical_crossentropy")
    result = {}
    for name, call in [
        ("check_error", lambda: check_strategy(model)),
        ("prune_error", lambda: tfgreen.prune(model, sparsity=0.5)),
        ("qat_error", lambda: tfgreen.quantize_aware(model)),
        ("distill_error", lambda: tfgreen.Distiller(model, small_mlp("keras3", hidden=(8,)))),
    ]:
        try:
            with STRATEGY.scope():
                call()
            result[name] = None
        except UnsupportedStrategyError as error:
            result[name] = str(error)
    # The upstream failure tfgreen guards against; recorded so a fixed Keras shows up.
    try:
        model.fit(x, y, batch_size=BATCH, epochs=1, verbose=0)
        result["fit"] = "ok"
    except Exception as error:  # noqa: BLE001
        result["fit"] = f"{type(error).__name__}: {str(error)[:200]}"
    return result


def main() -> None:
    out = Path(sys.argv[1])
    flavors = sys.argv[2].split(",")
    result = {"info": INFO}
    if "tf_keras" in flavors:
        result["tf_keras"] = run_tf_keras(out)
    if "keras3" in flavors:
        result["keras3"] = refuse_keras3()
    emit(result)


if __name__ == "__main__":
    main()
