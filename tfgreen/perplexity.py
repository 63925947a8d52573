"""Perplexity and next-token agreement of language models, Keras or `.tflite`.

Both read the logits of a model (a Keras 3 or tf_keras model, a KerasHub
CausalLM, a `.keras` file, or a `.tflite` file or its bytes) on windows of
token ids, batch by batch, through one helper, so a Keras model and its
float32 `.tflite` give the same figures.

- `perplexity`: the logits at position `t` predict token `t + 1`; the
  cross-entropy (natural log) is averaged over all `n * (seq_len - 1)`
  predicted tokens and exponentiated.
- `next_token_agreement`: the fraction of all `n * seq_len` positions where
  two models' top-1 next tokens are equal.

Example:
>>> from tfgreen.datasets import load_text
>>> from tfgreen.models import tiny_gpt
>>> data = load_text(seq_len=16, vocab_size=300)
>>> model = tiny_gpt(vocab_size=300, seq_len=16, embed_dim=16, num_layers=1)
>>> 200 < perplexity(model, data.val[:8]) < 400  # untrained: about vocab_size
True
>>> next_token_agreement(model, model, data.val[:8])
1.0
"""

from __future__ import annotations

import sys
import types
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np

from tfgreen import _lm, _metrics, _validate
from tfgreen.errors import TfgreenTypeError, TfliteFileError, message
from tfgreen.flavor import flavor_of

__all__ = ["perplexity", "next_token_agreement", "next_token_nll"]

_BAR_FROM_BATCHES = 16  # verbose=None shows a bar (on a terminal) from this many batches


class _Logits:
    """One model's logits on token windows: `source(ids) -> float32 [b, seq, vocab]`."""

    def __init__(
        self, fn: Callable[[np.ndarray], np.ndarray], seq_len: int | None, vocab_size: int
    ):
        self.fn = fn
        self.seq_len = seq_len
        self.vocab_size = vocab_size

    def __call__(self, ids: np.ndarray) -> np.ndarray:
        return np.asarray(self.fn(ids), dtype="float32")


def _keras_logits(model) -> _Logits:
    flavor_of(model)
    found = _lm.token_feed(model)
    if found is None:
        raise TfgreenTypeError(
            message(
                "The model does not take token ids alone",
                "one integer input of token ids, or KerasHub's token_ids + padding_mask",
                "Wrap the model so that its only input is a [batch, seq_len] token-id tensor",
                inputs=[_lm.input_name(t) for t in model.inputs],
            )
        )
    token_input, feed = found
    output_shape = tuple(model.outputs[0].shape)
    if len(output_shape) != 3 or output_shape[-1] is None:
        raise TfgreenTypeError(
            message(
                "The model does not output next-token logits",
                "one output of shape [batch, seq_len, vocab_size]",
                "Pass a language model (for example tfgreen.models.tiny_gpt)",
                output_shape=output_shape,
            )
        )
    seq_len = token_input.shape[1]

    def run(ids):
        return model(feed(ids), training=False)

    return _Logits(run, None if seq_len is None else int(seq_len), int(output_shape[-1]))


def _tflite_logits(content: bytes) -> _Logits:
    from tfgreen.tflite.isolated import IsolatedRunner
    from tfgreen.tflite.read import read_tflite

    read_tflite(content)  # a corrupted file is one TfliteFileError before LiteRT sees it
    runner = IsolatedRunner(content)  # a file that crashes LiteRT can't kill the caller
    single = len(runner.inputs) == 1 and len(runner.outputs) >= 1
    signature = runner.inputs[0]["shape_signature"] if single else []
    output = runner.outputs[0]["shape_signature"] if single else []
    integer = single and np.issubdtype(np.dtype(runner.inputs[0]["dtype"]), np.integer)
    if not single or len(signature) != 2 or not integer or len(output) != 3:
        raise TfgreenTypeError(
            message(
                "The .tflite file is not a language model",
                "one integer [batch, seq_len] input and one [batch, seq_len, vocab] output",
                "Convert the Keras model with a single token-id input",
                inputs=[(d["name"], tuple(d["shape_signature"])) for d in runner.inputs],
            )
        )
    static_batch = int(signature[0]) if signature[0] > 0 else None

    vocab = int(output[-1])

    def run(ids):
        if static_batch is None:
            logits = runner.predict(ids, batch_size=len(ids))
        else:
            pad = -len(ids) % static_batch
            padded = np.concatenate([ids, np.zeros((pad, ids.shape[1]), ids.dtype)]) if pad else ids
            logits = runner.predict(padded, batch_size=static_batch)[: len(ids)]
        logits = logits[0] if isinstance(logits, list) else logits
        if logits.shape != (*ids.shape, vocab):  # a file whose graph lies about its output
            raise TfliteFileError(
                message(
                    "The .tflite file's output does not have the shape it declares",
                    f"logits of shape {(*ids.shape, vocab)}",
                    "Re-export the model; the file may be corrupted or hostile",
                    output_shape=logits.shape,
                )
            )
        return logits

    seq_len = int(signature[1]) if signature[1] > 0 else None
    return _Logits(run, seq_len, vocab)


