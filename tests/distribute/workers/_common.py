"""Shared by the worker scripts: device setup before TensorFlow starts, data, results.

Imported by every script in this folder before any TensorFlow op runs. `TFGREEN_TEST_CPUS` (set by the
harness) splits the CPU into that many logical devices, which must happen
before TensorFlow initialises.
"""

from __future__ import annotations

import hashlib
import json
import os

import numpy as np
import tensorflow as tf

__all__ = [
    "emit",
    "digits_flat",
    "weights_digest",
    "replica_copies",
    "spread_of",
    "replica_spread",
    "barrier",
    "listing",
]

_CPUS = int(os.environ.get("TFGREEN_TEST_CPUS", "1"))
if _CPUS > 1:
    tf.config.set_logical_device_configuration(
        tf.config.list_physical_devices("CPU")[0],
        [tf.config.LogicalDeviceConfiguration() for _ in range(_CPUS)],
    )


def emit(result: dict) -> None:
    """Prints the one result line the harness parses."""
    print("TFGREEN_RESULT " + json.dumps(result), flush=True)


def digits_flat(limit: int = 512):
    """Bundled digits as 64-feature vectors, first `limit` training samples."""
    from tfgreen.datasets import load_digits

    (x_train, y_train), (x_test, y_test) = load_digits(flat=True)
    return (x_train[:limit], y_train[:limit]), (x_test, y_test)


def weights_digest(model, arrays=None) -> str:
    """SHA-256 of all weights' bytes (or of `arrays`): equal digests mean bit-identical weights."""
    digest = hashlib.sha256()
    for weight in model.get_weights() if arrays is None else arrays:
        digest.update(np.ascontiguousarray(weight).tobytes())
    return digest.hexdigest()


def _copies(variable) -> list[np.ndarray]:
    # tf_keras variables are the MirroredVariable; Keras 3 ones wrap it in `.value`.
    for candidate in (variable, getattr(variable, "value", None)):
        if isinstance(candidate, tf.distribute.DistributedValues):
            return [np.asarray(copy) for copy in candidate.values]
    return [np.asarray(variable)]


def replica_copies(model) -> int:
    """How many per-device copies the model's first variable has."""
    return len(_copies(model.weights[0]))


def spread_of(variable) -> float:
    """Largest difference between the per-device copies of a variable (0.0 = in sync)."""
    copies = _copies(variable)
    return max(float(np.max(np.abs(copy - copies[0]))) for copy in copies)


def replica_spread(model) -> float:
    """Largest difference between the per-device copies of any model variable."""
    return max(spread_of(variable) for variable in model.weights)


def barrier(strategy) -> None:
    """Waits until every worker gets here (a collective all-reduce)."""
    from tfgreen.distribute import all_reduce

    all_reduce(0.0, strategy=strategy)


def listing(folder) -> list[str]:
    """Every path under `folder`, relative, sorted (hidden ones too, but the export's lock file).

    `.tfgreen-lock-*` is the lock an export takes on its folder (docs/security.md).
    """
    return sorted(
        os.path.relpath(os.path.join(root, name), folder)
        for root, dirs, files in os.walk(folder)
        for name in dirs + files
        if not name.startswith(".tfgreen-lock-")
    )
