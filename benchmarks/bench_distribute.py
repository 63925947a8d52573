"""Pruning's step time with and without tf.distribute.MirroredStrategy (2 logical CPUs), side by side.

Plain training and pruning (`tfgreen.prune` + the `Pruning` callback) of the
same 64-256-256-10 MLP on bundled digits, both Kerases. Logical devices must
be configured before TensorFlow initialises, so `run` measures in a child
process (this file run as a script) that splits the CPU into 2 logical
devices and then times, one after the other in that same process, the same
model on the same data with no strategy and under `MirroredStrategy`. Both logical devices share the machine's cores, so the
figures show the strategy's overhead on one machine, not a speed-up.

Usage: python benchmarks/bench_distribute.py [--quick]  (prints the rows as JSON)
"""

from __future__ import annotations

import itertools
import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path

__all__ = ["run"]

ROOT = Path(__file__).resolve().parents[1]
_PREFIX = "BENCH_ROWS "


def _time_fit(flavor: str, training: str, strategy, x, y, epochs: int, batch: int) -> dict:
    import tfgreen
    from tfgreen.models import small_mlp

    with strategy.scope():
        model = small_mlp(flavor, hidden=(256, 256), seed=0)
        if training == "pruning":
            model = tfgreen.prune(model, sparsity=0.8)
        model.compile("adam", "sparse_categorical_crossentropy")

    def fit(epochs: int):
        callbacks = [tfgreen.callbacks.Pruning()] if training == "pruning" else []
        return model.fit(x, y, batch_size=batch, epochs=epochs, verbose=0, callbacks=callbacks)

    fit(1)  # warm-up: tracing, first steps
    start = time.perf_counter()
    history = fit(epochs)
    seconds = time.perf_counter() - start
    steps = epochs * math.ceil(len(x) / batch)
    return {
        "step_ms": 1000.0 * seconds / steps,
        "steps": steps,
        "loss": history.history["loss"][-1],
    }


def _measure(quick: bool) -> list[dict]:
    import tensorflow as tf

    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(
        cpu, [tf.config.LogicalDeviceConfiguration(), tf.config.LogicalDeviceConfiguration()]
    )
    from tfgreen.datasets import load_digits
    from tfgreen.flavor import FLAVORS

    (x, y), _ = load_digits(flat=True)
    epochs, batch = (2, 64) if quick else (5, 64)
    strategies = {
        "none": tf.distribute.get_strategy(),
        "mirrored-2cpu": tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"]),
    }
    rows = []
    for flavor, training in itertools.product(FLAVORS, ("plain", "pruning")):
        timed = {
            name: _time_fit(flavor, training, s, x, y, epochs, batch)
            for name, s in strategies.items()
        }
        base = timed["none"]["step_ms"]
        for name, figures in timed.items():
            rows.append(
                {
                    "flavor": flavor,
                    "training": training,
                    "strategy": name,
                    "replicas": strategies[name].num_replicas_in_sync,
                    "global_batch": batch,
                    "steps": figures["steps"],
                    "step_ms": round(figures["step_ms"], 3),
                    "vs_no_strategy": round(figures["step_ms"] / base, 3),
                    "final_loss": round(float(figures["loss"]), 4),
                }
            )
    return rows


def run(quick: bool = False) -> list[dict]:
    """Measures step times in a child process with 2 logical CPUs.

    Args:
        quick: Fewer epochs, for a smoke test. Defaults to `False`.

    Returns:
        One row per flavour, training kind and strategy: `step_ms` and its
        ratio to the same training without a strategy (`vs_no_strategy`).
    """
    env = dict(os.environ, PYTHONPATH=str(ROOT), TF_CPP_MIN_LOG_LEVEL="2", CUDA_VISIBLE_DEVICES="")
    env.pop("TF_CONFIG", None)
    args = [sys.executable, str(Path(__file__).resolve()), *(["--quick"] if quick else [])]
    done = subprocess.run(args, env=env, capture_output=True, text=True, timeout=1800, check=False)
    lines = [line for line in done.stdout.splitlines() if line.startswith(_PREFIX)]
    if done.returncode != 0 or not lines:
        raise RuntimeError(f"benchmark child failed ({done.returncode}):\n{done.stderr[-4000:]}")
    return json.loads(lines[-1][len(_PREFIX) :])


if __name__ == "__main__":
    print(_PREFIX + json.dumps(_measure("--quick" in sys.argv)), flush=True)
