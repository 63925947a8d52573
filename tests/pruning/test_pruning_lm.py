"""Gradual pruning of language models: attention, feed-forward, embeddings, KerasHub, m:n, TFLite.

Each fitted model is shared at module scope: `tiny_lm` (the trained
`tiny_gpt` of `tests/conftest.py`) pruned once per Keras and setting, and a
KerasHub GPT2CausalLM built from config. Runs are a few steps on 128 windows
of the bundled text; figures are exact zero fractions of the kernels.
"""

from __future__ import annotations

import math
import re

import numpy as np
import pytest

import tfgreen
from tfgreen.datasets import next_token_targets
from tfgreen.errors import UnsupportedLayerError
from tfgreen.flavor import keras_for
from tfgreen.perplexity import perplexity
from tfgreen.pruning._kernels import find_kernels
from tfgreen.pruning.api import pruned_layers

_ATTENTION = ("query", "key", "value", "attention_output")
_RUNS: dict = {}


def _compile(model, keras) -> None:
    # No XLA: compiling costs more than these few steps take.
    model.compile(
        keras.optimizers.Adam(1e-3),
        keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        jit_compile=False,
    )


def _fit(model, keras, x, epochs: int = 1) -> None:
    _compile(model, keras)
    y, weights = next_token_targets(x)
    model.fit(
        x,
        y,
        sample_weight=weights,
        batch_size=32,
        epochs=epochs,
        verbose=0,
        callbacks=[tfgreen.callbacks.Pruning()],
    )


def _run(key, build):
    if key not in _RUNS:
        _RUNS[key] = build()
    return _RUNS[key]


@pytest.fixture
def pruned_lm(flavor, tiny_lm, text_data):
    """`tiny_lm` pruned to 50% (polynomial, 2 epochs of 4 steps), and its stripped copy."""

    def build():
        pruned = tfgreen.prune(tiny_lm, sparsity=0.5)
        _fit(pruned, keras_for(flavor), text_data.train[:128], epochs=2)
        return pruned, tfgreen.strip(pruned)

    return _run(("unstructured", flavor), build)


@pytest.fixture
def pruned_lm_tables(flavor, tiny_lm, text_data):
    """`tiny_lm` pruned with `embeddings=True` (Keras 3: and `"2:4"`), stripped."""

    def build():
        structure = "2:4" if flavor == "keras3" else None
        with_tables = tfgreen.prune(
            tiny_lm, sparsity=0.5, schedule="constant", structure=structure, embeddings=True
        )
        _fit(with_tables, keras_for(flavor), text_data.train[:64])
        return tfgreen.strip(with_tables)

    return _run(("tables", flavor), build)


def _attention_paths(sparsity: dict) -> list[str]:
    return [path for path in sparsity if path.rsplit("/", 1)[-1] in _ATTENTION]


def test_attention_and_feed_forward_reach_the_target(pruned_lm, flavor):
    pruned, stripped = pruned_lm
    reached = tfgreen.sparsity(pruned)
    attention = _attention_paths(reached)
    assert len(attention) == 8  # 2 blocks x query/key/value/output, rank-3 kernels
    feed_forward = [p for p in reached if "_ffn_" in p]
    assert len(feed_forward) == 4
    for path in attention + feed_forward + ["logits"]:
        assert abs(reached[path] - 0.5) <= 1e-3, (path, reached[path])
    assert tfgreen.sparsity(stripped) == {"token_embedding": 0.0, **reached}


def test_embeddings_untouched_unless_opted_in(pruned_lm, pruned_lm_tables):
    pruned, stripped = pruned_lm
    wrapped = {layer.layer.name for layer in pruned_layers(pruned)}
    assert "token_embedding" not in wrapped and len(wrapped) == 7  # 2 x (attention, 2 ffn), head
    # Trained along, never masked.
    table = stripped.get_layer("token_embedding").get_weights()[0]
    assert np.count_nonzero(table == 0) == 0
    assert abs(tfgreen.sparsity(pruned_lm_tables)["token_embedding"] - 0.5) <= 1e-3


def test_stripped_lm_perplexity_is_finite_and_close(pruned_lm, tiny_lm, text_data):
    _, stripped = pruned_lm
    val = text_data.val[:64]
    dense, sparse = perplexity(tiny_lm, val), perplexity(stripped, val)
    assert math.isfinite(sparse) and 1.0 < sparse < 1.2 * dense, (dense, sparse)


def _tflite_name(name: str) -> str:
    # Keras 3 graphs suffix scopes with "_1": "tiny_gpt_1/block0_attention_1/key_1/MatMul".
    return re.sub(r"_\d+(?=/|$)", "", name)


