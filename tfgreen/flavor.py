"""The one place that knows which Keras a model belongs to.

tfgreen serves two Kerases: Keras 3 (`import keras`) and tf_keras (Keras 2,
`import tf_keras`). Every entry point asks `flavor_of(model)` and routes to the
matching implementation. tfmot, which works only on tf_keras, is imported
through `tfmot()`, lazily, and without leaving `TF_USE_LEGACY_KERAS` behind, so
using tfgreen never changes which Keras `tf.keras` or `keras` gives the user.
"""

from __future__ import annotations

import importlib
import os
import sys
import threading
from types import ModuleType

from tfgreen.errors import TfgreenTypeError, TfgreenValueError, message

__all__ = [
    "KERAS3",
    "TF_KERAS",
    "FLAVORS",
    "flavor_of",
    "flavor_of_class",
    "keras_for",
    "check_flavor",
    "backend",
    "trains_multi_worker",
    "tfmot",
]

KERAS3 = "keras3"
TF_KERAS = "tf_keras"
FLAVORS = (KERAS3, TF_KERAS)

_ROOTS = {"keras": KERAS3, "tf_keras": TF_KERAS}
_TFMOT_LOCK = threading.Lock()


def flavor_of_class(cls: type) -> str | None:
    """Tells which Keras a class derives from, if any.

    Args:
        cls: A class.

    Returns:
        `"keras3"` or `"tf_keras"` for a subclass of a Keras `Model`, `Layer`
        or `Operation`, else `None`.

    Example:
    >>> import keras
    >>> flavor_of_class(keras.layers.Dense), flavor_of_class(dict)
    ('keras3', None)
    """
    for klass in cls.__mro__:
        root = klass.__module__.split(".", 1)[0]
        if root in _ROOTS and klass.__name__ in ("Model", "Layer", "Operation"):
            return _ROOTS[root]
    return None


def flavor_of(model) -> str:
    """Tells whether a model or layer is Keras 3 or tf_keras.

    Args:
        model: A Keras 3 or tf_keras `Model` (or `Layer`).

    Returns:
        `"keras3"` or `"tf_keras"`.

    Example:
    >>> import keras
    >>> flavor_of(keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)]))
    'keras3'
    """
    flavor = flavor_of_class(type(model))
    if flavor is None:
        raise TfgreenTypeError(
            message(
                "tfgreen was given something that is not a Keras model",
                "a Keras 3 (`keras.Model`) or tf_keras (`tf_keras.Model`) model",
                "Build or load the model with `keras` or `tf_keras` first, "
                "or use `tfgreen.load_model(path)` for a file",
                model=type(model).__name__,
            )
        )
    return flavor


def check_flavor(flavor: str) -> str:
    """Validates a flavour name and returns it.

    Args:
        flavor: `"keras3"` or `"tf_keras"`.

    Returns:
        The same name.
    """
    if flavor not in FLAVORS:
        raise TfgreenValueError(
            message(
                "Unknown Keras flavour",
                f"one of {FLAVORS}",
                "Pass flavor='keras3' for `import keras` or flavor='tf_keras' for `import tf_keras`",
                flavor=flavor,
            )
        )
    return flavor


def _flavor(flavor_or_model) -> str:
    if isinstance(flavor_or_model, str):
        return check_flavor(flavor_or_model)
    return flavor_of(flavor_or_model)


def keras_for(flavor_or_model) -> ModuleType:
    """Returns the Keras module (`keras` or `tf_keras`) for a flavour or a model.

    Args:
        flavor_or_model: A flavour name or a Keras model.

    Returns:
        The `keras` module for Keras 3, the `tf_keras` module for tf_keras.

    Example:
    >>> keras_for("keras3").__name__
    'keras'
    """
    return importlib.import_module("keras" if _flavor(flavor_or_model) == KERAS3 else "tf_keras")


_BACKEND_MODULES = {KERAS3: "_keras3", TF_KERAS: "_tf_keras"}
# Whether `model.fit` works under a MultiWorkerMirroredStrategy with more
# than one worker: Keras 3's fails when it builds the model from a distributed
# batch (keras-team/keras#20585).
_MULTI_WORKER_FIT = {KERAS3: False, TF_KERAS: True}


def backend(package: str, flavor_or_model) -> ModuleType:
    """Returns a technique's backend module for a flavour or a model.

    Every technique package (`tfgreen.pruning`, `tfgreen.quantization`,
    `tfgreen.distillation`) has two backends, `_keras3.py` and `_tf_keras.py`,
    which implement the same `typing.Protocol` (the package's `_protocol.py`).
    The package's `api.py` calls the one this returns, with no flavour branch.

    Args:
        package: The technique package, for example `"tfgreen.pruning"`.
        flavor_or_model: A flavour name or a Keras model.

    Returns:
        The `<package>._keras3` or `<package>._tf_keras` module.

    Example:
    >>> backend("tfgreen.pruning", "keras3").__name__
    'tfgreen.pruning._keras3'
    """
    return importlib.import_module(f"{package}.{_BACKEND_MODULES[_flavor(flavor_or_model)]}")


def trains_multi_worker(flavor_or_model) -> bool:
    """Whether a flavour's `model.fit` runs under a multi-worker strategy.

    Keras 3's `model.fit` fails under `MultiWorkerMirroredStrategy` with more
    than one worker (keras-team/keras#20585); tf_keras's works.

    Args:
        flavor_or_model: A flavour name or a Keras model.

    Returns:
        True for tf_keras, False for Keras 3.

    Example:
    >>> trains_multi_worker("tf_keras"), trains_multi_worker("keras3")
    (True, False)
    """
    return _MULTI_WORKER_FIT[_flavor(flavor_or_model)]


def tfmot() -> ModuleType:
    """Imports tensorflow_model_optimization lazily, leaving the user's Keras alone.

    tfmot sets `TF_USE_LEGACY_KERAS=1` when imported, which would flip
    `tf.keras` to tf_keras for the rest of the process. This restores the
    variable to what it was, so only tfgreen's tf_keras path sees tfmot.

    Returns:
        The `tensorflow_model_optimization` module.
    """
    with _TFMOT_LOCK:
        if "tensorflow_model_optimization" in sys.modules:
            return sys.modules["tensorflow_model_optimization"]
        import tensorflow as tf

        # `tf.keras` is resolved lazily, once; resolve it now, under the user's
        # settings, before tfmot's import sets TF_USE_LEGACY_KERAS and reads it.
        _ = tf.keras.Model
        saved = os.environ.get("TF_USE_LEGACY_KERAS")
        try:
            import tensorflow_model_optimization as module
        finally:
            if saved is None:
                os.environ.pop("TF_USE_LEGACY_KERAS", None)
            else:
                os.environ["TF_USE_LEGACY_KERAS"] = saved
        return module
