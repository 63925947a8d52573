"""Keras 3 masks of whole channels and heads (`structure="channels"`/`"heads"`), for `_keras3`.

A group wrapper (`tfgreen.pruning._keras3._PruneLowMagnitude` with a group
structure) keeps full-shape 0/1 masks on its kernels, as for unstructured
pruning, but each mask update keeps or drops whole slices along the group
axis (`tfgreen.pruning.surgery.kernel_axis`), chosen by the summed L2 (or L1)
norms of the slices across the wrapper's kernels. Its extra weights (its own
biases, and the BatchNormalization / DepthwiseConv weights that follow the
channels) are zeroed with it, at each update and by a variable constraint
after every optimizer step, so a removed channel is exactly zero downstream.
"""

from __future__ import annotations

from typing import Any

from keras import ops

from tfgreen.errors import TfgreenValueError, message
from tfgreen.pruning import surgery
from tfgreen.pruning.structure import pruned_count

__all__ = ["Extras", "keep", "update", "link", "check_linked"]


class Extras:
    """The `(variable, axis)` pairs masked with a wrapper's groups (biases, BatchNorm, ...).

    A plain object, so Keras does not track the variables a second time.
    `linked` is False for a wrapper loaded from a file (`link` runs only in
    `tfgreen.prune`), which then can't train on: see `check_linked`.
    """

    def __init__(self, pairs=(), linked: bool = False):
        self.pairs = list(pairs)
        self.linked = linked


class _GroupConstraint:
    """Variable constraint zeroing the removed channels/heads of a bias or follower weight."""

    def __init__(self, wrapper, axis: int, inner=None):
        self.wrapper = wrapper
        self.axis = axis
        self.inner = inner

    def __call__(self, weights):
        if self.inner is not None:
            weights = self.inner(weights)
        return weights * ops.cast(_broadcast(keep(self.wrapper), weights, self.axis), weights.dtype)


def _group_axes(wrapper: Any) -> list[int]:
    kind = wrapper.group[0]
    return [surgery.kernel_axis(kind, k.path, len(k.variable.shape)) for k in wrapper.kernels]


def _broadcast(keep, weights, axis: int):
    """A `(groups,)` 0/1 vector shaped to multiply `weights` along `axis`."""
    shape = [1] * len(weights.shape)
    shape[axis] = -1
    return ops.reshape(keep, shape)


def keep(wrapper: Any):
    """The wrapper's kept groups as a 0/1 vector, read from its first mask."""
    axis = _group_axes(wrapper)[0]
    mask = wrapper.masks[0]
    return ops.max(mask, axis=[i for i in range(len(mask.shape)) if i != axis])


def update(wrapper: Any, sparsity: float) -> None:
    """Masks whole channels/heads: those with the smallest kernel-slice norms, across kernels."""
    axes = _group_axes(wrapper)
    power = 1 if wrapper.group[1] == "l1" else 2
    scores = 0.0
    for kernel, axis in zip(wrapper.kernels, axes, strict=True):
        values = ops.abs(ops.convert_to_tensor(kernel.variable)) ** power
        scores = scores + ops.sum(values, axis=[i for i in range(values.ndim) if i != axis])
    size = int(scores.shape[0])
    count = min(pruned_count(sparsity, size), size - 1)
    kept = ops.top_k(scores, size - count, sorted=False)[1]
    keep = ops.minimum(ops.sum(ops.one_hot(kept, size), axis=0), 1.0)
    for kernel, mask_variable, axis in zip(wrapper.kernels, wrapper.masks, axes, strict=True):
        weights = ops.convert_to_tensor(kernel.variable)
        mask = ops.cast(ops.ones_like(weights) * _broadcast(keep, weights, axis), weights.dtype)
        mask_variable.assign(mask)
        kernel.variable.assign(weights * mask)
    for variable, axis in wrapper.extras.pairs:
        weights = ops.convert_to_tensor(variable)
        variable.assign(weights * ops.cast(_broadcast(keep, weights, axis), weights.dtype))


def link(wrapped: list, model) -> None:
    """Gives each group wrapper its extra weights (biases, followers), masked by constraints."""
    for wrapper in wrapped:
        wrapper.extras = Extras(surgery.extra_weights(model, wrapper, wrapper.group[0]), True)
        for variable, axis in wrapper.extras.pairs:
            variable.constraint = _GroupConstraint(wrapper, axis, variable.constraint)


def check_linked(wrapper) -> None:
    """Refuses to train a group wrapper loaded from a file (its biases would not follow its masks)."""
    if wrapper.group is not None and not wrapper.extras.linked:
        raise TfgreenValueError(
            message(
                f"The '{wrapper.group[0]}'-pruned layer '{wrapper.layer.name}' was loaded from a "
                "file, which does not keep the links between its masks and its bias and "
                "BatchNormalization weights, so training it further would break strip",
                "a model returned by tfgreen.prune in this process",
                "tfgreen.strip the loaded model (its outputs are kept) and prune the stripped "
                "model again to continue",
                layer=wrapper.layer.name,
            )
        )
