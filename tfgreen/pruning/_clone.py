"""Copying a model layer by layer, replacing some layers (shared by prune and strip)."""

from __future__ import annotations

from collections.abc import Callable

from tfgreen.flavor import keras_for

__all__ = ["fresh_copy", "nested_layers", "clone_layers"]


def fresh_copy(layer):
    """A new, unbuilt layer with the same config (no weights shared)."""
    return layer.__class__.from_config(layer.get_config())


def nested_layers(layer) -> list:
    """Every layer inside `layer`, at any depth (not `layer` itself)."""
    return list(layer._flatten_layers(include_self=False))  # Keras private, both Kerases


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
    # A top-level layer that also lives inside an earlier one (a backbone's
    # token embedding reused as the tied LM head) stays that one layer.
    outer = {}
    for layer in model.layers:
        for inner in nested_layers(layer):
            outer.setdefault(id(inner), layer)
    cloned = {}

    def clone_function(layer):
        container = outer.get(id(layer))
        if container is not None and id(container) in cloned:
            old, new = _inner(container), _inner(cloned[id(container)])
            same = dict(zip(map(id, nested_layers(old)), nested_layers(new), strict=True))
            return same[id(layer)]
        new = replace(layer)
        cloned[id(layer)] = new if new is not None else fresh_copy(layer)
        return cloned[id(layer)]

    clone = keras.models.clone_model(model, clone_function=clone_function)
    for source, target in zip(model.layers, clone.layers, strict=True):
        if id(source) in outer:
            continue  # its weights came with the layer holding it
        weights = source.get_weights() if weights_of is None else weights_of(source)
        # A pruning wrapper adds its mask (and tfmot's step, threshold) to the
        # wrapped layer's weights, so the copied weights go to the wrapped layer.
        holder = target if len(target.weights) == len(weights) else _inner(target)
        holder.set_weights(weights)
    return clone
