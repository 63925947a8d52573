"""LiteRT runs of untrusted files happen in a child: a crash never kills the caller."""

import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from ai_edge_litert import schema_py_generated as schema

from tests.hostile.mutants import pack
from tfgreen.errors import TfliteFileError
from tfgreen.tflite.bench import bench_tflite
from tfgreen.tflite.inspection import inspect_tflite
from tfgreen.tflite.isolated import IsolatedRunner


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
    return pack(model)


def test_rank20_input_crashes_litert_in_process(tmp_path, dense_tflite):
    """The hostile file really kills a process that resizes and runs it with LiteRT (the reason
    for the child)."""
    path = tmp_path / "rank20.tflite"
    path.write_bytes(_rank20(dense_tflite))
    code = (
        "import sys; from ai_edge_litert.interpreter import Interpreter\n"
        "it = Interpreter(model_path=sys.argv[1]); it.allocate_tensors()\n"
        "it.resize_tensor_input(it.get_input_details()[0]['index'], [1] * 20)\n"
        "it.allocate_tensors(); it.invoke()"
    )
    done = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, check=False)
    assert done.returncode == -11  # SIGSEGV


def test_rank20_input_is_one_refusal_in_bench_and_runner(tmp_path, dense_tflite):
    # TfliteRunner sizes a fresh interpreter to the new shape, where LiteRT refuses the
    # file instead of crashing; the child would also catch the crash.
    path = tmp_path / "rank20.tflite"
    path.write_bytes(_rank20(dense_tflite))
    with pytest.raises(TfliteFileError, match="LiteRT could not run the .tflite model"):
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


def test_fast_path_only_for_files_this_process_exported(tmp_path, dense_tflite):
    """In-process only for bytes export_tflite wrote here; a forged manifest is not enough."""
    import hashlib
    import json

    import keras

    import tfgreen
    from tfgreen.tflite.isolated import vetted_runner
    from tfgreen.tflite.runner import TfliteRunner

    model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(4)])
    report = tfgreen.export_tflite(model, tmp_path / "ours.tflite", target="cpu")
    ours = vetted_runner(report.path)
    assert isinstance(ours, TfliteRunner)
    forged = tmp_path / "forged.tflite"
    forged.write_bytes(dense_tflite)
    manifest = {"sha256": hashlib.sha256(dense_tflite).hexdigest(), "size_bytes": len(dense_tflite)}
    (tmp_path / "forged.tflite.json").write_text(json.dumps(manifest))
    theirs = vetted_runner(forged)
    assert isinstance(theirs, IsolatedRunner)
    x = np.ones((1, 8), "float32")
    # both time where the interpreter runs; the figures are the interpreter's own
    for runner in (ours, theirs):
        figures = runner.time_loop(x, runs=20)
        assert figures["runs"] == 20 and 0 < figures["p50"] < 50
    theirs.close()
    data = bytearray(Path(report.path).read_bytes())
    data[-1] ^= 1
    Path(report.path).write_bytes(bytes(data))
    with pytest.raises(TfliteFileError, match="does not match its manifest"):
        vetted_runner(report.path)


@pytest.fixture(scope="module")
def endless_tflite() -> bytes:
    return endless()


def endless() -> bytes:
    """A real file that never finishes: a WHILE loop whose condition stays true."""
    import tensorflow as tf

    @tf.function(input_signature=[tf.TensorSpec([1, 4], tf.float32)])
    def endless(x):
        return tf.while_loop(lambda v: tf.reduce_sum(v) > -1.0, lambda v: v + 1.0, [x])[0]

    return tf.lite.TFLiteConverter.from_concrete_functions(
        [endless.get_concrete_function()]
    ).convert()


def test_a_hanging_call_is_killed_and_reported_in_one_line(tmp_path, endless_tflite):
    """Per-call timeout: the child is killed after `timeout` s, the runner is closed."""
    import time

    runner = IsolatedRunner(endless_tflite, timeout=1.5)
    sample = runner.sample_inputs(random=False)  # calls that finish are unaffected
    start = time.monotonic()
    with pytest.raises(TfliteFileError, match="did not finish in time.*now killed") as caught:
        runner.predict(sample[0])
    assert time.monotonic() - start < 10
    assert len(str(caught.value).splitlines()) == 1 and "operation='predict'" in str(caught.value)
    with pytest.raises(TfliteFileError, match="is gone"):
        runner.predict(sample[0])
    path = tmp_path / "endless.tflite"
    path.write_bytes(endless_tflite)
    with pytest.raises(TfliteFileError, match="did not finish in time"):
        inspect_tflite(path, timeout=1.5)


def test_bench_progress_bar_comes_from_the_child(tmp_path, dense_tflite, python_run):
    path = tmp_path / "m.tflite"
    path.write_bytes(dense_tflite)
    done = python_run("-m", "tfgreen", "bench", str(path), "--runs", "30")
    assert done.returncode == 0, done.stderr[-2000:]
    assert "invocations" in done.stderr and "30/30" in done.stderr  # tqdm, in the child
    assert "p50" in done.stdout and "integrity: missing" in done.stdout
