"""Doctest fixtures (repo root, so they don't ship): every `>>>` example in tfgreen/ runs.

Each doctest runs in a fresh temporary folder (anything it writes lands
there) with small real objects in its namespace, built once per session:
`np`, `tf`, `keras`, `tfgreen`, flat digits `x, y, x_test, y_test`, a
Keras 3 MLP `model` trained for two epochs (a fresh copy per doctest), and
`path`, a float32 `.tflite` export of it.
"""

from __future__ import annotations

import os
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import pytest
from _pytest.doctest import DoctestItem, DoctestModule

_PACKAGE = Path(__file__).resolve().parent / "tfgreen"


@pytest.hookimpl(wrapper=True)
def pytest_collect_file(file_path, parent):
    """Doctests come from tfgreen/ only (tests/ holds worker scripts that run on import)."""
    collected = yield
    if file_path.resolve().is_relative_to(_PACKAGE):
        return collected
    return [item for item in collected if not isinstance(item, DoctestModule)]


@pytest.fixture(scope="session")
def _doctest_objects(tmp_path_factory):
    import keras
    import numpy as np
    import tensorflow as tf

    import tfgreen
    from tfgreen.quantization.ptq import convert

    (x, y), (x_test, y_test) = tfgreen.datasets.load_digits(flat=True)
    model = tfgreen.models.small_mlp(hidden=(64, 64))
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(x, y, epochs=2, batch_size=64, verbose=0)
    path = tmp_path_factory.mktemp("doctest") / "digits.tflite"
    path.write_bytes(convert(model, "float32"))
    return {
        "np": np,
        "tf": tf,
        "keras": keras,
        "tfgreen": tfgreen,
        "x": x,
        "y": y,
        "x_test": x_test,
        "y_test": y_test,
        "path": path,
        "_weights": model.get_weights(),
    }


@pytest.fixture(autouse=True)
def _doctest_setup(request, tmp_path, monkeypatch):
    """For doctests only: a fresh working folder and the shared objects."""
    if not isinstance(request.node, DoctestItem):
        yield
        return
    objects = request.getfixturevalue("_doctest_objects")
    namespace = request.getfixturevalue("doctest_namespace")
    namespace.update({k: v for k, v in objects.items() if not k.startswith("_")})
    model = objects["tfgreen"].models.small_mlp(hidden=(64, 64))
    model.set_weights(objects["_weights"])
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    namespace["model"] = model
    monkeypatch.chdir(tmp_path)
    yield
