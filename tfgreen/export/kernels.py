"""LiteRT's optimized kernels against its reference kernels, op by op, on one file.

The `reference_kernels` check of `tfgreen.export.checks` runs both in
isolated children (`tfgreen.tflite.isolated.IsolatedRunner`) and compares
every integer op's output in quantization steps (LSB).
"""

from __future__ import annotations

import numpy as np

from tfgreen import _metrics
from tfgreen.tflite.read import TfliteModelInfo

__all__ = ["LUT_OPS", "max_lsb_difference", "kernel_differences", "kernel_runs"]

# Integer activations LiteRT's optimized kernels compute from lookup tables, which by
# design round differently from the reference kernels.
LUT_OPS = ("SOFTMAX", "LOGISTIC", "TANH")


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
    for a, b, scale in zip(
        _metrics.float_list(first), _metrics.float_list(second), scales, strict=True
    ):
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
    ```python
    kernel_differences(data, read_tflite(data), [x_test[:100]])["max_lsb"]  # 1
    ```
    """
    return kernel_runs(data, info, arrays)[0]


def kernel_runs(
    data: bytes, info: TfliteModelInfo, arrays: list[np.ndarray]
) -> tuple[dict, list[np.ndarray]]:
    """`kernel_differences`' figures, and the reference kernels' outputs (dequantized, per
    output of the file) from the same run, so no second reference run is needed."""
    from tfgreen.tflite.isolated import IsolatedRunner

    runs = [
        IsolatedRunner(data, xnnpack=False, preserve_all_tensors=True),
        IsolatedRunner(data, reference=True, preserve_all_tensors=True),
    ]
    ops = [op for op in info.ops if info.tensors[op.outputs[0]].dtype.startswith("int")]
    indices = [op.outputs[0] for op in ops]
    worst = dict.fromkeys(range(len(ops)), 0)
    # Per side (optimized, reference), per output of the file: the dequantized values.
    outputs: list[list[list[np.ndarray]]] = [[[] for _ in info.outputs] for _ in runs]
    try:
        for i in range(len(arrays[0])):
            sample = [a[i : i + 1] for a in arrays]
            optimized, reference = (run.raw_tensors(sample, indices + info.outputs) for run in runs)
            for k in range(len(ops)):
                difference = np.abs(optimized[k].astype("int64") - reference[k].astype("int64"))
                worst[k] = max(worst[k], int(difference.max()) if difference.size else 0)
            for side, values in enumerate((optimized, reference)):
                for j, index in enumerate(info.outputs):
                    outputs[side][j].append(_dequantized(info, index, values[len(ops) + j]))
    finally:
        for run in runs:
            run.close()
    optimized, reference = ([np.concatenate(o) for o in side] for side in outputs)
    plain = {k: v for k, v in worst.items() if ops[k].name not in LUT_OPS}
    lut = [v for k, v in worst.items() if ops[k].name in LUT_OPS]
    worst_op = max(plain, key=plain.get) if plain else None
    figures = {
        "max_lsb": max(plain.values()) if plain else 0,
        "lut_max_lsb": max(lut) if lut else None,
        "worst_op": None if worst_op is None else ops[worst_op].name,
        "top1_agreement": _metrics.top1_agreement(optimized[0], reference[0]),
        "samples": int(len(arrays[0])),
    }
    return figures, reference


def _dequantized(info: TfliteModelInfo, index: int, raw: np.ndarray) -> np.ndarray:
    """A tensor's raw values in real units (integers through their scale and zero point)."""
    tensor = info.tensors[index]
    values = np.asarray(raw, dtype="float64")
    if len(tensor.scale) == 1 and tensor.scale[0]:
        values = (values - tensor.zero_point[0]) * tensor.scale[0]
    return values
