"""Language models as tfgreen sees them: token ids in, next-token logits out.

One rule for every entry point (export, perplexity, compare): a Keras model
is a language model when it takes token ids alone (one integer input, or
KerasHub's `token_ids` + `padding_mask` pair) and has one output of shape
`[batch, seq_len, vocab_size]`. `single_input` turns the KerasHub form into
the plain one (same weights, a padding mask of ones), which is what converts
to a `.tflite` file with one int32 input.

Example:
>>> from tfgreen.models import small_mlp, tiny_gpt
>>> is_language_model(tiny_gpt(vocab_size=64, seq_len=8, embed_dim=8, num_layers=1))
True
>>> is_language_model(small_mlp())
False
"""

from __future__ import annotations

import numpy as np

from tfgreen.errors import TfgreenValueError, message
from tfgreen.flavor import keras_for

__all__ = [
    "KERAS_HUB_INPUTS",
    "input_name",
    "is_integer",
    "check_token_ids",
    "token_feed",
    "is_language_model",
    "single_input",
]

# The inputs of KerasHub backbones and CausalLMs, sorted.
KERAS_HUB_INPUTS = ["padding_mask", "token_ids"]


def input_name(tensor) -> str:
    """A Keras input tensor's name without the `:0` suffix."""
    return str(getattr(tensor, "name", "") or "").split(":")[0]


def is_integer(tensor) -> bool:
    """Whether a Keras tensor has an integer dtype."""
    dtype = getattr(tensor, "dtype", None)
    try:
        return np.issubdtype(np.dtype(getattr(dtype, "name", dtype)), np.integer)
    except TypeError:
        return False


def token_feed(model) -> tuple | None:
    """The token-id input of a model and how to feed it ids, or `None` for other models.

    Args:
        model: A built Keras 3 or tf_keras model.

    Returns:
        `(token_input, feed)`: the Keras input tensor that takes token ids and
        `feed(ids)` giving what `model(...)` takes; `None` when the model's
        inputs are not token ids alone.
    """
    inputs = list(getattr(model, "inputs", None) or [])
    if len(inputs) == 1 and is_integer(inputs[0]):
        return inputs[0], _plain
    if sorted(input_name(t) for t in inputs) == KERAS_HUB_INPUTS:
        token_input = next(t for t in inputs if input_name(t) == "token_ids")
        return token_input, _with_padding_mask
    return None


def _plain(ids):
    return ids


def _with_padding_mask(ids):
    return {"token_ids": ids, "padding_mask": np.ones_like(ids)}


def is_language_model(model) -> bool:
    """Whether a built model takes token ids alone and outputs `[batch, seq, vocab]` logits.

    Args:
        model: A built Keras 3 or tf_keras model.

    Returns:
        `True` for a causal language model in tfgreen's sense.
    """
    if token_feed(model) is None:
        return False
    outputs = list(getattr(model, "outputs", None) or [])
    return len(outputs) == 1 and len(outputs[0].shape) == 3 and outputs[0].shape[-1] is not None


def single_input(model, seq_len: int | None = None):
    """A language model with one int32 token-id input (same weights).

    A model with one token input is returned as it is when its length is
    fixed (or `seq_len` is `None`); a KerasHub-style model taking
    `token_ids` + `padding_mask` is wrapped so the mask is all ones, and a
    model of variable length gets `seq_len` fixed.

    Args:
        model: A language model (`is_language_model`).
        seq_len: Tokens per window for a model whose length is not fixed.
            Defaults to `None`.

    Returns:
        A Keras model of the same flavour: `[batch, seq_len]` int32 in, logits out.
    """
    token_input, feed = token_feed(model)
    fixed = token_input.shape[1]
    if feed is _plain and (fixed is not None or seq_len is None):
        return model
    keras = keras_for(model)
    length = fixed if fixed is not None else seq_len
    ids = keras.Input(shape=(length,), dtype="int32", name="token_ids")
    if feed is _plain:
        return keras.Model(ids, model(ids), name=f"{model.name}_tokens")
    mask = keras.ops.ones_like(ids)
    logits = model({"token_ids": ids, "padding_mask": mask})
    return keras.Model(ids, logits, name=f"{model.name}_tokens")


def check_token_ids(
    token_ids, vocab_size: int, seq_len: int | None = None, min_len: int = 1, name="token_ids"
) -> np.ndarray:
    """Checks windows of token ids for a language model; returns them as int32.

    Args:
        token_ids: The ids, expected as an integer array `[n, seq_len]`.
        vocab_size: Ids must lie in `[0, vocab_size)`.
        seq_len: The model's fixed window length, `None` when it takes any.
            Defaults to `None`.
        min_len: Fewest tokens per window. Defaults to `1`.
        name: The argument's name, for messages. Defaults to `"token_ids"`.

    Returns:
        The ids as an int32 array.

    Raises:
        TfgreenValueError: Not 2-D integers, windows too short or of the
            wrong length, or an id outside the vocabulary (the first bad
            window is named).

    Example:
    >>> check_token_ids([[1, 2, 3]], vocab_size=4).dtype
    dtype('int32')
    """
    ids = np.asarray(token_ids)
    if (
        ids.dtype == bool
        or not np.issubdtype(ids.dtype, np.integer)
        or ids.ndim != 2
        or not len(ids)
    ):
        raise TfgreenValueError(
            message(
                f"`{name}` must be a non-empty 2-D integer array",
                "int token ids of shape [n, seq_len]",
                "Pass for example tfgreen.datasets.load_text().val",
                shape=ids.shape,
                dtype=str(ids.dtype),
            )
        )
    if ids.shape[1] < min_len:
        raise TfgreenValueError(
            message(
                f"`{name}` windows are too short to predict a next token",
                f"at least {min_len} tokens per window",
                "Pass longer windows",
                shape=ids.shape,
            )
        )
    if seq_len is not None and ids.shape[1] != seq_len:
        raise TfgreenValueError(
            message(
                f"`{name}` windows do not match the model's input length",
                f"token ids of shape [n, {seq_len}]",
                f"Cut the ids into windows of {seq_len} tokens "
                f"(tfgreen.datasets.load_text(seq_len={seq_len}))",
                shape=ids.shape,
            )
        )
    bad = np.flatnonzero(((ids < 0) | (ids >= vocab_size)).any(axis=1))
    if len(bad):
        row = ids[bad[0]]
        raise TfgreenValueError(
            message(
                f"Token ids out of the vocabulary, first in sample {int(bad[0])}",
                f"ids in [0, {vocab_size})",
                "Encode the text with the tokenizer the model was trained with",
                sample=int(bad[0]),
                token_id=int(row[(row < 0) | (row >= vocab_size)][0]),
            )
        )
    return ids.astype("int32", copy=False)
