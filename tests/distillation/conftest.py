"""Shared checks of the distillation tests."""

import numpy as np
import pytest

from tfgreen.quantization.ptq import convert
from tfgreen.tflite.read import read_tflite
from tfgreen.tflite.runner import TfliteRunner


def _int8_student_accuracies(student, x_calibration, x_test, y_test) -> tuple[float, float]:
    """Exports a trained 2-Dense student to int8 and checks its kernels really are int8.

    Returns:
        `(keras_accuracy, tflite_accuracy)` on the test data.
    """
    calibration = x_calibration[:100]
    data = convert(
        student,
        "int8",
        representative=lambda: ([calibration[i : i + 1]] for i in range(100)),
        io_dtype="int8",
    )
    info = read_tflite(data)
    dense = [op for op in info.ops if op.name == "FULLY_CONNECTED"]
    assert len(dense) == 2
    assert all(info.tensors[op.inputs[1]].dtype == "int8" for op in dense)
    keras_accuracy = np.mean(student.predict(x_test, verbose=0).argmax(-1) == y_test)
    tflite_accuracy = np.mean(TfliteRunner(data).predict(x_test).argmax(-1) == y_test)
    return float(keras_accuracy), float(tflite_accuracy)


@pytest.fixture
def int8_student_accuracies():
    """`int8_student_accuracies(student, x_calibration, x_test, y_test)` -> (keras, tflite)."""
    return _int8_student_accuracies
