"""QAT on a model with BN, depthwise, ReLU6, Add, pooling, Concatenate; layer configs; save/load."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import tfgreen
from tfgreen.quantization.ptq import convert
from tfgreen.tflite.read import read_tflite
from tfgreen.tflite.runner import TfliteRunner

ROOT = Path(__file__).resolve().parents[2]
_BLOCKS: dict = {}


def _block_model(keras):
    """Conv-BN-ReLU, depthwise-BN-ReLU6, residual Add, pooling, Concatenate, Dropout."""
    layers = keras.layers
    inputs = keras.Input((8, 8, 1))
    x = layers.Conv2D(16, 3, padding="same", use_bias=False, name="conv1")(inputs)
    x = layers.BatchNormalization(momentum=0.9, name="bn1")(x)
    x = layers.ReLU(name="relu1")(x)
    y = layers.DepthwiseConv2D(3, padding="same", use_bias=False, name="depthwise")(x)
    y = layers.BatchNormalization(momentum=0.9, name="bn2")(y)
    y = layers.ReLU(6.0, name="relu6")(y)
    x = layers.Add(name="add")([x, y])
    x = layers.AveragePooling2D(2, name="avgpool")(x)
    x = layers.Conv2D(16, 1, activation="relu", name="conv2")(x)
    x = layers.MaxPooling2D(2, name="maxpool")(x)
    merged = layers.Concatenate(name="concat")(
        [layers.GlobalAveragePooling2D(name="gap")(x), layers.Flatten(name="flatten")(x)]
    )
    merged = layers.Dropout(0.1, name="dropout")(merged)
    outputs = layers.Dense(10, activation="softmax", name="output")(merged)
    return keras.Model(inputs, outputs, name="blocks")


@pytest.fixture
def blocks(flavor, keras, digits):
    """The block model trained in float, then QAT fine-tuned and exported (cached per flavour)."""
    if flavor not in _BLOCKS:
        (x_train, y_train), (x_test, y_test) = digits
        keras.utils.set_random_seed(0)
        model = _block_model(keras)
        model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
        model.fit(x_train, y_train, epochs=6, batch_size=32, verbose=0)
        qat = tfgreen.quantize_aware(model)
        qat.compile(keras.optimizers.Adam(1e-4), "sparse_categorical_crossentropy")
        qat.fit(x_train, y_train, epochs=2, batch_size=32, verbose=0)
        data = convert(qat, "int8", io_dtype="int8", allow_float_ops=False)
        _BLOCKS[flavor] = {
            "float": np.argmax(model.predict(x_test, verbose=0), 1),
            "qat": np.argmax(qat.predict(x_test, verbose=0), 1),
            "int8": np.argmax(TfliteRunner(data).predict(x_test), 1),
            "info": read_tflite(data),
            "labels": y_test,
        }
    return _BLOCKS[flavor]


def test_block_model_exports_all_int8_with_folded_batchnorm(blocks):
    info = blocks["info"]
    float_ops = [
        op.name for op in info.ops if any(info.tensors[i].dtype == "float32" for i in op.inputs)
    ]
    assert float_ops == []
    names = set(info.op_names)
    assert {"CONV_2D", "DEPTHWISE_CONV_2D", "ADD", "FULLY_CONNECTED", "SOFTMAX"} <= names
    # BatchNormalization folded into the convolutions: no separate scale/shift ops.
    assert "MUL" not in names
    assert info.op_names.count("ADD") == 1  # only the residual Add
    for op in info.ops:
        if op.name in ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED"):
            assert info.tensors[op.inputs[1]].dtype == "int8"
            assert info.tensors[op.inputs[2]].dtype == "int32"


def test_block_model_keeps_accuracy(blocks):
    labels = blocks["labels"]
    float_acc = np.mean(blocks["float"] == labels)
    int8_acc = np.mean(blocks["int8"] == labels)
    assert float_acc > 0.85
    assert int8_acc >= float_acc - 0.02
    assert np.mean(blocks["int8"] == blocks["qat"]) >= 0.97


def test_keras3_batchnorm_folding_matches_float_model(digits):
    import keras

    (x_train, y_train), (x_test, _) = digits
    keras.utils.set_random_seed(0)
    model = _block_model(keras)
    model.compile("adam", "sparse_categorical_crossentropy")
    model.fit(x_train, y_train, epochs=3, batch_size=64, verbose=0)
    qat = tfgreen.quantize_aware(model)
    names = [layer.name for layer in qat.layers]
    assert "bn1" not in names and "bn2" not in names and "relu1" not in names
    assert qat.get_layer("conv1").activation.__name__ == "relu"
    assert qat.get_layer("depthwise").activation.__name__ == "relu6"
    # One forward pass in training mode sets the int8 ranges from data.
    qat(x_train[:512], training=True)
    agree = np.mean(
        np.argmax(qat.predict(x_test, verbose=0), 1)
        == np.argmax(model.predict(x_test, verbose=0), 1)
    )
    assert agree >= 0.95


def test_keras3_layers_round_trip_config():
    import keras

    from tfgreen.quantization.keras3_layers import (
        ActivationQuantizer,
        QuantConv2D,
        QuantDense,
        QuantDepthwiseConv2D,
    )

    for layer in (
        ActivationQuantizer(decay=0.9, name="q"),
        QuantDense(4, activation="relu6", keep_zeros=True, decay=0.95),
        QuantConv2D(8, 3, padding="same", keep_zeros=False),
        QuantDepthwiseConv2D(3, activation="relu"),
    ):
        config = layer.get_config()
        clone = type(layer).from_config(config)
        assert clone.get_config() == config
        restored = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(layer))
        assert type(restored) is type(layer)


def test_qat_model_saves_and_loads(flavor, keras, digits, tmp_path):
    (x_train, y_train), (x_test, _) = digits
    model = tfgreen.models.small_cnn(flavor, filters=8)
    qat = tfgreen.quantize_aware(model)
    qat.compile("adam", "sparse_categorical_crossentropy")
    qat.fit(x_train[:256], y_train[:256], epochs=1, batch_size=32, verbose=0)
    expected = qat.predict(x_test, verbose=0)
    if flavor == "keras3":
        path = tmp_path / "qat.keras"
        qat.save(path)
        loaded = tfgreen.load_model(path)
    else:
        qat.save(tmp_path / "qat.keras")
        with pytest.raises(tfgreen.errors.TfgreenValueError, match=r"save\('model.h5'\)"):
            tfgreen.load_model(tmp_path / "qat.keras")
        path = tmp_path / "qat.h5"
        qat.save(path)
        loaded = tfgreen.load_model(path, trusted=True)
    np.testing.assert_allclose(loaded.predict(x_test, verbose=0), expected, atol=1e-6)
    # Training goes on from the saved ranges, and the export is still int8.
    loaded.fit(x_train[:64], y_train[:64], epochs=1, verbose=0)
    info = read_tflite(convert(loaded, "int8", io_dtype="int8", allow_float_ops=False))
    assert info.tensors[info.inputs[0]].dtype == "int8"


def test_batchnorm_that_cannot_fold_stays_float_and_named(flavor, keras):
    layers = keras.layers
    inputs = keras.Input((8, 8, 1))
    x = layers.MaxPooling2D(2, name="pool")(inputs)
    x = layers.BatchNormalization(name="lonely_bn")(x)
    x = layers.Flatten(name="flatten")(x)
    outputs = layers.Dense(10, activation="softmax", name="output")(x)
    model = keras.Model(inputs, outputs)
    # Nothing to fold into: it stays float, and the report says why.
    why = tfgreen.quantize_aware(model).quantization_report["float"]["lonely_bn"]
    assert why.startswith("BatchNormalization")
    qat = tfgreen.quantize_aware(model, keep_float=["lonely_bn"])
    # tfmot wraps the float layer to quantize its output (`quant_lonely_bn`).
    assert any(layer.name.endswith("lonely_bn") for layer in qat.layers)


def test_keras3_path_never_imports_tfmot(tmp_path, python_run):
    script = tmp_path / "no_tfmot.py"
    script.write_text(
        "import os, sys\n"
        "import tfgreen\n"
        "from tfgreen.models import small_cnn\n"
        "qat = tfgreen.quantize_aware(small_cnn('keras3', filters=4))\n"
        f"qat.save({str(tmp_path / 'q.keras')!r})\n"
        f"tfgreen.load_model({str(tmp_path / 'q.keras')!r})\n"
        "print('tensorflow_model_optimization' in sys.modules, os.environ.get('TF_USE_LEGACY_KERAS'))\n"
    )
    done = python_run(str(script))
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip().splitlines()[-1] == "False None"


def test_two_input_model(flavor, keras, digits_flat):
    (x_train, y_train), (x_test, _) = digits_flat
    left, right = keras.Input((32,), name="left"), keras.Input((32,), name="right")
    merged = keras.layers.Add(name="add")(
        [
            keras.layers.Dense(16, activation="relu", name="left_dense")(left),
            keras.layers.Dense(16, activation="relu", name="right_dense")(right),
        ]
    )
    outputs = keras.layers.Dense(10, activation="softmax", name="output")(merged)
    qat = tfgreen.quantize_aware(keras.Model([left, right], outputs))
    qat.compile(keras.optimizers.Adam(0.01), "sparse_categorical_crossentropy")
    qat.fit([x_train[:, :32], x_train[:, 32:]], y_train, epochs=5, batch_size=32, verbose=0)
    data = convert(qat, "int8", io_dtype="int8", allow_float_ops=False)
    info = read_tflite(data)
    assert [info.tensors[i].dtype for i in info.inputs] == ["int8", "int8"]
    assert info.op_names.count("FULLY_CONNECTED") == 3 and "ADD" in info.op_names
    halves = [x_test[:, :32], x_test[:, 32:]]
    agree = np.mean(
        np.argmax(TfliteRunner(data).predict(halves), 1)
        == np.argmax(qat.predict(halves, verbose=0), 1)
    )
    assert agree >= 0.95


@pytest.mark.parametrize("kind", ["conv", "depthwise", "dense"])
def test_keras3_batchnorm_fold_is_exact(kind, seed):
    import keras

    from tfgreen.quantization._keras3 import _folded_weights

    rng = np.random.default_rng(seed)
    shape, make = {
        "conv": ((6, 6, 3), lambda: keras.layers.Conv2D(4, 3, use_bias=True)),
        "depthwise": ((6, 6, 3), lambda: keras.layers.DepthwiseConv2D(3, depth_multiplier=2)),
        "dense": ((5,), lambda: keras.layers.Dense(4)),
    }[kind]
    inputs = keras.Input(shape)
    layer, bn = make(), keras.layers.BatchNormalization()
    model = keras.Model(inputs, bn(layer(inputs)))
    channels = bn.moving_mean.shape[0]
    bn.set_weights(
        [
            rng.uniform(0.5, 2, channels),
            rng.normal(size=channels),
            rng.normal(size=channels),
            rng.uniform(0.5, 2, channels),
        ]
    )
    kernel, bias = _folded_weights(layer, bn)
    folded = make()
    folded.build((None, *shape))
    folded.set_weights([kernel, bias])
    x = rng.normal(size=(8, *shape)).astype("float32")
    np.testing.assert_allclose(np.asarray(folded(x)), model.predict(x, verbose=0), atol=1e-4)
