"""Magnitude pruning for Keras 3 and tf_keras models.

`prune` wraps the chosen layers, `tfgreen.callbacks.Pruning` drives the masks
during `fit()` on a schedule sized from the run, `strip` returns the plain
model with its zeros, `sparsity` measures them. The work is done by one of
two backends implementing `tfgreen.pruning._protocol.PruningBackend`, picked
by `tfgreen.flavor.backend("tfgreen.pruning", model)`: `_keras3` (tfgreen's
own `keras.ops` masks) and `_tf_keras` (tfmot, whose private internals only
`tfgreen._adapters.tfmot` touches). Each backend's `wrappers(model)` and
`masked_kernels(wrapper)` give the pruned layers and their kernels.
"""

from __future__ import annotations

from tfgreen.pruning.api import prune, sparsity, strip
from tfgreen.pruning.schedules import ConstantSparsity, PolynomialDecay, PruningSchedule

__all__ = ["prune", "strip", "sparsity", "PolynomialDecay", "ConstantSparsity", "PruningSchedule"]
