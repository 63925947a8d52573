"""The foundation's converter, flatbuffer reader and LiteRT runner."""

import numpy as np
import pytest

from tfgreen.errors import TfgreenValueError, TfliteFileError
from tfgreen.quantization.ptq import convert
from tfgreen.tflite.read import read_tflite
from tfgreen.tflite.runner import TfliteRunner


@pytest.fixture
def int8_bytes(trained_cnn, digits):
    (x_train, _), _ = digits
    calib = x_train[:100]
    return convert(
        trained_cnn,
        "int8",
        representative=lambda: ([calib[i : i + 1]] for i in range(100)),
        io_dtype="int8",
    )


def test_float32_matches_keras(trained_cnn, digits):
    _, (x_test, _) = digits
    runner = TfliteRunner(convert(trained_cnn, "float32"))
    np.testing.assert_allclose(
        runner.predict(x_test[:50]), trained_cnn.predict(x_test[:50], verbose=0), atol=1e-5
    )


def test_int8_file_is_int8_and_accurate(int8_bytes, trained_cnn, digits):
    _, (x_test, y_test) = digits
    info = read_tflite(int8_bytes)
    io = [info.tensors[i] for i in info.inputs + info.outputs]
    assert [t.dtype for t in io] == ["int8", "int8"]
    for op in info.ops:
        if op.name in ("CONV_2D", "FULLY_CONNECTED"):
            assert info.tensors[op.inputs[0]].dtype == "int8"
            assert info.tensors[op.inputs[1]].dtype == "int8"
    keras_acc = np.mean(np.argmax(trained_cnn.predict(x_test, verbose=0), 1) == y_test)
    tflite_acc = np.mean(np.argmax(TfliteRunner(int8_bytes).predict(x_test), 1) == y_test)
    assert tflite_acc >= keras_acc - 0.01


def test_reader_rejects_truncated_and_foreign_bytes(int8_bytes):
    with pytest.raises(TfliteFileError, match="corrupted or truncated"):
        read_tflite(int8_bytes[: len(int8_bytes) // 3])
    with pytest.raises(TfliteFileError, match="no TFL3 identifier"):
        read_tflite(b"PK\x03\x04 this is a zip")


def test_unknown_quantization_is_refused(trained_cnn):
    with pytest.raises(TfgreenValueError, match="Received: quantization='int3'"):
        convert(trained_cnn, "int3")


def test_runner_latency_is_positive(int8_bytes, digits):
    _, (x_test, _) = digits
    figures = TfliteRunner(int8_bytes).latency_ms(x_test, runs=10)
    assert 0 < figures["p50"] <= figures["p90"]


def test_missing_tflite_file_is_named_everywhere(tmp_path):
    import tfgreen
    from tfgreen.cli import main
    from tfgreen.errors import TfgreenFileNotFoundError

    missing = tmp_path / "nope.tflite"
    for call in (TfliteRunner, tfgreen.inspect_tflite):
        with pytest.raises(TfgreenFileNotFoundError, match=r"does not exist.*nope\.tflite"):
            call(missing)
    assert main(["bench", str(missing)]) == 2
