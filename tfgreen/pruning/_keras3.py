"""The pruning backend for Keras 3 models: tfgreen's own masks, written with `keras.ops`.

Implements `tfgreen.pruning._protocol.PruningBackend` without tfmot. Each
pruned top-level layer is wrapped in `PruneLowMagnitude`, which owns one
non-trainable mask variable per prunable kernel inside the layer: its own
kernel for a Dense/Conv/EinsumDense, the query/key/value/output kernels of a
MultiHeadAttention, every Dense/EinsumDense kernel of a nested block or
backbone (KerasHub's TransformerDecoder, CachedMultiHeadAttention, ...), and
embedding tables when asked. Each mask is attached to its kernel as a
variable constraint, so every optimizer step ends with `kernel = kernel *
mask`; `tfgreen.callbacks.Pruning` recomputes the masks from the kernel
magnitudes at the steps the schedule asks for. Nothing here is specific to a
backend of Keras 3.

Getting the masks (for example for sparsity-preserving QAT):
`[(w.layer.name, w.masks) for w in wrappers(model)]`, or `kernel_and_mask(w)`.
"""

from __future__ import annotations

import contextlib
import math
from pathlib import Path

import keras
import numpy as np
from keras import ops

from tfgreen._magnitude import magnitude_mask
from tfgreen.errors import TfgreenValueError, message
from tfgreen.pruning import _keras3_groups as groups
from tfgreen.pruning._clone import clone_layers, fresh_copy
from tfgreen.pruning._kernels import Kernel, find_kernels
from tfgreen.pruning.schedules import (
    Plan,
    PruningSchedule,
    schedule_from_config,
    schedule_to_config,
)
from tfgreen.pruning.structure import group_of, parse_structure

__all__ = [
    "prunable_kernels",
    "structure_problem",
    "xnnpack_layers",
    "driver_for",
    "prune_model",
    "wrappers",
    "kernel_and_mask",
    "masked_kernels",
    "structure_of",
    "target_of",
    "driver_of",
    "schedule_of",
    "begin",
    "batch",
    "end",
    "strip",
    "load_scope",
    "group_keep",
]


class _MaskConstraint:
    """Variable constraint `w -> constraint(w) * mask`, applied after each optimizer step."""

    def __init__(self, mask, inner=None):
        self.mask = mask
        self.inner = inner

    def __call__(self, weights):
        if self.inner is not None:
            weights = self.inner(weights)
        return weights * ops.cast(self.mask, weights.dtype)


@keras.saving.register_keras_serializable(package="tfgreen", name="PruneLowMagnitude")
class _PruneLowMagnitude(keras.layers.Wrapper):
    """Wraps a Keras 3 layer so each of its prunable kernels is multiplied by a mask.

    Built by `tfgreen.prune`; train it with `tfgreen.callbacks.Pruning`.

    Args:
        layer: A built Keras 3 layer with at least one prunable kernel (nested
            layers included).
        schedule: The `PruningSchedule` (or its config) driving the masks.
        structure: `None` for unstructured pruning, or `"m:n"` for `m` zeros
            in every `n` consecutive weights along each kernel's reduction
            axis. Defaults to `None`.
        embeddings: Whether embedding tables inside the layer are pruned too.
            Defaults to `False`.
        **kwargs: Base `Layer` arguments (name, ...).
    """

    def __init__(
        self, layer, schedule, structure: str | None = None, embeddings: bool = False, **kwargs
    ):
        kwargs.setdefault("name", f"prune_low_magnitude_{layer.name}")
        super().__init__(layer, **kwargs)
        self.schedule = schedule_from_config(schedule)
        self.structure = structure
        self.m_by_n = parse_structure(structure, groups=True)
        self.group = group_of(structure)
        self.extras = groups.Extras()
        self.embeddings = embeddings
        self.armed = False

    def build(self, input_shape=None):
        # The wrapped layer arrives built (`wrap`, or its own build config on load).
        super().build(input_shape)
        self.kernels = find_kernels(self.layer, keras, self.embeddings)
        self.masks = []
        for kernel in self.kernels:
            variable = kernel.variable
            mask = self.add_weight(
                name="mask",
                shape=tuple(variable.shape),
                initializer="ones",
                trainable=False,
                dtype=variable.dtype,
            )
            variable.constraint = _MaskConstraint(mask, variable.constraint)
            self.masks.append(mask)
        self.built = True

    def get_build_config(self):
        return {"kernels": [kernel.path for kernel in self.kernels]}

    def build_from_config(self, config):
        self.build()

    def call(self, inputs, *args, training=None, **kwargs):
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
        return self.layer(inputs, *args, **kwargs)

    def get_config(self):
        return {
            **super().get_config(),
            "schedule": schedule_to_config(self.schedule),
            "structure": self.structure,
            "embeddings": self.embeddings,
        }


