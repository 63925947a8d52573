"""Non-ASCII input names export (the converter refused them with "'NoneType' object is not callable")."""

import numpy as np
import pytest

import tfgreen


@pytest.mark.parametrize("target", ["cpu", "mcu"])  # the float and the full-int8 converter paths
def test_non_ascii_input_name_exports(flavor, keras, tmp_path, target):
    inputs = keras.Input((8,), name="entrée_輸入")
    model = keras.Model(inputs, keras.layers.Dense(4, activation="softmax")(inputs))
    x = np.random.default_rng(0).standard_normal((32, 8)).astype("float32")
    report = tfgreen.export_tflite(model, tmp_path / "m.tflite", target=target, calibration_data=x)
    name = report.inputs[0]["name"]
    assert name.isascii() and "entr_e" in name, name
    parity = report.parity
    assert parity["top1_agreement"] >= 0.9, parity
