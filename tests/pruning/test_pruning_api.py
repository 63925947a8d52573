"""`tfgreen.prune` arguments: layer choice, flavours, bad input (no training here)."""

import numpy as np
import pytest

import tfgreen
from tfgreen.errors import TfgreenTypeError, TfgreenValueError, UnsupportedLayerError
from tfgreen.models import small_cnn, small_mlp
from tfgreen.pruning.api import pruned_layers


@pytest.fixture
def mlp(flavor):
    return small_mlp(flavor, hidden=(32, 16))


def test_prune_returns_same_flavour_and_leaves_model_alone(flavor, mlp, keras):
    before = [w.copy() for w in mlp.get_weights()]
    pruned = tfgreen.prune(mlp)
    assert isinstance(pruned, keras.Model)
    assert [w.layer.name for w in pruned_layers(pruned)] == ["dense1", "dense2", "output"]
    for layer in pruned_layers(pruned):
        np.testing.assert_array_equal(
            layer.layer.get_weights()[0], mlp.get_layer(layer.layer.name).get_weights()[0]
        )
    pruned_layers(pruned)[0].layer.kernel.assign(np.zeros((64, 32), "float32"))
    for old, new in zip(before, mlp.get_weights(), strict=True):
        np.testing.assert_array_equal(old, new)
    x = np.random.rand(4, 64).astype("float32")
    np.testing.assert_allclose(pruned_layers(tfgreen.prune(mlp))[0](x), mlp.layers[0](x), atol=1e-6)


def test_layers_by_name_or_predicate(flavor, mlp):
    by_name = tfgreen.prune(mlp, layers=["dense2"])
    assert [w.layer.name for w in pruned_layers(by_name)] == ["dense2"]
    by_predicate = tfgreen.prune(mlp, layers=lambda layer: layer.name != "output")
    assert [w.layer.name for w in pruned_layers(by_predicate)] == ["dense1", "dense2"]


def test_structure_skips_layers_whose_channels_do_not_divide(flavor):
    # conv1 has 1 input channel, so 2:4 cannot apply to it.
    pruned = tfgreen.prune(small_cnn(flavor), structure="2:4")
    assert [w.layer.name for w in pruned_layers(pruned)] == ["conv2", "dense1", "output"]
    with pytest.raises(UnsupportedLayerError, match="'conv1' has 1 input channels"):
        tfgreen.prune(small_cnn(flavor), structure="2:4", layers=["conv1"])


def test_sparsity_of_plain_model(flavor, mlp):
    kernel = mlp.get_layer("dense2").get_weights()
    kernel[0][:16] = 0
    mlp.get_layer("dense2").set_weights(kernel)
    assert tfgreen.sparsity(mlp) == {"dense1": 0.0, "dense2": 0.5, "output": 0.0}


@pytest.mark.parametrize("value", [1.0, -0.1, 1.5, "0.5", True])
def test_bad_sparsity(flavor, mlp, value):
    with pytest.raises(TfgreenValueError, match=r"`sparsity` must be .*Received: sparsity="):
        tfgreen.prune(mlp, sparsity=value)


@pytest.mark.parametrize("structure", ["3:2", "a:b", "2:2", "0:4", "2-4", 24])
def test_bad_structure(flavor, mlp, structure):
    with pytest.raises(TfgreenValueError, match=r"not a valid 'm:n' pattern.*Received: structure="):
        tfgreen.prune(mlp, structure=structure)


def test_no_prunable_layers(flavor, keras):
    model = keras.Sequential(
        [keras.Input((8, 8, 1)), keras.layers.Flatten(), keras.layers.Dropout(0.1)]
    )
    with pytest.raises(UnsupportedLayerError, match="no layer to prune"):
        tfgreen.prune(model)


def test_unknown_layer_names(flavor, mlp):
    with pytest.raises(TfgreenValueError, match=r"does not have: \['dense9'\].*dense1"):
        tfgreen.prune(mlp, layers=["dense1", "dense9"])


def test_layer_without_kernel(flavor):
    with pytest.raises(UnsupportedLayerError, match="'pool1' .* has no kernel"):
        tfgreen.prune(small_cnn(flavor), layers=["pool1"])


def test_bad_layers_and_schedule_and_model(flavor, mlp):
    with pytest.raises(TfgreenTypeError, match="layer names or a predicate"):
        tfgreen.prune(mlp, layers=[1, 2])
    with pytest.raises(
        TfgreenValueError, match="Unknown `schedule`.*'polynomial', 'constant'.*schedule='cubic'"
    ):
        tfgreen.prune(mlp, schedule="cubic")
    with pytest.raises(TfgreenTypeError, match="not a Keras model"):
        tfgreen.prune("model.keras")


def test_unbuilt_model(flavor, keras):
    model = keras.Sequential([keras.layers.Dense(4)])
    with pytest.raises(TfgreenValueError, match="not built"):
        tfgreen.prune(model)


def test_strip_needs_pruned_model(flavor, mlp):
    with pytest.raises(TfgreenValueError, match="no pruning wrappers"):
        tfgreen.strip(mlp)


def test_callback_verbose_validated():
    with pytest.raises(TfgreenValueError, match="verbose=5"):
        tfgreen.callbacks.Pruning(verbose=5)


def _xnnpack_model(keras):
    inputs = keras.Input((8, 8, 3))
    x = keras.layers.ZeroPadding2D(1)(inputs)
    x = keras.layers.Conv2D(8, 3, strides=2, name="stem")(x)
    x = keras.layers.Conv2D(16, 1, name="pointwise")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    return keras.Model(inputs, keras.layers.Dense(10, name="head")(x))


def test_for_xnnpack(flavor, keras):
    model = _xnnpack_model(keras)
    if flavor == "keras3":
        with pytest.raises(TfgreenValueError, match="only for tf_keras"):
            tfgreen.prune(model, for_xnnpack=True)
        return
    pruned = tfgreen.prune(model, for_xnnpack=True)
    assert [w.layer.name for w in pruned_layers(pruned)] == ["pointwise"]
    with pytest.raises(UnsupportedLayerError, match="XNNPACK latency pruning policy"):
        tfgreen.prune(small_cnn(flavor), for_xnnpack=True)


def test_keras3_mask_math():
    from keras import ops

    from tfgreen._magnitude import magnitude_mask
    from tfgreen.pruning._keras3 import _m_by_n_mask

    weights = np.array([[0.5, -0.1], [0.05, 0.9], [-0.3, 0.2], [0.01, -0.7]], "float32")
    mask = magnitude_mask(ops.convert_to_numpy(ops.convert_to_tensor(weights)), 0.4)
    # 0.4 * 8 = 3.2 -> the 3 smallest magnitudes: 0.01, 0.05, 0.1.
    np.testing.assert_array_equal(mask, [[1, 0], [0, 1], [1, 1], [0, 1]])
    # Dense kernel (in=4, out=2): per output column, keep the 2 largest of each 4 inputs.
    mask = ops.convert_to_numpy(_m_by_n_mask(ops.convert_to_tensor(weights), 2, 4, 0))
    np.testing.assert_array_equal(mask, [[1, 0], [0, 1], [1, 0], [0, 1]])
