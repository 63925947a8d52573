"""Post-training quantization: a Keras model to `.tflite` bytes with the TFLite converter.

`convert` holds every post-training quantization kind tfgreen offers:
`"float32"` (none), `"dynamic"` (dynamic-range int8 weights, float
activations), `"int4"` (the same with the Dense kernels packed as int4,
`tfgreen.tflite.int4`), `"float16"` (float16 weights), `"int8"` (full integer,
calibrated or from a quantize-aware model) and `"int16x8"` (int16
activations, int8 weights). Both Kerases go through
`tf.lite.TFLiteConverter.from_keras_model`.
"""

from __future__ import annotations

import contextlib
import csv
import io
import itertools
import re
import warnings
from collections.abc import Callable, Iterable

import numpy as np

from tfgreen import _validate
from tfgreen.errors import CalibrationError, TargetError, message
from tfgreen.flavor import flavor_of, keras_for

__all__ = [
    "QUANTIZATIONS",
    "INTEGER_QUANTIZATIONS",
    "check_quantization",
    "convert",
    "quantization_errors",
]

QUANTIZATIONS = ("float32", "dynamic", "int4", "float16", "int8", "int16x8")
# The kinds whose activations are integers (they need calibration or fake-quant ranges).
INTEGER_QUANTIZATIONS = ("int8", "int16x8")
_KERNEL_OPS = ("FULLY_CONNECTED", "CONV_2D", "DEPTHWISE_CONV_2D")
_IO_DTYPES = (None, "float32", "int8", "uint8", "int16")
_DEBUG_SAMPLES = 32
_TF_NAME = re.compile(r"[A-Za-z0-9.][A-Za-z0-9_.\\/>-]*")  # TensorFlow's op-name rule


def check_quantization(quantization: str) -> str:
    """Validates a quantization name and returns it.

    Args:
        quantization: One of `QUANTIZATIONS`.

    Returns:
        The same name.

    Example:
    >>> check_quantization("dynamic")
    'dynamic'
    """
    return _validate.choice(
        "quantization",
        quantization,
        QUANTIZATIONS,
        fix="Pass quantization='int8' for full-integer int8, 'dynamic' for int8 "
        "weights with float activations ('int4' for int4 Dense kernels), or None for the "
        "target's default",
    )


def convert(
    model,
    quantization: str = "float32",
    representative: Callable[[], Iterable[list[np.ndarray]]] | None = None,
    io_dtype: str | None = None,
    allow_float_ops: bool = True,
    output_dtype: str | None = None,
    batch_size: int | None = None,
    per_channel_dense: bool = True,
) -> bytes:
    """Converts a Keras 3 or tf_keras model to `.tflite` bytes.

    Args:
        model: A Keras 3 or tf_keras model.
        quantization: One of `QUANTIZATIONS`. Defaults to `"float32"`.
        representative: For `"int8"`/`"int16x8"` of a model without fake-quant
            ops, a callable yielding lists of input arrays (one sample each).
            Defaults to `None`.
        io_dtype: Dtype of the model's inputs (and outputs, unless
            `output_dtype` is given) in the file: `"int8"`, `"uint8"`,
            `"int16"` or `"float32"`; `None` keeps float32. Defaults to `None`.
        allow_float_ops: For integer quantization, let ops without an integer
            kernel stay in float. `False` makes the converter fail on them.
            Defaults to `True`.
        output_dtype: Dtype of the outputs in the file, `None` for the same
            as `io_dtype`. Defaults to `None`.
        batch_size: Fix the batch axis of every input to this size (static
            shapes); `None` keeps it dynamic. Defaults to `None`.
        per_channel_dense: In integer files, one scale per output channel of
            Dense weights; `False` uses one per tensor. Defaults to `True`.

    Returns:
        The flatbuffer bytes.

    Example:
    ```python
    calibration = lambda: ([x_train[i : i + 1]] for i in range(100))
    data = convert(model, "int8", representative=calibration, io_dtype="int8")
    ```
    """
    flavor_of(model)
    check_quantization(quantization)
    for name, value in (("io_dtype", io_dtype), ("output_dtype", output_dtype)):
        _validate.choice(
            name, value, _IO_DTYPES, fix=f"Pass {name}='int8' for an integer-only model or None"
        )
    _validate.positive_int("batch_size", batch_size, allow_none=True, example=1)
    _validate.boolean("allow_float_ops", allow_float_ops)
    _validate.boolean("per_channel_dense", per_channel_dense)
    converter = _converter(
        model,
        "dynamic" if quantization == "int4" else quantization,
        representative,
        io_dtype,
        allow_float_ops,
        output_dtype,
        batch_size,
        per_channel_dense,
    )
    with _quiet():
        data = converter.convert()
    if quantization == "int4":
        from tfgreen.tflite.int4 import pack_int4_weights

        return pack_int4_weights(data)
    if quantization == "int8" and representative is None:
        _check_quantize_aware(data, allow_float_ops)
    return data


