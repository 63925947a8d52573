"""Magnitude pruning for Keras 3 models, written with `keras.ops` (no tfmot).

Each pruned layer is wrapped in `PruneLowMagnitude`, which owns a
non-trainable `mask` variable shaped like the layer's kernel. The mask is
attached to the kernel as a variable constraint, so every optimizer step ends
with `kernel = kernel * mask`; `tfgreen.callbacks.Pruning` recomputes the masks
from the kernel magnitudes at the steps the schedule asks for. Nothing here is
specific to a backend.

Getting the masks (for example for sparsity-preserving QAT):
`[(w.layer.name, w.mask) for w in wrappers(model)]`, or `kernel_and_mask(w)`.
"""

from __future__ import annotations

import math

import keras
import numpy as np
from keras import ops

from tfgreen.errors import TfgreenValueError, message
from tfgreen.pruning._clone import clone_layers, fresh_copy
from tfgreen.pruning.schedules import (
    Plan,
    PruningSchedule,
    schedule_from_config,
    schedule_to_config,
)
from tfgreen.pruning.structure import parse_structure

# The callback updates the masks from its per-batch hook.
BATCH_HOOKS = True

__all__ = [
    "BATCH_HOOKS",
    "PruneLowMagnitude",
    "wrap",
    "wrappers",
    "kernel_variable",
    "kernel_and_mask",
    "magnitude_mask",
    "m_by_n_mask",
    "update_masks",
    "structure_of",
    "target_of",
    "begin",
    "batch",
    "end",
    "driver_of",
    "schedule_of",
    "masked_kernel",
    "strip",
]


def kernel_variable(layer):
    """Returns the kernel variable of a Dense/Conv-like Keras 3 layer."""
    kernel = getattr(layer, "_kernel", None)
    return kernel if kernel is not None else layer.kernel


class _MaskConstraint:
    """Variable constraint `w -> constraint(w) * mask`, applied after each optimizer step."""

    def __init__(self, mask, inner=None):
        self.mask = mask
        self.inner = inner

    def __call__(self, weights):
        if self.inner is not None:
            weights = self.inner(weights)
        return weights * ops.cast(self.mask, weights.dtype)


@keras.saving.register_keras_serializable(package="tfgreen")
class PruneLowMagnitude(keras.layers.Wrapper):
    """Wraps a Keras 3 layer so its kernel is multiplied by a pruning mask.

    Built by `tfgreen.prune`; train it with `tfgreen.callbacks.Pruning`.

    Args:
        layer: A Dense/Conv-like Keras 3 layer with a `kernel`.
        schedule: The `PruningSchedule` (or its config) driving the masks.
        structure: `None` for unstructured pruning, or `"m:n"` for `m` zeros
            in every `n` consecutive input-channel weights. Defaults to `None`.
        **kwargs: Base `Layer` arguments (name, ...).

    Example:
    >>> pruned = tfgreen.prune(model)
    >>> [w.mask.shape for w in tfgreen.pruning._keras3.wrappers(pruned)]
    """

    def __init__(self, layer, schedule, structure: str | None = None, **kwargs):
        kwargs.setdefault("name", f"prune_low_magnitude_{layer.name}")
        super().__init__(layer, **kwargs)
        self.schedule = schedule_from_config(schedule)
        self.structure = structure
        self.m_by_n = parse_structure(structure)
        self.armed = False

    def build(self, input_shape=None):
        super().build(input_shape)
        kernel = kernel_variable(self.layer)
        self.mask = self.add_weight(
            name="mask",
            shape=tuple(kernel.shape),
            initializer="ones",
            trainable=False,
            dtype=kernel.dtype,
        )
        kernel.constraint = _MaskConstraint(self.mask, kernel.constraint)
        self.built = True

    def call(self, inputs, training=None):
        if training is True and not self.armed:
            raise TfgreenValueError(
                message(
                    f"The pruned layer '{self.layer.name}' is being trained without "
                    "the pruning callback, so its masks would never be updated",
                    "`tfgreen.callbacks.Pruning()` in the callbacks of `fit()`",
                    "Pass callbacks=[tfgreen.callbacks.Pruning()] to model.fit",
                    layer=self.layer.name,
                )
            )
        return self.layer(inputs)

    def compute_output_shape(self, input_shape):
        return self.layer.compute_output_shape(input_shape)

    def get_config(self):
        return {
            **super().get_config(),
            "schedule": schedule_to_config(self.schedule),
            "structure": self.structure,
        }


def wrap(layer, schedule: PruningSchedule, structure: str | None):
    """Wraps a fresh copy of `layer` for pruning."""
    return PruneLowMagnitude(fresh_copy(layer), schedule, structure)


def wrappers(model) -> list[PruneLowMagnitude]:
    """Returns every `PruneLowMagnitude` layer of a Keras 3 model, nested ones included."""
    return [
        layer
        for layer in model._flatten_layers(include_self=False)
        if isinstance(layer, PruneLowMagnitude)
    ]


