"""`tfgreen.prune`, `tfgreen.strip` and `tfgreen.sparsity` for both Kerases.

tf_keras models are pruned with tfmot's `prune_low_magnitude`; Keras 3 models
with tfgreen's own `keras.ops` implementation (`tfgreen.pruning._keras3`).
Either way the schedule is tfgreen's, sized from the real `fit()` run by
`tfgreen.callbacks.Pruning`, and the model returned is of the flavour given.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterable
from types import ModuleType

from tfgreen import _validate
from tfgreen.distribute import check_strategy, strategy_of
from tfgreen.errors import TfgreenTypeError, TfgreenValueError, UnsupportedLayerError, message
from tfgreen.flavor import backend, flavor_of, keras_for
from tfgreen.pruning import oneshot
from tfgreen.pruning._clone import nested_layers
from tfgreen.pruning._kernels import find_kernels, zero_fraction
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
    """The pruning backend of this model's Keras (`_keras3` or `_tf_keras`)."""
    return backend("tfgreen.pruning", flavor_of(model))  # flavor_of refuses non-models


def pruned_layers(model) -> list:
    """The pruning wrappers of a model (empty for a plain model)."""
    return backend_for(model).wrappers(model)


def _make_schedule(schedule, sparsity: float) -> PruningSchedule:
    if isinstance(schedule, PruningSchedule):
        return schedule
    _validate.choice(
        "schedule",
        schedule,
        _SCHEDULES,
        fix="Pass schedule='polynomial' (cubic ramp, the default), schedule='constant', "
        "or a `tfgreen.PruningSchedule` object",
    )
    return PolynomialDecay(sparsity) if schedule == "polynomial" else ConstantSparsity(sparsity)


def _chosen_layers(model, layers) -> list:
    """The top-level layers `layers` names or selects (`None`: every layer)."""
    if layers is None or callable(layers):
        return [layer for layer in model.layers if layers is None or layers(layer)]
    if not isinstance(layers, (str, list, tuple, set, frozenset)) or not all(
        isinstance(name, str) for name in ([layers] if isinstance(layers, str) else layers)
    ):
        raise TfgreenTypeError(
            message(
                "`layers` must be layer names or a predicate",
                "None, a list of layer names, or a function layer -> bool",
                "Pass for example layers=['dense1', 'dense2']",
                layers=layers,
            )
        )
    by_name = {layer.name: layer for layer in model.layers}
    missing = [
        name for name in ([layers] if isinstance(layers, str) else layers) if name not in by_name
    ]
    if missing:
        raise TfgreenValueError(
            message(
                f"`layers` names layers the model does not have: {missing}",
                f"names among {sorted(by_name)}",
                "Check the names with model.summary()",
                layers=layers,
            )
        )
    return [by_name[name] for name in ([layers] if isinstance(layers, str) else layers)]


