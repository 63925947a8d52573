"""QAT models train under MirroredStrategy on 2 logical CPUs (in a subprocess)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]

_SCRIPT = """
import json, sys
import numpy as np
import tensorflow as tf

cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(
    cpu, [tf.config.LogicalDeviceConfiguration(), tf.config.LogicalDeviceConfiguration()]
)
import tfgreen
from tfgreen.datasets import load_digits
from tfgreen.quantization.ptq import convert
from tfgreen.tflite.read import read_tflite
from tfgreen.models import small_cnn

flavor = sys.argv[1]
(x, y), (x_test, y_test) = load_digits()
strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
with strategy.scope():
    qat = tfgreen.quantize_aware(small_cnn(flavor, filters=8))
    qat.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
history = qat.fit(x, y, epochs=2, batch_size=64, verbose=0)
accuracy = float(np.mean(np.argmax(qat.predict(x_test, verbose=0), 1) == y_test))
info = read_tflite(convert(qat, "int8", io_dtype="int8", allow_float_ops=False))
print(json.dumps({
    "replicas": strategy.num_replicas_in_sync,
    "loss": [float(v) for v in history.history["loss"]],
    "accuracy": accuracy,
    "kernel_dtypes": sorted({info.tensors[op.inputs[1]].dtype for op in info.ops
                             if op.name in ("CONV_2D", "FULLY_CONNECTED")}),
}))
"""


def test_qat_trains_under_mirrored_strategy(flavor, python_json):
    result = python_json(_SCRIPT, flavor)
    assert result["replicas"] == 2
    assert all(np.isfinite(value) for value in result["loss"])
    assert result["loss"][-1] < result["loss"][0]
    assert result["accuracy"] > 0.5  # 2 epochs from scratch; chance is 0.1
    assert result["kernel_dtypes"] == ["int8"]