def quantization_errors(
    model,
    representative: Callable[[], Iterable[list[np.ndarray]]],
    count: int = 5,
    batch_size: int | None = None,
    per_channel_dense: bool = True,
) -> list[dict]:
    """The tensors full-integer int8 quantization hurts most (TFLite's QuantizationDebugger).

    The model is quantized as `convert(model, "int8", ...)` does, then run
    next to its float twin on up to 32 calibration samples; each quantized
    tensor's error is its root-mean-square difference from the float value,
    in quantization steps (the debugger's standard measure).

    Args:
        model: A Keras 3 or tf_keras model.
        representative: A callable yielding lists of input arrays, as for `convert`.
        count: How many tensors to return. Defaults to `5`.
        batch_size: As for `convert`. Defaults to `None`.
        per_channel_dense: As for `convert`. Defaults to `True`.

    Returns:
        Up to `count` dicts, worst first: `op`, `tensor`, `rmse_steps`
        (error in quantization steps) and `scale` (the tensor's step).

    Example:
    ```python
    quantization_errors(lm, calibration.representative())[0]
    # {'op': 'RSQRT', 'tensor': 'tiny_gpt_1/block1_ln1_1/Rsqrt', 'rmse_steps': 59.4, ...}
    ```
    """
    import tensorflow as tf

    _validate.positive_int("count", count, example=5)
    converter = _converter(
        model, "int8", representative, None, True, None, batch_size, per_channel_dense
    )

    def first_samples():
        return itertools.islice(representative(), _DEBUG_SAMPLES)

    with _quiet():
        debugger = tf.lite.experimental.QuantizationDebugger(
            converter=converter, debug_dataset=first_samples
        )
        debugger.run()
    dump = io.StringIO()
    debugger.layer_statistics_dump(dump)
    rows = []
    for row in csv.DictReader(io.StringIO(dump.getvalue())):
        scale = float(row["scale"])
        if scale > 0:
            rmse = float(np.sqrt(float(row["mean_squared_error"])))
            step = {"op": row["op_name"], "tensor": row["tensor_name"], "rmse_steps": rmse / scale}
            rows.append({**step, "scale": scale})
    rows.sort(key=lambda row: -row["rmse_steps"])
    return [{**r, "rmse_steps": round(r["rmse_steps"], 2)} for r in rows[:count]]


@contextlib.contextmanager
def _quiet():
    """Keras 3's export path prints "Saved artifact at ..." on stdout, and the converter
    warns about input statistics that a calibrated or fake-quant model does not need;
    neither tells the user anything."""
    with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Statistics for quantized inputs were expected")
        yield


