"""The training runs the worker scripts perform under a strategy, one function per feature.

Each builds tiny models inside `strategy.scope()`, trains 1-2 epochs on
bundled digits and returns plain figures (digests, sparsities, dtypes,
losses) for the tests to compare across replicas and workers.
"""

from __future__ import annotations

import numpy as np
from _common import digits_flat, replica_spread, spread_of, weights_digest

import tfgreen
from tfgreen.models import small_mlp
from tfgreen.pruning.api import backend_for

__all__ = ["train_plain", "train_pruned", "train_qat", "train_distilled"]

BATCH = 64
SPARSITY = 0.75


def _compiled(strategy, build):
    with strategy.scope():
        model = build()
        model.compile("adam", "sparse_categorical_crossentropy")
    return model


def train_plain(strategy, flavor: str) -> tuple[dict, object]:
    """A 64-32-10 MLP, 2 epochs. Returns (figures, model)."""
    (x, y), _ = digits_flat()
    model = _compiled(strategy, lambda: small_mlp(flavor, hidden=(32,), seed=0))
    initial = weights_digest(model)
    history = model.fit(x, y, batch_size=BATCH, epochs=2, verbose=0)
    return {
        "initial": initial,
        "trained": weights_digest(model),
        "loss": [float(v) for v in history.history["loss"]],
        "spread": replica_spread(model),
    }, model


def train_pruned(strategy, flavor: str) -> tuple[dict, object]:
    """`tfgreen.prune` to 75% with the Pruning callback, 2 epochs. Returns (figures, stripped model)."""
    (x, y), _ = digits_flat()
    pruned = _compiled(
        strategy,
        lambda: tfgreen.prune(small_mlp(flavor, hidden=(32,), seed=0), sparsity=SPARSITY),
    )
    history = pruned.fit(
        x, y, batch_size=BATCH, epochs=2, verbose=0, callbacks=[tfgreen.callbacks.Pruning()]
    )
    backend = backend_for(pruned)
    masks = [backend.kernel_and_mask(layer)[1] for layer in backend.wrappers(pruned)]
    stripped = tfgreen.strip(pruned)
    return {
        "target": SPARSITY,
        "logged_sparsity": [float(v) for v in history.history["sparsity"]],
        "sparsity": tfgreen.sparsity(stripped),
        "masks": weights_digest(None, [np.asarray(mask) for mask in masks]),
        "mask_spread": max(spread_of(mask) for mask in masks),
        "spread": replica_spread(pruned),
        "stripped": weights_digest(stripped),
    }, stripped


def train_qat(strategy, flavor: str) -> tuple[dict, object]:
    """`tfgreen.quantize_aware`, 1 epoch, then int8 conversion. Returns (figures, tflite bytes)."""
    from tfgreen.quantization.ptq import convert
    from tfgreen.tflite.read import read_tflite

    (x, y), _ = digits_flat()
    qat = _compiled(
        strategy, lambda: tfgreen.quantize_aware(small_mlp(flavor, hidden=(32,), seed=0))
    )
    qat.fit(x, y, batch_size=BATCH, epochs=1, verbose=0)
    data = convert(qat, "int8")
    info = read_tflite(data)
    kernels = [op for op in info.ops if op.name == "FULLY_CONNECTED"]
    return {
        "weights": weights_digest(qat),
        "spread": replica_spread(qat),
        "kernels": len(kernels),
        "kernel_dtypes": sorted(
            {info.tensors[i].dtype for op in kernels for i in op.inputs[:2] if i >= 0}
        ),
    }, data


def train_distilled(strategy, flavor: str) -> tuple[dict, object]:
    """A 64-8-10 student distilled from a 64-64-10 teacher, 2 epochs. Returns (figures, student)."""
    (x, y), (x_test, y_test) = digits_flat()
    teacher = _compiled(strategy, lambda: small_mlp(flavor, hidden=(64,), seed=1))
    teacher.fit(x, y, batch_size=BATCH, epochs=1, verbose=0)
    with strategy.scope():
        student = small_mlp(flavor, hidden=(8,), seed=2)
        distiller = tfgreen.Distiller(teacher, student, temperature=4.0)
        distiller.compile("adam", loss="sparse_categorical_crossentropy")
    before = weights_digest(student)
    history = distiller.fit(x, y, batch_size=BATCH, epochs=2, verbose=0)
    return {
        "initial": before,
        "student": weights_digest(distiller.student),
        "loss": [float(v) for v in history.history["loss"]],
        "spread": replica_spread(distiller.student),
    }, distiller.student
