"""Fixtures for the export tests: trained small models of both Kerases, shared per session."""

from __future__ import annotations

import pytest

from tfgreen.flavor import keras_for

_MODELS: dict = {}


def _trained(flavor: str, kind: str, digits, digits_flat):
    key = (flavor, kind)
    if key not in _MODELS:
        from tfgreen.models import small_cnn, small_mlp

        keras = keras_for(flavor)
        if kind == "mlp":
            (x, y), _ = digits_flat
            model = small_mlp(flavor, seed=0)
        else:
            (x, y), _ = digits
            model = small_cnn(flavor, seed=0, logits=kind == "logits")
        loss = keras.losses.SparseCategoricalCrossentropy(from_logits=kind == "logits")
        model.compile("adam", loss, metrics=["accuracy"])
        model.fit(x, y, epochs=4, batch_size=32, verbose=0)
        _MODELS[key] = model
    return _MODELS[key]


@pytest.fixture
def logits_cnn(flavor, digits, digits_flat):
    """A trained small CNN ending in logits (no softmax), as ECUs run them."""
    return _trained(flavor, "logits", digits, digits_flat)


@pytest.fixture
def softmax_cnn(flavor, digits, digits_flat):
    """A trained small CNN ending in softmax."""
    return _trained(flavor, "softmax", digits, digits_flat)


@pytest.fixture
def trained_mlp(flavor, digits, digits_flat):
    """A trained 64-256-256-10 MLP on flat digits (weight-dominated)."""
    return _trained(flavor, "mlp", digits, digits_flat)