def test_tflite_sparsity_matches(pruned_lm, text_data, tmp_path):
    from tfgreen.quantization.ptq import convert

    _, stripped = pruned_lm
    path = tmp_path / "lm.tflite"
    path.write_bytes(convert(stripped, "float32"))
    in_file = {
        _tflite_name(name): value
        for name, value in tfgreen.inspect_tflite(path, run=False)["weight_sparsity"].items()
    }
    in_keras = {p: v for p, v in tfgreen.sparsity(stripped).items() if p != "token_embedding"}
    assert len(in_file) == len(in_keras) == 13
    for kernel, value in in_keras.items():
        (match,) = [name for name in in_file if f"/{kernel}/" in name]
        assert in_file[match] == pytest.approx(value, abs=1e-9), kernel
    val = text_data.val[:16]
    assert perplexity(path, val) == pytest.approx(perplexity(stripped, val), rel=1e-4)


def _groups_hold(kernel, m: int, n: int) -> bool:
    values = np.moveaxis(np.asarray(kernel.variable), kernel.axis, -1).reshape(-1, n)
    return bool(np.all(np.sum(values == 0, axis=-1) >= m))


def test_m_by_n_on_reduction_axis_keras3(pruned_lm_tables, flavor):
    if flavor != "keras3":
        pytest.skip("tfmot's layout holds m:n only in Dense/Conv2D kernels (see the next test)")
    keras = keras_for(flavor)
    kernels = [k for layer in pruned_lm_tables.layers for k in find_kernels(layer, keras, True)]
    paths = {k.path: k for k in kernels}
    assert paths["block0_attention/query"].axis == 0  # (width, heads, head_size): width
    assert paths["block0_attention/attention_output"].axis == 1  # (heads, head_size, width)
    assert paths["token_embedding"].axis == 1
    assert len(kernels) == 14
    for kernel in kernels:
        assert _groups_hold(kernel, 2, 4), kernel.path
        assert abs(float(np.mean(np.asarray(kernel.variable) == 0)) - 0.5) <= 1e-3, kernel.path


def test_m_by_n_refused_on_tf_keras_attention(tiny_lm, flavor):
    if flavor != "tf_keras":
        pytest.skip("Keras 3 holds m:n on rank-3 kernels (previous test)")
    with pytest.raises(UnsupportedLayerError, match=r"rank-3 kernel; tfmot's m:n pruning"):
        tfgreen.prune(tiny_lm, structure="2:4", layers=["block0_attention"])
    with pytest.warns(UserWarning, match=r"leaves 2 layer\(s\) dense: block0_attention/query"):
        pruned = tfgreen.prune(tiny_lm, structure="2:4")
    wrapped = {layer.layer.name for layer in pruned_layers(pruned)}
    assert wrapped == {
        "block0_ffn_in",
        "block0_ffn_out",
        "block1_ffn_in",
        "block1_ffn_out",
        "logits",
    }


def test_pruned_lm_saves_and_loads_pruned(pruned_lm, text_data, tmp_path):
    from tfgreen.loading import load_model

    pruned, _ = pruned_lm
    pruned.save(tmp_path / "pruned.keras")
    loaded = load_model(tmp_path / "pruned.keras")
    assert len(pruned_layers(loaded)) == 7
    assert tfgreen.sparsity(loaded) == tfgreen.sparsity(pruned)
    ids = text_data.val[:4]
    assert np.abs(loaded.predict(ids, verbose=0) - pruned.predict(ids, verbose=0)).max() < 1e-5


def test_einsum_dense_pruned(flavor, seed):
    keras = keras_for(flavor)
    inputs = keras.Input((8, 16))
    hidden = keras.layers.EinsumDense("abc,cd->abd", (8, 32), name="mix")(inputs)
    model = keras.Model(inputs, keras.layers.Dense(4, name="out")(hidden))
    pruned = tfgreen.prune(model, sparsity=0.75, schedule="constant", layers=["mix"])
    pruned.compile(keras.optimizers.Adam(1e-3), "mse", jit_compile=False)
    x = np.random.default_rng(0).normal(size=(64, 8, 16)).astype("float32")
    pruned.fit(x, x[..., :4], epochs=1, verbose=0, callbacks=[tfgreen.callbacks.Pruning()])
    assert tfgreen.sparsity(tfgreen.strip(pruned)) == {"mix": 0.75, "out": 0.0}


# ---- KerasHub (Keras 3 only) ---------------------------------------------------------


def _hub_inputs(ids):
    return {"token_ids": ids, "padding_mask": np.ones_like(ids, dtype=bool)}


def _fit_hub(model, ids) -> None:
    import keras

    _compile(model, keras)
    y, weights = next_token_targets(ids)
    model.fit(
        _hub_inputs(ids),
        y,
        sample_weight=weights,
        batch_size=32,
        epochs=1,
        verbose=0,
        callbacks=[tfgreen.callbacks.Pruning()],
    )


