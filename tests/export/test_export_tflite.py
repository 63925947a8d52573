"""export_tflite for every target, every quantization kind, and the failures it must name."""

import dataclasses
import hashlib
import json
import re

import numpy as np
import pytest
import tensorflow as tf

import tfgreen
from tfgreen.errors import CalibrationError, TargetError, TfgreenTypeError, TfgreenValueError
from tfgreen.flavor import keras_for
from tfgreen.tflite.read import read_tflite

_IO = {
    "cpu": "float32",
    "edge-cpu": "float32",
    "edge-gpu": "float32",
    "edge-tpu": "uint8",
    "mcu": "int8",
    "vehicle-ecu": "int8",
}


def _int8_kernels(info):
    """Dtypes of the data and weight inputs of every CONV_2D / FULLY_CONNECTED op."""
    return {
        (info.tensors[op.inputs[0]].dtype, info.tensors[op.inputs[1]].dtype)
        for op in info.ops
        if op.name in ("CONV_2D", "FULLY_CONNECTED")
    }


@pytest.mark.parametrize("target", list(_IO))
def test_each_target(flavor, target, softmax_cnn, logits_cnn, digits, tmp_path):
    (x_train, _), (x_test, y_test) = digits
    model = logits_cnn if target == "vehicle-ecu" else softmax_cnn
    path = tmp_path / "out" / "digits.tflite"
    report = tfgreen.export_tflite(
        model, path, target=target, calibration_data=x_train, validation_data=(x_test, y_test)
    )
    data = path.read_bytes()
    info = read_tflite(data)
    profile = tfgreen.targets()[target]

    # the file and its manifest agree
    manifest = json.loads((tmp_path / "out" / "digits.tflite.json").read_text())
    assert manifest["sha256"] == hashlib.sha256(data).hexdigest() == report.sha256
    assert manifest["size_bytes"] == len(data) == report.size_bytes
    assert manifest["target"] == target and manifest["quantization"] == profile.quantization
    assert manifest["versions"]["tensorflow"] == tf.__version__
    assert manifest["versions"]["ai_edge_litert"] and manifest["versions"]["tfgreen"]
    assert manifest["calibration"]["count"] == 200 and len(manifest["calibration"]["sha256"]) == 64
    assert set(manifest["checks"]) >= {"float_ops", "io_dtypes", "parity", "size"}
    assert re.match(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", manifest["created_utc"])

    # I/O as the target says, read from the file
    assert [t.dtype for t in (info.tensors[i] for i in info.inputs + info.outputs)] == [
        _IO[target]
    ] * 2
    assert report.inputs[0]["dtype"] == _IO[target]
    assert report.inputs[0]["shape"][0] == (1 if profile.static_shapes else -1)
    if _IO[target] != "float32":
        assert report.inputs[0]["scale"] > 0 and isinstance(report.inputs[0]["zero_point"], int)

    # kernels really run in the target's number format
    if profile.quantization == "int8":
        assert _int8_kernels(info) == {("int8", "int8")}
        assert report.float_ops == []
        # int8 PTQ keeps top-1 within 1.0 point of the float Keras model
        assert report.accuracy >= report.keras_accuracy - 0.01
    elif profile.quantization == "float16":
        assert "float16" in {t.dtype for t in info.tensors}
    else:
        assert _int8_kernels(info) == {("float32", "float32")}
    assert report.parity["top1_agreement"] >= 0.98 and report.parity["cosine"] > 0.99
    assert report.keras_accuracy > 0.85
    assert report.latency_ms > 0 and 0 <= report.sparsity < 0.1
    assert report.passed and all(c["passed"] for c in report.checks.values())

    if target == "mcu":
        source = (tmp_path / "out" / "digits.cc").read_text()
        header = (tmp_path / "out" / "digits.h").read_text()
        assert "extern const unsigned char g_digits_model[];" in header
        body = source[source.index("{") + 1 : source.index("};")]
        assert bytes(int(v, 16) for v in re.findall(r"0x([0-9a-f]{2})", body)) == data
        assert f"g_digits_model_len = {len(data)};" in source
    if target == "vehicle-ecu":
        kernels = report.checks["reference_kernels"]
        assert kernels["max_lsb"] <= 1 and kernels["samples"] == 100
        assert kernels["top1_agreement"] >= 0.97
        assert report.checks["deterministic"]["identical"] is True
        again = tfgreen.export_tflite(
            model, tmp_path / "again.tflite", target=target, calibration_data=x_train
        )
        assert (tmp_path / "again.tflite").read_bytes() == data and again.sha256 == report.sha256


def test_quantization_kinds(flavor, trained_mlp, digits_flat, tmp_path):
    (x_train, _), (x_test, y_test) = digits_flat
    sizes, reports = {}, {}
    for kind in ("float32", "dynamic", "float16", "int8", "int16x8"):
        path = tmp_path / f"{kind}.tflite"
        reports[kind] = tfgreen.export_tflite(
            trained_mlp,
            path,
            target="cpu",
            quantization=kind,
            calibration_data=x_train,
            validation_data=(x_test, y_test),
        )
        info = read_tflite(path.read_bytes())
        sizes[kind] = len(path.read_bytes())
        kernels = _int8_kernels(info)
        expected = {
            "float32": {("float32", "float32")},
            "dynamic": {("float32", "int8")},
            "int8": {("int8", "int8")},
            "int16x8": {("int16", "int8")},
        }
        if kind in expected:
            assert kernels == expected[kind], kind
        else:
            weights = {
                info.tensors[i].dtype
                for op in info.ops
                if op.name == "DEQUANTIZE"
                for i in op.inputs
            }
            assert weights == {"float16"}
        assert reports[kind].quantization == kind
        assert reports[kind].accuracy >= reports[kind].keras_accuracy - 0.01, kind
    assert "FULLY_CONNECTED" in reports["dynamic"].float_ops
    assert reports["int8"].float_ops == []
    assert sizes["int8"] / sizes["float32"] < 0.27
    assert 0.45 < sizes["float16"] / sizes["float32"] < 0.6


def _sine_model(flavor):
    keras = keras_for(flavor)

    class Sine(keras.layers.Layer):
        def call(self, inputs):
            return tf.math.sin(inputs)

    keras.utils.set_random_seed(0)
    return keras.Sequential(
        [keras.Input((64,)), keras.layers.Dense(16), Sine(name="sine"), keras.layers.Dense(10)]
    )


def test_op_without_int8_kernel_fails_edge_tpu_by_name(flavor, digits_flat, tmp_path):
    (x_train, _), _ = digits_flat
    model = _sine_model(flavor)
    with pytest.raises(
        TargetError,
        match=r"target 'edge-tpu': check\(s\) float_ops failed \(float_ops: Every op runs in "
        r"the target's number format.*float_ops=\{'ops': \['SIN'\]\}",
    ):
        tfgreen.export_tflite(
            model, tmp_path / "tpu.tflite", target="edge-tpu", calibration_data=x_train
        )
    assert list(tmp_path.iterdir()) == []
    # edge-cpu allows float fallback: the same model exports, and the float op is named
    report = tfgreen.export_tflite(
        model, tmp_path / "cpu.tflite", target="edge-cpu", calibration_data=x_train
    )
    assert report.float_ops == ["SIN"] and report.checks["float_ops"]["passed"]


def test_strict_checks_fail_the_export(flavor, softmax_cnn, digits, tmp_path):
    (x_train, _), (x_test, y_test) = digits
    tiny = dataclasses.replace(tfgreen.targets()["mcu"], name="tiny", size_budget_bytes=10_000)
    with pytest.raises(
        TargetError, match=r"check\(s\) size failed.*'size_bytes': 4\d{4}, 'budget_bytes': 10000"
    ):
        tfgreen.export_tflite(
            softmax_cnn, tmp_path / "tiny.tflite", target=tiny, calibration_data=x_train
        )
    exact = dataclasses.replace(
        tfgreen.targets()["edge-cpu"], name="exact", min_cosine=1.0, strict=("parity",)
    )
    with pytest.raises(TargetError, match=r"check\(s\) parity failed.*'cosine': 0\.99"):
        tfgreen.export_tflite(
            softmax_cnn,
            tmp_path / "exact.tflite",
            target=exact,
            calibration_data=x_train,
            validation_data=(x_test, y_test),
        )
    assert list(tmp_path.iterdir()) == []
    # non-strict: the same miss is only reported
    loose = dataclasses.replace(exact, strict=())
    report = tfgreen.export_tflite(
        softmax_cnn, tmp_path / "loose.tflite", target=loose, calibration_data=x_train
    )
    assert report.checks["parity"]["passed"] is False and not report.passed


def test_bad_arguments_are_refused_before_work(flavor, softmax_cnn, digits, tmp_path):
    (x_train, _), _ = digits
    with pytest.raises(TfgreenValueError, match=r"must end in \.tflite.*model\.onnx"):
        tfgreen.export_tflite(softmax_cnn, tmp_path / "model.onnx", target="cpu")
    with pytest.raises(TfgreenTypeError, match="not a Keras model"):
        tfgreen.export_tflite(object(), tmp_path / "m.tflite", target="cpu")
    with pytest.raises(TargetError, match=r"needs int8/int8 .* quantization='float16'"):
        tfgreen.export_tflite(
            softmax_cnn, tmp_path / "m.tflite", target="mcu", quantization="float16"
        )
    with pytest.raises(TargetError, match="checks parity strictly and needs data"):
        tfgreen.export_tflite(softmax_cnn, tmp_path / "m.tflite", target="vehicle-ecu")
    with pytest.raises(CalibrationError, match="needs calibration data"):
        tfgreen.export_tflite(softmax_cnn, tmp_path / "m.tflite", target="edge-cpu")
    with pytest.raises(TfgreenValueError, match="Received: quantization='int3'"):
        tfgreen.export_tflite(softmax_cnn, tmp_path / "m.tflite", target="cpu", quantization="int3")
    assert list(tmp_path.iterdir()) == []


def test_model_file_is_loaded_by_the_caller(flavor, softmax_cnn, digits, tmp_path):
    _, (x_test, y_test) = digits
    softmax_cnn.save(tmp_path / "digits.keras")
    with pytest.raises(TfgreenTypeError, match=r"takes a model, not a file path.*load_model"):
        tfgreen.export_tflite(str(tmp_path / "digits.keras"), tmp_path / "d.tflite")
    report = tfgreen.export_tflite(
        tfgreen.load_model(tmp_path / "digits.keras", compile=False),
        tmp_path / "d.tflite",
        target="edge-gpu",
        validation_data=(x_test, y_test),
    )
    assert report.parity["top1_agreement"] == 1.0 and report.quantization == "float16"


def test_multi_input_model_keeps_input_order(flavor, tmp_path):
    keras = keras_for(flavor)
    keras.utils.set_random_seed(0)
    # "zeta" comes first in model.inputs but sorts last: the calibration must not swap them
    a, b = keras.Input((4,), name="zeta"), keras.Input((3,), name="alpha")
    merged = keras.layers.Concatenate()([keras.layers.Dense(5)(a), keras.layers.Dense(5)(b)])
    model = keras.Model([a, b], keras.layers.Dense(2)(merged))
    rng = np.random.default_rng(0)
    x = [
        rng.normal(size=(120, 4)).astype("float32"),
        20 * rng.normal(size=(120, 3)).astype("float32"),
    ]
    report = tfgreen.export_tflite(
        model, tmp_path / "two.tflite", target="vehicle-ecu", calibration_data=x
    )
    assert [t["shape"] for t in report.inputs] == [[1, 4], [1, 3]]
    assert [t["dtype"] for t in report.inputs] == ["int8", "int8"]
    assert (
        report.inputs[1]["scale"] > 5 * report.inputs[0]["scale"]
    )  # the wide input got the wide range
    assert report.parity["cosine"] > 0.99 and report.checks["reference_kernels"]["max_lsb"] <= 1.0


@pytest.mark.parametrize("head", ["binary_logit", "sigmoid", "softmax"])
def test_accuracy_follows_the_one_top1_rule(flavor, head, digits_flat, tmp_path):
    from tfgreen import _metrics

    keras = keras_for(flavor)
    (x_train, y_train), (x_test, y_test) = digits_flat
    y_train, y_test = (y_train >= 5).astype("int64"), (y_test >= 5).astype("int64")
    keras.utils.set_random_seed(0)
    units, activation, loss = {
        "binary_logit": (1, None, keras.losses.BinaryCrossentropy(from_logits=True)),
        "sigmoid": (1, "sigmoid", keras.losses.BinaryCrossentropy()),
        "softmax": (2, "softmax", keras.losses.SparseCategoricalCrossentropy()),
    }[head]
    model = keras.Sequential(
        [
            keras.Input((64,)),
            keras.layers.Dense(16, activation="relu"),
            keras.layers.Dense(units, activation=activation),
        ]
    )
    model.compile("adam", loss)
    model.fit(x_train, y_train, epochs=3, batch_size=64, verbose=0)
    report = tfgreen.export_tflite(
        model, tmp_path / "b.tflite", target="cpu", validation_data=(x_test, y_test)
    )
    outputs = np.asarray(model(x_test, training=False))
    assert report.keras_accuracy == _metrics.accuracy(outputs, y_test) > 0.7
    assert abs(report.accuracy - report.keras_accuracy) <= 1 / len(y_test)
    if head == "binary_logit":  # logits are cut at 0, not at 0.5
        assert _metrics.output_kind(outputs) == "logits"
