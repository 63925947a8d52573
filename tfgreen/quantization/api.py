"""`quantize_aware`: int8 quantization-aware training for both Kerases.

tf_keras models go through tfmot; Keras 3 models (which tfmot refuses) get
tfgreen's own fake-quant layers. `tfgreen.flavor.backend` picks the backend
(`_keras3.py` or `_tf_keras.py`, both a `_protocol.QuantizationBackend`). Either way the result compiles and fits like
the original, and exports to a full-integer int8 `.tflite` with no
calibration data: the ranges were learned in training.
"""

from __future__ import annotations

from collections.abc import Iterable

from tfgreen._validate import boolean
from tfgreen.distribute import check_strategy, strategy_of
from tfgreen.errors import TfgreenTypeError, TfgreenValueError, UnsupportedLayerError, message
from tfgreen.flavor import backend, flavor_of

__all__ = ["quantize_aware", "is_quantize_aware"]


def _names(value, argument: str, known: list[str]) -> set[str] | None:
    if value is None:
        return None
    if isinstance(value, str) or not isinstance(value, Iterable):
        raise TfgreenTypeError(
            message(
                f"`{argument}` must be a list of layer names",
                "a list or tuple of strings, or None",
                f"Pass for example {argument}=[{known[0]!r}]" if known else "Pass a list",
                **{argument: value},
            )
        )
    names = list(value)
    if not all(isinstance(name, str) for name in names):
        raise TfgreenTypeError(
            message(
                f"`{argument}` must hold layer names (strings)",
                "a list of `layer.name` strings",
                "Pass the names, for example [layer.name for layer in model.layers[:2]]",
                **{argument: value},
            )
        )
    unknown = sorted(set(names) - set(known))
    if unknown:
        raise TfgreenValueError(
            message(
                f"`{argument}` names layers the model does not have: {unknown}",
                f"names of the model's layers: {known}",
                "Check the spelling against `[layer.name for layer in model.layers]`",
                **{argument: value},
            )
        )
    return set(names)


