"""Quantization-aware training for Keras 3 models, without tfmot.

The model's graph is rebuilt with `keras.models.clone_model`:

- `Dense`, `Conv2D`, `DepthwiseConv2D` become `QuantDense`, `QuantConv2D`,
  `QuantDepthwiseConv2D` (int8 fake-quant on kernel and output). A
  `BatchNormalization` right after one of them is folded into its kernel and
  bias, and a `ReLU`/`ReLU6` right after that into its activation, so the
  int8 file has neither a float BN nor a separate activation.
- Layers that make a new value range (`ReLU`, `Activation`, `Add`,
  `AveragePooling2D`, ...) get an `ActivationQuantizer` on their output.
- Transformers: `EinsumDense`, `MultiHeadAttention` (its four projections;
  scores, mask and softmax stay float) and `Embedding` get their `Quant*`
  layers from `tfgreen.quantization.keras3_layers`; `Dense` with GELU/SiLU
  quantizes after the activation.
- Layers that only move or pick values (`MaxPooling2D`, `Flatten`, `Reshape`,
  `Dropout`, ...) and fixed-range ones (`Softmax`) are kept as they are.
- Every other layer (LayerNormalization, a BatchNormalization with nothing to
  fold into, a custom layer) stays float, and `unsupported_layers` says why:
  the model is never refused as a whole.
Layers that stay float are cloned unchanged; an int8 layer that reads a float
tensor (a model input, a float layer's output) quantizes it first.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

import keras
import numpy as np

from tfgreen._adapters.keras import keras3_is_functional, keras3_nodes_by_depth, keras3_producer
from tfgreen.quantization.keras3_layers import (
    FIXED_RANGE_ACTIVATIONS,
    FUSED_ACTIVATIONS,
    REQUANTIZED_ACTIVATIONS,
    ActivationQuantizer,
    QuantConv2D,
    QuantDense,
    QuantDepthwiseConv2D,
    QuantEinsumDense,
    QuantEmbedding,
    QuantMultiHeadAttention,
    activation_name,
)

__all__ = [
    "SUPPORTED_LAYERS",
    "float_layers",
    "is_graph_model",
    "is_quantize_aware",
    "load_scope",
    "quantize_aware",
    "unsupported_layers",
]

_L = keras.layers
_KERNEL = {
    _L.Dense: QuantDense,
    _L.Conv2D: QuantConv2D,
    _L.DepthwiseConv2D: QuantDepthwiseConv2D,
    _L.EinsumDense: QuantEinsumDense,
}
# Layers that quantize their own inputs and outputs, and the variables copied across.
_SELF_QUANTIZED = {_L.MultiHeadAttention: QuantMultiHeadAttention, _L.Embedding: QuantEmbedding}
_OK_ACTIVATIONS = FUSED_ACTIVATIONS + FIXED_RANGE_ACTIVATIONS + REQUANTIZED_ACTIVATIONS
_REQUANTIZE = (
    _L.ReLU,
    _L.Activation,
    _L.Add,
    _L.Subtract,
    _L.Multiply,
    _L.Concatenate,
    _L.AveragePooling2D,
    _L.GlobalAveragePooling2D,
)
_KEEP = (
    _L.InputLayer,
    _L.MaxPooling2D,
    _L.GlobalMaxPooling2D,
    _L.Flatten,
    _L.Reshape,
    _L.Dropout,
    _L.ZeroPadding2D,
    _L.Identity,
    _L.Softmax,
)
SUPPORTED_LAYERS = tuple(
    sorted(
        {
            cls.__name__
            for cls in (*_KERNEL, *_SELF_QUANTIZED, *_REQUANTIZE, *_KEEP)
            if cls is not _L.InputLayer
        }
        | {"BatchNormalization (after Dense/Conv2D/DepthwiseConv2D)"}
    )
)


def _why_unsupported(layer, absorbed: set[int]) -> str | None:
    """Why a layer can't be quantized (None if it can)."""
    cls = type(layer)
    if cls is _L.BatchNormalization:
        if id(layer) in absorbed:
            return None
        return "not right after a Dense/Conv2D/DepthwiseConv2D it could fold into"
    if cls in _KERNEL:
        if getattr(layer, "data_format", "channels_last") != "channels_last":
            return "channels_first data format"
        name = activation_name(layer.activation)
        return None if name in _OK_ACTIVATIONS else f"activation {name!r}"
    if cls is _L.Activation:
        name = activation_name(layer.activation)
        return None if name in _OK_ACTIVATIONS else f"activation {name!r}"
    if cls is _L.MultiHeadAttention and getattr(layer, "_use_gate", False):
        return "gated attention"
    if cls in _SELF_QUANTIZED or cls in _REQUANTIZE or cls in _KEEP:
        return None
    if cls is _L.LayerNormalization:
        return "normalization statistics (mean, rsqrt) lose too much in int8"
    return "layer type"


