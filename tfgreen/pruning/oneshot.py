"""One-shot pruning without retraining: `tfgreen.prune(model, sparsity, method=...)`.

`method="magnitude"` zeroes the smallest weights of each kernel; `"wanda"`
and `"sparsegpt"` weigh them by the layer's inputs on calibration data
(`tfgreen.pruning._saliency` holds the maths, `tfgreen.pruning._layout` how a
kernel's input becomes rows of features). The model comes back plain (no
wrappers, no `fit()`), of the same Keras and class, with the zeros in its
kernels; the model given is not changed.

Statistics are collected sequentially, as in both papers: the kernels are
visited in the order the model calls them, and each group of kernels that
read the same input (the query/key/value projections of one attention) gets
its input statistics from the model as pruned so far, on all calibration
windows, batch by batch; the forward pass stops at that group's layer. Only
one group's statistics are held at a time (for SparseGPT one `k x k`
Hessian, `k` the layer's input features). The inputs are read by a hook on
each layer's `call` (an attribute of the instance, removed afterwards),
which works the same in Keras 3 and tf_keras and inside nested blocks
(MultiHeadAttention, KerasHub's TransformerDecoder). A tqdm bar on a
terminal shows the layers.

Example:
>>> import numpy as np, tfgreen
>>> from tfgreen.datasets import load_text
>>> from tfgreen.models import tiny_gpt
>>> data = load_text(seq_len=8, vocab_size=300)
>>> lm = tiny_gpt(vocab_size=300, seq_len=8, embed_dim=16, num_layers=1, ff_dim=32)
>>> pruned = tfgreen.prune(lm, 0.5, method="wanda", calibration_data=data.train[:32])
>>> sorted(set(tfgreen.sparsity(pruned).values()))  # the token table is left dense
[0.0, 0.5]
"""

from __future__ import annotations

import contextlib
import dataclasses
import sys
import warnings
from collections.abc import Callable

import numpy as np

from tfgreen import _lm, _validate
from tfgreen.errors import CalibrationError, TfgreenValueError, UnsupportedLayerError, message
from tfgreen.flavor import keras_for
from tfgreen.pruning import _saliency
from tfgreen.pruning._clone import nested_layers
from tfgreen.pruning._kernels import Kernel, find_kernels
from tfgreen.pruning._layout import Layout, layout_of

__all__ = ["METHODS", "prune_oneshot"]

METHODS = ("magnitude", "wanda", "sparsegpt")
_CALIBRATED = ("wanda", "sparsegpt")
_TOKENS = 4096  # calibration tokens per forward pass (batches of whole windows)


@dataclasses.dataclass(frozen=True)
class _Target:
    kernel: Kernel
    layout: Layout | None  # None for magnitude pruning


class _Seen(Exception):
    """Raised by a hook once it has the input it waited for: the forward pass stops there."""


class _Statistics:
    """Running sums over calibration tokens: `sum x_j^2` (Wanda) and `X^T X` (SparseGPT)."""

    def __init__(self, hessian: bool):
        self.tokens, self.squares, self.gram, self.hessian = 0, None, None, hessian

    def add(self, rows: np.ndarray) -> None:
        if self.squares is None:
            self.squares = np.zeros(rows.shape[1])
            self.gram = np.zeros((rows.shape[1],) * 2) if self.hessian else None
        self.tokens += len(rows)
        self.squares += np.sum(rows * rows, axis=0)
        if self.hessian:
            self.gram += rows.T @ rows

    def prune(self, rows: np.ndarray, method: str, sparsity: float, m_by_n) -> np.ndarray:
        """The pruned `[outputs, inputs]` weights."""
        if method == "wanda":
            return _saliency.wanda(rows, np.sqrt(self.squares), sparsity, m_by_n)
        return _saliency.sparsegpt(rows, 2.0 * self.gram / self.tokens, sparsity, m_by_n)