def _select(model, pruning: ModuleType, layers, m_by_n, embeddings: bool) -> dict[str, bool]:
    """The top-level layers to prune, validated: `{name: prune its embeddings}`.

    With `layers=None` every layer with a prunable kernel is chosen (skipping,
    with a warning, under `"m:n"`, those whose kernels don't fit the groups);
    a layer chosen explicitly must be prunable, and an Embedding chosen
    explicitly is pruned.
    """
    keras = keras_for(model)
    explicit = layers is not None
    chosen = {}
    skipped = []
    for layer in _chosen_layers(model, layers):
        tables = embeddings or (explicit and isinstance(layer, keras.layers.Embedding))
        kernels = pruning.prunable_kernels(layer, tables)
        if not kernels:
            if explicit:
                raise UnsupportedLayerError(
                    message(
                        f"Layer '{layer.name}' ({type(layer).__name__}) has no kernel to prune",
                        "Dense, Conv, EinsumDense or MultiHeadAttention layers, or an Embedding "
                        "(or, on Keras 3, a block or model holding them)",
                        "Leave it out of `layers`",
                        layer=layer.name,
                    )
                )
            continue
        problems = (
            []
            if m_by_n is None
            else [
                (kernel.path, problem)
                for kernel in kernels
                if (problem := pruning.structure_problem(kernel, m_by_n[1])) is not None
            ]
        )
        if problems and explicit:
            path, problem = problems[0]
            raise UnsupportedLayerError(
                message(
                    f"Layer '{path}' {problem}",
                    "kernels whose reduction axis divides by n for m:n structured pruning",
                    "Leave it out of `layers` or use structure=None",
                    layer=layer.name,
                )
            )
        if not problems:
            chosen[layer.name] = tables
        else:
            skipped.append(f"{problems[0][0]} {problems[0][1]}")
    if skipped:
        warnings.warn(
            message(
                f"structure='{m_by_n[0]}:{m_by_n[1]}' leaves {len(skipped)} layer(s) dense: "
                + "; ".join(skipped),
                "kernels whose reduction axis divides by n (and, on tf_keras, Dense/Conv2D "
                "layouts)",
                "Prune those layers unstructured in a second tfgreen.prune call, or accept "
                "them dense",
            ),
            UserWarning,
            stacklevel=3,
        )
    if not chosen:
        raise UnsupportedLayerError(
            message(
                "The model has no layer to prune",
                "at least one Dense/Conv/EinsumDense/MultiHeadAttention layer with a kernel"
                + ("" if m_by_n is None else f" whose input channels divide by {m_by_n[1]}"),
                "Prune a model with such layers, or choose them with `layers`",
                model=model.name,
                layers=layers,
            )
        )
    return _fold_nested(model, chosen)


def _fold_nested(model, chosen: dict[str, bool]) -> dict[str, bool]:
    """Drops chosen layers that live inside another chosen layer, which prunes them.

    A KerasHub backbone holds the token embedding that the model's graph
    reuses as its tied LM head: the head is pruned once, with the backbone,
    which then also prunes tables if the head was to be.
    """
    layers = {layer.name: layer for layer in model.layers}
    holder = {id(inner): name for name in chosen for inner in nested_layers(layers[name])}
    folded = {name: tables for name, tables in chosen.items() if id(layers[name]) not in holder}
    for name, tables in chosen.items():
        if id(layers[name]) in holder:
            folded[holder[id(layers[name])]] |= tables
    return folded


