"""Calibration data: accepted forms, reproducible sampling, and every bad case refused first."""

import numpy as np
import pytest
import tensorflow as tf

import tfgreen
from tfgreen.errors import CalibrationError
from tfgreen.export import exporter
from tfgreen.flavor import keras_for
from tfgreen.models import small_cnn
from tfgreen.quantization.calibration import prepare_calibration, prepare_validation


@pytest.fixture
def cnn(flavor):
    return small_cnn(flavor, seed=0)


@pytest.fixture
def x(digits):
    return digits[0][0]


def _two_input_model(flavor):
    keras = keras_for(flavor)
    a, b = keras.Input((4,), name="a"), keras.Input((3,), name="b")
    merged = keras.layers.Concatenate()([keras.layers.Dense(5)(a), keras.layers.Dense(5)(b)])
    return keras.Model([a, b], keras.layers.Dense(2)(merged))


def test_array_is_subsampled_reproducibly(cnn, x):
    first, second = prepare_calibration(cnn, x), prepare_calibration(cnn, x)
    assert first.count == 200 and len(x) > 200
    assert first.sha256 == second.sha256
    np.testing.assert_array_equal(first.arrays[0], x[first.indices])
    assert len(np.unique(first.indices)) == 200
    assert prepare_calibration(cnn, x[:50]).count == 50


def test_dataset_generator_and_callable_forms(cnn, x, digits):
    y = digits[0][1]
    reference = prepare_calibration(cnn, x[:120]).sha256
    dataset = tf.data.Dataset.from_tensor_slices((x[:120], y[:120])).batch(32)
    assert prepare_calibration(cnn, dataset).sha256 == reference
    assert prepare_calibration(cnn, (x[i] for i in range(120))).sha256 == reference
    assert prepare_calibration(cnn, lambda: iter([x[:60], x[60:120]])).sha256 == reference
    assert prepare_calibration(cnn, tf.data.Dataset.from_tensor_slices(x).batch(64)).count == 200


def test_multi_input_list(flavor):
    model = _two_input_model(flavor)
    rng = np.random.default_rng(0)
    calib = prepare_calibration(model, [rng.normal(size=(30, 4)), rng.normal(size=(30, 3))])
    assert [a.shape for a in calib.arrays] == [(30, 4), (30, 3)]
    assert [a.dtype for a in calib.arrays] == [np.float32, np.float32]
    with pytest.raises(CalibrationError, match="has 1 array\\(s\\) but the model has 2 input"):
        prepare_calibration(model, rng.normal(size=(30, 4)))


def _bad_cases(x):
    nan = x[:100].copy()
    nan[37, 2, 3, 0] = np.nan
    inf = x[:100].copy()
    inf[5, 0, 0, 0] = np.inf
    return [
        (x[:0], r"is empty"),
        (nan, r"NaN or Inf, first in sample 37.*sample_index=37"),
        (inf, r"first in sample 5"),
        (x[:100, :, :4], r"does not fit the model's input shape.*\(None, 8, 8, 1\)"),
        (x[:100].reshape(100, 64), r"\(None, 8, 8, 1\)"),
        ((x[:100] * 16).astype("int64"), r"wrong dtype.*dtype='int64'"),
        (np.full((1, 8, 8, 1), 0.5, "float32"), r"a single sample"),
        (np.repeat(x[:1], 50, axis=0), r"All 50 samples .* are identical"),
        ("digits.npy", r"unsupported type"),
        ((x[:100], x[:100]), r"has 2 array\(s\) but the model has 1 input"),
    ]


@pytest.mark.parametrize("case", range(10))
def test_bad_calibration_raises_before_conversion(cnn, x, tmp_path, monkeypatch, case):
    data, match = _bad_cases(x)[case]

    def no_conversion(*args, **kwargs):
        raise AssertionError("the converter must not run on bad calibration data")

    monkeypatch.setattr(exporter, "convert", no_conversion)
    path = tmp_path / "model.tflite"
    with pytest.raises(CalibrationError, match=match):
        tfgreen.export_tflite(cnn, path, target="edge-cpu", calibration_data=data)
    assert not path.exists()


def test_bad_validation_data(cnn, digits):
    (_, _), (x_test, y_test) = digits
    bad = x_test.copy()
    bad[3, 0, 0, 0] = np.nan
    with pytest.raises(CalibrationError, match=r"validation_data.*first in sample 3"):
        prepare_validation(cnn, (bad, y_test))
    with pytest.raises(CalibrationError, match="different numbers of inputs and labels"):
        prepare_validation(cnn, (x_test, y_test[:10]))
    checked = prepare_validation(cnn, (x_test, np.eye(10)[y_test]))
    np.testing.assert_array_equal(checked.labels, y_test[checked.indices])


def test_validation_from_dataset_keeps_labels(cnn, digits):
    (_, _), (x_test, y_test) = digits
    dataset = tf.data.Dataset.from_tensor_slices((x_test, y_test)).batch(50)
    from_dataset = prepare_validation(cnn, dataset)
    from_arrays = prepare_validation(cnn, (x_test, y_test))
    assert from_dataset.sha256 == from_arrays.sha256
    np.testing.assert_array_equal(from_dataset.labels, from_arrays.labels)
    unlabeled = prepare_validation(cnn, (x_test[i] for i in range(30)))
    assert unlabeled.count == 30 and unlabeled.labels is None
