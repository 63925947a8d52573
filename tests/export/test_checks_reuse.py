"""The reference-kernel check runs the reference kernels once: the outputs it reuses are theirs."""

from __future__ import annotations

import numpy as np

from tfgreen.export.kernels import kernel_differences, kernel_runs, max_lsb_difference
from tfgreen.quantization.ptq import convert
from tfgreen.tflite.isolated import IsolatedRunner
from tfgreen.tflite.read import read_tflite


def test_one_reference_run_gives_the_reference_outputs(keras):
    model = keras.Sequential(
        [keras.Input((8,)), keras.layers.Dense(16, activation="relu"), keras.layers.Dense(4)]
    )
    x = np.random.default_rng(0).standard_normal((12, 8)).astype("float32")
    data = convert(
        model,
        "int8",
        representative=lambda: ([x[i : i + 1]] for i in range(len(x))),
        io_dtype="int8",
        allow_float_ops=False,
        batch_size=1,
    )
    info = read_tflite(data)
    figures, reference = kernel_runs(data, info, [x])
    assert figures == kernel_differences(data, info, [x]) and figures["samples"] == 12
    runner = IsolatedRunner(data, reference=True)
    separate = runner.predict(x)
    runner.close()
    scales = [info.tensors[i].scale[0] for i in info.outputs]
    assert reference[0].shape == separate.shape == (12, 4)
    assert max_lsb_difference(reference, separate, scales) == 0
