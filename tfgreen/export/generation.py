"""KV-cache export for on-device generation: `call`, `prefill` and `decode` signatures.

`export_tflite(lm, path, generate=True)` writes a `.tflite` file with three
signatures sharing one copy of the weights:

- `call`: token ids `[1, seq_len]` -> logits `[1, seq_len, vocab]`, the plain
  full-window forward pass. It is the file's first subgraph (signatures are
  stored sorted by name), so everything that runs a `.tflite` file without
  naming a signature (the export checks, `tfgreen.perplexity`, `compare`,
  `bench`, the kit's `run_tflite.py`) runs it, and every check of a plain
  export (parity, perplexity, size, weights, ...) applies unchanged.
- `prefill`: token ids `[1, max_length]` (the prompt, padded with any id) ->
  `logits` `[1, max_length, vocab]` and `cache`, the keys and values of
  every position. By causality the logits and cache rows of the prompt do
  not depend on the padding; `decode` overwrites the rest.
- `decode`: `token` `[1, 1]`, `index` `[]` (its position) and `cache` ->
  `logits` `[1, vocab]` (the next token's) and the updated `cache`.

The extra check `generation` runs the cache path in LiteRT (isolated
process) with teacher forcing on up to four windows: the prompt is the
first half, then every following token goes through `decode`; the logits
at each position are compared with the Keras model's full-window logits
(`next_token_agreement`, `max_abs_error`) and with the file's own `call`
signature. It is strict: a cache path that disagrees (or gives NaN, as when
the converter drops weights) refuses the file.

Which models: tfgreen's `tiny_gpt` (both Kerases; its layers are called one
position at a time, so pruned, stripped or `tfgreen.quantize`d copies work
too), and KerasHub CausalLMs with `call_with_cache` (GPT-2, Gemma, Llama,
built from config). Anything else is refused, naming why. The cache-aware
forward pass is checked against the model's own logits before converting.
Quantizations: `float32`, `dynamic` and `float16`. Full-integer files are
refused: their activations collapse on language models (see the LM facts in
DESIGN.md), so an all-integer target cannot hold a generation file.

Example:
```python
report = tfgreen.export_tflite(lm, "out/lm.tflite", target="cpu",
                               validation_data=data.val, generate=True)
report.checks["generation"]["next_token_agreement"]  # 1.0
tfgreen.generate("out/lm.tflite", data.tokenizer.encode("The if"), max_new_tokens=16)
```
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
from dataclasses import dataclass

import numpy as np

from tfgreen import _lm
from tfgreen._adapters import keras as _keras_adapter
from tfgreen._adapters import keras_hub as _hub_adapter
from tfgreen._validate import positive_int
from tfgreen.errors import TargetError, TfgreenTypeError, TfgreenValueError, message
from tfgreen.quantization.ptq import INTEGER_QUANTIZATIONS
from tfgreen.tflite.decode import CALL, DECODE, PREFILL, signatures

__all__ = ["CacheModel", "check_arguments", "prepare", "ladder", "convert", "check"]

_CHECK_WINDOWS = 4
_SELF_CHECK_TOLERANCE = 1e-3
_NEG = -1e9  # added to the scores of masked positions, as Keras's masked softmax does
_BLOCK_LAYERS = ("ln1", "attention", "ln2", "ffn_in", "ffn_out")


@dataclass
class CacheModel:
    """A language model made cache-aware, ready to convert.

    Attributes:
        module: The `tf.Module` holding the model and its variables.
        functions: Concrete functions of `call`, `decode`, `prefill` (name order).
        max_length: Positions in the KV cache (the `prefill` window).
        cache_shape: Shape of the cache tensor.
        kind: `"tiny_gpt"` or `"keras_hub"`.
    """

    module: object
    functions: list
    max_length: int
    cache_shape: tuple
    kind: str


def _refuse(why: str, **received) -> TfgreenValueError:
    return TfgreenValueError(
        message(
            f"The model cannot be exported with generate=True: {why}",
            "tfgreen's tiny_gpt (tfgreen.models, either Keras, also pruned or quantized) or a "
            "KerasHub CausalLM with call_with_cache (GPT2CausalLM, GemmaCausalLM, ...)",
            "Export it without generate=True (the file then recomputes the whole window per "
            "token), or rebuild it as one of these",
            **received,
        )
    )


def _tiny_gpt_layers(model) -> tuple[dict, int]:
    layers = {layer.name: layer for layer in getattr(model, "layers", [])}
    blocks = 0
    while f"block{blocks}_attention" in layers:
        blocks += 1
    wanted = ["token_embedding", "position_embedding", "final_ln", "logits"]
    wanted += [f"block{i}_{part}" for i in range(blocks) for part in _BLOCK_LAYERS]
    missing = [name for name in wanted if name not in layers]
    if not blocks or missing:
        raise _refuse(
            "it is not a KerasHub CausalLM and its layers are not tiny_gpt's",
            missing_layers=(missing or ["block0_attention"])[:6],
        )
    for i in range(blocks):
        if _keras_adapter.attention_projections(layers[f"block{i}_attention"]) is None:
            raise _refuse(
                "an attention layer has no query/key/value/output projections",
                layer=f"block{i}_attention",
            )
    return layers, blocks


def _variables(model) -> list:
    """The model's `tf.Variable`s (Keras 3 wraps each one), to track on the module."""
    import tensorflow as tf

    return [w if isinstance(w, tf.Variable) else w.value for w in model.weights]