def prunable_kernels(layer, embeddings: bool) -> list[Kernel]:
    """The Dense/Conv/EinsumDense kernels in `layer` and its nested layers (and embeddings)."""
    return find_kernels(layer, keras, embeddings)


def structure_problem(kernel: Kernel, n: int) -> str | None:
    """Why `"m:n"` groups of `n` can't run along the kernel's reduction axis, or `None`."""
    size = int(kernel.variable.shape[kernel.axis])
    if size % n:
        return f"has {size} input channels (kernel axis {kernel.axis}), not a multiple of n={n}"
    return None


def xnnpack_layers(model) -> set[str]:
    """Refuses: tfmot's XNNPACK latency policy exists only for tf_keras models."""
    raise TfgreenValueError(
        message(
            "`for_xnnpack=True` works only for tf_keras models (it is tfmot's policy)",
            "a tf_keras model",
            "Drop for_xnnpack for a Keras 3 model, or choose the layers with `layers`",
            model=model.name,
        )
    )


def driver_for(schedule: PruningSchedule) -> PruningSchedule:
    """The schedule itself: the callback drives Keras 3 wrappers from Python."""
    return schedule


def _wrap(layer, driver: PruningSchedule, structure: str | None, embeddings: bool):
    """Wraps a fresh, built copy of `layer` for pruning."""
    inner = fresh_copy(layer)
    if not inner.built:
        inner.build_from_config(layer.get_build_config())
    wrapper = _PruneLowMagnitude(inner, driver, structure, embeddings)
    wrapper.build()
    return wrapper


# Model classes that `keras.models.clone_model` rebuilds faithfully.
_PLAIN_FROM_CONFIG = (keras.Model.from_config.__func__, keras.Sequential.from_config.__func__)
# Where a model that rebuilds itself keeps its pruning wrappers (outside its graph).
_ATTACHED = "_tfgreen_pruning"


def _rebuilds_itself(model) -> bool:
    """Whether the model's class builds its own graph from its config (a KerasHub Task or Backbone).

    `keras.models.clone_model` would return such a model as a plain
    Functional, losing its methods (`generate`) and the layers its class
    shares (KerasHub's tied `ReversibleEmbedding`, both the token table and
    the language-model head).
    """
    return type(model).from_config.__func__ not in _PLAIN_FROM_CONFIG


def _graph_layers(model) -> list:
    """The model's top-level layers, without the wrappers attached to it."""
    return [layer for layer in model.layers if not isinstance(layer, _PruneLowMagnitude)]


def _rebuilt(model, weights_of):
    """A new model of the model's own class from its config, weights from `weights_of(layer)`."""
    copy = type(model).from_config(model.get_config())
    for source, target in zip(_graph_layers(model), _graph_layers(copy), strict=True):
        target.set_weights(weights_of(source))
    return copy


