"""Quantization-aware training for tf_keras models, on tfmot.

A whole model goes through `quantize_annotate_model` + `quantize_apply`; a
subset is annotated layer by layer (`quantize_annotate_layer`) in a clone.
A model with zero weights (pruned, then stripped) is quantized with tfmot's
prune-preserving scheme, so its zeros stay zero through fine-tuning. tfmot is
only reached through `tfgreen.flavor.tfmot()`.
"""

from __future__ import annotations

import contextlib
import zipfile
from pathlib import Path

import numpy as np

from tfgreen._adapters.keras import (
    tf_keras_consumers,
    tf_keras_is_graph_network,
    tf_keras_producer,
)
from tfgreen.errors import TfgreenValueError, message
from tfgreen.flavor import keras_for, tfmot

__all__ = [
    "custom_objects",
    "float_layers",
    "has_zero_weights",
    "is_graph_model",
    "is_quantize_aware",
    "load_scope",
    "quantize_aware",
]

_KERNEL_NAMES = ("kernel", "depthwise_kernel")
# tfmot's QAT layer classes, by name (checking them needs no tfmot import).
_TFMOT_QAT_LAYERS = ("QuantizeWrapper", "QuantizeWrapperV2", "QuantizeLayer")


def has_zero_weights(model) -> bool:
    """Whether any kernel of the model holds exact zeros (a pruned model)."""
    for layer in model.layers:
        for name in _KERNEL_NAMES:
            weight = getattr(layer, name, None)
            if weight is not None and np.any(np.asarray(weight) == 0):
                return True
    return False


def _scheme(prune_preserve: bool):
    module = tfmot()
    if prune_preserve:
        return module.experimental.combine.Default8BitPrunePreserveQuantizeScheme()
    return module.quantization.keras.default_8bit.Default8BitQuantizeScheme()


def _batchnorm_problem(layer) -> str | None:
    """Why tfmot can't fold this BatchNormalization (None if it can)."""
    layers = keras_for("tf_keras").layers
    source = tf_keras_producer(layer.input)
    if not isinstance(source, (layers.Conv2D, layers.DepthwiseConv2D, layers.Dense)):
        return "BatchNormalization not right after a Conv2D/DepthwiseConv2D/Dense"
    if source.use_bias:
        return f"BatchNormalization after {source.name!r} with use_bias=True (tfmot folds bias-free ones)"
    return None


def _reads_integers(layer) -> bool:
    inputs = layer.input if isinstance(layer.input, (list, tuple)) else [layer.input]
    return any(getattr(t, "dtype", None) is not None and t.dtype.is_integer for t in inputs)


def _unsupported(model, quantized: set[str], scheme) -> dict[str, str]:
    from tfgreen._adapters.tfmot import qat_module

    default = qat_module("registry").Default8BitQuantizeRegistry()
    registry = scheme.get_quantize_registry()
    layers = keras_for("tf_keras").layers
    found = {}
    for layer in model.layers:
        if layer.name not in quantized or isinstance(layer, layers.InputLayer):
            continue
        if type(layer) is layers.Dense and len(layer.input.shape) > 2:
            problem = (
                "Dense on a [batch, seq, features] input: tfmot's fake-quant kernel there "
                "lowers to a Tensordot the converter keeps in float"
            )
        elif _reads_integers(layer):
            problem = f"{type(layer).__name__}: reads integer ids (tfmot would quantize them)"
        elif type(layer) is layers.BatchNormalization:
            problem = _batchnorm_problem(layer)
        elif default.supports(layer) and registry.supports(layer):
            problem = None
        else:
            problem = f"{type(layer).__name__}: not in tfmot's int8 registry"
        if problem is not None:
            found[layer.name] = problem
    return found


def float_layers(model, quantized: set[str], preserve_sparsity: bool) -> dict[str, str]:
    """Layers asked for that tfmot's scheme can't make int8 (they stay float), with the reason.

    Args:
        model: A built tf_keras Sequential or Functional model.
        quantized: Names of the layers asked for.
        preserve_sparsity: Whether the prune-preserving scheme would be used
            (on a model with zero weights).

    Returns:
        `{name: "Class: reason"}`.
    """
    scheme = _scheme(preserve_sparsity and has_zero_weights(model))
    return _unsupported(model, quantized, scheme)


def is_quantize_aware(model) -> bool:
    """Whether a tf_keras model holds tfmot's quantize wrappers (it came from `quantize_aware`).

    Args:
        model: A tf_keras model.

    Returns:
        True when a layer is a tfmot `QuantizeWrapper` or `QuantizeLayer`.
    """
    return any(type(layer).__name__ in _TFMOT_QAT_LAYERS for layer in model.layers)


def is_graph_model(model) -> bool:
    """Whether a tf_keras model is a Sequential or Functional graph.

    Args:
        model: A tf_keras model.

    Returns:
        False for subclassed models, whose layers tfmot can't rebuild.
    """
    return tf_keras_is_graph_network(model) or isinstance(model, keras_for("tf_keras").Sequential)


