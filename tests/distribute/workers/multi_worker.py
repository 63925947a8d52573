"""One worker of a 2-process MultiWorkerMirroredStrategy cluster (run by the harness).

Usage: python multi_worker.py OUT_DIR FLAVOR[,FLAVOR]

Trains tiny models under the strategy and reports what each worker saw:
weights digests, the all-reduced figures, which files the chief-only writers
left behind. tf_keras trains; for Keras 3 it records tfgreen's refusal and the
upstream `fit` failure (keras-team/keras#20585).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import tensorflow as tf
from _common import barrier, digits_flat, emit, listing, weights_digest

STRATEGY = tf.distribute.MultiWorkerMirroredStrategy()

from tfgreen._io import atomic_write_text  # noqa: E402
from tfgreen.distribute import (  # noqa: E402
    UnsupportedStrategyError,
    all_reduce,
    any_worker,
    check_strategy,
    chief_writes,
    worker_info,
)
from tfgreen.models import small_mlp  # noqa: E402

EPOCHS = 2
BATCH = 64


def _build(flavor: str):
    with STRATEGY.scope():
        model = small_mlp(flavor, hidden=(32,), seed=0)
        model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def train_tf_keras(out: Path) -> dict:
    (x, y), _ = digits_flat()
    model = _build("tf_keras")
    result = {"check": check_strategy(model), "initial": weights_digest(model)}
    history = model.fit(x, y, batch_size=BATCH, epochs=EPOCHS, verbose=0)
    result["trained"] = weights_digest(model)
    result["loss"] = [float(v) for v in history.history["loss"]]

    info = worker_info(STRATEGY)
    own = 0.25 + info["task_id"]
    result["own"] = own
    result["total"] = all_reduce(own, strategy=STRATEGY)
    result["mean"] = all_reduce(own, "mean", STRATEGY)
    result["any_task1"] = any_worker(info["task_id"] == 1, STRATEGY)
    result["any_none"] = any_worker(False, STRATEGY)

    folder = out / "tf_keras"
    with chief_writes(folder / "model.keras", STRATEGY) as target:
        model.save(target)
        result["model_target"] = str(target)
    with chief_writes(folder / "report.json", STRATEGY) as target:
        atomic_write_text(target, json.dumps({"task_id": info["task_id"]}))
    barrier(STRATEGY)
    result["listing"] = listing(folder)
    result["report"] = json.loads((folder / "report.json").read_text())
    return result


def refuse_keras3() -> dict:
    (x, y), _ = digits_flat()
    model = _build("keras3")
    result = {}
    try:
        check_strategy(model)
        result["check_error"] = None
    except UnsupportedStrategyError as error:
        result["check_error"] = str(error)
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
    result = {"info": worker_info(STRATEGY)}
    if "tf_keras" in flavors:
        result["tf_keras"] = train_tf_keras(out)
    if "keras3" in flavors:
        result["keras3"] = refuse_keras3()
    emit(result)


if __name__ == "__main__":
    main()
