"""`tfgreen.generate`: greedy decoding with LiteRT on a file exported with `generate=True`.

The file's `prefill` signature runs the prompt (padded to the cache length)
once and returns the KV cache; each further token is one `decode` call
(`token`, its `index`, the `cache`) returning the next token's logits and
the updated cache (see `tfgreen.export.generation`). Decoding is greedy:
the next token is the argmax of the logits.

A file that does not match a tfgreen manifest beside it runs in a child
process (`tfgreen.tflite.isolated.IsolatedRunner`): a hostile file that
crashes LiteRT raises `TfliteFileError` instead of killing the caller. A
file whose sha256 matches its manifest runs in this process. This module
imports only numpy (and LiteRT when it runs), so the child needs no
TensorFlow.

Example:
```python
report = tfgreen.export_tflite(lm, "out/lm.tflite", target="cpu", generate=True)
ids = tfgreen.generate("out/lm.tflite", data.tokenizer.encode("The if"), max_new_tokens=16)
data.tokenizer.decode(ids)
```
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from tfgreen._validate import positive_int
from tfgreen.errors import TfgreenTypeError, TfgreenValueError, message
from tfgreen.tflite.decode import greedy, layout

__all__ = ["keras_greedy", "generate"]


def keras_greedy(model, prompt_ids, max_new_tokens: int) -> np.ndarray:
    """The reference: greedy decoding with the Keras model, recomputing the window per token.

    No cache: every step runs the model on the tokens so far, padded to its
    window (or unpadded for a model of any length), and takes the argmax at
    the last real position. What a `generate=True` file must reproduce.

    Args:
        model: A language model (`tfgreen._lm.is_language_model`), KerasHub ones included.
        prompt_ids: Token ids `[n]`.
        max_new_tokens: Tokens to generate.

    Returns:
        The generated ids, int32 `[max_new_tokens]`.
    """
    from tfgreen._lm import token_feed

    _, feed = token_feed(model)
    ids = [int(i) for i in np.asarray(prompt_ids).reshape(-1)]
    window = model.inputs[0].shape[1] or len(ids) + max_new_tokens
    for _ in range(max_new_tokens):
        x = np.zeros((1, int(window)), dtype="int32")
        x[0, : len(ids)] = ids
        logits = np.asarray(model(feed(x), training=False))
        ids.append(int(np.argmax(logits[0, len(ids) - 1])))
    return np.asarray(ids[len(ids) - max_new_tokens :], dtype="int32")


def _check_prompt(prompt_ids, max_new_tokens, max_length: int, vocab: int) -> np.ndarray:
    ids = np.asarray(prompt_ids)
    if ids.ndim == 2 and ids.shape[0] == 1:
        ids = ids[0]
    if ids.dtype == bool or not np.issubdtype(ids.dtype, np.integer) or ids.ndim != 1:
        raise TfgreenTypeError(
            message(
                "`prompt_ids` must be a 1-D sequence of integer token ids",
                "int ids of shape [n] (or [1, n])",
                "Pass for example tokenizer.encode('The if statement')",
                shape=ids.shape,
                dtype=str(ids.dtype),
            )
        )
    if not len(ids) or len(ids) > max_length:
        raise TfgreenValueError(
            message(
                "`prompt_ids` does not fit the file's KV cache",
                f"1 to {max_length} token ids (the cache length)",
                "Shorten the prompt, or export with a longer max_length",
                prompt_length=len(ids),
                max_length=max_length,
            )
        )
    if len(ids) + max_new_tokens - 1 > max_length:
        raise TfgreenValueError(
            message(
                "The prompt plus the new tokens do not fit the file's KV cache",
                f"len(prompt_ids) + max_new_tokens - 1 <= {max_length}",
                f"Ask for at most max_new_tokens={max_length - len(ids) + 1}, or shorten the prompt",
                prompt_length=len(ids),
                max_new_tokens=max_new_tokens,
                max_length=max_length,
            )
        )
    bad = np.flatnonzero((ids < 0) | (ids >= vocab))
    if len(bad):
        raise TfgreenValueError(
            message(
                f"Token id out of the vocabulary at prompt position {int(bad[0])}",
                f"ids in [0, {vocab})",
                "Encode the text with the tokenizer the model was trained with",
                token_id=int(ids[bad[0]]),
            )
        )
    return ids.astype("int32")


def _read(tflite_path) -> tuple[bytes, bool]:
    """The file's bytes, and whether it matched a tfgreen manifest (then it runs in-process)."""
    from tfgreen.tflite.read import existing_tflite
    from tfgreen.tflite.verify import check_manifest

    if isinstance(tflite_path, (bytes, bytearray)):
        return bytes(tflite_path), False
    if not isinstance(tflite_path, (str, Path)):
        raise TfgreenTypeError(
            message(
                "`tflite_path` must be a .tflite path",
                "a str or Path (or the file's bytes)",
                "Pass for example 'out/lm.tflite'",
                tflite_path=type(tflite_path).__name__,
            )
        )
    path = existing_tflite(tflite_path)
    data = path.read_bytes()
    return data, check_manifest(path, data) == "ok"  # a mismatching manifest raises


def generate(
    tflite_path,
    prompt_ids,
    max_new_tokens: int = 32,
    stop_token_id: int | None = None,
    num_threads: int = 1,
) -> np.ndarray:
    """Greedy decoding with LiteRT on a `.tflite` file exported with `generate=True`.

    Args:
        tflite_path: The file (a path, or its bytes).
        prompt_ids: The prompt's token ids, `[n]` (or `[1, n]`), with
            `1 <= n` and `n + max_new_tokens - 1 <=` the file's cache length.
        max_new_tokens: Tokens to generate. Defaults to `32`.
        stop_token_id: Stop after generating this id (e.g. the end token);
            `None` always generates `max_new_tokens`. Defaults to `None`.
        num_threads: LiteRT threads. Defaults to `1`.

    Returns:
        The generated token ids (int32 `[k]`, `k <= max_new_tokens`), the
        prompt not included.

    Raises:
        TfgreenValueError: A file without the prefill/decode signatures, a
            prompt longer than the cache, ids outside the vocabulary.
        TfliteFileError: The file is corrupted, does not match its
            manifest, or crashed LiteRT (in the child process).

    Example:
    ```python
    ids = tfgreen.generate("out/lm.tflite", tokenizer.encode("The if"), max_new_tokens=16)
    print(tokenizer.decode(ids))
    ```
    """
    positive_int("max_new_tokens", max_new_tokens, example=32)
    positive_int("num_threads", num_threads, example=1)
    positive_int("stop_token_id", stop_token_id, minimum=0, allow_none=True, example=0)
    data, verified = _read(tflite_path)
    max_length, vocab = layout(data)
    prompt = _check_prompt(prompt_ids, max_new_tokens, max_length, vocab)
    if verified:
        from tfgreen.tflite.runner import TfliteRunner

        interpreter = TfliteRunner(data, num_threads=num_threads).interpreter
        return greedy(interpreter, prompt, max_new_tokens, stop_token_id)[0]
    from tfgreen.tflite.isolated import IsolatedRunner

    runner = IsolatedRunner(data, num_threads=num_threads)
    try:
        return runner.generate(prompt, max_new_tokens, stop_token_id)[0]
    finally:
        runner.close()