def float_layers(model, quantized: set[str], preserve_sparsity: bool) -> dict[str, str]:
    """Layers asked for that QAT can't make int8 (they stay float), by name, with the reason.

    Args:
        model: A built Keras 3 Sequential or Functional model.
        quantized: Names of the layers asked for.
        preserve_sparsity: Unused (sparsity does not change what Keras 3 QAT takes).

    Returns:
        `{name: "Class: reason"}`.
    """
    source = _as_functional(model)
    return unsupported_layers(source, quantized, _fold_plan(source, quantized)[1])


def unsupported_layers(model, quantized: set[str], absorbed: set[int]) -> dict[str, str]:
    """Layers to quantize that QAT can't handle (they stay float), by name, with the reason."""
    return {
        layer.name: f"{type(layer).__name__}: {reason}"
        for layer in model.layers
        if layer.name in quantized
        and type(layer) is not _L.InputLayer
        and (reason := _why_unsupported(layer, absorbed)) is not None
    }


def _as_functional(model):
    if isinstance(model, keras.Sequential):
        return keras.Model(model.inputs, model.outputs, name=model.name)
    return model


def _graph(model):
    """Consumers of each layer and how often each layer is called, from the graph."""
    consumers: dict[int, list] = {}
    calls: dict[int, int] = {}
    for nodes in keras3_nodes_by_depth(model).values():
        for node in nodes:
            if node.operation is None or node.is_input:
                continue
            calls[id(node.operation)] = calls.get(id(node.operation), 0) + 1
            for parent in node.parent_nodes:
                consumers.setdefault(id(parent.operation), []).append(node.operation)
    return consumers, calls


def _foldable_relu(layer) -> str | None:
    if type(layer) is _L.ReLU:
        plain = float(layer.negative_slope) == 0.0 and float(layer.threshold) == 0.0
        if plain and layer.max_value is None:
            return "relu"
        if plain and layer.max_value is not None and float(layer.max_value) == 6.0:
            return "relu6"
        return None
    if type(layer) is _L.Activation:
        name = activation_name(layer.activation)
        return name if name in ("relu", "relu6") else None
    return None


def _fold_plan(model, quantized: set[str]):
    """Which BN/ReLU layers fold into which kernel layer: {kernel: (bn, activation)}."""
    consumers, calls = _graph(model)
    outputs = {id(keras3_producer(t)) for t in model.outputs}
    plan, absorbed = {}, set()

    def sole_next(layer):
        nxt = consumers.get(id(layer), [])
        if len(nxt) != 1 or id(layer) in outputs or calls.get(id(nxt[0]), 0) != 1:
            return None
        return nxt[0] if nxt[0].name in quantized else None

    for layer in model.layers:
        if type(layer) not in _KERNEL or layer.name not in quantized or calls.get(id(layer)) != 1:
            continue
        if activation_name(layer.activation) != "linear":
            continue
        bn, activation, current = None, None, layer
        candidate = sole_next(current)
        if (
            type(candidate) is _L.BatchNormalization
            and candidate.axis in (-1, len(candidate.input.shape) - 1)
            and candidate.moving_mean.shape[0] == layer.compute_output_shape(layer.input.shape)[-1]
        ):
            bn, current = candidate, candidate
            absorbed.add(id(bn))
        candidate = sole_next(current)
        if candidate is not None and (name := _foldable_relu(candidate)) is not None:
            activation = name
            absorbed.add(id(candidate))
        if bn is not None or activation is not None:
            plan[layer.name] = (bn, activation)
    return plan, absorbed


