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


def pytest_collection_modifyitems(config, items):
    """Runs the `slow` tests first (stable order otherwise).

    With `-n 2` the long end-to-end runs are then shared by both workers from
    the start instead of ending the session on one of them.
    """
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)


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


# ---- language-model fixtures (lmdata) -------------------------------------------------
# `text_data`: the bundled text, seq_len 32, vocab 512 (session).
# `tiny_lm`: a `tiny_gpt` of the current flavour trained on it (built once per flavour
# per session; 2 epochs on the first 2048 training windows, about 7 s).
# `tiny_lm_figures[flavor]`: {"train_seconds", "val_perplexity"} of that training run.

LM_SEQ_LEN = 32
LM_VOCAB = 512
_TINY_LM: dict = {}
_TINY_LM_FIGURES: dict = {}


@pytest.fixture(scope="session")
def text_data():
    """`tfgreen.datasets.load_text(seq_len=32, vocab_size=512)`."""
    from tfgreen.datasets import load_text

    return load_text(seq_len=LM_SEQ_LEN, vocab_size=LM_VOCAB)


@pytest.fixture
def tiny_lm(flavor, text_data):
    """A trained `tiny_gpt` (vocab 512, seq_len 32, width 32, 2 blocks) of the current flavour."""
    if flavor not in _TINY_LM:
        import time

        from tfgreen.datasets import next_token_targets
        from tfgreen.models import tiny_gpt
        from tfgreen.perplexity import perplexity

        keras = keras_for(flavor)
        model = tiny_gpt(
            flavor, vocab_size=LM_VOCAB, seq_len=LM_SEQ_LEN, embed_dim=32, ff_dim=64, seed=0
        )
        model.compile(
            keras.optimizers.Adam(1e-2),
            keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        )
        x = text_data.train[:2048]
        y, weights = next_token_targets(x)
        start = time.perf_counter()
        model.fit(x, y, sample_weight=weights, batch_size=32, epochs=2, verbose=0)
        _TINY_LM_FIGURES[flavor] = {
            "train_seconds": time.perf_counter() - start,
            "val_perplexity": perplexity(model, text_data.val),
        }
        _TINY_LM[flavor] = model
    return _TINY_LM[flavor]


@pytest.fixture
def tiny_lm_figures():
    """`{flavor: {"train_seconds", "val_perplexity"}}` of the `tiny_lm` runs so far."""
    return _TINY_LM_FIGURES


# ---- KerasHub GPT2 (Keras 3) ------------------------------------------------------------
# `make_gpt2(...)`: a fresh, untrained GPT2CausalLM built from config (no download).
# `gpt2_lm`: one of those (vocab 512, seq 32, 2 layers, hidden 32) trained six epochs on
# `text_data` (session; about 17 s), for tests that need a model that has learned.


def _gpt2(vocabulary_size=LM_VOCAB, num_layers=2, max_sequence_length=LM_SEQ_LEN, seed=0):
    keras_hub = pytest.importorskip("keras_hub")
    import keras

    keras.utils.set_random_seed(seed)
    backbone = keras_hub.models.GPT2Backbone(
        vocabulary_size=vocabulary_size,
        num_layers=num_layers,
        num_heads=2,
        hidden_dim=32,
        intermediate_dim=64,
        max_sequence_length=max_sequence_length,
        dropout=0.0,
    )
    return keras_hub.models.GPT2CausalLM(backbone=backbone, preprocessor=None)


@pytest.fixture(scope="session")
def make_gpt2():
    """`make_gpt2(vocabulary_size=512, num_layers=2, max_sequence_length=32, seed=0)`."""
    return _gpt2


@pytest.fixture(scope="session")
def gpt2_lm(text_data):
    """A KerasHub GPT2CausalLM from config, trained six epochs on 2048 windows (~17 s)."""
    import keras

    from tfgreen.datasets import next_token_targets

    lm = _gpt2()
    lm.compile(
        keras.optimizers.Adam(1e-2),
        keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        sampler="greedy",
    )
    x = text_data.train[:2048]
    y, weights = next_token_targets(x)
    lm.fit(
        {"token_ids": x, "padding_mask": np.ones_like(x)},
        y,
        sample_weight=weights,
        batch_size=32,
        epochs=6,
        verbose=0,
    )
    return lm
