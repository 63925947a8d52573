"""export_tflite on language models: token inputs, perplexity checks, per-target defaults.

The trained `tiny_lm` (conftest: vocab 512, seq_len 32, width 32) goes
through every kind of target on both Kerases; a KerasHub GPT2 CausalLM built
from config goes through edge-cpu.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

import tfgreen
from tfgreen.errors import TargetError, TfgreenValueError
from tfgreen.tflite.read import read_tflite

_CALIBRATION = 200
_VALIDATION = 256


def _export(model, path, target, data, **kwargs):
    return tfgreen.export_tflite(
        model,
        path,
        target=target,
        calibration_data=data.train[:_CALIBRATION],
        validation_data=data.val[:_VALIDATION],
        **kwargs,
    )


def test_cpu_keeps_perplexity_and_token_input(tiny_lm, text_data, tmp_path):
    report = _export(tiny_lm, tmp_path / "lm.tflite", "cpu", text_data)
    assert report.inputs[0]["dtype"] == "int32"
    assert report.checks["io_dtypes"]["passed"] is True
    assert report.checks["io_dtypes"]["token_inputs"] == [report.inputs[0]["name"]]
    assert report.perplexity["ratio"] <= 1.005
    assert report.next_token_agreement >= 0.99
    assert abs(report.perplexity["keras"] - tfgreen.perplexity(tiny_lm, text_data.val[:256])) < 1e-6
    manifest = json.loads((tmp_path / "lm.tflite.json").read_text())
    assert manifest["perplexity"] == report.perplexity
    assert manifest["next_token_agreement"] == report.next_token_agreement
    # The file's own perplexity, measured again through tfgreen.perplexity, is the report's.
    tflite = tfgreen.perplexity(tmp_path / "lm.tflite", text_data.val[:256])
    assert tflite == pytest.approx(report.perplexity["tflite"], rel=1e-6)


def test_edge_cpu_default_falls_back_to_dynamic_int8(tiny_lm, text_data, tmp_path):
    report = _export(tiny_lm, tmp_path / "lm.tflite", "edge-cpu", text_data)
    # Full int8 was tried first and collapsed; the attempt is on record with its figures.
    assert [a["quantization"] for a in report.attempts] == ["int8"]
    assert report.attempts[0]["failed"] == ["perplexity"]
    assert report.attempts[0]["next_token_agreement"] < 0.5
    assert report.quantization == "dynamic"
    assert report.perplexity["ratio"] <= 1.03
    assert report.next_token_agreement >= 0.95
    info = read_tflite((tmp_path / "lm.tflite").read_bytes())
    weights = [t for t in info.tensors if t.is_constant and np.prod(t.shape) >= 32 * 32]
    int8 = [t for t in weights if t.dtype == "int8"]
    float_bytes = sum(4 * int(np.prod(t.shape)) for t in weights if t.dtype == "float32")
    # Every weight matrix (embedding, q/k/v/o, FFN, head) is int8; what stays float32 is
    # the position table and the causal mask, 4 KB each at seq_len 32.
    assert len(int8) >= 13 and float_bytes <= 8 * 1024, [(t.name, t.dtype) for t in weights]


def test_edge_cpu_int8_asked_for_is_refused_not_silent(tiny_lm, text_data, tmp_path):
    with pytest.raises(TargetError, match=r"perplexity.*worst_tensors|worst_tensors") as caught:
        _export(tiny_lm, tmp_path / "lm.tflite", "edge-cpu", text_data, quantization="int8")
    assert "next_token_agreement" in str(caught.value)
    assert not (tmp_path / "lm.tflite").exists()


@pytest.mark.parametrize("target", ["mcu", "vehicle-ecu"])
def test_full_int8_targets_refuse_naming_check_and_tensors(tiny_lm, text_data, tmp_path, target):
    with pytest.raises(TargetError) as caught:
        _export(tiny_lm, tmp_path / "lm.tflite", target, text_data)
    text = str(caught.value)
    assert "perplexity" in text and "worst_tensors" in text
    # The debugger's worst tensors are named by op (LayerNorm's RSQRT, attention, softmax ...).
    named = text.split("worst_tensors=")[1].split("]")[0]
    assert any(op in named for op in ("RSQRT", "BATCH_MATMUL", "SOFTMAX", "MUL", "MEAN"))
    assert not list(tmp_path.glob("lm*"))


def test_edge_gpu_float16_keeps_perplexity(tiny_lm, text_data, tmp_path):
    report = _export(tiny_lm, tmp_path / "lm.tflite", "edge-gpu", text_data)
    assert report.quantization == "float16"
    assert report.perplexity["ratio"] <= 1.01
    assert report.next_token_agreement >= 0.98


@pytest.mark.parametrize("flavor", ["keras3", "tf_keras"])
def test_dynamic_file_is_at_most_036_of_float32_at_width_64(flavor, text_data, tmp_path):
    from tfgreen.models import tiny_gpt

    model = tiny_gpt(flavor, vocab_size=512, seq_len=32, embed_dim=64, ff_dim=128)
    sizes = {
        target: tfgreen.export_tflite(
            model, tmp_path / f"{target}.tflite", target, validation_data=text_data.val[:32]
        ).size_bytes
        for target in ("cpu", "edge-cpu")
    }
    assert sizes["edge-cpu"] / sizes["cpu"] <= 0.36, sizes


@pytest.mark.parametrize("flavor", ["keras3"])
def test_token_ids_outside_the_vocabulary_are_named(tiny_lm, text_data, tmp_path):
    bad = text_data.val[:16].copy()
    bad[5, 3] = 9999
    with pytest.raises(TfgreenValueError, match=r"out of the vocabulary, first in sample 5"):
        tfgreen.export_tflite(tiny_lm, tmp_path / "lm.tflite", "cpu", validation_data=bad)
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("flavor", ["keras3"])
def test_encoder_classifier_token_input_passes_io_check(flavor, tmp_path):
    from tfgreen.datasets import load_text_classification
    from tfgreen.models import tiny_encoder_classifier

    data = load_text_classification(seq_len=32, vocab_size=300)
    model = tiny_encoder_classifier(
        flavor, vocab_size=300, seq_len=32, num_classes=len(data.class_names), embed_dim=16
    )
    report = tfgreen.export_tflite(
        model,
        tmp_path / "enc.tflite",
        "edge-cpu",
        calibration_data=data.x_train[:64],
        validation_data=(data.x_val, data.y_val),
    )
    assert report.inputs[0]["dtype"] == "int32"
    assert report.checks["io_dtypes"]["passed"] is True
    assert report.perplexity is None and report.accuracy is not None


def test_keras_hub_gpt2_exports_for_edge_cpu(gpt2_lm, text_data, tmp_path):
    report = _export(gpt2_lm, tmp_path / "gpt2.tflite", "edge-cpu", text_data)
    assert [t["dtype"] for t in report.inputs] == ["int32"]  # the padding mask is folded in
    assert report.quantization == "dynamic"  # full int8 collapsed (agreement 0.35 measured)
    assert report.attempts[0]["next_token_agreement"] < 0.9
    assert report.perplexity["ratio"] <= 1.03
    assert report.next_token_agreement >= 0.95
    assert report.perplexity["keras"] < 130  # trained: far below the uniform 512


@pytest.mark.parametrize("flavor", ["keras3"])
def test_cli_exports_a_saved_lm_with_token_ids_from_npy(tiny_lm, text_data, tmp_path, python_run):
    tiny_lm.save(tmp_path / "lm.keras")
    np.save(tmp_path / "train.npy", text_data.train[:64])
    np.save(tmp_path / "val.npy", text_data.val[:64])
    done = python_run(
        "-m",
        "tfgreen",
        "export",
        str(tmp_path / "lm.keras"),
        "-o",
        str(tmp_path / "lm.tflite"),
        "--target",
        "edge-cpu",
        "--calibration",
        str(tmp_path / "train.npy"),
        "--validation",
        str(tmp_path / "val.npy"),
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "quantization dynamic" in done.stdout
    assert (
        "next-token agreement" in done.stdout
        and "tried      int8: failed perplexity" in done.stdout
    )
    manifest = json.loads((tmp_path / "lm.tflite.json").read_text())
    assert manifest["perplexity"]["ratio"] <= 1.03