def _folded_weights(layer, bn):
    """Kernel and bias of `layer` with `bn` (or None) folded in."""
    kernel = np.asarray(layer.kernel)
    depthwise = isinstance(layer, _L.DepthwiseConv2D)
    channels = kernel.shape[2] * kernel.shape[3] if depthwise else kernel.shape[-1]
    bias = np.asarray(layer.bias) if layer.use_bias else np.zeros(channels, np.float32)
    if bn is None:
        return kernel, bias
    gamma = np.asarray(bn.gamma) if bn.scale else 1.0
    beta = np.asarray(bn.beta) if bn.center else 0.0
    scale = gamma / np.sqrt(np.asarray(bn.moving_variance) + bn.epsilon)
    bias = (bias - np.asarray(bn.moving_mean)) * scale + beta
    # A depthwise kernel is (h, w, in, multiplier); output channel i*multiplier+m.
    kernel = kernel * (scale.reshape(kernel.shape[2], kernel.shape[3]) if depthwise else scale)
    return kernel.astype(np.float32), bias.astype(np.float32)


def is_quantize_aware(model) -> bool:
    """Whether a Keras 3 model holds tfgreen's fake-quant layers (it came from `quantize_aware`).

    Args:
        model: A Keras 3 model.

    Returns:
        True when a layer learns or applies int8 ranges.
    """
    kinds = (ActivationQuantizer, QuantDense, QuantConv2D, QuantDepthwiseConv2D, QuantEinsumDense)
    kinds += (QuantMultiHeadAttention, QuantEmbedding)
    return any(isinstance(layer, kinds) for layer in model.layers)


def is_graph_model(model) -> bool:
    """Whether a Keras 3 model is a Sequential or Functional graph.

    Args:
        model: A Keras 3 model.

    Returns:
        False for subclassed models, whose layers QAT can't rebuild.
    """
    return keras3_is_functional(model)


def load_scope(path: Path) -> contextlib.AbstractContextManager:
    """A no-op context: tfgreen's Keras 3 QAT layers are registered on import.

    Importing this module imports `tfgreen.quantization.keras3_layers`, which
    registers the layers (package `"tfgreen"`) with Keras's serializer.

    Args:
        path: The model file (unused: every file loads the same way).

    Returns:
        A no-op context manager.
    """
    return contextlib.nullcontext()