def _tiny_gpt_forward(layers: dict, blocks: int, length: int):
    """`forward(ids [1, T], start, cache) -> (logits, cache)` over `layers` of a tiny_gpt."""
    import tensorflow as tf

    def attention(i, h, at, bias, cache):
        query, key, value, output = _keras_adapter.attention_projections(
            layers[f"block{i}_attention"]
        )
        q, k, v = query(h), key(h), value(h)  # [1, T, heads, head_dim]
        q = q * (1.0 / float(q.shape[-1]) ** 0.5)
        if at is None:  # prefill: the cache is the window's keys and values
            keys, values = k, v
        else:  # decode: write the new position into the cache
            keys = cache[2 * i] * (1.0 - at) + k * at
            values = cache[2 * i + 1] * (1.0 - at) + v * at
        scores = tf.einsum("bthd,bshd->bhts", q, keys) + bias
        mixed = tf.einsum("bhts,bshd->bthd", tf.nn.softmax(scores, axis=-1), values)
        return output(mixed), [keys, values]

    def forward(ids, start, cache):
        # Everything that depends on the position is computed once, before the blocks, so
        # the blocks are float ops LiteRT's XNNPACK delegate takes as one piece.
        steps = ids.shape[1]
        positions = tf.gather(layers["position_embedding"].embeddings, start + tf.range(steps))
        visible = tf.range(length)[None, :] <= (start + tf.range(steps))[:, None]
        bias = tf.where(visible, 0.0, _NEG)[None, None]  # [1, 1, T, length]
        at = None
        if steps != length:
            at = tf.reshape(tf.one_hot(start, length), [1, length, 1, 1])
            cache = tf.split(cache, 2 * blocks, axis=0)  # [1, length, heads, head_dim] each
        x = layers["token_embedding"](ids) + positions[None]
        written = []
        for i in range(blocks):
            h, kv = attention(i, layers[f"block{i}_ln1"](x), at, bias, cache)
            written += kv
            x = x + h
            h = layers[f"block{i}_ln2"](x)
            x = x + layers[f"block{i}_ffn_out"](layers[f"block{i}_ffn_in"](h))
        # the cache: [2 * blocks, length, heads, head_dim], keys then values of each block
        return layers["logits"](layers["final_ln"](x)), tf.concat(written, axis=0)

    return forward


def _keras_hub_forward(model, cache_shape: tuple):
    import tensorflow as tf

    def forward(ids, start, cache):
        if cache is None:
            cache = tf.zeros(cache_shape, dtype=model.compute_dtype)
        logits, _, cache = model.call_with_cache(ids, cache, start)
        return logits, cache

    return forward


def _module(plain, forward, window: int, length: int, cache_shape: tuple):
    import tensorflow as tf

    int32 = tf.int32

    class _Generation(tf.Module):
        def __init__(self):
            super().__init__(name="tfgreen_generation")
            self.plain = plain
            # Tracked explicitly: without them the converter drops the weights (NaN logits).
            self.tracked_variables = _variables(plain)

        @tf.function(input_signature=[tf.TensorSpec([1, window], int32, name="token_ids")])
        def call(self, token_ids):
            return {"logits": self.plain(token_ids, training=False)}

        @tf.function(input_signature=[tf.TensorSpec([1, length], int32, name="token_ids")])
        def prefill(self, token_ids):
            logits, cache = forward(token_ids, tf.constant(0, int32), None)
            return {"logits": logits, "cache": cache}

        @tf.function(
            input_signature=[
                tf.TensorSpec([1, 1], int32, name="token"),
                tf.TensorSpec([], int32, name="index"),
                tf.TensorSpec(cache_shape, tf.float32, name="cache"),
            ]
        )
        def decode(self, token, index, cache):
            logits, cache = forward(token, index, cache)
            return {"logits": logits[:, 0], "cache": cache}

    module = _Generation()
    functions = [getattr(module, name).get_concrete_function() for name in (CALL, DECODE, PREFILL)]
    return module, functions


