"""What `tfgreen.optimize` works on: the model, its data, its quality measure, its fine-tune.

A `Task` is built once from the user's arguments, after every check: a
classifier takes `(x, y)` pairs and is judged by top-1 accuracy; a language
model (`tfgreen._lm.is_language_model`) takes windows of token ids and is
judged by perplexity. `Task.fit` fine-tunes a candidate (pruning, QAT) with
a cross-entropy matching the labels and what the model outputs
(probabilities or logits), so a model needs no `compile()` before the search.

Example:
>>> import numpy as np
>>> from tfgreen.models import small_mlp
>>> x = np.random.default_rng(0).random((40, 64), "float32")
>>> y = np.arange(40) % 10
>>> task = make_task(small_mlp(hidden=(8,)), (x, y), (x, y))
>>> task.quality, task.language_model
('accuracy', False)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tfgreen import _lm, _metrics
from tfgreen.errors import TfgreenTypeError, TfgreenValueError, message
from tfgreen.flavor import flavor_of, keras_for

__all__ = ["Task", "make_task"]

_BATCH = 32
_PROBE = 32  # samples the output kind (probabilities or logits) is read from


@dataclass
class Task:
    """The model under search and its data, checked.

    Attributes:
        model: The user's Keras 3 or tf_keras model (never changed).
        language_model: Whether it is a causal language model.
        x_train: Training inputs (token-id windows for a language model).
        y_train: Training labels, `None` for a language model.
        x_val: Validation inputs (token-id windows for a language model).
        y_val: Validation labels, `None` for a language model.
        from_logits: Whether the model outputs logits (else probabilities).
    """

    model: object
    language_model: bool
    x_train: np.ndarray
    y_train: np.ndarray | None
    x_val: np.ndarray
    y_val: np.ndarray | None
    from_logits: bool

    @property
    def quality(self) -> str:
        """`"perplexity"` (lower is better) or `"accuracy"` (higher is better)."""
        return "perplexity" if self.language_model else "accuracy"

    @property
    def validation(self):
        """What `export_tflite` and `compare` take: token ids, or `(x, y)`."""
        return self.x_val if self.language_model else (self.x_val, self.y_val)

    def _loss(self, keras):
        if self.language_model or self.y_train.ndim == 1:
            return keras.losses.SparseCategoricalCrossentropy(from_logits=self.from_logits)
        if self.y_train.shape[-1] == 1:
            return keras.losses.BinaryCrossentropy(from_logits=self.from_logits)
        return keras.losses.CategoricalCrossentropy(from_logits=self.from_logits)

    def fit(self, model, epochs: int, seed: int, learning_rate: float, callbacks=()) -> None:
        """Compiles `model` with Adam and the task's loss, and fits it on the training data.

        Args:
            model: A model of the task's flavour (pruned, or quantize-aware).
            epochs: Epochs to train.
            seed: Seeds the Keras random state first (reproducible runs).
            learning_rate: Adam's learning rate.
            callbacks: Keras callbacks (for example `tfgreen.callbacks.Pruning()`).
                Defaults to `()`.
        """
        keras = keras_for(model)
        keras.utils.set_random_seed(seed)
        model.compile(keras.optimizers.Adam(learning_rate), self._loss(keras))
        x, y, weights = self.x_train, self.y_train, None
        if self.language_model:
            from tfgreen.datasets import next_token_targets

            y, weights = next_token_targets(x)
        model.fit(
            x,
            y,
            sample_weight=weights,
            batch_size=_BATCH,
            epochs=epochs,
            verbose=0,
            callbacks=list(callbacks),
            shuffle=True,
        )


def _bad(what: str, expected: str, fix: str, **received) -> TfgreenValueError:
    return TfgreenValueError(message(what, expected, fix, **received))


def _check_model(model) -> None:
    flavor_of(model)  # refuses what is not a Keras model, naming it
    try:
        inputs = list(model.inputs or [])
    except (AttributeError, ValueError):
        inputs = []
    if not inputs:
        raise _bad(
            "The model is not built",
            "a model with known inputs",
            "Build it with keras.Input(...) first, or call it on data",
            model=getattr(model, "name", type(model).__name__),
        )
    if len(inputs) > 1 and not _lm.is_language_model(model):
        raise _bad(
            "`optimize` takes a model with one input",
            "a classifier with one input, or a language model taking token ids",
            "Wrap the model so that it takes one input",
            inputs=[_lm.input_name(t) for t in inputs],
        )


def _pair(name: str, data, model) -> tuple[np.ndarray, np.ndarray]:
    if not isinstance(data, (tuple, list)) or len(data) != 2:
        raise TfgreenTypeError(
            message(
                f"`{name}` must be an (x, y) pair for a classifier",
                "a tuple (x, y) of numpy arrays, one label per sample",
                f"Pass for example {name}=(x, y)",
                **{name: type(data).__name__},
            )
        )
    x, y = np.asarray(data[0]), np.asarray(data[1])
    if x.dtype.kind not in "biuf" or x.ndim < 2 or len(x) == 0 or len(x) != len(y):
        raise _bad(
            f"`{name}` does not hold matching numeric samples and labels",
            "x of shape (n, ...) with n >= 1 and y with n labels",
            "Pass samples and labels of the same split",
            x_shape=x.shape,
            y_shape=y.shape,
        )
    bad = ~np.isfinite(x.reshape(len(x), -1).astype("float64")).all(axis=1)
    if bad.any():
        raise _bad(
            f"`{name}` x holds NaN or infinite values",
            "finite inputs",
            "Clean the data first",
            first_bad_sample=int(np.flatnonzero(bad)[0]),
        )
    expected = tuple(model.inputs[0].shape[1:])
    given = x.shape[1:]
    fits = len(expected) == len(given) and all(
        e is None or e == g for e, g in zip(expected, given, strict=True)
    )
    if not fits:
        raise _bad(
            f"`{name}` samples do not fit the model's input",
            f"samples of shape {expected} (batch axis left out)",
            "Pass data of the model's input shape",
            model_input=expected,
            sample_shape=given,
        )
    outputs = model.outputs[0].shape[-1]
    _metrics.class_labels(y, None if outputs is None else max(int(outputs), 2))
    return x.astype("float32", copy=False), y


def _tokens(name: str, data, model) -> np.ndarray:
    if not isinstance(data, np.ndarray):
        raise TfgreenTypeError(
            message(
                f"`{name}` must be token ids for a language model",
                "an int numpy array [n, seq_len] of token ids",
                f"Pass for example {name}=tfgreen.datasets.load_text(seq_len=64).train",
                **{name: type(data).__name__},
            )
        )
    token_input, _ = _lm.token_feed(model)
    vocab = int(model.outputs[0].shape[-1])
    return _lm.check_token_ids(data, vocab, seq_len=token_input.shape[1], min_len=2, name=name)


def _output_kind(model, x, language_model: bool) -> bool:
    """Whether the model outputs logits, read from its outputs on a few training samples."""
    sample = x[:_PROBE]
    if language_model:
        _, feed = _lm.token_feed(model)
        values = np.asarray(model(feed(sample[:2]), training=False))
    else:
        values = np.asarray(model(sample, training=False))
    if values.shape[-1] == 1:  # one sigmoid unit or one logit
        return _metrics.output_kind(values) == _metrics.LOGITS
    # Rows of a softmax are non-negative and sum to 1; anything else is logits.
    sums = values.reshape(-1, values.shape[-1]).sum(axis=-1)
    return not (values.min() >= 0 and np.allclose(sums, 1.0, atol=1e-3))


def make_task(model, train_data, validation_data) -> Task:
    """Checks the model and its data and returns the `Task` the search works on.

    Args:
        model: A built Keras 3 or tf_keras model: a classifier with one
            input, or a language model (token ids in, next-token logits out).
        train_data: `(x, y)` for a classifier; token ids `[n, seq_len]` for
            a language model.
        validation_data: The same form; the floor is measured on it.

    Returns:
        The `Task`.

    Raises:
        TfgreenTypeError: Not a Keras model, or data of the wrong form.
        TfgreenValueError: An unbuilt model, or data that does not fit it.
    """
    _check_model(model)
    language_model = _lm.is_language_model(model)
    if validation_data is None:
        raise _bad(
            "`optimize` needs validation_data: the accuracy floor is measured on it",
            "held-out (x, y) for a classifier, or token ids for a language model",
            "Pass validation_data=(x_test, y_test), or load_text(...).val for a language model",
            validation_data=None,
        )
    if language_model:
        x_train, y_train = _tokens("train_data", train_data, model), None
        x_val, y_val = _tokens("validation_data", validation_data, model), None
    else:
        x_train, y_train = _pair("train_data", train_data, model)
        x_val, y_val = _pair("validation_data", validation_data, model)
    logits = _output_kind(model, x_train, language_model)
    return Task(model, language_model, x_train, y_train, x_val, y_val, logits)
