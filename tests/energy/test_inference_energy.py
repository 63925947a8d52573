import numpy as np
import pytest

from tfgreen.energy.inference import inference_energy
from tfgreen.errors import TfgreenTypeError, TfgreenValueError
from tfgreen.quantization.ptq import convert


@pytest.fixture
def tflite_bytes(mlp, digits_flat):
    (x, _), _ = digits_flat
    return convert(mlp, "int8", representative=lambda: ([x[i : i + 1]] for i in range(32)))


def test_tflite_file_joules_per_inference(flavor, tflite_bytes, digits_flat, tmp_path):
    _, (x_test, _) = digits_flat
    path = tmp_path / "mlp.tflite"
    path.write_bytes(tflite_bytes)
    result = inference_energy(path, x_test, runs=2000)
    assert result["kind"] == "tflite" and result["runs"] == 2000
    assert result["joules_per_inference"] > 0
    assert result["co2_kg_per_inference"] > 0
    assert result["method"] in ("estimate", "measured") and "CodeCarbon" in result["method_detail"]
    assert result["latency_ms_mean"] == pytest.approx(result["seconds"] * 1000 / 2000)


def test_keras_model_costs_more_per_inference_than_its_tflite(
    flavor, mlp, tflite_bytes, digits_flat
):
    _, (x_test, _) = digits_flat
    keras_result = inference_energy(mlp, x_test, seconds=0.5)
    tflite_result = inference_energy(tflite_bytes, x_test, seconds=0.5)
    assert keras_result["kind"] == "keras" and keras_result["runs"] > 10
    assert keras_result["seconds"] >= 0.5
    # a TF graph call per sample costs far more than a LiteRT int8 invoke
    assert keras_result["joules_per_inference"] > 3 * tflite_result["joules_per_inference"]


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"x": np.zeros((0, 64), "float32")}, TfgreenValueError, "`x` holds no samples"),
        ({"runs": 0}, TfgreenValueError, "`runs` must be an int >= 1"),
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