def _check_length(max_length, window: int, limit: int | None) -> int:
    positive_int("max_length", max_length, minimum=2, allow_none=True, example=window)
    length = window if max_length is None else int(max_length)
    if limit is not None and length > limit:
        raise TfgreenValueError(
            message(
                "`max_length` is longer than the model has positions for",
                f"max_length <= {limit}",
                f"Pass max_length={limit} or less",
                max_length=length,
            )
        )
    return length


def prepare(model, plain, max_length: int | None = None) -> CacheModel:
    """Makes a language model cache-aware (see the module docstring) and checks it.

    Args:
        model: The language model as given to `export_tflite`.
        plain: The same model with one token input (`tfgreen._lm.single_input`).
        max_length: Positions of the KV cache; `None` takes the model's
            window. Defaults to `None`.

    Returns:
        A `CacheModel`.

    Raises:
        TfgreenValueError: Not a language model, a model that cannot be made
            cache-aware (the reason named), or a `max_length` it cannot hold.
    """
    if not _lm.is_language_model(model):
        raise _refuse("it is not a language model (token ids in, [batch, seq, vocab] logits out)")
    window = int(plain.inputs[0].shape[1])
    if _hub_adapter.has_cache(model):
        backbone = getattr(model, "backbone", None)
        limit = getattr(backbone, "max_sequence_length", None)
        length = _check_length(max_length, window, limit)
        cache_shape = _hub_adapter.cache_shape(model, length)
        forward, kind = _keras_hub_forward(model, cache_shape), "keras_hub"
    else:
        layers, blocks = _tiny_gpt_layers(model)
        limit = int(layers["position_embedding"].embeddings.shape[0])
        length = _check_length(max_length, window, limit)
        forward, kind = _tiny_gpt_forward(layers, blocks, length), "tiny_gpt"
        # heads and head size: the query projection of one position
        query = _keras_adapter.attention_projections(layers["block0_attention"])[0]
        probe = query(np.zeros((1, 1, int(layers["token_embedding"].output_dim)), "float32"))
        cache_shape = (2 * blocks, length, int(probe.shape[-2]), int(probe.shape[-1]))
    module, functions = _module(plain, forward, window, length, cache_shape)
    _self_check(plain, module, window, length, int(plain.outputs[0].shape[-1]))
    return CacheModel(module, functions, length, tuple(cache_shape), kind)


def _self_check(plain, module, window: int, length: int, vocab: int) -> None:
    """The cache-aware prefill gives the model's own logits (before anything converts)."""
    ids = np.random.default_rng(0).integers(0, vocab, (1, max(window, length))).astype("int32")
    expected = np.asarray(plain(ids[:, :window], training=False))
    got = np.asarray(module.prefill(ids[:, :length])["logits"])
    n = min(window, length)
    error = float(np.max(np.abs(expected[:, :n] - got[:, :n])))
    scale = max(1.0, float(np.max(np.abs(expected))))
    if not error <= _SELF_CHECK_TOLERANCE * scale:
        raise _refuse(
            "its cache-aware forward pass does not reproduce the model's logits (its layers are "
            "named as tiny_gpt's but connected differently)",
            max_abs_error=error,
        )


def ladder(profiles: list, target, explicit: bool = False) -> list:
    """The quantizations to try for a generation file: the float-activation ones only.

    Args:
        profiles: The exporter's ladder of `Target`s (best first).
        target: The target asked for (with the quantization to use).
        explicit: Whether the user named the quantization (an integer one is
            then refused, not replaced). Defaults to `False`.

    Returns:
        The `Target`s left; a full-integer target falls back to dynamic-range
        int8 where the target allows float ops.

    Raises:
        TargetError: The target needs integer activations everywhere.
    """
    left = [p for p in profiles if p.quantization not in INTEGER_QUANTIZATIONS]
    if explicit and not left:
        raise TargetError(
            message(
                f"quantization={target.quantization!r} cannot be used with generate=True "
                "(full-integer language models collapse)",
                "quantization 'float32', 'dynamic' (int8 weights) or 'float16'",
                "Pass quantization='dynamic'",
                quantization=target.quantization,
            )
        )
    if not left and target.allow_float_ops:
        left = [dataclasses.replace(target, quantization="dynamic")]
    if not left:
        raise TargetError(
            message(
                f"Target '{target.name}' runs integer activations everywhere, which a "
                "generation file cannot (full-integer language models collapse)",
                "a target allowing float activations: 'cpu', 'edge-cpu' (int8 weights) or "
                "'edge-gpu'",
                "Pass target='edge-cpu', or export without generate=True",
                target=target.name,
                quantization=target.quantization,
            )
        )
    return left