def kernel_and_mask(wrapper: PruneLowMagnitude) -> tuple:
    """Returns the `(kernel, mask)` variables of a pruned layer."""
    return kernel_variable(wrapper.layer), wrapper.mask


def magnitude_mask(weights, sparsity: float):
    """A 0/1 mask zeroing the `sparsity * size` (rounded) smallest-magnitude weights.

    The count is rounded to the nearest integer, as tfmot does, so each
    kernel's sparsity is the closest its size allows to the target.

    Args:
        weights: A kernel tensor.
        sparsity: Fraction of weights to zero, in [0, 1).

    Returns:
        A tensor shaped and typed like `weights`.
    """
    shape = tuple(weights.shape)
    size = int(np.prod(shape))
    count = min(size, int(math.floor(sparsity * size + 0.5)))
    ones = ops.ones((size,), dtype=weights.dtype)
    if count <= 0:
        return ops.reshape(ones, shape)
    order = ops.argsort(ops.reshape(ops.abs(weights), (-1,)))[:count]
    mask = ops.scatter_update(
        ones, ops.expand_dims(order, -1), ops.zeros((count,), dtype=weights.dtype)
    )
    return ops.reshape(mask, shape)


def m_by_n_mask(weights, m: int, n: int):
    """A 0/1 mask with `m` zeros in every `n` consecutive input-channel weights.

    Groups run along the input channel (the kernel's second-to-last axis),
    the layout TFLite stores and 2:4 sparse kernels use.

    Args:
        weights: A kernel tensor whose input-channel count is a multiple of `n`.
        m: Zeros per group.
        n: Group size.

    Returns:
        A tensor shaped and typed like `weights`.
    """
    moved = ops.moveaxis(weights, -1, 0)
    moved_shape = tuple(moved.shape)
    blocks = ops.reshape(ops.abs(moved), (-1, n))
    ranks = ops.argsort(ops.argsort(blocks, axis=-1), axis=-1)
    keep = ops.cast(ranks >= m, weights.dtype)
    return ops.moveaxis(ops.reshape(keep, moved_shape), 0, -1)


def update_masks(wrapper: PruneLowMagnitude, sparsity: float) -> None:
    """Recomputes a layer's mask from its kernel magnitudes and zeroes the pruned weights.

    Args:
        wrapper: The pruned layer.
        sparsity: Target sparsity for unstructured pruning (ignored for "m:n").
    """
    kernel = kernel_variable(wrapper.layer)
    weights = ops.convert_to_tensor(kernel)
    if wrapper.m_by_n is not None:
        mask = m_by_n_mask(weights, *wrapper.m_by_n)
    else:
        mask = magnitude_mask(weights, sparsity)
    wrapper.mask.assign(mask)
    kernel.assign(weights * mask)


def structure_of(wrapper: PruneLowMagnitude) -> tuple[int, int] | None:
    """The `(m, n)` of a structured wrapper, else `None`."""
    return wrapper.m_by_n


def target_of(wrapper: PruneLowMagnitude) -> float:
    """The sparsity the wrapper should end at (m/n for structured pruning)."""
    if wrapper.m_by_n is not None:
        return wrapper.m_by_n[0] / wrapper.m_by_n[1]
    return wrapper.schedule.final_sparsity


def begin(driver: PruningSchedule, plan: Plan, layers, first_step: int) -> None:
    """Lets the wrappers train (without it their first training step raises)."""
    for layer in layers:
        layer.armed = True


def batch(driver: PruningSchedule, plan: Plan, layers, first: int, last: int) -> None:
    """Brings the masks to the latest update the plan makes in steps `first..last`.

    One call per batch covers one step; with `steps_per_execution` a call
    covers the steps run since the previous one.
    """
    sparsity = plan.latest_sparsity(first, last)
    if sparsity is not None:
        for layer in layers:
            update_masks(layer, sparsity)


def end(layers) -> None:
    """Disarms the wrappers after training."""
    for layer in layers:
        layer.armed = False


def driver_of(wrapper: PruneLowMagnitude) -> PruningSchedule:
    """The object the callback drives for this wrapper (its schedule)."""
    return wrapper.schedule


def schedule_of(wrapper: PruneLowMagnitude) -> PruningSchedule:
    """The schedule of a wrapper."""
    return wrapper.schedule


def masked_kernel(wrapper: PruneLowMagnitude) -> np.ndarray:
    """The kernel as the model uses it (kernel times mask), as numpy."""
    kernel, mask = kernel_and_mask(wrapper)
    return ops.convert_to_numpy(kernel) * ops.convert_to_numpy(mask)


def _plain_weights(layer) -> list[np.ndarray]:
    if not isinstance(layer, PruneLowMagnitude):
        return layer.get_weights()
    kernel = kernel_variable(layer.layer)
    masked = masked_kernel(layer)
    return [masked if v is kernel else ops.convert_to_numpy(v) for v in layer.layer.weights]


def strip(model):
    """Returns a plain Keras 3 copy of a pruned model, its kernels masked."""
    return clone_layers(
        model,
        lambda layer: fresh_copy(layer.layer) if isinstance(layer, PruneLowMagnitude) else None,
        _plain_weights,
    )
