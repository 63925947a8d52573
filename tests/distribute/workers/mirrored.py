"""One process with 2 logical CPUs training under MirroredStrategy (run by the harness).

Usage: python mirrored.py OUT_DIR FLAVOR[,FLAVOR]

For each flavour: trains a tiny model under the strategy and reports whether
the per-device copies of every variable agree, what the all-reduce helpers
return with a single worker, and where the chief-only writer wrote.
"""

from __future__ import annotations

import sys
from pathlib import Path

import tensorflow as tf
from _common import digits_flat, emit, listing, replica_copies, replica_spread, weights_digest

STRATEGY = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])

from tfgreen.distribute import (  # noqa: E402
    all_reduce,
    any_worker,
    check_strategy,
    chief_writes,
    strategy_of,
    worker_info,
)
from tfgreen.models import small_mlp  # noqa: E402

EPOCHS = 2
BATCH = 64


def train(flavor: str, out: Path) -> dict:
    (x, y), _ = digits_flat()
    with STRATEGY.scope():
        model = small_mlp(flavor, hidden=(32,), seed=0)
        model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    result = {
        "check": check_strategy(model),
        "same_strategy": strategy_of(model) is STRATEGY,
        "initial": weights_digest(model),
        "copies": replica_copies(model),
    }
    history = model.fit(x, y, batch_size=BATCH, epochs=EPOCHS, verbose=0)
    result["trained"] = weights_digest(model)
    result["loss"] = [float(v) for v in history.history["loss"]]
    result["spread"] = replica_spread(model)
    result["total"] = all_reduce(0.5, strategy=STRATEGY)
    result["any"] = any_worker(True, STRATEGY)
    with chief_writes(out / flavor / "model.keras", STRATEGY) as target:
        model.save(target)
        result["model_target"] = str(target)
    result["listing"] = listing(out / flavor)
    return result


def main() -> None:
    out = Path(sys.argv[1])
    result = {"info": worker_info(STRATEGY)}
    for flavor in sys.argv[2].split(","):
        result[flavor] = train(flavor, out)
    emit(result)


if __name__ == "__main__":
    main()
