"""Fixtures of the pruning tests: a dense MLP trained once per flavour, and one pruned run."""

from __future__ import annotations

import pytest

_DENSE: dict = {}
_PRUNED: dict = {}


def _compiled(model):
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


@pytest.fixture
def compiled():
    """`compiled(model)` compiles a digits classifier the same way in both Kerases."""
    return _compiled


@pytest.fixture
def dense_mlp(flavor, digits_flat):
    """The 64-256-256-10 MLP of the current flavour trained 5 epochs on flat digits, and its test accuracy."""
    if flavor not in _DENSE:
        from tfgreen.models import small_mlp

        (x_train, y_train), (x_test, y_test) = digits_flat
        model = _compiled(small_mlp(flavor, seed=0))
        model.fit(x_train, y_train, epochs=5, batch_size=32, verbose=0)
        _DENSE[flavor] = (model, model.evaluate(x_test, y_test, verbose=0)[1])
    return _DENSE[flavor]


@pytest.fixture
def pruned80(flavor, dense_mlp, digits_flat, seed):
    """`dense_mlp` pruned to 80% (polynomial schedule) with 4 epochs of fine-tuning, and its History."""
    if flavor not in _PRUNED:
        import tfgreen

        model, _ = dense_mlp
        (x_train, y_train), _ = digits_flat
        pruned = _compiled(tfgreen.prune(model, sparsity=0.8))
        history = pruned.fit(
            x_train,
            y_train,
            epochs=4,
            batch_size=32,
            verbose=0,
            callbacks=[tfgreen.callbacks.Pruning()],
        )
        _PRUNED[flavor] = (pruned, history)
    return _PRUNED[flavor]
