import numpy as np
import pytest

from tfgreen.energy.inference import inference_energy, inference_loop
from tfgreen.errors import TfgreenTypeError, TfgreenValueError
from tfgreen.quantization.ptq import convert
from tfgreen.tflite.runner import TfliteRunner


@pytest.fixture
def tflite_bytes(mlp, digits_flat):
    (x, _), _ = digits_flat
    return convert(mlp, "int8", representative=lambda: ([x[i : i + 1]] for i in range(32)))


@pytest.fixture(scope="session")
def mlp_files(digits_flat):
    """A 64-256-256-10 digits MLP as float32 and as int8 with int8 I/O (the mcu file)."""
    from tfgreen.models import small_mlp

    (x, y), _ = digits_flat
    model = small_mlp("keras3", seed=0)
    model.compile("adam", "sparse_categorical_crossentropy")
    model.fit(x, y, epochs=2, verbose=0)
    calibration = lambda: ([x[i : i + 1]] for i in range(64))  # noqa: E731
    return {
        "float32": convert(model),
        "int8_io": convert(model, "int8", representative=calibration, io_dtype="int8"),
    }


def test_tflite_file_joules_per_inference(flavor, tflite_bytes, digits_flat, tmp_path):
    _, (x_test, _) = digits_flat
    path = tmp_path / "mlp.tflite"
    path.write_bytes(tflite_bytes)
    result = inference_energy(path, x_test, runs=2000, repeats=2)
    assert result["kind"] == "tflite" and result["runs"] == 4000 and result["repeats"] == 2
    assert 0 < result["joules_min"] <= result["joules_per_inference"] <= result["joules_max"]
    assert result["co2_kg_per_inference"] > 0
    assert result["method"] in ("estimate", "measured") and "CodeCarbon" in result["method_detail"]
    assert 0 < result["latency_ms_p50"] <= 10 * result["latency_ms_mean"]
    # the end-to-end loop adds numpy quantization of the I/O to the same invoke
    end_to_end = result["end_to_end"]
    assert end_to_end["runs"] == 4000
    assert end_to_end["latency_ms_p50"] > result["latency_ms_p50"]
    assert end_to_end["joules_per_inference"] > result["joules_per_inference"]


def test_energy_moves_with_latency_on_the_same_loop(mlp_files, digits_flat):
    """J ratio / latency ratio of two .tflite rows is about 1 under one power model.

    The latency is `TfliteRunner.latency_ms`, the figure of export reports and
    `tfgreen bench`. Timed on `predict()` instead (host-side int8 I/O
    quantization), the int8-I/O file's energy would be several times its
    latency share and this test fails.
    """
    _, (x_test, _) = digits_flat
    energy = {
        name: inference_energy(data, x_test, seconds=0.4)["joules_per_inference"]
        for name, data in mlp_files.items()
    }
    latency = {
        name: TfliteRunner(data).latency_ms(x_test, runs=3000)["p50"]
        for name, data in mlp_files.items()
    }
    ratio = (energy["int8_io"] / energy["float32"]) / (latency["int8_io"] / latency["float32"])
    # calls of 2-4 us: a loaded CI machine moved this ratio to 0.77 once; the
    # predict()-loop error it guards against is a factor of several
    assert 0.6 <= ratio <= 1.6, (energy, latency)


def test_the_loop_is_the_latency_loop(mlp_files, digits_flat):
    _, (x_test, _) = digits_flat
    runner = TfliteRunner(mlp_files["int8_io"])
    assert runner.timed_call(x_test) == runner.interpreter.invoke
    loop = inference_loop(mlp_files["int8_io"], x_test)  # bytes not exported here: a child
    assert loop.kind == "tflite" and loop.time(runs=20)["runs"] == 20  # timed in the child
    np.testing.assert_allclose(loop.end_to_end(), runner.predict(x_test[:1]))


def test_keras_model_costs_more_per_inference_than_its_tflite(
    flavor, mlp, tflite_bytes, digits_flat
):
    _, (x_test, _) = digits_flat
    keras_result = inference_energy(mlp, x_test, seconds=0.3, repeats=2)
    tflite_result = inference_energy(tflite_bytes, x_test, seconds=0.3, repeats=2)
    assert keras_result["kind"] == "keras" and keras_result["runs"] > 10
    assert keras_result["seconds"] >= 0.6 and keras_result["end_to_end"] is None
    # a TF graph call per sample costs far more than a LiteRT int8 invoke
    assert keras_result["joules_per_inference"] > 3 * tflite_result["joules_per_inference"]


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"x": np.zeros((0, 64), "float32")}, TfgreenValueError, "`x` holds no samples"),
        ({"runs": 0}, TfgreenValueError, "`runs` must be an int >= 1"),
        ({"repeats": 0}, TfgreenValueError, "`repeats` must be an int >= 1"),
        ({"seconds": -1}, TfgreenValueError, "`seconds` is not a valid number"),
        ({"country_iso_code": "XX"}, TfgreenValueError, "Unknown country code"),
        ({"x": [np.zeros((1, 64))]}, TfgreenTypeError, "`x` must be one array"),
    ],
)
def test_bad_arguments(mlp, kwargs, error, match):
    args = {"x": np.zeros((4, 64), "float32"), **kwargs}
    with pytest.raises(error, match=match):
        inference_energy(mlp, **args)


def test_not_a_model():
    with pytest.raises(TfgreenTypeError, match="not a Keras model"):
        inference_energy(object(), np.zeros((4, 64), "float32"))
