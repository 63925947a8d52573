"""tfgreen._adapters.keras: every Keras 3 / tf_keras internal tfgreen touches is still there.

Each check exercises one adapter function on a small real model. When a Keras
release moves a symbol, the failure names the symbol, the installed version
and the version the adapter was written against.
"""

from __future__ import annotations

import importlib
import inspect

import numpy as np
import pytest

from tfgreen._adapters import keras as adapter
from tfgreen.flavor import keras_for


def _installed(package: str) -> str:
    return importlib.import_module(package).__version__


def _moved(package: str, symbol: str, error: BaseException | None = None) -> str:
    return (
        f"{symbol} moved or changed in {package} {_installed(package)}: tfgreen._adapters.keras "
        f"was written against {package} {adapter.PINNED[package]}; update the adapter"
        + (f" ({type(error).__name__}: {error})" if error else "")
    )


def _check(package: str, symbol: str, probe) -> None:
    try:
        ok = probe()
    except (AttributeError, ImportError, KeyError, TypeError) as error:
        pytest.fail(_moved(package, symbol, error))
    if not ok:
        pytest.fail(_moved(package, symbol))


def _functional(keras):
    inputs = keras.Input((4,), name="x")
    hidden = keras.layers.Dense(3, name="hidden")(inputs)
    outputs = keras.layers.Dense(2, name="out")(hidden)
    return keras.Model(inputs, outputs)


def test_pinned_versions_are_installed():
    # Not a failure of the adapter: a reminder that the checks below ran on other versions.
    for package, pinned in adapter.PINNED.items():
        assert _installed(package).split(".")[:2] == pinned.split(".")[:2], (
            f"{package} {_installed(package)} is installed; tfgreen._adapters.keras is "
            f"pinned to {pinned}: run tests/test_adapters_keras.py and update PINNED"
        )


def test_keras3_functional_graph_internals():
    keras = keras_for("keras3")
    model = _functional(keras)

    class Subclassed(keras.Model):
        def call(self, inputs):
            return inputs

    _check(
        "keras",
        "keras.src.models.functional.Functional",
        lambda: (
            adapter.keras3_is_functional(model) and not adapter.keras3_is_functional(Subclassed())
        ),
    )

    def nodes():
        ops = {
            node.operation.name
            for depth in adapter.keras3_nodes_by_depth(model).values()
            for node in depth
            if node.operation is not None
            and not node.is_input
            and all(parent.operation is not None for parent in node.parent_nodes)
        }
        return {"hidden", "out"} <= ops

    _check("keras", "Functional._nodes_by_depth (Node.operation/is_input/parent_nodes)", nodes)
    _check(
        "keras",
        "KerasTensor._keras_history.operation",
        lambda: adapter.keras3_producer(model.outputs[0]).name == "out",
    )


def test_keras3_distiller_student_loss():
    keras = keras_for("keras3")
    teacher, student = _functional(keras), _functional(keras)
    distiller = keras.distillation.Distiller(
        teacher, student, distillation_losses=[keras.distillation.LogitsDistillation()]
    )
    distiller.compile("sgd", loss="mse")
    seen = []

    def wrap(loss):
        seen.append(loss)
        return loss

    _check(
        "keras",
        "keras.distillation.Distiller._student_loss",
        lambda: adapter.keras3_map_student_loss(distiller, wrap) is None and len(seen) == 1,
    )


def test_keras3_callback_default_mark():
    keras = keras_for("keras3")
    _check(
        "keras",
        "Callback hook `_is_default` mark (keras.src.utils.python_utils.default)",
        lambda: (
            getattr(keras.callbacks.Callback.on_train_batch_end, "_is_default", False)
            and not getattr(keras.callbacks.History.on_epoch_end, "_is_default", False)
        ),
    )


def test_tf_keras_graph_internals():
    keras = keras_for("tf_keras")
    model = _functional(keras)

    class Subclassed(keras.Model):
        def call(self, inputs):
            return inputs

    _check(
        "tf_keras",
        "Model._is_graph_network",
        lambda: (
            adapter.tf_keras_is_graph_network(model)
            and not adapter.tf_keras_is_graph_network(Subclassed())
        ),
    )
    _check(
        "tf_keras",
        "KerasTensor._keras_history.layer",
        lambda: adapter.tf_keras_producer(model.outputs[0]).name == "out",
    )
    _check(
        "tf_keras",
        "Layer._outbound_nodes (Node.outbound_layer)",
        lambda: (
            [layer.name for layer in adapter.tf_keras_consumers(model.get_layer("hidden"))]
            == ["out"]
        ),
    )
    model.compile("sgd", "mse")
    _check("tf_keras", "Model._is_compiled", lambda: adapter.tf_keras_is_compiled(model))


def test_tf_keras_callback_list_reads_the_hooks():
    keras = keras_for("tf_keras")
    from tfgreen._callback import DualCallback

    class Counter(DualCallback):
        epochs = 0

        def on_epoch_end(self, epoch, logs=None):
            type(self).epochs += 1

    from tf_keras.src.distribute import distributed_training_utils_v1

    readers = {
        "_implements_train_batch_hooks": keras.callbacks.CallbackList,
        "_implements_test_batch_hooks": keras.callbacks.CallbackList,
        "_implements_predict_batch_hooks": keras.callbacks.CallbackList,
        "_supports_tf_logs": keras.callbacks.CallbackList,
        "_chief_worker_only": distributed_training_utils_v1,
    }
    for name, reader in readers.items():
        _check(
            "tf_keras",
            f"Callback.{name} (read by {reader.__name__})",
            lambda name=name, reader=reader: (
                hasattr(keras.callbacks.Callback(), name) and name in inspect.getsource(reader)
            ),
        )
    model = _functional(keras)
    model.compile("sgd", "mse")
    x = np.zeros((8, 4), "float32")
    model.fit(x, np.zeros((8, 2), "float32"), epochs=2, verbose=0, callbacks=[Counter()])
    assert Counter.epochs == 2
