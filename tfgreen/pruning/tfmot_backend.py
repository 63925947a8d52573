"""Pruning for tf_keras models on tfmot's `prune_low_magnitude`.

tfmot does the masking (in its `PruneLowMagnitude` wrapper, with its
distribution-aware mask updates); tfgreen's schedule decides when and how far
through `DrivenSchedule`, a tfmot `PruningSchedule` whose answer lives in two
variables that `tfgreen.callbacks.Pruning` sets from the real step of the
`fit()` run. This module imports tfmot (through `tfgreen.flavor.tfmot()`), so
it is only imported on tf_keras paths.
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
from tfgreen.pruning.schedules import PruningSchedule, schedule_from_config, schedule_to_config
from tfgreen.pruning.structure import parse_structure

__all__ = [
    "PruneLowMagnitude",
    "DrivenSchedule",
    "wrap",
    "xnnpack_layers",
    "wrappers",
    "kernel_and_mask",
    "structure_of",
    "target_of",
    "start",
    "step",
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
    """A tfmot schedule answering what `tfgreen.callbacks.Pruning` last decided.

    Args:
        schedule: The tfgreen `PruningSchedule` (or its config) it stands for.
    """

    def __init__(self, schedule):
        self.schedule = schedule_from_config(schedule)
        self._update = tf.Variable(False, trainable=False, name="tfgreen_prune_now")
        self._target = tf.Variable(0.0, trainable=False, name="tfgreen_target_sparsity")
        self._state = (False, 0.0)

    def set(self, update: bool, sparsity: float) -> None:
        """Sets whether masks update on the next step, and to which sparsity."""
        state = (bool(update), float(sparsity))
        if state != self._state:
            self._update.assign(state[0])
            self._target.assign(state[1])
            self._state = state

    def __call__(self, step):
        return tf.identity(self._update), tf.identity(self._target)

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


def start(layers) -> None:
    """Marks the wrappers as trained with a callback (tfmot's `pruning_step` from -1 to 0)."""
    for layer in layers:
        if int(layer.pruning_step.numpy()) < 0:
            layer.pruning_step.assign(0)


def step(driver: DrivenSchedule, layers, sparsity: float | None) -> None:
    """Tells tfmot whether to update the masks on this step, and to which sparsity."""
    driver.set(sparsity is not None, driver._state[1] if sparsity is None else sparsity)


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
