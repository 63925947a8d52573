import numpy as np
import pytest

import tfgreen
from tfgreen.errors import TfgreenFileNotFoundError, TfgreenValueError, UntrustedModelError
from tfgreen.flavor import flavor_of
from tfgreen.models import small_mlp


def _lambda_model(keras):
    return keras.Sequential(
        [keras.Input((4,)), keras.layers.Lambda(lambda t: t * 2.0), keras.layers.Dense(2)]
    )


def test_keras_file_round_trips_in_its_flavor(flavor, tmp_path):
    model = small_mlp(flavor, input_dim=4, hidden=(8,), num_classes=3)
    path = tmp_path / "m.keras"
    model.save(path)
    loaded = tfgreen.load_model(path)
    assert flavor_of(loaded) == flavor
    x = np.random.default_rng(0).normal(size=(5, 4)).astype("float32")
    np.testing.assert_allclose(loaded.predict(x, verbose=0), model.predict(x, verbose=0), atol=1e-6)


def test_lambda_layer_refused_unless_trusted(keras, tmp_path):
    path = tmp_path / "lambda.keras"
    _lambda_model(keras).save(path)
    with pytest.raises(UntrustedModelError, match=r"Lambda.*trusted=True.*Received: path="):
        tfgreen.load_model(path)
    model = tfgreen.load_model(path, trusted=True)
    assert len(model.layers) == 2


def test_h5_refused_unless_trusted(keras, flavor, tmp_path):
    path = tmp_path / "m.h5"
    small_mlp(flavor, input_dim=4, hidden=(8,)).save(path)
    with pytest.raises(UntrustedModelError, match=r"HDF5.*trusted=True"):
        tfgreen.load_model(path)
    assert flavor_of(tfgreen.load_model(path, trusted=True)) == flavor


def test_savedmodel_refused_unless_trusted(tmp_path):
    import tf_keras

    path = tmp_path / "saved"
    small_mlp("tf_keras", input_dim=4, hidden=(8,)).save(path, save_format="tf")
    with pytest.raises(UntrustedModelError, match=r"SavedModel.*trusted=True"):
        tfgreen.load_model(path)
    assert isinstance(tfgreen.load_model(path, trusted=True), tf_keras.Model)


def test_missing_file(tmp_path):
    with pytest.raises(TfgreenFileNotFoundError, match=r"does not exist.*Received: path="):
        tfgreen.load_model(tmp_path / "nope.keras")


@pytest.mark.parametrize("name", ["model.pt", "model.onnx"])
def test_unknown_suffix(tmp_path, name):
    path = tmp_path / name
    path.write_bytes(b"\0" * 10)
    with pytest.raises(TfgreenValueError, match=r"Unknown model file type.*\.keras"):
        tfgreen.load_model(path)


def test_corrupt_keras_file(tmp_path):
    path = tmp_path / "broken.keras"
    path.write_bytes(b"not a zip at all")
    with pytest.raises(TfgreenValueError, match="not a valid Keras archive"):
        tfgreen.load_model(path)