def _check_args(method, calibration_data, gradual: dict) -> None:
    if method is None:
        # Only reached with calibration data (tfgreen.prune's dispatch).
        raise TfgreenValueError(
            message(
                "`calibration_data` is only used by one-shot pruning, and no `method` was given",
                "method='wanda' or 'sparsegpt' with calibration_data, or method=None "
                "(gradual pruning during fit()) without it",
                "Pass method='wanda' (or 'sparsegpt'), or drop calibration_data",
                method=None,
            )
        )
    _validate.choice(
        "method",
        method,
        METHODS,
        fix="Pass method='magnitude', 'wanda' or 'sparsegpt' for one-shot pruning, or "
        "method=None for gradual pruning during fit()",
    )
    given = {name: value for name, value in gradual.items() if value not in (None, False)}
    if given:
        raise TfgreenValueError(
            message(
                f"One-shot pruning (method='{method}') takes no {sorted(given)}: they drive "
                "gradual pruning during fit()",
                "schedule=None and for_xnnpack=False with a method",
                "Drop them, or drop `method` for gradual pruning",
                method=method,
                **given,
            )
        )
    if method in _CALIBRATED and calibration_data is None:
        raise TfgreenValueError(
            message(
                f"method='{method}' weighs each weight by the layer's inputs, so it needs "
                "calibration data",
                "calibration_data: inputs of the model; for a language model token-id "
                "windows [n, seq_len], e.g. 64-128 training windows",
                "Pass calibration_data=data.train[:128], or use method='magnitude' (no data)",
                calibration_data=None,
            )
        )


def _vocab_size(model, keras) -> int:
    """The ids a token model takes: its smallest embedding table, else its logits' width."""
    tables = [
        int(layer.input_dim)
        for layer in nested_layers(model)
        if isinstance(layer, keras.layers.Embedding)
    ]
    if tables:
        return min(tables)
    if _lm.is_language_model(model):
        return int(model.outputs[0].shape[-1])
    return int(np.iinfo("int32").max)


