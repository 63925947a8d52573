"""quantize_aware on both Kerases: int8 export without calibration, accuracy, sparsity, errors."""

from __future__ import annotations

import numpy as np
import pytest

import tfgreen
from tfgreen.flavor import flavor_of
from tfgreen.quantization.ptq import convert
from tfgreen.tflite.read import read_tflite
from tfgreen.tflite.runner import TfliteRunner

_KERNEL_OPS = ("CONV_2D", "FULLY_CONNECTED", "DEPTHWISE_CONV_2D")
_QAT: dict = {}


def _accuracy(probabilities, labels) -> float:
    return float(np.mean(np.argmax(probabilities, axis=1) == labels))


def _compile(model):
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def _copy(model):
    """A same-flavour copy of a trained model, with its weights."""
    from tfgreen.flavor import keras_for

    clone = keras_for(model).models.clone_model(model)
    clone.set_weights(model.get_weights())
    return clone


@pytest.fixture
def qat_run(flavor, trained_cnn, digits):
    """Fine-tunes quantize_aware(trained_cnn) two epochs and exports int8 (cached per flavour)."""
    if flavor not in _QAT:
        (x_train, y_train), (x_test, y_test) = digits
        qat = _compile(tfgreen.quantize_aware(trained_cnn))
        qat.fit(x_train, y_train, epochs=2, batch_size=32, verbose=0)
        data = convert(qat, "int8", io_dtype="int8", allow_float_ops=False)
        _QAT[flavor] = {
            "model": qat,
            "bytes": data,
            "float_acc": _accuracy(trained_cnn.predict(x_test, verbose=0), y_test),
            "qat_acc": _accuracy(qat.predict(x_test, verbose=0), y_test),
            "int8_acc": _accuracy(TfliteRunner(data).predict(x_test), y_test),
        }
    return _QAT[flavor]


def test_same_flavour_and_original_untouched(flavor, trained_cnn, qat_run, digits):
    assert flavor_of(qat_run["model"]) == flavor
    (_, _), (x_test, y_test) = digits
    # The float model keeps its own weights: its accuracy is unchanged by QAT.
    assert _accuracy(trained_cnn.predict(x_test, verbose=0), y_test) == qat_run["float_acc"]


def test_int8_export_needs_no_calibration_and_is_int8(qat_run):
    info = read_tflite(qat_run["bytes"])
    kernels = [op for op in info.ops if op.name in _KERNEL_OPS]
    assert [op.name for op in kernels] == [
        "CONV_2D",
        "CONV_2D",
        "FULLY_CONNECTED",
        "FULLY_CONNECTED",
    ]
    for op in kernels:
        data, weights, bias = (info.tensors[i] for i in op.inputs[:3])
        assert (data.dtype, weights.dtype, bias.dtype) == ("int8", "int8", "int32")
        assert info.tensors[op.outputs[0]].dtype == "int8"
        assert weights.scale and all(s > 0 for s in weights.scale)
    # Per-channel weight scales for the convolutions (one per output channel).
    assert len(info.tensors[kernels[0].inputs[1]].scale) == 16
    assert len(info.tensors[kernels[1].inputs[1]].scale) == 32
    assert [info.tensors[i].dtype for i in info.inputs + info.outputs] == ["int8", "int8"]
    assert "DEQUANTIZE" not in info.op_names
    float_ops = [
        op.name for op in info.ops if any(info.tensors[i].dtype == "float32" for i in op.inputs)
    ]
    assert float_ops == []


def test_qat_accuracy_within_half_point_of_float(qat_run):
    assert qat_run["float_acc"] > 0.85
    assert qat_run["int8_acc"] >= qat_run["float_acc"] - 0.005
    assert qat_run["qat_acc"] >= qat_run["float_acc"] - 0.005
    # The int8 file computes what the fake-quant model computed.
    assert abs(qat_run["int8_acc"] - qat_run["qat_acc"]) <= 0.01


def test_float_model_without_calibration_is_refused(trained_cnn):
    with pytest.raises(tfgreen.errors.CalibrationError, match="quantize_aware"):
        convert(trained_cnn, "int8")


def test_subset_of_layers_quantized(flavor, trained_cnn, digits):
    (x_train, y_train), _ = digits
    qat = _compile(tfgreen.quantize_aware(trained_cnn, layers=["conv1", "conv2"]))
    qat.fit(x_train[:256], y_train[:256], epochs=1, batch_size=32, verbose=0)
    info = read_tflite(convert(qat, "int8"))
    kinds = {
        (op.name, info.tensors[op.inputs[1]].dtype) for op in info.ops if op.name in _KERNEL_OPS
    }
    assert kinds == {("CONV_2D", "int8"), ("FULLY_CONNECTED", "float32")}
    with pytest.raises(tfgreen.errors.TargetError, match="FULLY_CONNECTED"):
        convert(qat, "int8", allow_float_ops=False)


def _sparse_copy(model, fraction: float):
    sparse = _copy(model)
    for layer in sparse.layers:
        if hasattr(layer, "kernel"):
            kernel = np.asarray(layer.kernel)
            cut = np.quantile(np.abs(kernel), fraction)
            layer.kernel.assign(np.where(np.abs(kernel) <= cut, 0.0, kernel).astype(np.float32))
    return sparse


