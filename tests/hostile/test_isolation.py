"""LiteRT runs of untrusted files happen in a child: a crash never kills the caller."""

import os
import signal
import subprocess
import sys

import flatbuffers
import numpy as np
import pytest
from ai_edge_litert import schema_py_generated as schema

from tfgreen.errors import TfgreenError, TfliteFileError
from tfgreen.tflite.bench import bench_tflite
from tfgreen.tflite.inspection import inspect_tflite
from tfgreen.tflite.isolated import IsolatedRunner


def _pack(model: "schema.ModelT") -> bytes:
    builder = flatbuffers.Builder(1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


@pytest.fixture(scope="session")
def dense_tflite() -> bytes:
    import keras
    import tensorflow as tf

    model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(4, activation="relu")])
    return tf.lite.TFLiteConverter.from_keras_model(model).convert()


def _rank20(data: bytes) -> bytes:
    model = schema.ModelT.InitFromObj(schema.Model.GetRootAs(data, 0))
    graph = model.subgraphs[0]
    tensor = graph.tensors[graph.inputs[0]]
    tensor.shapeSignature = [-1] * 20  # shape stays [1, 8]: LiteRT crashes on the mismatch
    return _pack(model)


def _mutants(data: bytes, count: int, seed: int = 0) -> list[bytes]:
    """Seeded truncations, bit flips and structural edits (shapes, indices, buffers, scales)."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(count):
        kind = i % 4
        if kind == 0:
            out.append(data[: int(rng.integers(8, len(data)))])
        elif kind == 1:
            raw = bytearray(data)
            for _ in range(int(rng.integers(1, 8))):
                raw[int(rng.integers(0, len(raw)))] ^= 1 << int(rng.integers(0, 8))
            out.append(bytes(raw))
        else:
            model = schema.ModelT.InitFromObj(schema.Model.GetRootAs(data, 0))
            graph = model.subgraphs[0]
            tensor = graph.tensors[int(rng.integers(0, len(graph.tensors)))]
            choice = int(rng.integers(0, 4))
            if choice == 0:
                rank = int(rng.integers(0, 24))
                tensor.shape = [int(v) for v in rng.integers(-1, 5, rank)]
                tensor.shapeSignature = [-1] * rank
            elif choice == 1:
                op = graph.operators[0]
                op.inputs = [
                    int(v) for v in rng.integers(-3, len(graph.tensors) + 3, len(op.inputs))
                ]
            elif choice == 2:
                tensor.buffer = int(rng.integers(0, len(model.buffers) + 3))
            else:
                tensor.quantization = schema.QuantizationParametersT()
                tensor.quantization.scale = [float("nan")]
                tensor.quantization.zeroPoint = [int(rng.integers(-300, 300))]
            out.append(_pack(model))
    return out


def test_rank20_input_crashes_litert_in_process(tmp_path, dense_tflite):
    """The hostile file really kills a process that runs it directly (the reason for the child)."""
    path = tmp_path / "rank20.tflite"
    path.write_bytes(_rank20(dense_tflite))
    code = (
        "import sys; from tfgreen.tflite.runner import TfliteRunner\n"
        "r = TfliteRunner(sys.argv[1]); r.predict(r.sample_inputs())"
    )
    done = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, check=False)
    assert done.returncode == -11  # SIGSEGV


def test_rank20_input_is_one_refusal_in_bench_and_runner(tmp_path, dense_tflite):
    path = tmp_path / "rank20.tflite"
    path.write_bytes(_rank20(dense_tflite))
    with pytest.raises(TfliteFileError, match="died with signal SIGSEGV"):
        bench_tflite(path, runs=2)
    with pytest.raises(TfliteFileError, match="LiteRT"):
        runner = IsolatedRunner(path)
        runner.predict(runner.sample_inputs())


def test_isolated_runner_matches_in_process_and_times_in_child(dense_tflite):
    from tfgreen.tflite.runner import TfliteRunner

    x = np.random.default_rng(0).standard_normal((5, 8)).astype("float32")
    runner = IsolatedRunner(dense_tflite)
    try:
        np.testing.assert_array_equal(runner.predict(x), TfliteRunner(dense_tflite).predict(x))
        assert runner.inputs[0]["shape"].tolist() == [1, 8]
        assert 0 < runner.latency_ms(x, runs=5)["p50"] < 50
    finally:
        runner.close()


def test_child_death_names_the_signal(dense_tflite):
    runner = IsolatedRunner(dense_tflite)
    os.kill(runner._pid, signal.SIGKILL)
    with pytest.raises(TfliteFileError, match="died with signal SIGKILL"):
        runner.predict(np.zeros((1, 8), "float32"))


def test_fuzzed_files_never_crash_the_caller(tmp_path, dense_tflite):
    """Seeded mutants through inspect, bench and compare: results or TfgreenError only."""
    import tfgreen

    outcomes = {"result": 0, "refused": 0}
    x = np.zeros((2, 8), "float32")
    for i, data in enumerate(_mutants(dense_tflite, 8)):
        path = tmp_path / f"m{i}.tflite"
        path.write_bytes(data)
        for call in (
            lambda p: inspect_tflite(p, timeout=60),
            lambda p: bench_tflite(p, runs=2),
            lambda p: tfgreen.compare({"m": str(p)}, (x, np.zeros(2, "int64")), runs=2),
        ):
            try:
                call(path)
                outcomes["result"] += 1
            except TfgreenError as error:
                assert "Traceback" not in str(error)
                outcomes["refused"] += 1
    assert outcomes["refused"] > 0
    assert sum(outcomes.values()) == 24


@pytest.mark.parametrize("flavor", ["keras3"])
def test_vehicle_ecu_softmax_1000_is_a_target_error_not_an_abort(tmp_path, flavor):
    """The MobileNetV2 (alpha 0.35, 96x96) vehicle-ecu abort: int8 SOFTMAX over 1000 classes
    aborts LiteRT's reference kernels; the check runs isolated and says so."""
    import keras

    import tfgreen
    from tfgreen.errors import TargetError

    model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(1000, activation="softmax")])
    x = np.random.default_rng(0).standard_normal((16, 8)).astype("float32")
    with pytest.raises(TargetError, match="reference kernels could not run"):
        tfgreen.export_tflite(
            model,
            tmp_path / "m.tflite",
            target="vehicle-ecu",
            calibration_data=x,
            validation_data=(x, np.arange(16)),
        )
    assert not (tmp_path / "m.tflite").exists()
