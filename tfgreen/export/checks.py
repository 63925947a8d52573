"""Checks run on an exported `.tflite` file.

Each function measures one thing about the file (read with `read_tflite` or
run with `TfliteRunner`) and returns plain numbers; `export_tflite` decides
against the target's thresholds which checks passed.
"""

from __future__ import annotations

import numpy as np

from tfgreen.tflite.read import OpInfo, TfliteModelInfo

__all__ = [
    "LUT_OPS",
    "tensor_details",
    "float_ops",
    "is_float_op",
    "parity",
    "accuracy",
    "max_lsb_difference",
    "kernel_differences",
    "c_array",
]

# Integer activations LiteRT's optimized kernels compute from lookup tables, which by
# design round differently from the reference kernels.
LUT_OPS = ("SOFTMAX", "LOGISTIC", "TANH")

# Ops that only convert between float and integer at the edges of the graph.
_CONVERSION_OPS = ("QUANTIZE", "DEQUANTIZE")


def tensor_details(info: TfliteModelInfo, indices: list[int]) -> list[dict]:
    """Name, dtype, shape, scale and zero point of the given tensors.

    Args:
        info: The parsed file.
        indices: Tensor indices (e.g. `info.inputs`).

    Returns:
        One dict per tensor; `scale`/`zero_point` are `None` when the tensor
        is not quantized (per-tensor values are given as numbers).
    """
    details = []
    for index in indices:
        tensor = info.tensors[index]
        details.append(
            {
                "name": tensor.name,
                "dtype": tensor.dtype,
                "shape": list(tensor.shape),
                "scale": tensor.scale[0] if len(tensor.scale) == 1 else (tensor.scale or None),
                "zero_point": (
                    tensor.zero_point[0]
                    if len(tensor.zero_point) == 1
                    else (tensor.zero_point or None)
                ),
            }
        )
    return details


def float_ops(info: TfliteModelInfo) -> list[str]:
    """Names of the ops that compute in float (QUANTIZE/DEQUANTIZE excluded).

    An op computes in float when one of its non-constant inputs or outputs is
    a float tensor. Hybrid ops (float activations, int8 weights, as in dynamic
    range quantization) count as float.

    Args:
        info: The parsed file.

    Returns:
        Op names in execution order, with repeats.

    Example:
    >>> float_ops(read_tflite(Path("edge_cpu.tflite").read_bytes()))
    ['SIN']
    """
    return [op.name for op in info.ops if is_float_op(info, op)]


def is_float_op(info: TfliteModelInfo, op: OpInfo) -> bool:
    """Whether one op computes in float (see `float_ops`)."""
    if op.name in _CONVERSION_OPS:
        return False
    tensors = [info.tensors[i] for i in op.inputs + op.outputs if i >= 0]
    return any(t.dtype.startswith("float") and not t.is_constant for t in tensors)


def _as_list(outputs) -> list[np.ndarray]:
    return [
        np.asarray(o, dtype="float64")
        for o in (outputs if isinstance(outputs, list) else [outputs])
    ]


def _top1(values: np.ndarray) -> np.ndarray:
    flat = values.reshape(len(values), -1)
    if flat.shape[1] > 1:
        return flat.argmax(axis=1)
    threshold = 0.5 if flat.min() >= 0 and flat.max() <= 1 else 0.0
    return (flat[:, 0] > threshold).astype("int64")


def parity(expected, actual, scales: list[float | None]) -> dict:
    """Compares the Keras model's outputs with the file's (dequantized) outputs.

    Args:
        expected: The Keras model's outputs (an array or a list, one per output).
        actual: The `.tflite` file's outputs on the same inputs.
        scales: Quantization scale of each output of the file, `None` for float.

    Returns:
        `top1_agreement` (fraction of samples with the same top class),
        `cosine` (mean per-sample cosine similarity), `max_abs_error` (in
        output quantization steps when the output is quantized, else in
        output units), `units` (`"lsb"` or `"float"`), and `samples`. With
        several outputs, each figure is the worst over the outputs.

    Example:
    >>> parity(model.predict(x), TfliteRunner(path).predict(x), [1 / 256])["top1_agreement"]
    0.9977...
    """
    agreements, cosines, errors = [], [], []
    units = "float"
    for want, got, scale in zip(_as_list(expected), _as_list(actual), scales, strict=True):
        agreements.append(float(np.mean(_top1(want) == _top1(got))))
        a, b = want.reshape(len(want), -1), got.reshape(len(got), -1)
        norms = np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1)
        dots = np.sum(a * b, axis=1)
        same = np.all(np.isclose(a, b), axis=1)
        cosine = np.where(norms > 0, dots / np.where(norms > 0, norms, 1.0), same.astype(float))
        cosines.append(float(np.mean(cosine)))
        error = float(np.max(np.abs(a - b))) if a.size else 0.0
        if scale:
            error, units = error / scale, "lsb"
        errors.append(error)
    return {
        "top1_agreement": min(agreements),
        "cosine": min(cosines),
        "max_abs_error": max(errors),
        "units": units,
        "samples": int(len(_as_list(expected)[0])),
    }


