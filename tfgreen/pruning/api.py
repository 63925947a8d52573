"""`tfgreen.prune`, `tfgreen.strip` and `tfgreen.sparsity` for both Kerases.

tf_keras models are pruned with tfmot's `prune_low_magnitude`; Keras 3 models
with tfgreen's own `keras.ops` implementation (`tfgreen.pruning._keras3`).
Either way the schedule is tfgreen's, sized from the real `fit()` run by
`tfgreen.callbacks.Pruning`, and the model returned is of the flavour given.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable
from types import ModuleType

import numpy as np

from tfgreen.distribute import check_strategy, strategy_of
from tfgreen.errors import TfgreenTypeError, TfgreenValueError, UnsupportedLayerError, message
from tfgreen.flavor import KERAS3, flavor_of, keras_for
from tfgreen.pruning._clone import clone_layers
from tfgreen.pruning.schedules import (
    ConstantSparsity,
    PolynomialDecay,
    PruningSchedule,
    check_sparsity,
)
from tfgreen.pruning.structure import parse_structure

__all__ = ["prune", "strip", "sparsity", "backend_for", "pruned_layers"]

_SCHEDULES = ("polynomial", "constant")


def backend_for(model) -> ModuleType:
    """The module pruning this model's flavour (`keras3` or `tfmot_backend`)."""
    name = "_keras3" if flavor_of(model) == KERAS3 else "_tf_keras"
    return importlib.import_module(f"tfgreen.pruning.{name}")


def pruned_layers(model) -> list:
    """The pruning wrappers of a model (empty for a plain model)."""
    return backend_for(model).wrappers(model)


def _default_prunable(keras) -> tuple[type, ...]:
    layers = keras.layers
    return (layers.Dense, layers.Conv1D, layers.Conv2D, layers.Conv3D)


def _has_kernel(layer) -> bool:
    return any(w.name.split("/")[-1].split(":")[0] == "kernel" for w in layer.weights)


def _input_channels(layer) -> int:
    kernel = next(w for w in layer.weights if w.name.split("/")[-1].split(":")[0] == "kernel")
    return int(kernel.shape[-2])


def _make_schedule(schedule, sparsity: float) -> PruningSchedule:
    if isinstance(schedule, PruningSchedule):
        return schedule
    if schedule == "polynomial":
        return PolynomialDecay(sparsity)
    if schedule == "constant":
        return ConstantSparsity(sparsity)
    raise TfgreenValueError(
        message(
            "Unknown pruning `schedule`",
            f"one of {_SCHEDULES} or a `tfgreen.PruningSchedule` object",
            "Pass schedule='polynomial' (cubic ramp, the default) or schedule='constant'",
            schedule=schedule,
        )
    )


def _select(model, layers, m_by_n) -> set[str]:
    """Names of the top-level layers to prune, validated."""
    keras = keras_for(model)
    by_name = {layer.name: layer for layer in model.layers}
    if layers is None:
        chosen = [
            layer
            for layer in model.layers
            if isinstance(layer, _default_prunable(keras))
            and (m_by_n is None or _input_channels(layer) % m_by_n[1] == 0)
        ]
    elif callable(layers):
        chosen = [layer for layer in model.layers if layers(layer)]
    else:
        names = [layers] if isinstance(layers, str) else list(layers)
        if not all(isinstance(name, str) for name in names):
            raise TfgreenTypeError(
                message(
                    "`layers` must be layer names or a predicate",
                    "None, a list of layer names, or a function layer -> bool",
                    "Pass for example layers=['dense1', 'dense2']",
                    layers=layers,
                )
            )
        missing = [name for name in names if name not in by_name]
        if missing:
            raise TfgreenValueError(
                message(
                    f"`layers` names layers the model does not have: {missing}",
                    f"names among {sorted(by_name)}",
                    "Check the names with model.summary()",
                    layers=layers,
                )
            )
        chosen = [by_name[name] for name in names]
    for layer in chosen:
        if not _has_kernel(layer):
            raise UnsupportedLayerError(
                message(
                    f"Layer '{layer.name}' ({type(layer).__name__}) has no kernel to prune",
                    "Dense or Conv-like layers with a `kernel` weight",
                    "Leave it out of `layers`",
                    layer=layer.name,
                )
            )
        if m_by_n is not None and _input_channels(layer) % m_by_n[1]:
            raise UnsupportedLayerError(
                message(
                    f"Layer '{layer.name}' has {_input_channels(layer)} input channels, "
                    f"not a multiple of n={m_by_n[1]}",
                    "input channels divisible by n for m:n structured pruning",
                    "Leave it out of `layers` or use structure=None",
                    layer=layer.name,
                )
            )
    if not chosen:
        raise UnsupportedLayerError(
            message(
                "The model has no layer to prune",
                "at least one Dense/Conv layer with a kernel"
                + ("" if m_by_n is None else f" whose input channels divide by {m_by_n[1]}"),
                "Prune a model with Dense or Conv layers, or choose them with `layers`",
                model=model.name,
                layers=layers,
            )
        )
    return {layer.name for layer in chosen}