@pytest.fixture(scope="module")
def hub_lm(text_data, make_gpt2):
    return make_gpt2(text_data.tokenizer.vocab_size, max_sequence_length=64)


@pytest.fixture(scope="module")
def pruned_hub(hub_lm, text_data):
    """`hub_lm` pruned "2:4" with its ReversibleEmbedding (2 steps), and its stripped copy."""
    pruned = tfgreen.prune(hub_lm, structure="2:4", embeddings=True)
    _fit_hub(pruned, text_data.train[:64])
    return pruned, tfgreen.strip(pruned)


def test_kerashub_table_only_when_opted_in(hub_lm):
    import keras

    (wrapper,) = pruned_layers(tfgreen.prune(hub_lm, sparsity=0.5))
    paths = [kernel.path for kernel in wrapper.kernels]
    assert len(paths) == 12 and not any("token_embedding" in p for p in paths)
    assert all(
        isinstance(k.layer, keras.layers.EinsumDense | keras.layers.Dense) for k in wrapper.kernels
    )


def test_kerashub_attention_table_and_m_by_n(pruned_hub, hub_lm):
    pruned, stripped = pruned_hub
    assert type(pruned) is type(hub_lm) and type(stripped) is type(hub_lm)
    reached = tfgreen.sparsity(pruned)
    attention = _attention_paths(reached)
    assert len(attention) == 8 and all("self_attention" in p for p in attention)
    assert len(reached) == 13  # the token table + 2 x (4 attention + 2 feed-forward)
    for path, value in reached.items():
        assert abs(value - 0.5) <= 1e-3, (path, value)
    import keras

    kernels = find_kernels(stripped.backbone, keras, embeddings=True)
    assert sorted(k.path for k in kernels) == sorted(reached)
    attention_owner = stripped.backbone.get_layer("transformer_layer_0")._self_attention_layer
    assert type(attention_owner).__name__ == "CachedMultiHeadAttention"
    for kernel in kernels:
        assert _groups_hold(kernel, 2, 4), kernel.path


def test_kerashub_stripped_keeps_tied_head_and_generates(pruned_hub, text_data):
    pruned, stripped = pruned_hub
    # The pruned ReversibleEmbedding is still the LM head: one table, tied.
    table = stripped.backbone.token_embedding
    assert stripped.layers[-1] is table and table.tie_weights
    assert type(table).__name__ == "ReversibleEmbedding"
    ids = text_data.val[:4]
    hidden = np.asarray(stripped.backbone(_hub_inputs(ids)))
    logits = stripped.predict(_hub_inputs(ids), verbose=0)
    assert np.abs(logits - hidden @ np.asarray(table.embeddings).T).max() < 1e-4
    assert np.abs(logits - pruned.predict(_hub_inputs(ids), verbose=0)).max() < 1e-5
    assert math.isfinite(perplexity(stripped, text_data.val[:16]))
    stripped.compile(sampler="greedy")
    prompt = _hub_inputs(text_data.val[:2, :8])
    prompt["padding_mask"][:, 4:] = False
    out = stripped.generate(prompt, max_length=8, stop_token_ids=None)
    assert out["token_ids"].shape == (2, 8)
    assert np.array_equal(out["token_ids"][:, :4], text_data.val[:2, :4])


def test_kerashub_saved_while_pruned_loads_plain_with_its_zeros(pruned_hub, tmp_path):
    from tfgreen.loading import load_model

    pruned, _ = pruned_hub
    pruned.save(tmp_path / "lm.keras")
    loaded = load_model(tmp_path / "lm.keras")
    assert type(loaded) is type(pruned) and not pruned_layers(loaded)
    assert tfgreen.sparsity(loaded) == tfgreen.sparsity(pruned)


def test_functional_around_a_backbone_keeps_its_head_tied(make_gpt2):
    # (Keras 3.15.1 itself can't load such a model from .keras, pruned or not.)
    import keras

    backbone = make_gpt2(300, max_sequence_length=64).backbone
    hidden = backbone(backbone.input)
    lm = keras.Model(backbone.input, backbone.token_embedding(hidden, reverse=True))
    pruned = tfgreen.prune(lm, sparsity=0.5, embeddings=True)
    (wrapper,) = pruned_layers(pruned)
    head = pruned.layers[-1]
    assert head is wrapper.layer.token_embedding  # one table: input lookup and LM head
    assert f"{backbone.name}/token_embedding" in [kernel.path for kernel in wrapper.kernels]
    stripped = tfgreen.strip(pruned)
    assert stripped.layers[-1] is stripped.get_layer(backbone.name).token_embedding
    ids = np.arange(32, dtype="int32").reshape(2, 16)
    inputs = _hub_inputs(ids)
    assert np.abs(stripped.predict(inputs, verbose=0) - lm.predict(inputs, verbose=0)).max() < 1e-5
