"""What `tfgreen.compare` is given: the data checked, and each candidate checked against it.

`check_data` turns `(x, y)` or token ids into a `Data`; `check_fits` says, before any
measurement, why a candidate can't be compared on it (input shape, vocabulary, labels).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tfgreen import _metrics
from tfgreen.errors import TfgreenTypeError, TfgreenValueError, message

__all__ = ["Data", "check_data", "check_fits"]


@dataclass
class Data:
    quality: str  # "accuracy" for (x, y), "perplexity" for token ids
    x: np.ndarray
    y: np.ndarray | None = None
    one_hot_width: int | None = None  # columns of one-hot labels, checked against each model

    def describe(self) -> str:
        if self.quality == "perplexity":
            return f"{len(self.x)} windows of {self.x.shape[1]} token ids."
        return f"{len(self.x)} samples of shape {tuple(self.x.shape[1:])}."


def _token_data(ids: np.ndarray) -> Data:
    if ids.ndim != 2 or len(ids) == 0 or ids.shape[1] < 2 or ids.min() < 0:
        raise TfgreenValueError(
            message(
                "`data` token ids must be windows of at least 2 ids, none negative",
                "an int array [n, seq_len] with n >= 1, seq_len >= 2 and ids >= 0",
                "Pass for example tfgreen.datasets.load_text(seq_len=64).val",
                data_shape=ids.shape,
            )
        )
    return Data("perplexity", ids.astype("int32", copy=False))


def check_data(data) -> Data:
    if (
        isinstance(data, np.ndarray)
        and data.dtype != bool
        and np.issubdtype(data.dtype, np.integer)
    ):
        return _token_data(data)
    if not isinstance(data, (tuple, list)) or len(data) != 2:
        raise TfgreenTypeError(
            message(
                "`data` must be an (x, y) pair, or token ids for language models",
                "a tuple (x, y) of arrays with one label per sample, or an int numpy array "
                "[n, seq_len] of token ids",
                "Pass for example (x_test, y_test), or load_text(seq_len=64).val",
                data=type(data).__name__,
            )
        )
    x, y = np.asarray(data[0]), np.asarray(data[1])
    if x.ndim < 2 or len(x) == 0 or len(x) != len(y):
        raise TfgreenValueError(
            message(
                "`data` does not hold matching samples and labels",
                "x with at least one sample (n, ...) and y with n labels",
                "Pass for example (x_test, y_test) from the same split",
                x_shape=x.shape,
                y_shape=y.shape,
            )
        )
    if not np.all(np.isfinite(x)):
        raise TfgreenValueError(
            message(
                "`data` x holds NaN or infinite values",
                "finite inputs",
                "Clean the data first",
                first_bad_sample=int(np.argwhere(~np.isfinite(x.reshape(len(x), -1)))[0][0]),
            )
        )
    width = int(y.shape[-1]) if y.ndim > 1 and y.shape[-1] > 1 else None
    return Data("accuracy", x, _metrics.class_labels(y), width)


def _io_shapes(candidate) -> tuple[tuple | None, tuple | None]:
    """Input and output shape of one sample (batch axis left out; None: unknown)."""
    if candidate.kind == "tflite":
        from tfgreen.tflite.read import read_tflite

        info = read_tflite(candidate.model)
        inp, out = info.tensors[info.inputs[0]].shape, info.tensors[info.outputs[0]].shape
        return tuple(None if d < 0 else d for d in inp[1:]), tuple(out[1:]) or (1,)
    model = candidate.model
    try:
        inp, out = tuple(model.inputs[0].shape)[1:], tuple(model.outputs[0].shape)[1:]
    except (AttributeError, IndexError, TypeError, ValueError):
        return None, None  # a subclassed model not yet built: nothing to check up front
    return inp, out


def _does_not_fit(candidate, why: str, expected: str, fix: str, **received):
    return TfgreenValueError(
        message(
            f"Candidate {candidate.name!r} does not fit the data: {why}", expected, fix, **received
        )
    )


def check_fits(candidate, data: Data) -> None:
    expected, output = _io_shapes(candidate)
    if expected is None:
        return
    given = data.x.shape[1:]
    fits = len(expected) == len(given) and all(
        e is None or e == g for e, g in zip(expected, given, strict=True)
    )
    if not fits:
        raise _does_not_fit(
            candidate,
            "its input shape differs",
            f"samples of shape {expected} (batch axis left out)",
            "Compare it on data of its own input shape, for example flat digits "
            "(load_digits(flat=True), --data digits-flat) for an MLP, or token windows of "
            "the model's seq_len (load_text(seq_len=...)) for a language model",
            model_input=expected,
            data_sample_shape=given,
        )
    if data.quality == "perplexity":
        vocab = output[-1] if len(output) == 2 else None
        if vocab is None:
            raise _does_not_fit(
                candidate,
                "it is not a language model",
                "next-token logits of shape [batch, seq_len, vocab_size] for token-id data",
                "Compare language models on token ids, classifiers on (x, y)",
                model_output=output,
            )
        if data.x.max() >= vocab:
            raise _does_not_fit(
                candidate,
                "token ids out of its vocabulary",
                f"ids in [0, {vocab - 1}] for a model with a vocabulary of {vocab}",
                "Encode the text with the tokenizer the model was trained with",
                max_token_id=int(data.x.max()),
                vocab_size=vocab,
            )
        return
    outputs = int(output[-1]) if output and output[-1] is not None else 1
    classes = max(outputs, 2)
    y = data.y
    if data.one_hot_width is not None and data.one_hot_width != outputs:
        raise _does_not_fit(
            candidate,
            "the one-hot labels have another width",
            f"one-hot rows of {outputs} columns, one per model output",
            "Pass labels for this model's classes",
            label_width=data.one_hot_width,
            model_outputs=outputs,
        )
    if y.min() < 0 or y.max() >= classes:
        raise _does_not_fit(
            candidate,
            "too few outputs for the labels",
            f"labels in [0, {classes - 1}] for a model with {outputs} output(s)",
            "Compare models trained for these labels",
            labels=(int(y.min()), int(y.max())),
            model_outputs=outputs,
        )
