"""Pruning for tf_keras models on tfmot's `prune_low_magnitude`.

tfmot does the masking (in its `PruneLowMagnitude` wrapper, with its
distribution-aware mask updates); tfgreen's schedule decides when and how far
through `DrivenSchedule`, a tfmot `PruningSchedule` reading a per-step plan
that `tfgreen.callbacks.Pruning` writes when the `fit()` run starts. The
callback needs no per-batch hook here, like tfmot's own. This module imports
tfmot (through `tfgreen.flavor.tfmot()`), so it is only imported on tf_keras
paths.
"""

from __future__ import annotations

import contextlib
import importlib

import numpy as np
import tensorflow as tf
import tf_keras

from tfgreen.errors import UnsupportedLayerError, message
from tfgreen.flavor import tfmot
from tfgreen.pruning._clone import fresh_copy
from tfgreen.pruning.schedules import (
    Plan,
    PruningSchedule,
    schedule_from_config,
    schedule_to_config,
)
from tfgreen.pruning.structure import parse_structure

# The callback drives this backend at run and epoch starts only.
BATCH_HOOKS = False

__all__ = [
    "BATCH_HOOKS",
    "PruneLowMagnitude",
    "DrivenSchedule",
    "wrap",
    "xnnpack_layers",
    "wrappers",
    "kernel_and_mask",
    "structure_of",
    "target_of",
    "begin",
    "end",
    "driver_of",
    "schedule_of",
    "masked_kernel",
    "strip",
    "load_scope",
]

_sparsity = tfmot().sparsity.keras
_TFMOT_WRAPPER = importlib.import_module(
    "tensorflow_model_optimization.python.core.sparsity.keras.pruning_wrapper"
).PruneLowMagnitude


class PruneLowMagnitude(_TFMOT_WRAPPER):
    """tfmot's wrapper, with tfgreen's message when the Pruning callback is missing."""

    _PRUNE_CALLBACK_ERROR_MSG = message(
        "A pruned layer is being trained without the pruning callback, so its masks "
        "would never be updated",
        "`tfgreen.callbacks.Pruning()` in the callbacks of `fit()`",
        "Pass callbacks=[tfgreen.callbacks.Pruning()] to model.fit",
    )


class DrivenSchedule(_sparsity.PruningSchedule):
    """A tfmot schedule that looks up tfgreen's plan of the current `fit()` run.

    `tfgreen.callbacks.Pruning` writes, when the run starts, the target
    sparsity of every step that updates the masks (-1 for the others) into a
    variable; tfmot's own step counter indexes it inside the training graph,
    so no per-batch Python work is needed.

    Args:
        schedule: The tfgreen `PruningSchedule` (or its config) it stands for.
    """

    def __init__(self, schedule):
        self.schedule = schedule_from_config(schedule)
        self._table = tf.Variable(
            [-1.0], trainable=False, shape=tf.TensorShape([None]), name="tfgreen_pruning_plan"
        )

    def load(self, plan: Plan) -> None:
        """Writes the per-step targets of a resolved plan (-1: no mask update)."""
        table = [plan.sparsity_at_step(step) for step in range(max(plan.total_steps, 1))]
        self._table.assign(np.array([-1.0 if v is None else v for v in table], "float32"))

    def __call__(self, step):
        # tfmot increments its step before asking, so step 1 is the run's step 0.
        table = tf.convert_to_tensor(self._table)
        index = tf.cast(step, tf.int32) - 1
        inside = tf.logical_and(index >= 0, index < tf.size(table))
        value = tf.where(
            inside, tf.gather(table, tf.clip_by_value(index, 0, tf.size(table) - 1)), -1.0
        )
        return value >= 0.0, tf.maximum(value, 0.0)

    def get_config(self):
        return {
            "class_name": "TfgreenSchedule",
            "config": {"schedule": schedule_to_config(self.schedule)},
        }


def wrap(layer, schedule: PruningSchedule | DrivenSchedule, structure: str | None):
    """Wraps a fresh copy of a tf_keras `layer` in tfmot's `PruneLowMagnitude`."""
    driven = schedule if isinstance(schedule, DrivenSchedule) else DrivenSchedule(schedule)
    return PruneLowMagnitude(
        fresh_copy(layer), pruning_schedule=driven, sparsity_m_by_n=parse_structure(structure)
    )


def xnnpack_layers(model) -> set[str]:
    """Names of the layers tfmot's `PruneForLatencyOnXNNPack` policy would prune."""
    policy = _sparsity.PruneForLatencyOnXNNPack()
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


def wrappers(model) -> list:
    """Returns every tfmot `PruneLowMagnitude` layer of a tf_keras model."""
    return [
        layer
        for layer in model._flatten_layers(include_self=False)
        if isinstance(layer, _TFMOT_WRAPPER)
    ]


def kernel_and_mask(wrapper) -> tuple:
    """Returns the `(kernel, mask)` variables of a tfmot-pruned layer."""
    weight, mask, _ = wrapper.pruning_vars[0]
    return weight, mask


def structure_of(wrapper) -> tuple[int, int] | None:
    """The `(m, n)` of a structured wrapper, else `None`."""
    return tuple(wrapper.sparsity_m_by_n) if wrapper.sparsity_m_by_n else None


def target_of(wrapper) -> float:
    """The sparsity the wrapper should end at (m/n for structured pruning)."""
    if wrapper.sparsity_m_by_n:
        m, n = wrapper.sparsity_m_by_n
        return m / n
    return wrapper.pruning_schedule.schedule.final_sparsity


def begin(driver: DrivenSchedule, plan: Plan, layers, first_step: int) -> None:
    """Loads the plan and sets tfmot's step counters to the run's first step."""
    driver.load(plan)
    for layer in layers:
        layer.pruning_step.assign(first_step)


def end(layers) -> None:
    """Re-applies the masks so the kernels hold zeros after the last step."""
    for layer in layers:
        layer.pruning_obj.weight_mask_op()


def driver_of(wrapper) -> DrivenSchedule:
    """The object the callback drives for this wrapper."""
    return wrapper.pruning_schedule


def schedule_of(wrapper) -> PruningSchedule:
    """The tfgreen schedule of a wrapper."""
    return wrapper.pruning_schedule.schedule


def masked_kernel(wrapper) -> np.ndarray:
    """The kernel as the model uses it (kernel times mask), as numpy."""
    weight, mask = kernel_and_mask(wrapper)
    return weight.numpy() * mask.numpy()


def strip(model):
    """tfmot's `strip_pruning`: the plain tf_keras model, kernels masked."""
    # tf.distribute: apply the masks in the strategy's cross-replica context;
    # outside it tfmot would merge_call into the default strategy and fail.
    with model.distribute_strategy.scope():
        for layer in wrappers(model):
            layer.pruning_obj.weight_mask_op()
    return _sparsity.strip_pruning(model)


@contextlib.contextmanager
def load_scope():
    """Lets tf_keras deserialize tfmot wrappers and tfgreen schedules."""
    with (
        _sparsity.prune_scope(),
        tf_keras.utils.custom_object_scope({"TfgreenSchedule": DrivenSchedule}),
    ):
        yield