def _batches(model, keras, calibration_data) -> tuple[list, Callable]:
    """The checked calibration data in batches, and `feed(batch)` giving what `model()` takes."""
    tokens = _lm.token_feed(model)
    if tokens is not None:
        token_input, feed = tokens
        ids = _lm.check_token_ids(
            calibration_data,
            _vocab_size(model, keras),
            token_input.shape[1],
            name="calibration_data",
        )
        size = max(1, _TOKENS // ids.shape[1])
        return [ids[i : i + size] for i in range(0, len(ids), size)], feed
    arrays = _input_arrays(model, calibration_data)
    size = max(1, _TOKENS // max(1, int(np.prod(arrays[0].shape[1:-1]))))  # rows per sample
    batches = [[a[i : i + size] for a in arrays] for i in range(0, len(arrays[0]), size)]
    return batches, (lambda batch: batch[0] if len(batch) == 1 else batch)


def _bad_inputs(what: str, expected: str, fix: str, **received) -> CalibrationError:
    return CalibrationError(message(what, expected, fix, **received))


def _input_arrays(model, data) -> list[np.ndarray]:
    """Checked calibration arrays of a model not fed token ids: one per input, finite."""
    inputs = list(model.inputs)
    arrays = list(data) if isinstance(data, (list, tuple)) else [data]
    if len(arrays) != len(inputs) or not all(isinstance(a, np.ndarray) for a in arrays):
        raise _bad_inputs(
            "`calibration_data` must be numpy arrays, one per model input",
            f"{len(inputs)} array(s) shaped like the model's inputs, samples on axis 0",
            "Pass for example calibration_data=x_train[:256]",
            calibration_data=type(data).__name__,
        )
    for array, tensor in zip(arrays, inputs, strict=True):
        shape = tuple(tensor.shape)
        fits = array.ndim == len(shape) and all(
            want is None or want == got
            for want, got in zip(shape[1:], array.shape[1:], strict=True)
        )
        if not fits or not len(array) or not np.issubdtype(array.dtype, np.number):
            raise _bad_inputs(
                "`calibration_data` does not fit the model's input",
                f"a non-empty numeric array of shape {(None, *shape[1:])}",
                "Pass samples of the data the model was trained on",
                shape=array.shape,
                dtype=str(array.dtype),
            )
        bad = np.flatnonzero(~np.isfinite(array.reshape(len(array), -1)).all(axis=1))
        if len(bad):
            raise _bad_inputs(
                f"`calibration_data` holds NaN or Inf, first in sample {int(bad[0])}",
                "finite values",
                "Drop or repair those samples",
                sample=int(bad[0]),
            )
    return arrays


def _structure_problem(kernel: Kernel, m_by_n) -> str | None:
    size = int(kernel.variable.shape[kernel.axis])
    if m_by_n is not None and size % m_by_n[1]:
        return (
            f"has {size} input channels (kernel axis {kernel.axis}), not a multiple of "
            f"n={m_by_n[1]}"
        )
    return None


def _targets(model, keras, chosen: list, explicit: bool, embeddings: bool, method, m_by_n):
    """The kernels to prune, each with its layout; the others skipped with a warning."""
    targets, skipped, seen = [], [], set()
    for top in chosen:
        tables = embeddings or (explicit and isinstance(top, keras.layers.Embedding))
        kernels = [k for k in find_kernels(top, keras, tables) if id(k.variable) not in seen]
        if explicit and not kernels:
            raise UnsupportedLayerError(
                message(
                    f"Layer '{top.name}' ({type(top).__name__}) has no kernel to prune",
                    "Dense, Conv, EinsumDense or MultiHeadAttention layers (or blocks holding "
                    "them), or an Embedding for method='magnitude'",
                    "Leave it out of `layers`",
                    layer=top.name,
                )
            )
        for kernel in kernels:
            seen.add(id(kernel.variable))
            layout = layout_of(kernel, keras) if method in _CALIBRATED else None
            problem = layout if isinstance(layout, str) else _structure_problem(kernel, m_by_n)
            if problem is None:
                targets.append(_Target(kernel, layout))
            elif explicit:
                raise UnsupportedLayerError(
                    message(
                        f"Layer '{kernel.path}' {problem}",
                        f"kernels method='{method}' can prune"
                        + ("" if m_by_n is None else ", with input channels divisible by n"),
                        "Leave it out of `layers`, or use method='magnitude' / structure=None",
                        layer=top.name,
                    )
                )
            else:
                skipped.append(f"{kernel.path} {problem}")
    if skipped:
        warnings.warn(
            message(
                f"method='{method}' leaves {len(skipped)} kernel(s) dense: " + "; ".join(skipped),
                "kernels the method can prune",
                "Prune those with method='magnitude' in a second tfgreen.prune call, or "
                "accept them dense",
            ),
            UserWarning,
            stacklevel=4,
        )
    if not targets:
        raise UnsupportedLayerError(
            message(
                f"The model has no kernel method='{method}' can prune",
                "at least one Dense/Conv/EinsumDense/MultiHeadAttention kernel"
                + ("" if m_by_n is None else f" whose input channels divide by {m_by_n[1]}"),
                "Prune a model with such layers, or choose them with `layers`",
                model=model.name,
            )
        )
    return targets


def _copy(model):
    """A plain copy of the same class, weights copied (a KerasHub model rebuilds from config)."""
    try:
        twin = type(model).from_config(model.get_config())
    except (NotImplementedError, TypeError, ValueError) as error:
        raise TfgreenValueError(
            message(
                "One-shot pruning works on a copy, and this model cannot be rebuilt from "
                f"its config ({type(error).__name__}: {error})",
                "a functional or Sequential model, or a class with get_config/from_config "
                "(KerasHub models have them)",
                "Give the model's class get_config/from_config, or prune a functional model",
                model=model.name,
            )
        ) from error
    twin.set_weights(model.get_weights())
    return twin


class _Hooked:
    """Inside it, each layer's `call` first hands its input to `record(layer, input)`."""

    def __init__(self, layers: list, record: Callable):
        self.layers, self.record = layers, record

    def __enter__(self):
        for layer in self.layers:
            original = layer.call

            def hook(*args, _layer=layer, _call=original, **kwargs):
                self.record(_layer, args[0] if args else kwargs["inputs"])
                return _call(*args, **kwargs)

            # Not through Keras's __setattr__: nothing to track, removed on exit.
            object.__setattr__(layer, "call", hook)
        return self

    def __exit__(self, *exc):
        for layer in self.layers:
            object.__delattr__(layer, "call")
        return False


def _run(model, feed: Callable, batch) -> None:
    with contextlib.suppress(_Seen):  # the hook got its input: the rest need not run
        model(feed(batch), training=False)


def _groups(model, feed, batch, targets: list[_Target]) -> list[tuple[list[_Target], bool]]:
    """The targets in the order the model calls them, those reading the same input together.

    Returns:
        `(targets, shared)` per group; `shared` for a layer the model calls
        more than once (its group holds it alone, and all its calls count).
    """
    calls: list[tuple] = []  # (layer, input), inputs kept alive so their ids stay unique
    by_layer = {id(t.kernel.layer): t for t in targets}
    with _Hooked([t.kernel.layer for t in targets], lambda layer, x: calls.append((layer, x))):
        _run(model, feed, batch)
    counts: dict[int, int] = {}
    for layer, _ in calls:
        counts[id(layer)] = counts.get(id(layer), 0) + 1
    never = [t.kernel.path for t in targets if id(t.kernel.layer) not in counts]
    if never:
        raise UnsupportedLayerError(
            message(
                f"The model never calls the layer(s) {never} on the calibration data, so "
                "their inputs can't be measured",
                "layers the model's forward pass calls through Keras (layer(x))",
                "Leave them out of `layers`, or prune them with method='magnitude'",
                layers=never,
            )
        )
    groups: dict[tuple, list[_Target]] = {}
    for layer, x in calls:
        target = by_layer[id(layer)]
        shared = counts[id(layer)] > 1
        key = ("shared", id(layer)) if shared else (id(x), target.layout.key)
        if target not in groups.setdefault(key, []):
            groups[key].append(target)
    return [(group, key[0] == "shared") for key, group in groups.items()]


def _statistics(model, feed, batches: list, group: list[_Target], shared: bool, hessian: bool):
    """A group's input statistics over every calibration batch, from the model as pruned so far.

    The forward pass of each batch stops at the group's first layer, unless
    the layer is shared (then the whole pass runs, every call counted).
    """
    first = group[0]
    stats = _Statistics(hessian)

    def record(layer, x):
        stats.add(first.layout.rows(np.asarray(x)))
        if not shared:
            raise _Seen

    with _Hooked([first.kernel.layer], record):
        for batch in batches:
            _run(model, feed, batch)
    return stats


def _assign(kernel: Kernel, value: np.ndarray) -> None:
    kernel.variable.assign(value.astype(np.asarray(kernel.variable).dtype))


def _progress(total: int, method: str):
    from tqdm import tqdm

    # disable=None: the bar shows only on a terminal.
    return tqdm(total=total, desc=f"{method} pruning", unit="layer", file=sys.stderr, disable=None)


def prune_oneshot(
    model,
    sparsity: float,
    method: str | None,
    calibration_data,
    m_by_n: tuple[int, int] | None,
    layers: list | None,
    embeddings: bool,
    gradual: dict,
):
    """One-shot pruning for `tfgreen.prune(..., method=...)` (see its docstring).

    Args:
        model: A built Keras 3 or tf_keras model without pruning wrappers.
        sparsity: Checked fraction of zeros per kernel (ignored with `m_by_n`).
        method: `"magnitude"`, `"wanda"` or `"sparsegpt"` (`None` is refused:
            calibration data without a method).
        calibration_data: Model inputs (token-id windows for a language
            model); needed by `"wanda"` and `"sparsegpt"`, unused by `"magnitude"`.
        m_by_n: `None` or the parsed `(m, n)` structure.
        layers: The chosen top-level layers, or `None` for every layer.
        embeddings: Also prune embedding tables (`"magnitude"` only).
        gradual: The gradual-only arguments as given (`schedule`, `for_xnnpack`).

    Returns:
        A plain pruned copy of `model`.
    """
    _check_args(method, calibration_data, gradual)
    keras = keras_for(model)
    if embeddings and method in _CALIBRATED:
        raise TfgreenValueError(
            message(
                f"method='{method}' can't prune embedding tables: they are looked up, not "
                "multiplied with inputs, so there are no activations to weigh them by",
                "embeddings=False with Wanda/SparseGPT",
                "Drop embeddings=True, or prune the tables with method='magnitude'",
                method=method,
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
    batches, feed = (
        _batches(model, keras, calibration_data) if method in _CALIBRATED else ([], None)
    )
    explicit = layers is not None
    chosen = layers if explicit else list(model.layers)
    _targets(model, keras, chosen, explicit, embeddings, method, m_by_n)  # refuse before copying
    twin = _copy(model)
    twin_layers = {layer.name: layer for layer in twin.layers}
    chosen = [twin_layers[layer.name] for layer in chosen]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # warned once, on the original above
        targets = _targets(twin, keras, chosen, explicit, embeddings, method, m_by_n)
    with _progress(len(targets), method) as bar:
        if method not in _CALIBRATED:
            for target in targets:
                kernel = target.kernel
                value = np.asarray(kernel.variable, dtype="float64")
                _assign(kernel, _saliency.magnitude_along(value, kernel.axis, sparsity, m_by_n))
                bar.update()
            return twin
        # The call order from one sample: every layer's input is held for this pass only.
        first = (
            batches[0][:1] if isinstance(batches[0], np.ndarray) else [a[:1] for a in batches[0]]
        )
        for group, shared in _groups(twin, feed, first, targets):
            stats = _statistics(twin, feed, batches, group, shared, method == "sparsegpt")
            for target in group:
                kernel, layout = target.kernel, target.layout
                value = np.asarray(kernel.variable, dtype="float64")
                rows = stats.prune(layout.matrix(value).T, method, sparsity, m_by_n)
                _assign(kernel, layout.kernel(rows.T, value.shape))
                bar.update()
    return twin
