"""The pruning backend for tf_keras models, on tfmot's `PruneLowMagnitude`.

Implements `tfgreen.pruning._protocol.PruningBackend`. tfmot's wrapper holds
the masks and multiplies the weights by them at every training step (with
its distribution-aware assignment); the masks themselves are recomputed on
the host by `tfgreen.callbacks.Pruning`, at the few steps tfgreen's schedule
updates them (`batch`), as in the Keras 3 backend, instead of in a
conditional that tfmot puts in the training graph of every pruned layer.
`"m:n"` masks stay tfmot's own, set in the graph at the first step. tfmot's
private internals are reached only through `tfgreen._adapters.tfmot`,
imported when a model is actually pruned, so loading or measuring a plain
tf_keras model never imports tfmot.
"""

from __future__ import annotations

import contextlib
import sys
import zipfile
from pathlib import Path

import numpy as np
import tensorflow as tf
import tf_keras

from tfgreen.errors import UnsupportedLayerError, message
from tfgreen.flavor import tfmot
from tfgreen.pruning import surgery
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


def _adapter():
    from tfgreen._adapters import tfmot as adapter

    return adapter


class _DrivenSchedule:
    """The pruning schedule tfmot's wrapper keeps: tfgreen's schedule, saved with the model.

    tfmot stores it and saves its `get_config()`; the masks follow the plan
    the callback resolves from it for each `fit()` run (`batch`), so tfmot
    never calls it.

    Args:
        schedule: The tfgreen `PruningSchedule` (or its config) it stands for.
    """

    def __init__(self, schedule):
        self.schedule = schedule_from_config(schedule)

    def get_config(self):
        return {
            "class_name": "TfgreenSchedule",
            "config": {"schedule": schedule_to_config(self.schedule)},
        }

    @classmethod
    def from_config(cls, config):
        return cls(**config)


def prunable_kernels(layer, embeddings: bool) -> list[Kernel]:
    """The kernels tfmot prunes in `layer`: Dense/Conv/EinsumDense, attention projections, embeddings.

    EinsumDense is not in tfmot's registry; tfgreen's wrapper
    (`tfgreen._adapters.tfmot.PruneLowMagnitude`) makes it prunable.

    Args:
        layer: A top-level tf_keras layer.
        embeddings: Whether an `Embedding` table counts.

    Returns:
        The kernels, or `[]` for a layer tfmot's registry doesn't prune.
    """
    layers = tf_keras.layers
    kinds = (layers.Dense, layers.EinsumDense, layers.Conv1D, layers.Conv2D, layers.Conv3D)
    # tfmot's registry matches MultiHeadAttention by exact class.
    if type(layer) is layers.MultiHeadAttention or isinstance(layer, kinds):
        return find_kernels(layer, tf_keras)
    if embeddings and isinstance(layer, layers.Embedding):
        return find_kernels(layer, tf_keras, embeddings=True)
    return []


def structure_problem(kernel: Kernel, n: int) -> str | None:
    """Why tfmot can't put `"m:n"` groups of `n` along the kernel's input axis, or `None`."""
    rank = len(kernel.variable.shape)
    if rank not in (2, 4):
        return (
            f"has a rank-{rank} kernel; tfmot's m:n pruning takes only Dense (rank 2) and "
            "Conv2D (rank 4) kernels"
        )
    if kernel.axis != rank - 2:
        return (
            f"reduces over kernel axis {kernel.axis}; tfmot's m:n groups run along axis "
            f"{rank - 2} (the input channels of a Dense/Conv2D layout)"
        )
    size = int(kernel.variable.shape[kernel.axis])
    if size % n:
        return f"has {size} input channels, not a multiple of n={n}"
    return None


def xnnpack_layers(model) -> set[str]:
    """Names of the layers tfmot's `PruneForLatencyOnXNNPack` policy would prune."""
    policy = tfmot().sparsity.keras.PruneForLatencyOnXNNPack()
    try:
        policy.ensure_model_supports_pruning(model)
    except ValueError as error:
        raise UnsupportedLayerError(
            message(
                "The model does not fit tfmot's XNNPACK latency pruning policy",
                "a functional tf_keras model starting with ZeroPadding2D(1) and a 3x3 "
                "stride-2 'valid' Conv2D on 3 channels, ending with GlobalAveragePooling2D "
                f"(tfmot says: {error})",
                "Prune with for_xnnpack=False, or build the model in that shape",
                model=model.name,
            )
        ) from error
    return {layer.name for layer in model.layers if policy.allow_pruning(layer)}


