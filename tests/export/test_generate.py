"""export_tflite(generate=True) and tfgreen.generate: KV-cache files decode like Keras.

The trained `tiny_lm` (conftest: vocab 512, seq_len 32) of both Kerases and a
KerasHub GPT2CausalLM built from config are exported with `prefill`/`decode`
signatures; greedy tokens from LiteRT are compared with a Keras greedy loop
that recomputes the full window for every token (no cache,
`tfgreen.generation.keras_greedy`) and, for KerasHub, with its own greedy
`generate()`.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

import tfgreen
from tfgreen.errors import TargetError, TfgreenTypeError, TfgreenValueError, TfliteFileError
from tfgreen.generation import keras_greedy
from tfgreen.tflite.decode import signatures

_NEW_TOKENS = 16
_PROMPT = 8
_FILES: dict = {}


def _export(key, model, folder, target, data, **kwargs):
    if key not in _FILES:
        path = folder / f"{key[0]}_{key[1]}.tflite"
        report = tfgreen.export_tflite(
            model, path, target=target, validation_data=data.val[:64], generate=True, **kwargs
        )
        _FILES[key] = report
    return _FILES[key]


@pytest.fixture(scope="session")
def export_folder(tmp_path_factory):
    return tmp_path_factory.mktemp("generate")


def test_float32_file_generates_the_keras_greedy_tokens(flavor, tiny_lm, text_data, export_folder):
    report = _export((flavor, "cpu"), tiny_lm, export_folder, "cpu", text_data)
    data = Path(report.path).read_bytes()
    assert list(signatures(data)) == ["call", "decode", "prefill"]
    generation = report.checks["generation"]
    assert generation["passed"] is True and generation["next_token_agreement"] == 1.0
    assert generation["max_abs_error"] < 1e-4
    # The full-window checks still ran, on the first signature.
    assert report.perplexity["ratio"] == pytest.approx(1.0, abs=1e-5)
    manifest = json.loads(Path(report.manifest_path).read_text())
    assert manifest["checks"]["generation"]["max_length"] == 32
    for prompt in (text_data.val[1, :_PROMPT], text_data.val[7, :3]):
        expected = keras_greedy(tiny_lm, prompt, _NEW_TOKENS)
        got = tfgreen.generate(report.path, prompt, max_new_tokens=_NEW_TOKENS)
        np.testing.assert_array_equal(got, expected)


def test_dynamic_int8_file_agrees_with_keras(flavor, tiny_lm, text_data, export_folder):
    report = _export((flavor, "edge-cpu"), tiny_lm, export_folder, "edge-cpu", text_data)
    assert report.quantization == "dynamic" and report.attempts == []  # no full-int8 try
    generation = report.checks["generation"]
    assert generation["next_token_agreement"] >= 0.95
    # Dynamic-range activations are quantized per call, so one position and a full window
    # round differently: both stay within a small logit error of the float model.
    assert generation["max_abs_error"] < 0.5 and generation["max_abs_error_vs_call"] < 0.5
    prompts = text_data.val[:8, :_PROMPT]
    same = [
        np.mean(
            tfgreen.generate(report.path, p, _NEW_TOKENS) == keras_greedy(tiny_lm, p, _NEW_TOKENS)
        )
        for p in prompts
    ]
    print(f"{flavor} dynamic: greedy tokens {np.mean(same):.3f}, {generation}")
    assert np.mean(same) >= 0.8


def test_kerashub_gpt2_generates_like_keras_and_kerashub(text_data, tmp_path):
    keras_hub = pytest.importorskip("keras_hub")
    import keras

    from tfgreen._adapters import keras_hub as adapter

    assert keras_hub.__version__ == adapter.PINNED["keras_hub"], "check _build_cache still exists"
    keras.utils.set_random_seed(0)
    backbone = keras_hub.models.GPT2Backbone(
        vocabulary_size=512,
        num_layers=1,
        num_heads=2,
        hidden_dim=32,
        intermediate_dim=64,
        max_sequence_length=32,
    )
    lm = keras_hub.models.GPT2CausalLM(backbone=backbone, preprocessor=None)
    report = tfgreen.export_tflite(
        lm, tmp_path / "gpt2.tflite", target="cpu", validation_data=text_data.val[:8], generate=True
    )
    assert report.checks["generation"]["kind"] == "keras_hub"
    prompt = text_data.val[0, :_PROMPT]
    got = tfgreen.generate(report.path, prompt, max_new_tokens=_NEW_TOKENS)
    np.testing.assert_array_equal(got, keras_greedy(lm, prompt, _NEW_TOKENS))
    lm.compile(sampler="greedy")
    window = np.zeros((1, 32), "int32")
    window[0, :_PROMPT] = prompt
    hub = lm.generate(
        {"token_ids": window, "padding_mask": np.arange(32)[None] < _PROMPT}, stop_token_ids=None
    )
    np.testing.assert_array_equal(got, hub["token_ids"][0, _PROMPT : _PROMPT + _NEW_TOKENS])


def test_generate_checks_its_arguments(flavor, tiny_lm, text_data, export_folder, tmp_path):
    report = _export((flavor, "cpu"), tiny_lm, export_folder, "cpu", text_data)
    prompt = text_data.val[0, :_PROMPT]
    with pytest.raises(TfgreenValueError, match="do not fit the file's KV cache"):
        tfgreen.generate(report.path, prompt, max_new_tokens=32)
    with pytest.raises(TfgreenValueError, match="does not fit the file's KV cache"):
        tfgreen.generate(report.path, text_data.val[0].tolist() + [1], max_new_tokens=1)
    with pytest.raises(TfgreenValueError, match="out of the vocabulary at prompt position 2"):
        tfgreen.generate(report.path, [1, 2, 512], max_new_tokens=2)
    with pytest.raises(TfgreenTypeError, match="1-D sequence of integer"):
        tfgreen.generate(report.path, [0.5, 1.0], max_new_tokens=2)
    with pytest.raises(TfgreenValueError, match="max_new_tokens"):
        tfgreen.generate(report.path, prompt, max_new_tokens=0)
    from tfgreen.quantization.ptq import convert

    plain = tmp_path / "plain.tflite"
    plain.write_bytes(convert(tiny_lm))
    with pytest.raises(TfgreenValueError, match="generate=True"):
        tfgreen.generate(plain, prompt, max_new_tokens=2)


def test_unverified_and_tampered_files(flavor, tiny_lm, text_data, export_folder, tmp_path):
    report = _export((flavor, "cpu"), tiny_lm, export_folder, "cpu", text_data)
    prompt = text_data.val[2, :_PROMPT]
    expected = tfgreen.generate(report.path, prompt, max_new_tokens=4)
    copy = tmp_path / "copy.tflite"  # no manifest: runs in the isolated child
    shutil.copy(report.path, copy)
    np.testing.assert_array_equal(tfgreen.generate(copy, prompt, max_new_tokens=4), expected)
    tampered = tmp_path / "tampered.tflite"
    data = bytearray(Path(report.path).read_bytes())
    data[len(data) // 2] ^= 0x01
    tampered.write_bytes(bytes(data))
    shutil.copy(report.manifest_path, tmp_path / "tampered.tflite.json")
    with pytest.raises(TfliteFileError, match="does not match its manifest"):
        tfgreen.generate(tampered, prompt, max_new_tokens=4)
    with pytest.raises(TfliteFileError, match="not a TFLite flatbuffer"):
        tfgreen.generate(b"not a model at all", prompt, max_new_tokens=4)


def test_export_refuses_what_cannot_generate(tiny_lm, text_data, tmp_path):
    from tfgreen.models import small_mlp

    with pytest.raises(TfgreenValueError, match="not a language model"):
        tfgreen.export_tflite(small_mlp(), tmp_path / "m.tflite", target="cpu", generate=True)
    with pytest.raises(TargetError, match="integer activations everywhere"):
        tfgreen.export_tflite(
            tiny_lm,
            tmp_path / "m.tflite",
            target="mcu",
            calibration_data=text_data.train[:8],
            generate=True,
        )
    with pytest.raises(TargetError, match="cannot be used with generate=True"):
        tfgreen.export_tflite(
            tiny_lm,
            tmp_path / "m.tflite",
            target="edge-cpu",
            quantization="int8",
            calibration_data=text_data.train[:8],
            generate=True,
        )
    with pytest.raises(TfgreenValueError, match="max_length <= 32"):
        tfgreen.export_tflite(tiny_lm, tmp_path / "m.tflite", generate=True, max_length=64)
    with pytest.raises(TfgreenValueError, match="needs generate=True"):
        tfgreen.export_tflite(tiny_lm, tmp_path / "m.tflite", max_length=16)
    with pytest.raises(TfgreenTypeError, match="True or False"):
        tfgreen.export_tflite(tiny_lm, tmp_path / "m.tflite", generate="yes")
    assert not list(tmp_path.iterdir())  # nothing half-written


def test_device_kit_generates_the_same_tokens_without_tensorflow(
    python_run, flavor, tiny_lm, text_data, export_folder, tmp_path
):
    report = _export((flavor, "cpu"), tiny_lm, export_folder, "cpu", text_data)
    kit = str(Path(__file__).resolve().parents[2] / "tflite_export" / "generate.py")
    tokenizer = tmp_path / "tokenizer.json"
    text_data.tokenizer._tokenizer.save(str(tokenizer))  # the HF tokenizer behind BpeTokenizer
    blocker = tmp_path / "blocker"
    blocker.mkdir()
    (blocker / "tensorflow.py").write_text("raise ImportError('no tensorflow on this device')\n")
    device = {"PYTHONPATH": str(blocker)}
    text = "The if statement"
    args = ["--tokenizer", str(tokenizer), "--prompt", text, "--max-new-tokens", "12"]
    done = python_run(kit, report.path, *args, env_extra=device)
    assert done.returncode == 0, done.stderr[-3000:]
    line = next(x for x in done.stdout.splitlines() if x.startswith("generated "))
    got = [int(t) for t in line.split()[1].split(",")]
    expected = tfgreen.generate(report.path, text_data.tokenizer.encode(text), max_new_tokens=12)
    assert got == expected.tolist() and "sha256 matches manifest" in done.stdout
    assert "tokens/s, KV cache" in done.stdout and "text      " in done.stdout
    from tfgreen.quantization.ptq import convert

    plain = tmp_path / "plain.tflite"
    plain.write_bytes(convert(tiny_lm))
    done = python_run(kit, str(plain), "--no-verify", "--prompt-ids", "1,2", env_extra=device)
    assert (
        done.returncode == 2 and "generate=True" in done.stderr and "Traceback" not in done.stderr
    )


def test_token_figures_in_bench_and_compare(
    flavor, tiny_lm, text_data, export_folder, tmp_path, capsys
):
    from tfgreen.cli import main
    from tfgreen.energy.tokens import describe, token_figures
    from tfgreen.quantization.ptq import convert

    report = _export((flavor, "cpu"), tiny_lm, export_folder, "cpu", text_data)
    figures = token_figures(report.path, runs=20, energy=True, seconds=0.2, repeats=1)
    assert figures["max_length"] == figures["window"] == 32
    assert figures["decode_tokens_per_second"] > 0 and figures["prefill_tokens_per_second"] > 0
    assert figures["cache_speedup"] == pytest.approx(figures["call_ms"] / figures["decode_ms"])
    assert figures["joules_per_generated_token"] > 0 and figures["joules_per_prompt_token"] > 0
    assert figures["method"] in ("measured", "estimate")
    assert any("tokens/s with the cache" in line for line in describe(figures))
    capsys.readouterr()
    assert main(["bench", report.path, "--runs", "10"]) == 0
    printed = capsys.readouterr().out
    assert "KV cache of 32 positions" in printed and "tokens/s with the cache" in printed
    plain = tmp_path / "plain.tflite"
    plain.write_bytes(convert(tiny_lm))
    assert token_figures(plain) is None
    result = tfgreen.compare(
        {"plain": str(plain), "cached": report.path}, text_data.val[:8], runs=5, energy_seconds=0.2
    )
    plain_row, cached = result.rows
    assert cached["decode_tokens_per_second"] > 0 and "decode_tokens_per_second" not in plain_row
    # Without a cache every generated token costs one full-window inference.
    assert plain_row["joules_per_generated_token"] == plain_row["joules_per_inference"]
    assert cached["joules_per_generated_token"] > 0 and "break_even_tokens" in cached


def test_litert_adapter_is_pinned():
    """`tfgreen._adapters.litert` reads a SignatureRunner's private wrapper (written for 2.3.0)."""
    import importlib.metadata

    from tfgreen._adapters.litert import PINNED

    assert importlib.metadata.version("ai-edge-litert") == PINNED["ai_edge_litert"]
