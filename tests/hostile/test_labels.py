"""Labels are checked against the model's classes: no silent wrong accuracy."""

import numpy as np
import pytest

import tfgreen
from tfgreen import _metrics
from tfgreen.errors import TfgreenValueError


@pytest.fixture(scope="module")
def classifier():
    import keras

    return keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, activation="softmax")])


X = np.random.default_rng(0).standard_normal((12, 4)).astype("float32")
Y = np.arange(12) % 3


@pytest.mark.parametrize(
    ("labels", "match"),
    [
        (Y + 50, "outside the model's classes|too few outputs"),
        (np.where(Y == 0, np.nan, Y.astype("float32")), "NaN"),
        (np.eye(5)[Y], "wrong width|another width"),
        (Y + 0.5, "whole numbers"),
    ],
)
def test_bad_labels_refused_in_compare_and_export(tmp_path, classifier, labels, match):
    with pytest.raises(TfgreenValueError, match=match):
        tfgreen.compare({"m": classifier}, (X, labels), runs=2)
    if "width" not in match:  # export learns the width from the outputs: range catches it
        with pytest.raises(TfgreenValueError, match=match):
            tfgreen.export_tflite(
                classifier, tmp_path / "m.tflite", calibration_data=X, validation_data=(X, labels)
            )


def test_good_labels_pass():
    outputs = np.eye(3)[Y]
    assert _metrics.accuracy(outputs, Y) == 1.0
    assert _metrics.accuracy(outputs, np.eye(3)[Y]) == 1.0
    assert _metrics.accuracy(np.array([[0.2], [0.9]]), np.array([0.0, 1.0])) == 1.0