def _logits_source(model_or_tflite) -> _Logits:
    if isinstance(model_or_tflite, (bytes, bytearray)):
        return _tflite_logits(bytes(model_or_tflite))
    if isinstance(model_or_tflite, (str, Path)):
        path = Path(model_or_tflite)
        if path.suffix.lower() == ".tflite":
            from tfgreen.tflite.read import existing_tflite

            return _tflite_logits(existing_tflite(path).read_bytes())
        from tfgreen.loading import load_model

        return _keras_logits(load_model(path, compile=False))
    return _keras_logits(model_or_tflite)


def _check_token_ids(token_ids, sources: list[_Logits], min_len: int) -> np.ndarray:
    vocab_size = min(source.vocab_size for source in sources)
    ids = _lm.check_token_ids(token_ids, vocab_size, min_len=min_len)
    for source in sources:
        _lm.check_token_ids(ids, vocab_size, seq_len=source.seq_len, min_len=min_len)
    return ids


def _scan(sources: list[_Logits], ids: np.ndarray, batch_size: int, verbose, desc: str) -> Iterator:
    """Yields `(ids_batch, [logits of each source])`, batch by batch, with a progress bar."""
    starts = range(0, len(ids), batch_size)
    if verbose or (verbose is None and len(starts) >= _BAR_FROM_BATCHES):
        from tqdm import tqdm

        # disable=None: tqdm shows the bar only on a terminal.
        starts = tqdm(
            starts,
            desc=desc,
            unit="batch",
            file=sys.stderr,
            disable=None if verbose is None else False,
        )
    for start in starts:
        batch = ids[start : start + batch_size]
        yield batch, [source(batch) for source in sources]


def _check_run_args(batch_size, verbose) -> int:
    batch_size = _validate.positive_int("batch_size", batch_size, example=32)
    if verbose is not None:
        _validate.boolean(
            "verbose", verbose, fix="Pass verbose=True, verbose=False or leave it out"
        )
    return batch_size


def perplexity(
    model_or_tflite, token_ids, batch_size: int = 32, verbose: bool | None = None
) -> float:
    """Perplexity of a causal language model on windows of token ids.

    The logits at each position `t < seq_len - 1` predict token `t + 1`; the
    mean cross-entropy (in nats) over all those predictions is exponentiated.
    A Keras model and its float32 `.tflite` give the same number (to about
    1e-5 relative).

    Args:
        model_or_tflite: A Keras 3 or tf_keras model (token ids in, logits
            `[batch, seq_len, vocab]` out; a KerasHub CausalLM or backbone-like
            model taking `token_ids` + `padding_mask` works too), a `.keras`
            path, a `.tflite` path, or `.tflite` bytes.
        token_ids: Integer `[n, seq_len]` ids in `[0, vocab_size)`, with the
            model's `seq_len` when it is fixed.
        batch_size: Windows per forward pass. A `.tflite` file with a fixed
            batch runs in its own batch size. Defaults to `32`.
        verbose: Show a progress bar (tqdm): `True` always, `False` never,
            `None` on a terminal when there are 16 batches or more.
            Defaults to `None`.

    Returns:
        The perplexity, a float >= 1.

    Example:
    >>> from tfgreen.datasets import load_text
    >>> from tfgreen.models import tiny_gpt
    >>> data = load_text(seq_len=16, vocab_size=300)
    >>> model = tiny_gpt(vocab_size=300, seq_len=16, embed_dim=16, num_layers=1)
    >>> round(perplexity(model, data.val[:4]), -2)  # untrained: close to vocab_size
    300.0
    """
    batch_size = _check_run_args(batch_size, verbose)
    source = _logits_source(model_or_tflite)
    ids = _check_token_ids(token_ids, [source], min_len=2)
    total, count = 0.0, 0
    for batch, (logits,) in _scan([source], ids, batch_size, verbose, "perplexity"):
        nll, predicted = next_token_nll(logits, batch)
        total, count = total + nll, count + predicted
    return float(np.exp(total / count))