def _converter(
    model,
    quantization: str,
    representative,
    io_dtype: str | None,
    allow_float_ops: bool,
    output_dtype: str | None,
    batch_size: int | None,
    per_channel_dense: bool,
):
    """A `TFLiteConverter` set up for one quantization kind (arguments as for `convert`)."""
    import tensorflow as tf

    names = [_input_name(t) for t in model.inputs]
    if batch_size is not None or len(names) > 1 or not all(map(_TF_NAME.fullmatch, names)):
        model = _wrapped(model, batch_size)
    with _quiet():
        converter = tf.lite.TFLiteConverter.from_keras_model(model)
    if quantization != "float32":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if quantization == "float16":
        converter.target_spec.supported_types = [tf.float16]
    if quantization in INTEGER_QUANTIZATIONS:
        if representative is not None:
            converter.representative_dataset = representative
        ops = (
            tf.lite.OpsSet.TFLITE_BUILTINS_INT8
            if quantization == "int8"
            else tf.lite.OpsSet.EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_WEIGHTS_INT8
        )
        # A quantize-aware model carries its int8 ranges in fake-quant ops; the
        # converter refuses an int8 op set without representative data before
        # it looks at the graph, so leave the op set alone and check the result.
        if representative is not None or quantization != "int8":
            converter.target_spec.supported_ops = (
                [ops, tf.lite.OpsSet.TFLITE_BUILTINS] if allow_float_ops else [ops]
            )
        converter._experimental_disable_per_channel_quantization_for_dense_layers = (
            not per_channel_dense
        )
    output_dtype = io_dtype if output_dtype is None else output_dtype
    if io_dtype not in (None, "float32"):
        converter.inference_input_type = tf.as_dtype(io_dtype)
    if output_dtype not in (None, "float32"):
        converter.inference_output_type = tf.as_dtype(output_dtype)
    return converter


def _wrapped(model, batch_size: int | None):
    """Wraps a model (same weights) to fix its batch size and to order its inputs.

    The converter's calibration feeds a multi-input model's signature inputs
    sorted by name, while the file keeps `model.inputs` order; inputs named
    `input_00`, `input_01`, ... make both orders the same. A single input
    keeps its name, made ASCII when TensorFlow would refuse it as an op name
    (`"entrée"` -> `"entr_e"`, `"輸入"` -> `"input"`): the converter fails on
    such a name with "'NoneType' object is not callable".
    """
    keras = keras_for(model)
    several = len(model.inputs) > 1
    inputs = [
        keras.Input(
            shape=tuple(t.shape[1:]),
            batch_size=batch_size,
            dtype=t.dtype,
            name=f"input_{i:02d}" if several else _ascii_name(_input_name(t)),
        )
        for i, t in enumerate(model.inputs)
    ]
    outputs = model(inputs if several else inputs[0], training=False)
    return keras.Model(inputs, outputs, name=f"{model.name}_export")


def _input_name(tensor) -> str:
    return str(getattr(tensor, "name", None) or "input").split(":")[0]


def _ascii_name(name: str) -> str:
    """`name` if TensorFlow takes it as an op name, else an ASCII stand-in."""
    if _TF_NAME.fullmatch(name):
        return name
    ascii_name = re.sub(r"[^A-Za-z0-9_.]", "_", name).strip("_")
    return ascii_name if ascii_name[:1].isalnum() else "input"


def _check_quantize_aware(data: bytes, allow_float_ops: bool) -> None:
    """Checks an int8 conversion without calibration data really gave int8 kernels."""
    from tfgreen.tflite.read import is_float_op, read_tflite

    info = read_tflite(data)
    floats = [op for op in info.ops if is_float_op(info, op)]
    float_ops = sorted({op.name for op in floats})
    kernels = [op for op in info.ops if op.name in _KERNEL_OPS]
    if kernels and all(op in floats for op in kernels):
        raise CalibrationError(
            message(
                "Quantization 'int8' needs calibration data for this model: converting "
                "without it left the kernels in float",
                "representative data, or a model from `tfgreen.quantize_aware` trained with fit()",
                "Pass representative=... (a callable yielding input samples), "
                "or fine-tune `tfgreen.quantize_aware(model)` first",
                float_ops=float_ops,
            )
        )
    if float_ops and not allow_float_ops:
        raise TargetError(
            message(
                f"The int8 model still has float ops: {float_ops}",
                "int8 kernels only (allow_float_ops=False)",
                "Quantize those layers too, or pass allow_float_ops=True",
                float_ops=float_ops,
            )
        )