def driver_for(schedule: PruningSchedule) -> _DrivenSchedule:
    """The tfmot schedule all wrappers pruned on `schedule` share."""
    return _DrivenSchedule(schedule)


def prune_model(model, chosen: dict[str, bool], driver: _DrivenSchedule, structure: str | None):
    """A copy of a tf_keras model with the `chosen` layers in tfmot's `PruneLowMagnitude`.

    The embeddings flag of `chosen` needs no handling here: tfmot prunes an
    Embedding's table whenever the layer is wrapped, and `prune` chooses one
    only when asked to.
    """
    adapter = _adapter()
    m_by_n = parse_structure(structure, groups=True)
    copy = clone_layers(
        model,
        lambda layer: (
            adapter.PruneLowMagnitude(
                fresh_copy(layer), pruning_schedule=driver, sparsity_m_by_n=m_by_n
            )
            if layer.name in chosen
            else None
        ),
    )
    group = group_of(structure)
    if group is not None:
        for wrapper in wrappers(copy):
            _prune_groups(copy, wrapper, group)
    return copy


def _broadcast(keep, rank: int, axis: int):
    shape = [1] * rank
    shape[axis] = -1
    return tf.reshape(keep, shape)


def _other_axes(rank: int, axis: int) -> list[int]:
    return [i for i in range(rank) if i != axis]


def _prune_groups(model, wrapper, group: tuple[str, str]) -> None:
    """Makes a tfmot wrapper mask whole channels/heads (scored by kernel-slice norms) at each update."""
    kind, norm = group
    kernels = [
        (weight, surgery.kernel_axis(kind, path, weight.shape.rank))
        for path, weight, _ in _pairs(wrapper)
    ]
    axis_of = {id(weight): axis for weight, axis in kernels}
    power = 1.0 if norm == "l1" else 2.0
    extras = surgery.extra_weights(model, wrapper, kind)
    first_mask = _adapter().pruning_vars(wrapper)[0][1]

    def masks_for(weight, sparsity):
        scores = tf.add_n(
            [
                tf.reduce_sum(tf.abs(w) ** power, axis=_other_axes(w.shape.rank, a))
                for w, a in kernels
            ]
        )
        size = int(scores.shape[0])
        count = tf.minimum(tf.cast(tf.floor(sparsity * size + 0.5), tf.int32), size - 1)
        kept = tf.math.top_k(scores, size - count).indices
        keep = tf.minimum(tf.reduce_sum(tf.one_hot(kept, size, dtype=weight.dtype), axis=0), 1)
        return tf.ones_like(weight) * _broadcast(keep, weight.shape.rank, axis_of[id(weight)])

    def keep_extras():
        keep = tf.reduce_max(first_mask, axis=_other_axes(first_mask.shape.rank, kernels[0][1]))
        return [
            (variable, tf.cast(_broadcast(keep, variable.shape.rank, axis), variable.dtype))
            for variable, axis in extras
        ]

    _adapter().drive_masks(wrapper, masks_for, keep_extras, group)


def group_keep(wrapper) -> tuple[str, np.ndarray] | None:
    """`(kind, kept groups)` of a channels/heads wrapper (bool vector), else `None`."""
    group = _adapter().group_of(wrapper)
    if group is None:
        return None
    path, weight, mask = _pairs(wrapper)[0]
    axis = surgery.kernel_axis(group[0], path, weight.shape.rank)
    return group[0], surgery.keep_vector(mask.numpy(), axis)


def wrappers(model) -> list:
    """Returns every tfmot `PruneLowMagnitude` layer of a tf_keras model."""
    if "tensorflow_model_optimization" not in sys.modules:
        return []  # no tfmot loaded: no wrapper can exist
    adapter = _adapter()
    return [
        layer
        for layer in model._flatten_layers(include_self=False)  # Keras private: nested layers
        if adapter.is_wrapper(layer)
    ]


