"""structure='channels' and 'heads': whole filters, units and heads masked in fit(), cut out by strip."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import tfgreen
from tfgreen.errors import TfgreenError, UnsupportedLayerError

_CNN: dict = {}


def _fit(model, x, y, epochs: int, **kwargs):
    return model.fit(
        x,
        y,
        epochs=epochs,
        batch_size=32,
        verbose=0,
        callbacks=[tfgreen.callbacks.Pruning()],
        **kwargs,
    )


@pytest.fixture
def cnn_channels(flavor, trained_cnn, digits, compiled):
    """The digits CNN pruned to 50% channels with 3 epochs of fine-tuning, and its strip."""
    if flavor not in _CNN:
        (x_train, y_train), _ = digits
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the output layer stays dense (never pruned)
            pruned = compiled(tfgreen.prune(trained_cnn, 0.5, structure="channels"))
        _fit(pruned, x_train, y_train, epochs=3)
        _CNN[flavor] = (pruned, tfgreen.strip(pruned))
    return _CNN[flavor]


def test_channels_cnn_is_smaller_and_exact(cnn_channels, trained_cnn, digits):
    pruned, slim = cnn_channels
    _, (x_test, y_test) = digits
    widths = {
        layer.name: layer.get_config().get("filters", layer.get_config().get("units"))
        for layer in slim.layers
        if layer.weights
    }
    assert widths == {"conv1": 8, "conv2": 16, "dense1": 32, "output": 10}
    assert slim.count_params() <= 0.55 * trained_cnn.count_params()
    masked = pruned.predict(x_test, verbose=0)
    np.testing.assert_allclose(slim.predict(x_test, verbose=0), masked, atol=1e-5)
    assert not np.allclose(masked, trained_cnn.predict(x_test, verbose=0), atol=1e-3)
    dense_accuracy = trained_cnn.evaluate(x_test, y_test, verbose=0)[1]
    slim.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    assert slim.evaluate(x_test, y_test, verbose=0)[1] >= dense_accuracy - 0.02


def test_channels_cnn_exports_smaller_tflite(cnn_channels, trained_cnn, digits, tmp_path):
    _, slim = cnn_channels
    _, (x_test, y_test) = digits
    report = tfgreen.export_tflite(
        slim, tmp_path / "slim.tflite", target="cpu", validation_data=(x_test[:64], y_test[:64])
    )
    dense = tfgreen.export_tflite(trained_cnn, tmp_path / "dense.tflite", target="cpu")
    assert report.size_bytes < 0.4 * dense.size_bytes
    assert report.parity["top1_agreement"] == 1.0


def _followers_model(keras):
    """Conv -> BN -> ReLU -> DepthwiseConv -> BN -> Conv1x1 -> BN -> GAP -> Dense."""
    layers = keras.layers
    keras.utils.set_random_seed(0)
    inputs = keras.Input((8, 8, 1))
    x = layers.Conv2D(8, 3, padding="same", use_bias=False, name="c1")(inputs)
    x = layers.ReLU(name="r1")(layers.BatchNormalization(name="bn1")(x))
    x = layers.DepthwiseConv2D(3, padding="same", name="dw")(x)
    x = layers.Activation("relu", name="r2")(layers.BatchNormalization(name="bn2")(x))
    x = layers.Conv2D(12, 1, activation="relu", name="c2")(x)
    x = layers.GlobalAveragePooling2D(name="gap")(x)
    outputs = layers.Dense(10, activation="softmax", name="out")(layers.Dropout(0.1)(x))
    return keras.Model(inputs, outputs)


def test_channels_follow_batchnorm_and_depthwise(keras, digits, compiled):
    (x_train, y_train), (x_test, _) = digits
    pruned = compiled(tfgreen.prune(_followers_model(keras), 0.5, structure="channels"))
    _fit(pruned, x_train[:512], y_train[:512], epochs=2)
    slim = tfgreen.strip(pruned)
    shapes = {layer.name: [tuple(w.shape) for w in layer.weights] for layer in slim.layers}
    assert shapes["c1"] == [(3, 3, 1, 4)]
    assert shapes["bn1"] == [(4,)] * 4 and shapes["bn2"] == [(4,)] * 4
    assert shapes["dw"] == [(3, 3, 4, 1), (4,)]
    assert shapes["c2"] == [(1, 1, 4, 6), (6,)] and shapes["out"] == [(6, 10), (10,)]
    np.testing.assert_allclose(
        slim.predict(x_test, verbose=0), pruned.predict(x_test, verbose=0), atol=1e-5
    )


def test_residual_join_stays_dense_with_warning(keras):
    layers = keras.layers
    inputs = keras.Input((6,))
    a = layers.Dense(8, activation="relu", name="a")(inputs)
    b = layers.Dense(8, name="b")(a)
    hidden = layers.Dense(16, activation="relu", name="hidden")(layers.Add(name="join")([a, b]))
    model = keras.Model(inputs, layers.Dense(2, name="out")(hidden))
    with pytest.warns(UserWarning, match=r"leaves 2 layer\(s\) dense: 'a': it feeds Add 'join'"):
        pruned = tfgreen.prune(model, 0.5, structure="channels")
    assert [w.layer.name for w in tfgreen.pruning.api.pruned_layers(pruned)] == ["hidden"]
    assert tfgreen.strip(pruned).get_layer("a").units == 8


def test_heads_tiny_lm(flavor, keras, text_data, tmp_path):
    from tfgreen.datasets import next_token_targets
    from tfgreen.models import tiny_gpt

    lm = tiny_gpt(
        flavor, vocab_size=512, seq_len=32, embed_dim=32, num_heads=4, num_layers=1, ff_dim=64
    )
    pruned = tfgreen.prune(lm, 0.5, schedule="constant", structure="heads")
    pruned.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    x = text_data.train[:64]
    y, weights = next_token_targets(x)
    _fit(pruned, x, y, epochs=1, sample_weight=weights)
    slim = tfgreen.strip(pruned)
    heads = {
        layer.name: layer.get_config()["num_heads"]
        for layer in slim.layers
        if "attention" in layer.name
    }
    assert heads == {"block0_attention": 2}
    assert slim.count_params() < lm.count_params() - 2000
    ids = text_data.val[:16]
    np.testing.assert_allclose(
        slim.predict(ids, verbose=0), pruned.predict(ids, verbose=0), atol=1e-5
    )
    report = tfgreen.export_tflite(slim, tmp_path / "lm.tflite", target="cpu")
    assert report.size_bytes > 0


@pytest.mark.parametrize(
    ("structure", "error", "match"),
    [
        (
            "rows",
            TfgreenError,
            r"not a valid 'm:n' pattern.*'channels'.*Received: structure='rows'",
        ),
        ("heads", UnsupportedLayerError, r"found no MultiHeadAttention layer"),
    ],
)
def test_bad_structure(flavor, structure, error, match):
    from tfgreen.models import small_mlp

    model = small_mlp(flavor, hidden=(8,))
    with pytest.raises(error, match=match):
        tfgreen.prune(model, 0.5, structure=structure)


def test_sparsity_that_removes_every_channel(flavor):
    from tfgreen.models import small_mlp

    model = small_mlp(flavor, hidden=(4,))
    with pytest.raises(ValueError, match=r"would remove all 4 channels of 'dense1'"):
        tfgreen.prune(model, 0.9, structure="channels")


def test_nothing_to_prune(keras):
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2, name="out")])
    with pytest.raises(UnsupportedLayerError, match="found no layer whose channels"):
        tfgreen.prune(model, 0.5, structure="channels")


def test_named_layer_that_cannot_lose_channels(flavor):
    from tfgreen.models import small_mlp

    with pytest.raises(UnsupportedLayerError, match=r"can't prune 'output': its output is the"):
        tfgreen.prune(small_mlp(flavor, hidden=(8,)), 0.5, structure="channels", layers=["output"])


def test_subclassed_model_is_refused(keras):
    class Net(keras.Model):
        def __init__(self):
            super().__init__()
            self.hidden = keras.layers.Dense(8)
            self.out = keras.layers.Dense(2)

        def call(self, x):
            return self.out(self.hidden(x))

    model = Net()
    model(np.zeros((1, 4), "float32"))
    with pytest.raises(
        UnsupportedLayerError, match="needs its layer graph.*Functional or Sequential"
    ):
        tfgreen.prune(model, 0.5, structure="channels")


@pytest.mark.parametrize(("structure", "kept"), [("channels", [1, 2]), ("channels:l1", [0, 2])])
def test_norm_chooses_the_channels(keras, structure, kept):
    # Columns: L2 2.0 / L1 4.0, L2 2.5 / L1 2.5, large, tiny: L2 and L1 drop different ones.
    kernel = np.array(
        [[1.0, 2.5, 3.0, 0.1], [1.0, 0.0, 3.0, 0.1], [1.0, 0.0, 3.0, 0.1], [1.0, 0.0, 3.0, 0.1]]
    )
    model = keras.Sequential(
        [keras.Input((4,)), keras.layers.Dense(4, name="hidden"), keras.layers.Dense(2, name="out")]
    )
    model.get_layer("hidden").set_weights([kernel, np.zeros(4)])
    pruned = tfgreen.prune(model, 0.5, schedule="constant", structure=structure)
    pruned.compile(keras.optimizers.SGD(learning_rate=0.0), "mse")
    _fit(pruned, np.zeros((8, 4)), np.zeros((8, 2)), epochs=1)
    np.testing.assert_allclose(
        tfgreen.strip(pruned).get_layer("hidden").get_weights()[0], kernel[:, kept]
    )


def test_keras3_reloaded_channels_model_strips_but_does_not_train(digits, tmp_path, compiled):
    from tfgreen.models import small_cnn

    (x_train, y_train), (x_test, _) = digits
    pruned = compiled(tfgreen.prune(small_cnn("keras3"), 0.5, "constant", "channels", ["conv1"]))
    _fit(pruned, x_train[:64], y_train[:64], epochs=1)
    pruned.save(tmp_path / "pruned.keras")
    loaded = compiled(tfgreen.load_model(tmp_path / "pruned.keras"))
    slim = tfgreen.strip(loaded)
    assert slim.get_layer("conv1").filters == 8
    np.testing.assert_allclose(
        slim.predict(x_test, verbose=0), pruned.predict(x_test, verbose=0), atol=1e-5
    )
    with pytest.raises(ValueError, match="was loaded from a file.*prune the stripped model again"):
        _fit(loaded, x_train[:64], y_train[:64], epochs=1)