def test_sparsity_preserved_through_qat_into_int8_file(flavor, trained_cnn, digits):
    (x_train, y_train), (x_test, y_test) = digits
    sparse = _sparse_copy(trained_cnn, 0.7)
    qat = _compile(tfgreen.quantize_aware(sparse))
    qat.fit(x_train, y_train, epochs=1, batch_size=32, verbose=0)
    data = convert(qat, "int8", io_dtype="int8")
    sparsity = read_tflite(data).weight_sparsity
    assert len(sparsity) == 4
    assert all(value >= 0.69 for value in sparsity.values()), sparsity
    assert _accuracy(TfliteRunner(data).predict(x_test), y_test) > 0.8

    plain = _compile(tfgreen.quantize_aware(sparse, preserve_sparsity=False))
    plain.fit(x_train, y_train, epochs=1, batch_size=32, verbose=0)
    drifted = read_tflite(convert(plain, "int8")).weight_sparsity
    assert min(drifted.values()) < 0.69, drifted


def test_unsupported_layer_stays_float_named_and_keep_float_works(flavor, keras, digits_flat):
    (x_train, y_train), _ = digits_flat
    model = keras.Sequential(
        [
            keras.Input((64,)),
            keras.layers.Dense(32, activation="relu", name="dense1"),
            keras.layers.LayerNormalization(name="norm"),
            keras.layers.Dense(10, activation="softmax", name="output"),
        ]
    )
    # A layer QAT can't make int8 stays float, named with the reason; nothing is refused.
    report = tfgreen.quantize_aware(model).quantization_report
    assert report["int8"] == ["dense1", "output"] and list(report["float"]) == ["norm"]
    assert "LayerNormalization" in report["float"]["norm"]
    qat = _compile(tfgreen.quantize_aware(model, keep_float=["norm"]))
    assert "not asked for" in qat.quantization_report["float"]["norm"]
    qat.fit(x_train[:256], y_train[:256], epochs=1, batch_size=32, verbose=0)
    info = read_tflite(convert(qat, "int8"))
    fc = [info.tensors[op.inputs[0]].dtype for op in info.ops if op.name == "FULLY_CONNECTED"]
    # The float island's output is quantized again for the int8 layer after it.
    assert fc == ["int8", "int8"]
    mean = [op for op in info.ops if op.name == "MEAN"]
    assert any(info.tensors[op.outputs[0]].dtype == "float32" for op in mean)  # `norm` is float


def test_bad_arguments_raise_before_work(flavor, trained_cnn):
    with pytest.raises(tfgreen.errors.TfgreenTypeError, match="not a Keras model"):
        tfgreen.quantize_aware("model.keras")
    with pytest.raises(tfgreen.errors.TfgreenValueError, match=r"does not have: \['conv9'\]"):
        tfgreen.quantize_aware(trained_cnn, layers=["conv1", "conv9"])
    with pytest.raises(tfgreen.errors.TfgreenValueError, match=r"keep_float.*\['dense7'\]"):
        tfgreen.quantize_aware(trained_cnn, keep_float=["dense7"])
    with pytest.raises(tfgreen.errors.TfgreenTypeError, match="list of layer names"):
        tfgreen.quantize_aware(trained_cnn, layers="conv1")
    with pytest.raises(tfgreen.errors.TfgreenTypeError, match="preserve_sparsity"):
        tfgreen.quantize_aware(trained_cnn, preserve_sparsity="yes")
    with pytest.raises(tfgreen.errors.TfgreenValueError, match="No layer is left"):
        tfgreen.quantize_aware(trained_cnn, layers=["conv1"], keep_float=["conv1"])
    with pytest.raises(
        tfgreen.errors.UnsupportedLayerError, match=r"conv1.*tfgreen\.strip\(model\)"
    ):
        tfgreen.quantize_aware(tfgreen.prune(trained_cnn, sparsity=0.5))


def test_unbuilt_and_subclassed_models_refused(flavor, keras):
    unbuilt = keras.Sequential([keras.layers.Dense(4)])
    with pytest.raises(tfgreen.errors.TfgreenValueError, match="not built"):
        tfgreen.quantize_aware(unbuilt)

    class Custom(keras.Model):
        def call(self, inputs):
            return inputs

    with pytest.raises(tfgreen.errors.TfgreenTypeError, match="Sequential or Functional"):
        tfgreen.quantize_aware(Custom())


def test_prune_strip_then_qat_keeps_zeros(flavor, digits_flat):
    from tfgreen.models import small_mlp

    (x_train, y_train), (x_test, y_test) = digits_flat
    dense = _compile(small_mlp(flavor, hidden=(64,), seed=0))
    dense.fit(x_train, y_train, epochs=5, batch_size=32, verbose=0)
    pruned = _compile(tfgreen.prune(dense, sparsity=0.8))
    pruned.fit(
        x_train,
        y_train,
        epochs=3,
        batch_size=32,
        verbose=0,
        callbacks=[tfgreen.callbacks.Pruning()],
    )
    slim = tfgreen.strip(pruned)
    assert min(tfgreen.sparsity(slim).values()) >= 0.79
    qat = _compile(tfgreen.quantize_aware(slim))
    qat.fit(x_train, y_train, epochs=1, batch_size=32, verbose=0)
    data = convert(qat, "int8", io_dtype="int8", allow_float_ops=False)
    sparsity = read_tflite(data).weight_sparsity
    assert len(sparsity) == 2 and min(sparsity.values()) >= 0.79, sparsity
    slim_acc = _accuracy(slim.predict(x_test, verbose=0), y_test)
    assert slim_acc > 0.85
    assert _accuracy(TfliteRunner(data).predict(x_test), y_test) >= slim_acc - 0.02