def prune_model(model, chosen: dict[str, bool], driver: PruningSchedule, structure: str | None):
    """A copy of a Keras 3 model whose `chosen` top-level layers are pruned.

    A plain Functional or Sequential model is cloned with each chosen layer
    replaced by its `PruneLowMagnitude` wrapper. A model whose class builds
    its own graph (a KerasHub CausalLM) is rebuilt from its config instead,
    so it keeps its class, methods and tied weights; its wrappers are then
    attached to it outside the graph (the masks act through the kernels'
    constraints, so they need not be called).

    Args:
        model: A built Keras 3 model.
        chosen: `{top-level layer name: also prune its embedding tables}`,
            none nested in another.
        driver: The schedule the wrappers share.
        structure: `None` or `"m:n"`.

    Returns:
        The pruned copy (`model` is not changed).
    """
    if not _rebuilds_itself(model):
        copy = clone_layers(
            model,
            lambda layer: (
                _wrap(layer, driver, structure, chosen[layer.name])
                if layer.name in chosen
                else None
            ),
        )
        if group_of(structure) is not None:
            groups.link(wrappers(copy), copy)
        return copy
    copy = _rebuilt(model, lambda layer: layer.get_weights())
    layers = {layer.name: layer for layer in _graph_layers(copy)}
    attached = []
    for name, embeddings in chosen.items():
        wrapper = _PruneLowMagnitude(layers[name], driver, structure, embeddings)
        wrapper.build()
        attached.append(wrapper)
    setattr(copy, _ATTACHED, attached)
    return copy


def wrappers(model) -> list[_PruneLowMagnitude]:
    """Returns every pruning wrapper of a Keras 3 model, nested ones included."""
    return [
        layer
        for layer in model._flatten_layers(include_self=False)  # Keras private: nested layers
        if isinstance(layer, _PruneLowMagnitude)
    ]


def kernel_and_mask(wrapper: _PruneLowMagnitude) -> tuple:
    """The `(kernel, mask)` variables of the wrapper's first (for Dense/Conv: only) kernel."""
    return wrapper.kernels[0].variable, wrapper.masks[0]


def _m_by_n_mask(weights, m: int, n: int, axis: int):
    """A 0/1 mask with `m` zeros in every `n` consecutive weights along `axis`.

    For a Dense or Conv kernel `axis` is the input channel (second-to-last),
    the layout TFLite stores and 2:4 sparse kernels use.
    """
    moved = ops.moveaxis(weights, axis, -1)
    moved_shape = tuple(moved.shape)
    blocks = ops.reshape(ops.abs(moved), (-1, n))
    ranks = ops.argsort(ops.argsort(blocks, axis=-1), axis=-1)
    keep = ops.cast(ranks >= m, weights.dtype)
    return ops.moveaxis(ops.reshape(keep, moved_shape), -1, axis)


def group_keep(wrapper: _PruneLowMagnitude) -> tuple[str, np.ndarray] | None:
    """`(kind, kept groups)` of a channels/heads wrapper (bool vector), else `None`."""
    if wrapper.group is None:
        return None
    return wrapper.group[0], ops.convert_to_numpy(groups.keep(wrapper)) > 0


def _update_masks(wrapper: _PruneLowMagnitude, sparsity: float) -> None:
    """Recomputes each mask from its kernel's magnitudes and zeroes the pruned weights."""
    if wrapper.group is not None:
        groups.update(wrapper, sparsity)
        return
    for kernel, mask_variable in zip(wrapper.kernels, wrapper.masks, strict=True):
        if wrapper.m_by_n is not None:
            weights = ops.convert_to_tensor(kernel.variable)
            mask = _m_by_n_mask(weights, *wrapper.m_by_n, kernel.axis)
        else:
            weights = ops.convert_to_numpy(kernel.variable)
            mask = magnitude_mask(weights, sparsity)
        mask_variable.assign(mask)
        kernel.variable.assign(weights * mask)


def _masked(kernel: Kernel, mask) -> np.ndarray:
    return ops.convert_to_numpy(kernel.variable) * ops.convert_to_numpy(mask)