def convert(cache_model: CacheModel, quantization: str) -> bytes:
    """Converts a `CacheModel` to `.tflite` bytes (`float32`, `dynamic`, `int4` or `float16`).

    Args:
        cache_model: What `prepare` returned.
        quantization: The quantization.

    Returns:
        The flatbuffer bytes, `call` as the first subgraph.
    """
    import tensorflow as tf

    converter = tf.lite.TFLiteConverter.from_concrete_functions(
        cache_model.functions, cache_model.module
    )
    if quantization != "float32":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if quantization == "float16":
        converter.target_spec.supported_types = [tf.float16]
    try:
        with contextlib.redirect_stdout(io.StringIO()):  # "Saved artifact at ..."
            data = converter.convert()
    except Exception as error:  # the converter raises many kinds
        raise TargetError(
            message(
                "The TFLite converter failed on the cache-aware model",
                "a model whose layers convert to builtin ops",
                "Export without generate=True, or simplify the named layer",
                converter=(str(error).strip().splitlines() or [type(error).__name__])[-1][:300],
            )
        ) from error
    if quantization == "int4":
        from tfgreen.tflite.int4 import pack_int4_weights

        data = pack_int4_weights(data)
    found = signatures(data)
    if list(found) != [CALL, DECODE, PREFILL] or found[CALL]["subgraph"] != 0:
        raise TargetError(
            message(
                "The converter laid out the generation signatures unexpectedly",
                f"signatures {[CALL, DECODE, PREFILL]} with {CALL!r} as subgraph 0",
                "Report this with the TensorFlow version",
                signatures={k: v["subgraph"] for k, v in found.items()},
            )
        )
    return data


def _windows(context, length: int) -> np.ndarray:
    samples = None if context.samples is None else context.samples.arrays[0]
    vocab = int(context.model.outputs[0].shape[-1])
    if samples is None or not len(samples):
        samples = np.arange(length, dtype="int32")[None] % vocab
    return np.asarray(samples[:_CHECK_WINDOWS], dtype="int32")


def check(context, cache_model: CacheModel) -> dict:
    """The `generation` check: the file's cache path against the Keras model (teacher forced).

    Args:
        context: The export's `CheckContext` (`data`, `model`, `samples`, `target`).
        cache_model: What `prepare` returned.

    Returns:
        The check's figures: `passed`, `next_token_agreement`,
        `max_abs_error` (against the Keras model), `max_abs_error_vs_call`
        (against the file's `call` signature), `positions`, `max_length`,
        `cache_shape`, `signatures`.
    """
    from tfgreen.tflite.isolated import IsolatedRunner

    window = int(context.model.inputs[0].shape[1])
    windows = _windows(context, window)
    keras = np.asarray(context.model(windows, training=False), dtype="float64")
    runner = IsolatedRunner(context.data)
    try:
        full = np.asarray(runner.predict(windows), dtype="float64")
        agree, errors, call_errors, positions = 0, [0.0], [0.0], 0
        for i, ids in enumerate(windows):
            ids = ids[: min(window, cache_model.max_length)]
            prompt = max(1, len(ids) // 2)
            _, logits = runner.generate(ids[:prompt], len(ids) - prompt, forced=ids[prompt:])
            rows = slice(prompt - 1, len(ids))
            got = np.asarray(logits, dtype="float64")
            agree += int(np.sum(got.argmax(-1) == keras[i, rows].argmax(-1)))
            errors.append(float(np.max(np.abs(got - keras[i, rows]))))
            call_errors.append(float(np.max(np.abs(got - full[i, rows]))))
            positions += len(got)
    finally:
        runner.close()
    agreement = agree / positions
    error = max(errors)
    return {
        "passed": bool(np.isfinite(error) and agreement >= context.target.min_next_token_agreement),
        "next_token_agreement": agreement,
        "min_next_token_agreement": context.target.min_next_token_agreement,
        "max_abs_error": error,
        "max_abs_error_vs_call": max(call_errors),
        "positions": positions,
        "max_length": cache_model.max_length,
        "cache_shape": list(cache_model.cache_shape),
        "kind": cache_model.kind,
        "signatures": [CALL, DECODE, PREFILL],
    }


def check_arguments(generate, max_length) -> None:
    """`generate` is a bool; `max_length` is given only with `generate=True`."""
    if not isinstance(generate, bool):
        raise TfgreenTypeError(
            message(
                "`generate` must be True or False",
                "a bool",
                "Pass generate=True for prefill/decode signatures with a KV cache",
                generate=generate,
            )
        )
    if max_length is not None and not generate:
        raise TfgreenValueError(
            message(
                "`max_length` is the KV-cache length and needs generate=True",
                "max_length=None without generate=True",
                "Pass generate=True, or leave max_length out",
                max_length=max_length,
            )
        )