def prune(
    model,
    sparsity: float = 0.8,
    schedule: str | PruningSchedule = "polynomial",
    structure: str | None = None,
    layers: Iterable[str] | Callable | None = None,
    for_xnnpack: bool = False,
):
    """Returns a copy of `model` set up for magnitude pruning during `fit()`.

    Compile and `fit()` the result with `tfgreen.callbacks.Pruning()` in the
    callbacks; then `tfgreen.strip()` it. tf_keras models are pruned with
    tfmot's `prune_low_magnitude`; Keras 3 models with tfgreen's own
    implementation (masks in `tfgreen.pruning._keras3`). `model` is not changed.

    Args:
        model: A built Keras 3 or tf_keras model.
        sparsity: Final fraction of zeros in each pruned kernel, in [0, 1), for
            the `"polynomial"` and `"constant"` schedules. Defaults to `0.8`.
        schedule: `"polynomial"` (cubic ramp to `sparsity` over the first 80%
            of the run), `"constant"`, or a `tfgreen.PruningSchedule` object
            (which then sets the sparsity). Defaults to `"polynomial"`.
        structure: `None` for unstructured pruning, or `"m:n"` for `m` zeros in
            every `n` consecutive input-channel weights (`"2:4"`: 50%); the
            pattern then sets the sparsity. Defaults to `None`.
        layers: Layer names to prune, or a predicate `layer -> bool`; `None`
            prunes every Dense/Conv kernel. Defaults to `None`.
        for_xnnpack: tf_keras only: let tfmot's `PruneForLatencyOnXNNPack`
            policy choose the layers (sparse 1x1 convs XNNPACK runs faster).
            Defaults to `False`.

    Returns:
        A new model of the same flavour with the chosen layers wrapped.

    Example:
    >>> pruned = tfgreen.prune(model, sparsity=0.8)
    >>> pruned.compile("adam", "sparse_categorical_crossentropy")
    >>> pruned.fit(x, y, epochs=5, callbacks=[tfgreen.callbacks.Pruning()])
    >>> tfgreen.sparsity(tfgreen.strip(pruned))
    {'dense1': 0.8, 'dense2': 0.8, 'output': 0.8}
    """
    flavor = flavor_of(model)
    check_strategy(model, strategy_of())  # tfgreen.distribute: refuse what tf.distribute can't run
    sparsity = check_sparsity(sparsity)
    schedule = _make_schedule(schedule, sparsity)
    m_by_n = parse_structure(structure)
    if not isinstance(for_xnnpack, bool):
        raise TfgreenTypeError(
            message(
                "`for_xnnpack` must be a bool",
                "True or False",
                "Pass for_xnnpack=True to use tfmot's XNNPACK latency policy",
                for_xnnpack=for_xnnpack,
            )
        )
    if for_xnnpack and (flavor == KERAS3 or layers is not None or m_by_n is not None):
        raise TfgreenValueError(
            message(
                "`for_xnnpack=True` works only for tf_keras models, without `layers` or "
                "`structure` (tfmot's policy chooses the layers)",
                "a tf_keras model and layers=None, structure=None",
                "Drop for_xnnpack, or pass a tf_keras model alone",
                flavor=flavor,
                layers=layers,
                structure=structure,
            )
        )
    if not model.built:
        raise TfgreenValueError(
            message(
                "The model is not built, so its kernels do not exist yet",
                "a built model (with an Input, or called once on data)",
                "Start the model with keras.Input(shape) or call model.build(input_shape)",
                model=model.name,
            )
        )
    backend = backend_for(model)
    chosen = backend.xnnpack_layers(model) if for_xnnpack else _select(model, layers, m_by_n)
    driver = schedule if flavor == KERAS3 else backend.DrivenSchedule(schedule)
    return clone_layers(
        model,
        lambda layer: backend.wrap(layer, driver, structure) if layer.name in chosen else None,
    )


def strip(model):
    """Returns the plain model of a pruned one: same flavour, ordinary layers, zeros kept.

    Args:
        model: A model returned by `tfgreen.prune` (trained or not).

    Returns:
        A new model without pruning wrappers whose kernels hold the masked
        weights; save, convert or quantize it as any model.

    Example:
    >>> slim = tfgreen.strip(pruned)
    >>> slim.save("slim.keras")
    """
    backend = backend_for(model)
    if not backend.wrappers(model):
        raise TfgreenValueError(
            message(
                "The model has no pruning wrappers to strip",
                "a model returned by tfgreen.prune",
                "Pass the pruned model, or use this model as it is",
                model=model.name,
            )
        )
    return backend.strip(model)


def sparsity(model) -> dict[str, float]:
    """Fraction of zeros in each pruned kernel, by layer name.

    Works on pruned models (the kernels as used: weights times masks) and on
    plain or stripped models (every Dense/Conv kernel).

    Args:
        model: A Keras 3 or tf_keras model.

    Returns:
        `{layer_name: fraction_zero}`.

    Example:
    >>> tfgreen.sparsity(tfgreen.strip(pruned))
    {'dense1': 0.8, 'dense2': 0.8, 'output': 0.8}
    """
    backend = backend_for(model)
    wrapped = backend.wrappers(model)
    if wrapped:
        return {w.layer.name: _zero_fraction(backend.masked_kernel(w)) for w in wrapped}
    keras = keras_for(model)
    return {
        layer.name: _zero_fraction(layer.get_weights()[0])
        for layer in model._flatten_layers(include_self=False)
        if isinstance(layer, _default_prunable(keras)) and _has_kernel(layer)
    }


def _zero_fraction(array: np.ndarray) -> float:
    return float(np.mean(np.asarray(array) == 0))