def masked_kernels(wrapper: _PruneLowMagnitude) -> dict[str, np.ndarray]:
    """Each kernel as the model uses it (kernel times mask), by kernel path."""
    return {
        kernel.path: _masked(kernel, mask)
        for kernel, mask in zip(wrapper.kernels, wrapper.masks, strict=True)
    }


def structure_of(wrapper: _PruneLowMagnitude) -> tuple[int, int] | None:
    """The `(m, n)` of a structured wrapper, else `None`."""
    return wrapper.m_by_n


def target_of(wrapper: _PruneLowMagnitude) -> float:
    """The sparsity the wrapper should end at (m/n for structured pruning)."""
    if wrapper.m_by_n is not None:
        return wrapper.m_by_n[0] / wrapper.m_by_n[1]
    if wrapper.group is not None:  # whole groups: the fraction the group count allows
        size = int(groups.keep(wrapper).shape[0])
        return math.floor(wrapper.schedule.final_sparsity * size) / size
    return wrapper.schedule.final_sparsity


def driver_of(wrapper: _PruneLowMagnitude) -> PruningSchedule:
    """The object the callback drives for this wrapper (its schedule)."""
    return wrapper.schedule


def schedule_of(wrapper: _PruneLowMagnitude) -> PruningSchedule:
    """The schedule of a wrapper."""
    return wrapper.schedule


def begin(driver: PruningSchedule, plan: Plan, layers: list, first_step: int) -> None:
    """Lets the wrappers train (without it their first training step raises)."""
    for layer in layers:
        groups.check_linked(layer)
        layer.armed = True


def batch(driver: PruningSchedule, plan: Plan, layers: list, first: int, last: int) -> None:
    """Brings the masks to the latest update the plan makes in steps `first..last`.

    One call per batch covers one step; with `steps_per_execution` a call
    covers the steps run since the previous one.
    """
    sparsity = plan.latest_sparsity(first, last)
    if sparsity is not None:
        for layer in layers:
            _update_masks(layer, sparsity)


def end(layers: list) -> None:
    """Disarms the wrappers after training."""
    for layer in layers:
        layer.armed = False


def _masked_values(wrapped: list) -> dict[int, np.ndarray]:
    """The masked value of each kernel the wrappers prune, by the id of its variable."""
    return {
        id(kernel.variable): _masked(kernel, mask)
        for wrapper in wrapped
        for kernel, mask in zip(wrapper.kernels, wrapper.masks, strict=True)
    }


def _weights_of(layer, masked: dict[int, np.ndarray]) -> list[np.ndarray]:
    """The layer's weight values, the pruned kernels among them masked."""
    return [masked[id(v)] if id(v) in masked else ops.convert_to_numpy(v) for v in layer.weights]


def _plain_weights(layer) -> list[np.ndarray]:
    if not isinstance(layer, _PruneLowMagnitude):
        return layer.get_weights()
    return _weights_of(layer.layer, _masked_values([layer]))


def strip(model):
    """Returns a plain Keras 3 copy of a pruned model, its kernels masked.

    A model that rebuilds itself (a KerasHub CausalLM) comes back as its own
    class, with its tied weights still tied.
    """
    if not _rebuilds_itself(model):
        return clone_layers(
            model,
            lambda layer: (
                fresh_copy(layer.layer) if isinstance(layer, _PruneLowMagnitude) else None
            ),
            _plain_weights,
        )
    masked = _masked_values(wrappers(model))
    return _rebuilt(model, lambda layer: _weights_of(layer, masked))


def load_scope(path: str | Path) -> contextlib.AbstractContextManager:
    """A no-op context: importing this module registered `tfgreen>PruneLowMagnitude`.

    Args:
        path: The `.keras` file (any: Keras 3 needs nothing more to load it).

    Returns:
        A no-op context manager.
    """
    return contextlib.nullcontext()