def quantize_aware(model, quantized: set[str], preserve_sparsity: bool):
    """Rebuilds a Keras 3 model for QAT (see the module docstring).

    Args:
        model: A built Keras 3 Sequential or Functional model.
        quantized: Names of the layers to quantize; others stay float.
        preserve_sparsity: Keep zero kernel weights at zero while training.

    Returns:
        A new Functional Keras 3 model with the original weights, ready to
        compile and fit.

    Example:
    >>> qat = quantize_aware(model, {layer.name for layer in model.layers}, True)
    """
    source = _as_functional(model)
    plan, absorbed = _fold_plan(source, quantized)
    originals: dict[int, keras.layers.Layer] = {}
    pending: list[tuple] = []

    def clone(layer):
        if id(layer) in absorbed:
            new = layer
        elif type(layer) in _KERNEL and layer.name in quantized:
            bn, activation = plan.get(layer.name, (None, None))
            kernel, bias = _folded_weights(layer, bn)
            config = {**layer.get_config(), "use_bias": True}
            if activation is not None:
                config["activation"] = activation
            config["keep_zeros"] = bool(preserve_sparsity and np.any(kernel == 0))
            new = _KERNEL[type(layer)].from_config(config)
            pending.append((new, kernel, bias))
        elif type(layer) in _SELF_QUANTIZED and layer.name in quantized:
            config = layer.get_config()
            if type(layer) is _L.MultiHeadAttention:
                zeros = any(np.any(np.asarray(w) == 0) for w in layer.get_weights())
                config["keep_zeros"] = bool(preserve_sparsity and zeros)
            new = _SELF_QUANTIZED[type(layer)].from_config(config)
            pending.append((new, layer, None))
        else:
            new = layer.__class__.from_config(layer.get_config())
            if layer.weights:
                pending.append((new, layer.get_weights(), None))
        originals[id(new)] = layer
        return new

    inputs = keras.tree.map_structure(
        lambda t: keras.Input(batch_shape=t.shape, dtype=t.dtype, name=t.name), source.input
    )
    model_inputs = keras.tree.flatten(inputs)
    # New tensors that already carry int8 ranges, and the quantizer made for a
    # float tensor (shared by all the quantized layers that read it).
    int8_ids: set[int] = set()
    quantizers: dict[int, object] = {}

    def mark(outputs):
        int8_ids.update(id(t) for t in keras.tree.flatten(outputs))
        return outputs

    def quantize_float(tensor, consumer: str):
        if not isinstance(tensor, keras.KerasTensor) or id(tensor) in int8_ids:
            return tensor
        if id(tensor) not in quantizers:
            if any(tensor is t for t in model_inputs):
                index = next(i for i, t in enumerate(model_inputs) if tensor is t)
                name = "input_quantizer" if len(model_inputs) == 1 else f"input_quantizer_{index}"
            else:
                name = f"{consumer}_input_quantizer"
            quantizers[id(tensor)] = mark(ActivationQuantizer(name=name)(tensor))
        return quantizers[id(tensor)]

    def call(new, *args, **kwargs):
        original = originals[id(new)]
        if id(original) in absorbed:
            return args[0]
        if original.name not in quantized:
            outputs = new(*args, **kwargs)
            # Layers that only move values pass int8 through whatever the caller chose.
            tensors = [t for t in keras.tree.flatten(args) if isinstance(t, keras.KerasTensor)]
            if type(original) in _KEEP and all(id(t) in int8_ids for t in tensors):
                mark(outputs)
            return outputs
        if type(original) in _SELF_QUANTIZED:
            return mark(new(*args, **kwargs))
        args = keras.tree.map_structure(lambda t: quantize_float(t, original.name), args)
        outputs = new(*args, **kwargs)
        if type(original) in _REQUANTIZE:
            outputs = ActivationQuantizer(name=f"{original.name}_quantizer")(outputs)
        return mark(outputs)

    qat = keras.models.clone_model(
        source,
        input_tensors=inputs,
        clone_function=clone,
        call_function=call,
    )
    for new, kernel, bias in pending:
        if isinstance(kernel, keras.layers.Layer):
            _copy_weights(kernel, new)
        elif bias is None:
            new.set_weights(kernel)
        else:
            _set_kernel(new, kernel, bias)
    return qat


def _set_kernel(layer, kernel, bias) -> None:
    layer.kernel.assign(kernel)
    if bias is not None:
        layer.bias.assign(bias)
    if layer.keep_zeros:
        layer.kernel_mask.assign((np.asarray(kernel) != 0).astype(np.float32))


def _copy_weights(original, new) -> None:
    """Copies an Embedding's table, or a MultiHeadAttention's projections, into its QAT twin."""
    if isinstance(original, _L.Embedding):
        new.embeddings.assign(original.embeddings)
        return
    sources = [original._query_dense, original._key_dense, original._value_dense]
    for old, fresh in zip([*sources, original._output_dense], new.projections(), strict=True):
        _set_kernel(fresh, old.kernel, old.bias if old.bias is not None else None)
