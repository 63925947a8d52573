"""Fixtures of the green-accounting tests: a small fast model per Keras."""

from __future__ import annotations

import pytest

from tfgreen.models import small_mlp


@pytest.fixture
def mlp(flavor, seed):
    """A compiled 64-32-10 MLP of the current flavour, untrained."""
    model = small_mlp(flavor, hidden=(32,), seed=0)
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    return model