def quantize_aware(model, quantized: set[str], preserve_sparsity: bool):
    """Wraps a tf_keras model for QAT with tfmot.

    Args:
        model: A built tf_keras Sequential or Functional model.
        quantized: Names of the layers to quantize; the others stay float.
        preserve_sparsity: Use tfmot's prune-preserving scheme when the model
            has zero weights.

    Returns:
        The tfmot QAT model (tf_keras), with the original weights.

    Example:
    ```python
    qat = quantize_aware(model, {layer.name for layer in model.layers}, True)
    ```
    """
    prune_preserve = preserve_sparsity and has_zero_weights(model)
    scheme = _scheme(prune_preserve)
    qk = tfmot().quantization.keras
    if quantized == {layer.name for layer in model.layers}:
        annotated = qk.quantize_annotate_model(model)
    else:
        from tfgreen._adapters.tfmot import qat_module

        configs = qat_module("configs")

        bridges = _float_feeding_int8(model, quantized)

        def annotate(layer):
            if layer.name in quantized:
                return qk.quantize_annotate_layer(layer)
            if layer.name in bridges:
                # tfmot leaves an int8 layer that reads a float layer in float;
                # quantizing the float layer's output lets it run int8.
                config = configs.Default8BitOutputQuantizeConfig()
                return qk.quantize_annotate_layer(layer, quantize_config=config)
            return layer

        annotated = keras_for("tf_keras").models.clone_model(model, clone_function=annotate)
    with qk.quantize_scope():
        return qk.quantize_apply(annotated, scheme)


def _float_feeding_int8(model, quantized: set[str]) -> set[str]:
    """Float layers (kept float, tfmot can't quantize them) whose output an int8 layer reads."""
    layers = keras_for("tf_keras").layers
    # tfmot's QuantizeWrapper calls its layer with one input: attention (query, value,
    # mask) can't be wrapped, so an int8 layer after it quantizes its own input.
    unwrappable = (layers.InputLayer, layers.MultiHeadAttention)
    return {
        layer.name
        for layer in model.layers
        if layer.name not in quantized
        and not isinstance(layer, unwrappable)
        and not _reads_integers(layer)  # tfmot would fake-quantize the ids themselves
        and any(consumer.name in quantized for consumer in tf_keras_consumers(layer))
    }


def custom_objects() -> dict:
    """The tfmot classes a saved tf_keras QAT model needs beyond `quantize_scope`."""
    from tfgreen._adapters.tfmot import qat_module

    registry = qat_module("prune_preserve")

    return {
        "PrunePreserveDefault8BitWeightsQuantizer": registry.PrunePreserveDefault8BitWeightsQuantizer,
        "PrunePreserveDefault8BitConvWeightsQuantizer": (
            registry.PrunePreserveDefault8BitConvWeightsQuantizer
        ),
        "PrunePreserveDefaultWeightsQuantizer": registry.PrunePreserveDefaultWeightsQuantizer,
    }


def _file_config(path: Path) -> str:
    if path.suffix.lower() == ".keras":
        with zipfile.ZipFile(path) as archive:
            return archive.read("config.json").decode("utf-8", "replace")
    import h5py

    with h5py.File(path, "r") as handle:
        config = handle.attrs.get("model_config", b"")
    return config.decode("utf-8", "replace") if isinstance(config, bytes) else str(config)


def load_scope(path: str | Path):
    """A context in which a tf_keras model file with tfmot QAT layers loads.

    tfmot's QAT layers don't survive tf_keras's `.keras` format (its
    `QuantizeLayer` and `QuantizeWrapperV2` build twice when loaded and no
    longer match the saved variables), so a tf_keras QAT model is saved as
    `.h5` and loaded with `trusted=True`.

    Args:
        path: The `.keras` or `.h5` file.

    Returns:
        tfmot's `quantize_scope` (plus the prune-preserving quantizers) if the
        file holds tfmot QAT layers, else a no-op context.
    """
    path = Path(path)
    if "QuantizeWrapper" not in _file_config(path):
        return contextlib.nullcontext()
    if path.suffix.lower() == ".keras":
        raise TfgreenValueError(
            message(
                "A tf_keras QAT model (tfmot layers) can't be loaded from `.keras`: "
                "tfmot's layers rebuild with other variables than they saved",
                "a tf_keras QAT model saved as `.h5`",
                "Save it with qat.save('model.h5') and load it with "
                "tfgreen.load_model('model.h5', trusted=True), or save_weights() and "
                "load them into a fresh tfgreen.quantize_aware(model)",
                path=str(path),
            )
        )
    return _tfmot_scope()


@contextlib.contextmanager
def _tfmot_scope():
    with tfmot().quantization.keras.quantize_scope(custom_objects()):
        yield
