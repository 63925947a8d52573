"""Magnitude pruning for Keras 3 and tf_keras models.

`prune` wraps the chosen layers, `tfgreen.callbacks.Pruning` drives the masks
during `fit()` on a schedule sized from the run, `strip` returns the plain
model with its zeros, `sparsity` measures them. tf_keras models are pruned
with tfmot; Keras 3 models with tfgreen's own `keras.ops` implementation
(`tfgreen.pruning._keras3`, whose `wrappers(model)` and `kernel_and_mask()`
give each pruned layer's kernel and mask variables).
"""

from __future__ import annotations

from tfgreen.pruning.api import prune, sparsity, strip
from tfgreen.pruning.schedules import ConstantSparsity, PolynomialDecay, PruningSchedule

__all__ = ["prune", "strip", "sparsity", "PolynomialDecay", "ConstantSparsity", "PruningSchedule"]
