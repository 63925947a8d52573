"""The one module that touches Keras 3 and tf_keras internals.

tfgreen needs a few things neither Keras exposes publicly: the graph of a
functional model (nodes by depth, the layer that made a tensor, the layers
reading a layer's output), whether a model is a functional graph, the
distiller's compiled student loss, the class `MultiHeadAttention` builds its
projections from, and the callback hooks each Keras's
`CallbackList` asks about. Each is read here, through a small function, so
that a Keras release that moves one breaks one place, and
`tests/test_adapters_keras.py` names the symbol and the pinned version.

Written against Keras 3.15.1 and tf_keras 2.21.0 (`PINNED`). Nothing here
imports Keras at module import time.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable

__all__ = [
    "keras3_attention_projections",
    "PINNED",
    "CallbackHooks",
    "mark_default",
    "keras3_is_functional",
    "keras3_nodes_by_depth",
    "keras3_producer",
    "keras3_map_student_loss",
    "tf_keras_is_graph_network",
    "tf_keras_producer",
    "tf_keras_consumers",
    "tf_keras_is_compiled",
    "attention_projections",
]

# The versions these adapters were written and tested against.
PINNED = {"keras": "3.15.1", "tf_keras": "2.21.0"}


# --- Callbacks: the private parts of both Kerases' callback protocols --------


def mark_default(method: Callable) -> Callable:
    """Marks a callback hook as not overridden, so Keras 3 skips it.

    Keras 3's `CallbackList` dispatches batch hooks (and waits for the batch's
    results) only for callbacks whose hook lacks the `_is_default` mark
    (`keras.src.utils.python_utils.default`).

    Args:
        method: The hook (a function defined in a class body).

    Returns:
        The same function, marked.
    """
    method._is_default = True
    return method


class CallbackHooks:
    """The private attributes tf_keras's `CallbackList` reads from every callback.

    tf_keras (`tf_keras.src.callbacks.CallbackList`) asks each callback
    `_implements_train_batch_hooks()` (and test/predict) to decide whether
    batch hooks run, reads `_supports_tf_logs` to decide whether logs arrive
    as tensors, and `_chief_worker_only` under multi-worker training. A
    callback inheriting from this runs no batch hooks, gets Python numbers,
    and runs on every worker.
    """

    _supports_tf_logs = False
    _chief_worker_only = None

    def _implements_train_batch_hooks(self) -> bool:
        return False

    def _implements_test_batch_hooks(self) -> bool:
        return False

    def _implements_predict_batch_hooks(self) -> bool:
        return False


# --- Keras 3 -----------------------------------------------------------------


def keras3_is_functional(model) -> bool:
    """Whether a Keras 3 model is a functional graph (`Functional`, not subclassed).

    Args:
        model: A Keras 3 model.

    Returns:
        True for models built with the functional API (and `Sequential`s
        built from an `Input`, which are graphs too).
    """
    import keras
    from keras.src.models.functional import Functional

    return isinstance(model, (keras.Sequential, Functional))


def keras3_nodes_by_depth(model) -> dict:
    """A Keras 3 functional model's graph nodes, `{depth: [Node, ...]}`.

    Args:
        model: A Keras 3 functional model.

    Returns:
        The model's `_nodes_by_depth` mapping (each node has `operation`,
        `is_input` and `parent_nodes`).
    """
    return model._nodes_by_depth


def keras3_producer(tensor):
    """The Keras 3 layer (operation) whose call produced a symbolic tensor.

    Args:
        tensor: A `keras.KerasTensor` of a functional model.

    Returns:
        The producing layer.
    """
    return tensor._keras_history.operation


def keras3_map_student_loss(distiller, function: Callable) -> None:
    """Replaces each compiled student loss of a `keras.distillation.Distiller` by `function(loss)`.

    `Distiller.compile` keeps the student's loss functions in
    `_student_loss` and calls them raw in `compute_loss`.

    Args:
        distiller: A compiled `keras.distillation.Distiller`.
        function: Maps a loss function to the one to use.
    """
    import keras

    distiller._student_loss = keras.tree.map_structure(function, distiller._student_loss)


# --- tf_keras ----------------------------------------------------------------


def tf_keras_is_graph_network(model) -> bool:
    """Whether a tf_keras model is a functional graph network.

    Args:
        model: A tf_keras model.

    Returns:
        tf_keras's `_is_graph_network` flag (False for subclassed models).
    """
    return bool(getattr(model, "_is_graph_network", False))


def tf_keras_producer(tensor):
    """The tf_keras layer whose call produced a symbolic tensor.

    Args:
        tensor: A symbolic tensor of a tf_keras functional model.

    Returns:
        The producing layer.
    """
    return tensor._keras_history.layer


def tf_keras_consumers(layer) -> list:
    """The tf_keras layers that read a layer's output (one entry per call).

    Args:
        layer: A layer of a tf_keras functional model.

    Returns:
        The outbound layers, from the layer's `_outbound_nodes`.
    """
    return [node.outbound_layer for node in layer._outbound_nodes]


def tf_keras_is_compiled(model) -> bool:
    """Whether `compile()` has been called on a tf_keras model.

    Args:
        model: A tf_keras model.

    Returns:
        tf_keras's `_is_compiled` flag.
    """
    return bool(model._is_compiled)


@contextlib.contextmanager
def keras3_attention_projections(factory: Callable):
    """Makes Keras 3 `MultiHeadAttention.build` create its projections with `factory`.

    `MultiHeadAttention` builds its query/key/value/output `EinsumDense`
    layers from the name `EinsumDense` in its own module; there is no public
    hook. Inside this context that name is `factory` (called with the same
    arguments); it is restored on exit.

    Args:
        factory: A callable taking `EinsumDense`'s arguments.
    """
    from keras.src.layers.attention import multi_head_attention

    original = multi_head_attention.EinsumDense
    multi_head_attention.EinsumDense = factory
    try:
        yield
    finally:
        multi_head_attention.EinsumDense = original


# --- Both Kerases --------------------------------------------------------------


def attention_projections(layer) -> tuple:
    """The query, key, value and output `EinsumDense` layers of a `MultiHeadAttention`.

    Both Kerases keep them as `_query_dense`, `_key_dense`, `_value_dense` and
    `_output_dense` (a KV-cache export calls them one position at a time).

    Args:
        layer: A built Keras 3 or tf_keras `MultiHeadAttention`.

    Returns:
        `(query, key, value, output)`, or `None` when the layer has not all four.
    """
    names = ("_query_dense", "_key_dense", "_value_dense", "_output_dense")
    found = tuple(getattr(layer, name, None) for name in names)
    return found if all(callable(f) for f in found) else None