def prune(
    model,
    sparsity: float = 0.8,
    schedule: str | PruningSchedule | None = None,
    structure: str | None = None,
    layers: Iterable[str] | Callable | None = None,
    for_xnnpack: bool = False,
    embeddings: bool = False,
    method: str | None = None,
    calibration_data=None,
):
    """Returns a copy of `model` set up for magnitude pruning during `fit()`, or pruned one-shot.

    With `method` (`"magnitude"`, `"wanda"`, `"sparsegpt"`) the copy comes
    back pruned at once, with no `fit()` and no wrappers: a plain model
    whose kernels hold the zeros (`tfgreen.pruning.oneshot`). Wanda (Sun et
    al. 2023) scores each weight by `|w|` times the L2 norm of its input
    feature over `calibration_data`, per output; SparseGPT (Frantar &
    Alistarh 2023) picks the masks block by block from the inverse Hessian of
    the layer inputs and updates the kept weights to make up for the pruned
    ones. Both read the inputs layer by layer from the model as pruned so
    far. They prune Dense, EinsumDense (attention projections included) and
    Conv2D kernels; magnitude also any other kernel and embedding tables.

    Without `method`: compile and `fit()` the result with `tfgreen.callbacks.Pruning()` in the
    callbacks; then `tfgreen.strip()` it. tf_keras models are pruned with
    tfmot's `prune_low_magnitude`; Keras 3 models with tfgreen's own
    implementation (masks in `tfgreen.pruning._keras3`). `model` is not changed.

    What gets pruned, in both Kerases: Dense and Conv kernels (a
    transformer's feed-forward layers), EinsumDense kernels, and the
    query/key/value/output projections of MultiHeadAttention (EinsumDense
    kernels of rank 3). On Keras 3 also every kernel nested inside a block or
    model: KerasHub's TransformerDecoder and CachedMultiHeadAttention, a whole
    backbone. Embedding tables (KerasHub's ReversibleEmbedding included) only
    when asked (`embeddings=True`, or the Embedding named in `layers`): a tied
    embedding is also the language model's output head, so pruning it prunes
    the head too. tfmot (tf_keras) prunes only the layers of its registry
    plus EinsumDense: a custom block is left out.

    A model whose class builds itself from its config (a KerasHub
    `GPT2CausalLM`, Gemma or Llama CausalLM) comes back as its own class,
    with its tied embedding still tied, and so does `tfgreen.strip` of it:
    `generate()` works on the result. Save such a model after `strip`: saved
    while pruned, it keeps its weights (zeros included) but loads without
    its masks, as a plain model.

    Args:
        model: A built Keras 3 or tf_keras model.
        sparsity: Final fraction of zeros in each pruned kernel, in [0, 1), for
            the `"polynomial"` and `"constant"` schedules. Defaults to `0.8`.
        schedule: `"polynomial"` (cubic ramp to `sparsity` over the first 80%
            of the run), `"constant"`, or a `tfgreen.PruningSchedule` object
            (which then sets the sparsity); `None` is `"polynomial"` (and is
            the only value `method` takes). Defaults to `None`.
        structure: `None` for unstructured pruning, or `"m:n"` for `m` zeros in
            every `n` consecutive weights along each kernel's reduction axis
            (the input channels of Dense/Conv, the last contracted axis of an
            EinsumDense: the model width for query/key/value, the head size
            for the attention output; the feature axis of an embedding table);
            `"2:4"` gives 50%, and the pattern then sets the sparsity. With
            `layers=None`, kernels that can't hold the groups stay dense, with
            a warning; tfmot (tf_keras) holds them only in Dense and Conv2D
            layouts, so on tf_keras attention projections and embeddings stay
            dense. Defaults to `None`.
        layers: Top-level layer names to prune, or a predicate
            `layer -> bool`; `None` prunes every layer with a prunable kernel.
            Defaults to `None`.
        for_xnnpack: tf_keras only: let tfmot's `PruneForLatencyOnXNNPack`
            policy choose the layers (sparse 1x1 convs XNNPACK runs faster).
            Defaults to `False`.
        embeddings: Also prune the embedding tables of the chosen layers.
            Defaults to `False`.
        method: `None` for gradual pruning during `fit()`; `"magnitude"`,
            `"wanda"` or `"sparsegpt"` for one-shot pruning, no retraining.
            Defaults to `None`.
        calibration_data: For `"wanda"` and `"sparsegpt"`: inputs of the model,
            for a language model int token-id windows `[n, seq_len]` (64-128
            training windows are plenty). Unused by `"magnitude"`. Defaults
            to `None`.

    Returns:
        A new model of the same flavour (and class) with the chosen layers
        pruned: wrapped for `fit()`, or plain with its zeros for a `method`.

    Example:
    A small causal transformer: attention projections and feed-forward
    kernels are pruned, the token embedding (not asked for) stays dense.
    >>> import keras, tfgreen
    >>> from tfgreen.datasets import load_text, next_token_targets
    >>> from tfgreen.models import tiny_gpt
    >>> data = load_text(seq_len=8, vocab_size=300)
    >>> lm = tiny_gpt(vocab_size=300, seq_len=8, embed_dim=16, num_layers=1, ff_dim=32)
    >>> pruned = tfgreen.prune(lm, sparsity=0.5)
    >>> pruned.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    >>> x = data.train[:64]
    >>> y, weights = next_token_targets(x)
    >>> _ = pruned.fit(x, y, sample_weight=weights, epochs=2, verbose=0,
    ...                callbacks=[tfgreen.callbacks.Pruning()])
    >>> kept = tfgreen.sparsity(tfgreen.strip(pruned))
    >>> {path: kept[path] for path in kept if "attention" in path or "embedding" in path}
    {'token_embedding': 0.0, 'block0_attention/query': 0.5, 'block0_attention/key': 0.5, 'block0_attention/value': 0.5, 'block0_attention/attention_output': 0.5}

    One-shot, on the same data: Wanda at 2:4, no fit().
    >>> sparse = tfgreen.prune(lm, structure="2:4", method="wanda", calibration_data=x)
    >>> tfgreen.sparsity(sparse)["block0_ffn_in"]
    0.5
    """
    pruning = backend_for(model)
    if method is not None or calibration_data is not None:
        if pruning.wrappers(model):
            raise TfgreenValueError(
                message(
                    "The model already holds pruning wrappers",
                    "a plain model for one-shot pruning",
                    "Pass tfgreen.strip(model) instead",
                    model=model.name,
                )
            )
        return oneshot.prune_oneshot(
            model,
            check_sparsity(sparsity),
            method,
            calibration_data,
            parse_structure(structure),
            None if layers is None else _chosen_layers(model, layers),
            _validate.boolean("embeddings", embeddings, fix="Pass embeddings=True or False"),
            {"schedule": schedule, "for_xnnpack": for_xnnpack},
        )
    check_strategy(model, strategy_of())  # tfgreen.distribute: refuse what tf.distribute can't run
    sparsity = check_sparsity(sparsity)
    schedule = _make_schedule("polynomial" if schedule is None else schedule, sparsity)
    m_by_n = parse_structure(structure)
    _validate.boolean(
        "for_xnnpack",
        for_xnnpack,
        fix="Pass for_xnnpack=True to use tfmot's XNNPACK latency policy",
    )
    _validate.boolean(
        "embeddings", embeddings, fix="Pass embeddings=True to prune embedding tables"
    )
    if for_xnnpack and (layers is not None or m_by_n is not None or embeddings):
        raise TfgreenValueError(
            message(
                "`for_xnnpack=True` chooses the layers itself (tfmot's policy), so it takes no "
                "`layers`, `structure` or `embeddings`",
                "layers=None, structure=None, embeddings=False",
                "Drop for_xnnpack, or drop the other arguments",
                layers=layers,
                structure=structure,
                embeddings=embeddings,
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
    if for_xnnpack:
        chosen = dict.fromkeys(pruning.xnnpack_layers(model), False)
    else:
        chosen = _select(model, pruning, layers, m_by_n, embeddings)
    return pruning.prune_model(model, chosen, pruning.driver_for(schedule), structure)


def strip(model):
    """Returns the plain model of a pruned one: same flavour, ordinary layers, zeros kept.

    Args:
        model: A model returned by `tfgreen.prune` (trained or not).

    Returns:
        A new model without pruning wrappers whose kernels hold the masked
        weights; save, convert or quantize it as any model.

    Example:
    >>> import keras, tfgreen
    >>> model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2, name="out")])
    >>> slim = tfgreen.strip(tfgreen.prune(model))
    >>> [layer.name for layer in slim.layers]
    ['out']
    """
    pruning = backend_for(model)
    if not pruning.wrappers(model):
        raise TfgreenValueError(
            message(
                "The model has no pruning wrappers to strip",
                "a model returned by tfgreen.prune",
                "Pass the pruned model, or use this model as it is",
                model=model.name,
            )
        )
    return pruning.strip(model)


def sparsity(model) -> dict[str, float]:
    """Fraction of zeros in each pruned kernel, by kernel path.

    Works on pruned models (the kernels as used: weights times masks) and on
    plain or stripped models (every Dense/Conv/EinsumDense kernel and
    embedding table). A kernel is named by its layer (`"dense1"`), or for a
    kernel nested in a top-level layer by the path of layer names down to it
    (`"multi_head_attention/query"`).

    Args:
        model: A Keras 3 or tf_keras model.

    Returns:
        `{kernel_path: fraction_zero}`.

    Example:
    >>> import keras, numpy as np, tfgreen
    >>> model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2, name="out")])
    >>> _ = model.layers[0].kernel.assign(np.zeros((4, 2)))
    >>> tfgreen.sparsity(model)
    {'out': 1.0}
    """
    pruning = backend_for(model)
    wrapped = pruning.wrappers(model)
    if wrapped:
        return {
            path: zero_fraction(kernel)
            for wrapper in wrapped
            for path, kernel in pruning.masked_kernels(wrapper).items()
        }
    keras = keras_for(model)
    found: dict[int, tuple[str, float]] = {}
    for layer in model.layers:
        for kernel in find_kernels(layer, keras, embeddings=True):
            # A weight shared by two top-level layers (a tied LM head) is named once.
            found.setdefault(id(kernel.variable), (kernel.path, zero_fraction(kernel.variable)))
    return dict(found.values())
