"""Pruning under MirroredStrategy with 2 logical CPUs, in a subprocess (devices set before TF starts)."""

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

_MIRRORED = """
import json, os, sys
import tensorflow as tf

cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
import numpy as np
import tfgreen
from tfgreen.datasets import load_digits
from tfgreen.models import small_mlp
from tfgreen.pruning.api import backend_for

flavor = sys.argv[1]
(x, y), _ = load_digits(flat=True)
strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
with strategy.scope():
    pruned = tfgreen.prune(small_mlp(flavor, hidden=(64, 32)), sparsity=0.75)
    pruned.compile("adam", "sparse_categorical_crossentropy")
pruned.fit(x[:640], y[:640], epochs=3, batch_size=64, verbose=0,
           callbacks=[tfgreen.callbacks.Pruning()])
backend = backend_for(pruned)
layers = {}
for wrapper in backend.wrappers(pruned):
    kernel, mask = backend.kernel_and_mask(wrapper)
    mirrored = mask.value if flavor == "keras3" else mask
    replicas = [np.asarray(v.numpy()) for v in mirrored.values]
    layers[wrapper.layer.name] = {
        "replicas": len(replicas),
        "same": all(np.array_equal(replicas[0], r) for r in replicas[1:]),
        "mask_sparsity": float(np.mean(replicas[0] == 0)),
    }
print(json.dumps({
    "sparsity": tfgreen.sparsity(pruned),
    "layers": layers,
    "tfmot": "tensorflow_model_optimization" in sys.modules,
    "legacy": os.environ.get("TF_USE_LEGACY_KERAS"),
}))
"""


@pytest.mark.slow
def test_mirrored_strategy_reaches_target_with_identical_masks(flavor, python_json):
    result = python_json(_MIRRORED, flavor)
    assert sorted(result["layers"]) == ["dense1", "dense2", "output"]
    for name, layer in result["layers"].items():
        assert layer["replicas"] == 2
        assert layer["same"], name
        assert abs(layer["mask_sparsity"] - 0.75) < 1e-3
        assert abs(result["sparsity"][name] - 0.75) < 1e-3
    # Keras 3 pruning is tfgreen's own: tfmot is never imported, tf.keras never flipped.
    assert result["tfmot"] is (flavor == "tf_keras")
    assert result["legacy"] is None