def next_token_nll(logits: np.ndarray, token_ids: np.ndarray) -> tuple[float, int]:
    """Summed next-token cross-entropy (nats) of logits on their own windows.

    Args:
        logits: `[n, seq_len, vocab]` logits of a causal language model.
        token_ids: The `[n, seq_len]` ids they were computed on.

    Returns:
        `(total, count)`: the summed cross-entropy of the predictions at
        positions `t < seq_len - 1` of token `t + 1`, and how many there are;
        `exp(total / count)` is the perplexity.

    Example:
    >>> import numpy as np
    >>> total, count = next_token_nll(np.zeros([1, 3, 4]), np.array([[0, 1, 2]]))
    >>> count, round(float(np.exp(total / count)), 6)  # uniform over 4 tokens
    (2, 4.0)
    """
    scores = np.asarray(logits)[:, :-1].astype("float64")
    peak = scores.max(axis=-1, keepdims=True)
    log_norm = np.log(np.exp(scores - peak).sum(axis=-1)) + peak[..., 0]
    target = np.take_along_axis(scores, np.asarray(token_ids)[:, 1:, None], axis=-1)[..., 0]
    return float((log_norm - target).sum()), int(target.size)


def next_token_agreement(
    reference, candidate, token_ids, batch_size: int = 32, verbose: bool | None = None
) -> float:
    """Fraction of positions where two language models predict the same next token.

    Both models see the same windows; at every one of the `n * seq_len`
    positions the top-1 token of their logits is compared (tfgreen's one top-1
    rule, `tfgreen._metrics`).

    Args:
        reference: The reference model (for example the Keras model), in any
            form `perplexity` takes.
        candidate: The model compared with it (for example its `.tflite`).
        token_ids: Integer `[n, seq_len]` ids valid for both models.
        batch_size: Windows per forward pass. Defaults to `32`.
        verbose: Progress bar, as in `perplexity`. Defaults to `None`.

    Returns:
        The agreement, in [0, 1].

    Example:
    >>> from tfgreen.datasets import load_text
    >>> from tfgreen.models import tiny_gpt
    >>> data = load_text(seq_len=16, vocab_size=300)
    >>> a = tiny_gpt(vocab_size=300, seq_len=16, embed_dim=16, num_layers=1, seed=1)
    >>> b = tiny_gpt(vocab_size=300, seq_len=16, embed_dim=16, num_layers=1, seed=2)
    >>> next_token_agreement(a, b, data.val[:4]) < 0.5
    True
    """
    batch_size = _check_run_args(batch_size, verbose)
    sources = [_logits_source(reference), _logits_source(candidate)]
    ids = _check_token_ids(token_ids, sources, min_len=1)
    same, count = 0, 0
    for _, (ref, cand) in _scan(sources, ids, batch_size, verbose, "next-token agreement"):
        top_ref = _metrics.predicted_classes(ref.reshape(-1, ref.shape[-1]))
        top_cand = _metrics.predicted_classes(cand.reshape(-1, cand.shape[-1]))
        same += int((top_ref == top_cand).sum())
        count += len(top_ref)
    return same / count


class _CallableModule(types.ModuleType):
    """Keeps `tfgreen.perplexity(...)` working after `import tfgreen.perplexity`.

    Importing the submodule binds `tfgreen.perplexity` to this module, which
    shares the function's name; calling the module calls the function.
    """

    def __call__(self, *args, **kwargs) -> float:
        return perplexity(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
