"""Copying a model layer by layer, replacing some layers (shared by prune and strip)."""

from __future__ import annotations

from collections.abc import Callable

from tfgreen.flavor import keras_for

__all__ = ["fresh_copy", "clone_layers"]


def fresh_copy(layer):
    """A new, unbuilt layer with the same config (no weights shared)."""
    return layer.__class__.from_config(layer.get_config())


def _inner(layer):
    """The layer holding the weights: the wrapped layer of a wrapper, else the layer."""
    return getattr(layer, "layer", layer)


def clone_layers(model, replace: Callable, weights_of: Callable = None):
    """Clones `model` (either Keras), swapping layers and copying the weights.

    Args:
        model: A built Keras 3 or tf_keras model.
        replace: `replace(layer)` returns the new layer for `layer` or `None`
            to use a fresh copy of it.
        weights_of: `weights_of(layer)` returns the weight arrays to copy from
            `layer`; `None` uses `layer.get_weights()`. Defaults to `None`.

    Returns:
        The new model, of the same flavour, with no weights shared with `model`.
    """
    keras = keras_for(model)

    def clone_function(layer):
        new = replace(layer)
        return new if new is not None else fresh_copy(layer)

    clone = keras.models.clone_model(model, clone_function=clone_function)
    for source, target in zip(model.layers, clone.layers, strict=True):
        weights = source.get_weights() if weights_of is None else weights_of(source)
        # A pruning wrapper adds its mask (and tfmot's step, threshold) to the
        # wrapped layer's weights, so the copied weights go to the wrapped layer.
        holder = target if len(target.weights) == len(weights) else _inner(target)
        holder.set_weights(weights)
    return clone
