"""tfmot's private pruning internals, in one place (written against tfmot 0.8.1).

tfgreen drives tfmot's `PruneLowMagnitude` wrapper with its own schedule, so
it needs a few things tfmot does not export: the wrapper class itself (from a
private module, to subclass it and to recognise wrappers), its
`_PRUNE_CALLBACK_ERROR_MSG`, and the attributes a built wrapper keeps
(`pruning_vars`, `pruning_step`, `pruning_obj.weight_mask_op()`,
`sparsity_m_by_n`, `pruning_schedule`, `block_size`), the constructor arguments
of its `Pruning` object, its `weight_mask_op()` and the method tfgreen
overrides (`_weight_assign_objs`); and, for quantization-aware training,
three private modules (`QAT_MODULES`): the default 8-bit registry and
quantize configs, and the prune-preserving quantizers. Everything else of tfmot that tfgreen
uses is public API. `tests/test_adapters_tfmot.py` checks each symbol against
the pinned version. Importing this module imports tfmot (through
`tfgreen.flavor.tfmot()`, which leaves `TF_USE_LEGACY_KERAS` alone).
"""

from __future__ import annotations

import importlib
import inspect

import tensorflow as tf
import tf_keras

from tfgreen.errors import TfgreenValueError, message
from tfgreen.flavor import tfmot

__all__ = [
    "PINNED_VERSION",
    "WRAPPER_MODULE",
    "PruneLowMagnitude",
    "is_wrapper",
    "pruning_vars",
    "step_variable",
    "apply_masks",
    "m_by_n",
    "schedule",
    "drive_masks",
    "update_masks",
    "group_of",
    "QAT_MODULES",
    "qat_module",
]

PINNED_VERSION = "0.8.1"
WRAPPER_MODULE = "tensorflow_model_optimization.python.core.sparsity.keras.pruning_wrapper"
IMPL_MODULE = "tensorflow_model_optimization.python.core.sparsity.keras.pruning_impl"

QAT_MODULES = {
    "registry": "tensorflow_model_optimization.python.core.quantization.keras.default_8bit"
    ".default_8bit_quantize_registry",
    "configs": "tensorflow_model_optimization.python.core.quantization.keras.default_8bit"
    ".default_8bit_quantize_configs",
    "prune_preserve": "tensorflow_model_optimization.python.core.quantization.keras.collab_opts"
    ".prune_preserve.prune_preserve_quantize_registry",
}

tfmot()  # imports tfmot without flipping the user's Keras, before the private module
_WRAPPER = importlib.import_module(WRAPPER_MODULE).PruneLowMagnitude
_PRUNING = importlib.import_module(IMPL_MODULE).Pruning


class _DrivenPruning(_PRUNING):
    """tfmot's pruning object, its masks updated from the host by `update(sparsity)`.

    tfmot re-ranks every kernel in a conditional inside the training graph,
    which tf_keras traces for each pruned layer; here the graph only keeps
    `weights = weights * mask` (and the extras), and tfgreen's callback calls
    `update` at the few steps its schedule updates the masks.
    `masks_for(weight, sparsity)` returns a weight's new 0/1 mask (by
    magnitude, `tfgreen._magnitude`, or by whole groups with `group`
    set); `extras()` returns `(variable, keep)` pairs multiplied by `keep`
    wherever tfmot applies the masks (biases and BatchNormalization weights
    of removed channels).
    """

    def __init__(self, group, masks_for, extras, **kwargs):
        super().__init__(**kwargs)
        self.group = group
        self._masks_for = masks_for
        self._extras = extras

    def update(self, sparsity: float) -> None:
        """Recomputes every mask at `sparsity` and multiplies the weights by them."""
        for weight, mask, _ in self._pruning_vars:
            mask.assign(self._masks_for(weight, sparsity))
        self.weight_mask_op()

    def _weight_assign_objs(self):
        extra = [variable.assign(variable * keep) for variable, keep in self._extras()]
        return super()._weight_assign_objs() + extra


def _build_attention(layer) -> None:
    """Builds the projections of a tf_keras MultiHeadAttention that has only its config.

    tf_keras creates an attention layer's query/key/value/output EinsumDense
    layers from its config but builds their kernels on the first call, while
    tfmot's `build` asks for those kernels: one call on zeros of the shapes in
    the config builds them (for a fresh copy, and for a layer being loaded).
    """
    if type(layer) is not tf_keras.layers.MultiHeadAttention:
        return
    config = layer.get_config()
    shapes = [config.get(f"{name}_shape") for name in ("query", "value", "key")]
    if None in shapes or all(sub.built for sub in _children(layer)):
        return
    query, value, key = (
        tf.zeros([1 if size is None else size for size in tf.TensorShape(shape).as_list()])
        for shape in shapes
    )
    layer(query, value, key=key)


def _children(layer) -> list:
    # Keras private (tf_keras): the layers a layer tracks directly.
    return list(layer._flatten_layers(include_self=False, recursive=False))