def quantize_aware(
    model,
    layers: list[str] | None = None,
    keep_float: list[str] | None = None,
    preserve_sparsity: bool = True,
):
    """Prepares a Keras model for int8 quantization-aware training.

    Compile and fit the returned model as usual (a couple of epochs of
    fine-tuning from a trained float model is enough), then export it with
    `tfgreen.quantization.ptq.convert(qat_model, "int8")`: no calibration data is
    needed, the int8 ranges were learned in training. The ranges start empty:
    fit at least one epoch before predicting or exporting.

    tf_keras models are quantized with tfmot (`quantize_apply`). Keras 3
    models, which tfmot refuses, get tfgreen's own fake-quant layers:
    symmetric int8 weights (per channel for `Conv2D`), int8 activations with
    moving min/max ranges, a quantized input, and each `BatchNormalization`
    after a conv/dense layer folded into it. Keras 3 QAT handles `Dense`
    (also with GELU/SiLU), `Conv2D`, `DepthwiseConv2D`, `EinsumDense`,
    `BatchNormalization`, `ReLU`, `Activation`, `Add`, `Concatenate`,
    pooling, `Flatten`, `Reshape`, `Dropout`, `Softmax`, and for transformers
    `Embedding` (int8 table) and `MultiHeadAttention` (int8 projections; the
    scores, the causal mask and the softmax stay float).

    A layer QAT can't make int8 (LayerNormalization, a custom layer, a layer
    outside tfmot's registry on tf_keras) stays float: the model is never
    refused as a whole. The returned model's `quantization_report` says
    which layers are int8 and why each other one stayed float.

    Args:
        model: A built Keras 3 or tf_keras Sequential or Functional model,
            usually already trained in float.
        layers: Names of the layers to quantize; the others stay float.
            `None` quantizes every layer. Defaults to `None`.
        keep_float: Names of layers to leave in float (for example a layer
            QAT can't handle). Defaults to `None`.
        preserve_sparsity: Keep zero weights (of a pruned, stripped model) at
            zero through QAT, so the int8 file stays sparse (tf_keras: tfmot's
            prune-preserving scheme; Keras 3: fixed zero masks).
            Defaults to `True`.

    Returns:
        A new model of the same flavour with the original weights, to
        compile and fit. Keras 3 models come back as Functional models. Its
        `quantization_report` is `{"int8": [layer names], "float": {layer
        name: why it stayed float}}`.

    Example:
    ```python
    qat = tfgreen.quantize_aware(model)
    qat.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    qat.fit(x, y, epochs=2)
    data = tfgreen.quantization.ptq.convert(qat, "int8", io_dtype="int8")
    ```

    A small causal transformer: what stays float is named.
    >>> from tfgreen.models import tiny_gpt
    >>> qat = tfgreen.quantize_aware(tiny_gpt(vocab_size=64, seq_len=8, embed_dim=8, num_layers=1))
    >>> sorted(qat.quantization_report["float"])
    ['block0_ln1', 'block0_ln2', 'final_ln', 'position_embedding']
    """
    implementation = backend("tfgreen.quantization", flavor_of(model))
    check_strategy(model, strategy_of())  # tfgreen.distribute: refuse what tf.distribute can't run
    if not implementation.is_graph_model(model):
        raise TfgreenTypeError(
            message(
                "quantize_aware needs a Sequential or Functional model",
                "a model whose layers form a graph Keras can rebuild",
                "Rebuild a subclassed model with `keras.Sequential` or the functional API",
                model=type(model).__name__,
            )
        )
    if not model.built or not model.inputs:
        raise TfgreenValueError(
            message(
                "The model is not built, so its layers have no weights yet",
                "a model with a known input shape",
                "Start it with `keras.Input(shape)` or call `model.build(input_shape)`",
                model=model.name,
            )
        )
    boolean(
        "preserve_sparsity",
        preserve_sparsity,
        fix="Pass preserve_sparsity=True to keep a pruned model's zeros",
    )
    known = [layer.name for layer in model.layers]
    chosen = _names(layers, "layers", known)
    skipped = _names(keep_float, "keep_float", known) or set()
    quantized = (set(known) if chosen is None else chosen) - skipped
    if not quantized:
        raise TfgreenValueError(
            message(
                "No layer is left to quantize",
                "at least one layer in `layers` that is not in `keep_float`",
                "Drop some names from keep_float, or pass layers=None",
                layers=layers,
                keep_float=keep_float,
            )
        )
    left_float = implementation.float_layers(model, quantized, preserve_sparsity)
    wrapped = sorted(name for name, why in left_float.items() if "Prune" in why.split(":")[0])
    if wrapped:
        raise UnsupportedLayerError(
            message(
                f"The model still has pruning wrappers: {', '.join(wrapped)}",
                "a plain model (a pruned model after tfgreen.strip)",
                "Remove the wrappers first with tfgreen.strip(model), then call quantize_aware",
                layers=wrapped,
            )
        )
    qat = implementation.quantize_aware(model, quantized - set(left_float), preserve_sparsity)
    # Set past Keras's attribute tracking, which would wrap the dict and its lists.
    object.__setattr__(qat, "quantization_report", _report(model, quantized, left_float))
    return qat


def _report(model, quantized: set[str], left_float: dict[str, str]) -> dict:
    """`{"int8": [names], "float": {name: why}}` over the model's layers (inputs left out)."""
    layers = [layer for layer in model.layers if type(layer).__name__ != "InputLayer"]
    return {
        "int8": [layer.name for layer in layers if layer.name in quantized - set(left_float)],
        "float": {
            layer.name: left_float.get(layer.name, "not asked for (layers / keep_float)")
            for layer in layers
            if layer.name not in quantized or layer.name in left_float
        },
    }


def is_quantize_aware(model) -> bool:
    """Whether a Keras 3 or tf_keras model came from `quantize_aware` (has fake-quant layers).

    Its int8 ranges were learned in training: an int8 export needs no calibration data.

    Args:
        model: A Keras 3 or tf_keras model.

    Returns:
        True for a quantization-aware model.

    Example:
    >>> from tfgreen.models import small_mlp
    >>> is_quantize_aware(small_mlp()), is_quantize_aware(tfgreen.quantize_aware(small_mlp()))
    (False, True)
    """
    return backend("tfgreen.quantization", flavor_of(model)).is_quantize_aware(model)