def _pairs(wrapper) -> list[tuple[str, object, object]]:
    """`(kernel path, weight, mask)` of each weight tfmot prunes in the wrapper."""
    paths = {id(k.variable): k.path for k in find_kernels(wrapper.layer, tf_keras, True)}
    return [
        (paths.get(id(weight), wrapper.layer.name), weight, mask)
        for weight, mask, _ in _adapter().pruning_vars(wrapper)
    ]


def kernel_and_mask(wrapper) -> tuple:
    """The `(kernel, mask)` variables of the wrapper's first pruned weight."""
    _, weight, mask = _pairs(wrapper)[0]
    return weight, mask


def masked_kernels(wrapper) -> dict[str, np.ndarray]:
    """Each pruned weight as the model uses it (weight times mask), by kernel path."""
    return {path: weight.numpy() * mask.numpy() for path, weight, mask in _pairs(wrapper)}


def structure_of(wrapper) -> tuple[int, int] | None:
    """The `(m, n)` of a structured wrapper, else `None`."""
    return _adapter().m_by_n(wrapper)


def target_of(wrapper) -> float:
    """The sparsity the wrapper should end at (m/n for structured pruning)."""
    m_by_n = structure_of(wrapper)
    if m_by_n:
        return m_by_n[0] / m_by_n[1]
    kept = group_keep(wrapper)
    if kept is not None:  # whole groups: the fraction the group count allows
        size = len(kept[1])
        return int(schedule_of(wrapper).final_sparsity * size) / size
    return schedule_of(wrapper).final_sparsity


def driver_of(wrapper) -> _DrivenSchedule:
    """The schedule object tfmot calls for this wrapper (shared by one `prune` call)."""
    return _adapter().schedule(wrapper)


def schedule_of(wrapper) -> PruningSchedule:
    """The tfgreen schedule of a wrapper."""
    return driver_of(wrapper).schedule


def begin(driver: _DrivenSchedule, plan: Plan, layers: list, first_step: int) -> None:
    """Arms the wrappers (a training step raises without it) and sets tfmot's step counters.

    tfmot's counter still drives its in-graph `"m:n"` masks (set at step 1).
    """
    adapter = _adapter()
    for layer in layers:
        layer.armed = True
        adapter.step_variable(layer).assign(first_step)


def batch(driver: _DrivenSchedule, plan: Plan, layers: list, first: int, last: int) -> None:
    """Brings the masks to the latest update the plan makes in steps `first..last`.

    `"m:n"` wrappers are left to tfmot, which sets their masks in the graph.
    """
    sparsity = plan.latest_sparsity(first, last)
    if sparsity is not None:
        adapter = _adapter()
        for layer in layers:
            adapter.update_masks(layer, sparsity)


def end(layers: list) -> None:
    """Re-applies the masks so the kernels hold zeros after the last step; disarms the wrappers."""
    adapter = _adapter()
    for layer in layers:
        adapter.apply_masks(layer)
        layer.armed = False


def strip(model):
    """tfmot's `strip_pruning`: the plain tf_keras model, kernels masked."""
    # tf.distribute: apply the masks in the strategy's cross-replica context;
    # outside it tfmot would merge_call into the default strategy and fail.
    with model.distribute_strategy.scope():
        end(wrappers(model))
    return tfmot().sparsity.keras.strip_pruning(model)


def _config_text(path: Path) -> str:
    try:
        with zipfile.ZipFile(path) as archive:
            return archive.read("config.json").decode("utf-8", "replace")
    except (zipfile.BadZipFile, KeyError, OSError):
        return ""


def load_scope(path: str | Path) -> contextlib.AbstractContextManager:
    """A context in which tf_keras can load the pruned `.keras` model at `path`.

    Args:
        path: The `.keras` file.

    Returns:
        tfmot's `prune_scope` plus tfgreen's schedule if the file holds pruning
        wrappers, else a no-op context (and tfmot is not imported).
    """
    if "PruneLowMagnitude" not in _config_text(Path(path)):
        return contextlib.nullcontext()
    return _pruned_scope()


@contextlib.contextmanager
def _pruned_scope():
    # tfgreen's subclass of tfmot's wrapper stands in for tfmot's own on load.
    custom = {"PruneLowMagnitude": _adapter().PruneLowMagnitude, "TfgreenSchedule": _DrivenSchedule}
    with tf_keras.utils.custom_object_scope(custom):
        yield
