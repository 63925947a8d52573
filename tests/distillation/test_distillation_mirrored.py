"""tfgreen.Distiller under tf.distribute.MirroredStrategy with 2 logical CPUs.

Logical devices must be configured before TensorFlow initialises, so the run
happens in a subprocess. With plain SGD, one epoch on two replicas must give
the same student weights as on one device: per-replica losses are scaled so
the summed gradients equal the single-device gradient.
"""

from __future__ import annotations

import json

import pytest

_SCRIPT = r"""
import json, sys
import numpy as np
import tensorflow as tf

cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(
    cpu, [tf.config.LogicalDeviceConfiguration(), tf.config.LogicalDeviceConfiguration()]
)
import tfgreen
from tfgreen.datasets import load_digits
from tfgreen.distillation import FeatureDistillation, LogitsDistillation
from tfgreen.flavor import keras_for
from tfgreen.models import small_mlp

flavor = sys.argv[1]
keras = keras_for(flavor)
(x, y), _ = load_digits(flat=True)
x, y = x[:256], y[:256]
reference = small_mlp(flavor, hidden=(32,), seed=0)
reference.compile("adam", "sparse_categorical_crossentropy")
reference.fit(x, y, epochs=2, verbose=0)
teacher_weights = reference.get_weights()


def run(strategy, loss):
    with strategy.scope():
        teacher = small_mlp(flavor, hidden=(32,), seed=0)
        teacher.set_weights(teacher_weights)
        student = small_mlp(flavor, hidden=(32,), seed=1)
        d = tfgreen.Distiller(
            teacher,
            student,
            distillation_losses=[LogitsDistillation(), FeatureDistillation("dense1", "dense1")],
        )
        d.compile(keras.optimizers.SGD(0.1), loss=loss)
    history = d.fit(x, y, batch_size=64, epochs=1, shuffle=False, verbose=0).history
    return student.get_weights(), history["loss"][-1], strategy.num_replicas_in_sync


out = {}
for name, loss in (
    ("string", "sparse_categorical_crossentropy"),
    ("instance", keras.losses.SparseCategoricalCrossentropy()),
):
    one, one_loss, _ = run(tf.distribute.OneDeviceStrategy("/cpu:0"), loss)
    two, two_loss, replicas = run(tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"]), loss)
    out[name] = {
        "replicas": replicas,
        "max_weight_diff": max(float(np.max(np.abs(a - b))) for a, b in zip(one, two)),
        "max_weight_change": max(
            float(np.max(np.abs(a - b))) for a, b in zip(one, small_mlp(flavor, hidden=(32,), seed=1).get_weights())
        ),
        "loss": [one_loss, two_loss],
    }
print("RESULT" + json.dumps(out))
"""


@pytest.mark.slow
def test_mirrored_strategy_matches_one_device(flavor, tmp_path, python_run):
    script = tmp_path / "mirrored.py"
    script.write_text(_SCRIPT)
    done = python_run(str(script), flavor)
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT")]
    assert done.returncode == 0 and lines, done.stderr[-3000:]
    result = json.loads(lines[-1][len("RESULT") :])
    for name in ("string", "instance"):
        figures = result[name]
        assert figures["replicas"] == 2
        assert figures["max_weight_change"] > 1e-2, figures
        assert figures["max_weight_diff"] < 1e-4, figures
        assert figures["loss"][1] == pytest.approx(figures["loss"][0], rel=1e-4), figures
