"""Shared fixtures: a seed, both Keras flavours, bundled digits, small models."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np
import pytest

from tfgreen.flavor import FLAVORS, keras_for

ROOT = Path(__file__).resolve().parents[1]


def run_python(*args: str, env_extra: dict | None = None, timeout: int = 300, cwd=None):
    """Runs `python ARGS` in a fresh process: the repo importable, the user's Keras untouched."""
    env = {k: v for k, v in os.environ.items() if k != "TF_USE_LEGACY_KERAS"}
    env.update({"PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "3", **(env_extra or {})})
    return subprocess.run(
        [sys.executable, *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
        check=False,
        cwd=cwd,
    )


@pytest.fixture
def python_run():
    """`python_run(*args, env_extra=None, timeout=300, cwd=None)`: `python ARGS`, fresh process."""
    return run_python


@pytest.fixture
def python_json(tmp_path):
    """`python_json(source, *args)`: runs a script in a fresh process, returns its last line as JSON.

    For what must happen before TensorFlow starts (logical CPU devices for
    `tf.distribute`) or in a clean interpreter (which modules get imported).
    """

    def run(source: str, *args: str, timeout: int = 300):
        script = tmp_path / "script.py"
        script.write_text(source)
        done = run_python(
            str(script), *args, env_extra={"TF_CPP_MIN_LOG_LEVEL": "2"}, timeout=timeout
        )
        assert done.returncode == 0, done.stderr[-3000:]
        return json.loads(done.stdout.strip().splitlines()[-1])

    return run


@pytest.fixture
def seed():
    """Seeds numpy, Python and both Kerases; returns the seed."""
    value = 1234
    np.random.seed(value)
    for flavor in FLAVORS:
        keras_for(flavor).utils.set_random_seed(value)
    return value


@pytest.fixture(params=FLAVORS)
def flavor(request) -> str:
    """Each test using it runs once per Keras: `"keras3"` and `"tf_keras"`."""
    return request.param


@pytest.fixture
def keras(flavor):
    """The Keras module of the current flavour (`keras` or `tf_keras`)."""
    return keras_for(flavor)


@pytest.fixture(scope="session")
def digits():
    """Bundled 8x8 digits as images: ((x_train, y_train), (x_test, y_test))."""
    from tfgreen.datasets import load_digits

    return load_digits()


@pytest.fixture(scope="session")
def digits_flat():
    """Bundled digits as 64-feature vectors."""
    from tfgreen.datasets import load_digits

    return load_digits(flat=True)


_TRAINED: dict = {}


@pytest.fixture
def trained_cnn(flavor, digits):
    """A small CNN of the current flavour trained 5 epochs on digits (built once per session)."""
    if flavor not in _TRAINED:
        from tfgreen.models import small_cnn

        (x_train, y_train), _ = digits
        model = small_cnn(flavor, seed=0)
        model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
        model.fit(x_train, y_train, epochs=5, batch_size=32, verbose=0)
        _TRAINED[flavor] = model
    return _TRAINED[flavor]