def accuracy(outputs, labels: np.ndarray) -> float:
    """Top-1 accuracy of the first output against class-index labels."""
    return float(np.mean(_top1(_as_list(outputs)[0]) == labels))


def max_lsb_difference(first, second, scales: list[float | None]) -> float:
    """Largest difference between two runs' outputs, in output quantization steps.

    Args:
        first: Outputs of one run (e.g. optimized kernels).
        second: Outputs of another run (e.g. reference kernels).
        scales: Quantization scale of each output, `None` for float outputs
            (their difference is then given in output units).

    Returns:
        The largest difference.
    """
    worst = 0.0
    for a, b, scale in zip(_as_list(first), _as_list(second), scales, strict=True):
        difference = float(np.max(np.abs(a - b))) if a.size else 0.0
        # Dequantized values differ by whole steps; round away float noise.
        worst = max(worst, round(difference / scale, 4) if scale else difference)
    return worst


def kernel_differences(data: bytes, info: TfliteModelInfo, arrays: list[np.ndarray]) -> dict:
    """Runs LiteRT's optimized builtin and reference kernels and compares every op's output.

    Integer tensors are compared raw, so a difference of 1 is one quantization
    step (LSB). Both runs propagate their own values, so differences include
    what earlier ops passed on.

    Args:
        data: The `.tflite` bytes (an integer model).
        info: Its parsed structure.
        arrays: Float inputs, one array per model input, samples on axis 0.

    Returns:
        `max_lsb` (largest difference over ops other than the lookup-table
        activations `LUT_OPS`), `lut_max_lsb` (over those, `None` if absent),
        `worst_op` (name of the op with `max_lsb`), `top1_agreement` (fraction
        of samples where both give the same top class; a 1-step difference can
        flip near-ties) and `samples`.

    Example:
    >>> kernel_differences(data, read_tflite(data), [x_test[:100]])["max_lsb"]
    1
    """
    from tfgreen.tflite.runner import TfliteRunner

    runs = [
        TfliteRunner(data, xnnpack=False, preserve_all_tensors=True),
        TfliteRunner(data, reference=True, preserve_all_tensors=True),
    ]
    ops = [op for op in info.ops if info.tensors[op.outputs[0]].dtype.startswith("int")]
    indices = [op.outputs[0] for op in ops]
    worst = dict.fromkeys(range(len(ops)), 0)
    tops = [[], []]
    for i in range(len(arrays[0])):
        sample = [a[i : i + 1] for a in arrays]
        optimized, reference = (run.raw_tensors(sample, indices + info.outputs) for run in runs)
        for k in range(len(ops)):
            difference = np.abs(optimized[k].astype("int64") - reference[k].astype("int64"))
            worst[k] = max(worst[k], int(difference.max()) if difference.size else 0)
        for side, values in enumerate((optimized, reference)):
            tops[side].append(_top1(np.asarray(values[len(ops)], dtype="float64")))
    plain = {k: v for k, v in worst.items() if ops[k].name not in LUT_OPS}
    lut = [v for k, v in worst.items() if ops[k].name in LUT_OPS]
    worst_op = max(plain, key=plain.get) if plain else None
    return {
        "max_lsb": max(plain.values()) if plain else 0,
        "lut_max_lsb": max(lut) if lut else None,
        "worst_op": None if worst_op is None else ops[worst_op].name,
        "top1_agreement": float(np.mean(np.concatenate(tops[0]) == np.concatenate(tops[1]))),
        "samples": int(len(arrays[0])),
    }


def c_array(data: bytes, symbol: str, header: str) -> tuple[str, str]:
    """Renders `.tflite` bytes as a C array for TFLite Micro.

    Args:
        data: The flatbuffer bytes.
        symbol: C identifier of the array (its length is `<symbol>_len`).
        header: File name of the header, included by the source.

    Returns:
        `(source, header_text)`: the `.cc` and the `.h` contents.
    """
    guard = "TFGREEN_" + "".join(c if c.isalnum() else "_" for c in header.upper())
    header_text = (
        f"// Generated by tfgreen: {len(data)} bytes of a .tflite model for TFLite Micro.\n"
        f"#ifndef {guard}\n#define {guard}\n\n"
        f"extern const unsigned char {symbol}[];\n"
        f"extern const unsigned int {symbol}_len;\n\n#endif  // {guard}\n"
    )
    rows = [
        "  " + ", ".join(f"0x{b:02x}" for b in data[start : start + 12])
        for start in range(0, len(data), 12)
    ]
    source = (
        f'// Generated by tfgreen. Keep 16-byte alignment for TFLite Micro.\n#include "{header}"\n\n'
        f"alignas(16) const unsigned char {symbol}[] = {{\n" + ",\n".join(rows) + "\n};\n"
        f"const unsigned int {symbol}_len = {len(data)};\n"
    )
    return source, header_text