class PruneLowMagnitude(_WRAPPER):
    """tfmot's wrapper, with tfgreen's message when the Pruning callback is missing.

    Its unstructured masks are updated from the host (`_DrivenPruning`,
    `update_masks`) with `tfgreen._magnitude.magnitude_mask`;
    `"m:n"` and block masks stay tfmot's, updated in the training graph.

    It also prunes a tf_keras EinsumDense (tfmot's registry lacks it: its
    kernel is given as the prunable weight, the way tfmot's registry makes
    built-in layers prunable), and builds a tf_keras MultiHeadAttention's
    projections before tfmot looks for their kernels, which tfmot's own
    wrapper cannot do on a fresh or loaded layer.
    """

    def __init__(self, layer, *args, **kwargs):
        if isinstance(layer, tf_keras.layers.EinsumDense) and not hasattr(
            layer, "get_prunable_weights"
        ):
            layer.get_prunable_weights = lambda: [layer.kernel]
        super().__init__(layer, *args, **kwargs)

    _PRUNE_CALLBACK_ERROR_MSG = message(
        "A pruned layer is being trained without the pruning callback, so its masks "
        "would never be updated",
        "`tfgreen.callbacks.Pruning()` in the callbacks of `fit()`",
        "Pass callbacks=[tfgreen.callbacks.Pruning()] to model.fit",
    )

    armed = False  # set by tfgreen's callback for the length of a fit() run

    def call(self, inputs, training=None, **kwargs):
        if not isinstance(self.pruning_obj, _DrivenPruning):
            return super().call(inputs, training=training, **kwargs)
        # Driven masks: no step counter and no update conditional in the graph, only
        # weights * mask before the layer runs (as tfmot does on every call).
        if training is True and not self.armed:
            raise TfgreenValueError(self._PRUNE_CALLBACK_ERROR_MSG)
        self.add_update(self.pruning_obj.weight_mask_op())
        if "training" in inspect.signature(self.layer.call).parameters:
            kwargs["training"] = training
        return self.layer.call(inputs, **kwargs)

    def build(self, input_shape):
        _build_attention(self.layer)
        super().build(input_shape)
        if not self.sparsity_m_by_n and list(self.block_size) == [1, 1]:
            from tfgreen._magnitude import magnitude_mask

            drive_masks(self, lambda weight, sparsity: magnitude_mask(weight.numpy(), sparsity))


def is_wrapper(layer) -> bool:
    """Whether `layer` is a tfmot pruning wrapper (tfgreen's or tfmot's own)."""
    return isinstance(layer, _WRAPPER)


def pruning_vars(wrapper) -> list[tuple]:
    """The `(weight, mask, threshold)` variables of a built wrapper, one per pruned weight."""
    return list(wrapper.pruning_vars)


def step_variable(wrapper):
    """The wrapper's step counter (tfmot increments it before each training step)."""
    return wrapper.pruning_step


def apply_masks(wrapper) -> None:
    """Multiplies the wrapper's weights by their masks now."""
    wrapper.pruning_obj.weight_mask_op()


def m_by_n(wrapper) -> tuple[int, int] | None:
    """The wrapper's `(m, n)` structure, or `None` for unstructured pruning."""
    value = wrapper.sparsity_m_by_n
    return tuple(value) if value else None


def schedule(wrapper):
    """The pruning schedule object the wrapper was built with."""
    return wrapper.pruning_schedule


def drive_masks(wrapper, masks_for, extras=list, group: tuple[str, str] | None = None) -> None:
    """Makes a built wrapper take its masks from `masks_for` (`_DrivenPruning`), on its variables.

    Args:
        wrapper: A built `PruneLowMagnitude`.
        masks_for: `(weight variable, sparsity) -> 0/1 mask`, run eagerly by `update_masks`.
        extras: `() -> [(variable, keep)]` multiplied in with the masks. Defaults to none.
        group: The `(kind, norm)` of whole-group masks, or `None`. Defaults to `None`.
    """
    old = wrapper.pruning_obj
    wrapper.pruning_obj = _DrivenPruning(
        group,
        masks_for,
        extras,
        training_step_fn=old._step_fn,
        pruning_vars=old._pruning_vars,
        pruning_schedule=old._pruning_schedule,
        block_size=old._block_size,
        block_pooling_type=old._block_pooling_type,
    )


def update_masks(wrapper, sparsity: float) -> bool:
    """Updates a driven wrapper's masks to `sparsity` now; `False` for tfmot's own ("m:n")."""
    if not isinstance(wrapper.pruning_obj, _DrivenPruning):
        return False
    wrapper.pruning_obj.update(sparsity)
    return True


def group_of(wrapper) -> tuple[str, str] | None:
    """The `(kind, norm)` a wrapper prunes whole groups by, or `None`."""
    return getattr(wrapper.pruning_obj, "group", None)


def qat_module(name: str):
    """One of tfmot's private QAT modules (`QAT_MODULES`: registry, configs, prune_preserve)."""
    return importlib.import_module(QAT_MODULES[name])
