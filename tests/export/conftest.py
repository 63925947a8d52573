"""Fixtures for the export tests: trained small models of both Kerases, shared per session."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tfgreen.flavor import keras_for

ROOT = Path(__file__).resolve().parents[2]
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


def run_python(*args: str, env_extra: dict | None = None, timeout: int = 300):
    """Runs `python ARGS` in a fresh process with the repo on PYTHONPATH."""
    env = dict(os.environ, PYTHONPATH=str(ROOT), TF_CPP_MIN_LOG_LEVEL="3")
    env.update(env_extra or {})
    return subprocess.run(
        [sys.executable, *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
        check=False,
    )


@pytest.fixture
def python_run():
    """`run_python(*args, env_extra=None)`: runs Python in a fresh process with the repo importable."""
    return run_python
