"""Language-model benchmark: every TFLite variant of one trained `tiny_gpt`, side by side.

`run(quick)` returns rows of measured figures (no claims), per Keras flavour, for a
`tiny_gpt` (vocab 512, seq_len 64, width 64, 2 blocks) trained on the bundled text
(`tfgreen.datasets.load_text`), converted as `float32`, `float16`, `dynamic`
(dynamic-range int8 weights), full `int8` (calibrated on 64 training windows) and
`QAT int8` (`tfgreen.quantize_aware`, one fine-tuning epoch, converted with its learned
ranges; on tf_keras tfmot's QAT graph keeps the kernels float and the int8 conversion is
refused; that row records the refusal). Agreement and perplexity ratio are against the
float Keras model for every row. Columns:
- file size in KB and its ratio to the float32 file;
- perplexity of the file on the held-out windows, and its ratio to the Keras model's;
- next-token agreement with the Keras model (top-1 at every position);
- LiteRT latency p50 of one forward pass over `seq_len` tokens (1 thread, batch 1),
  and the tokens per second that gives (`seq_len / latency`).
The full-int8 row shows what the facts note measured: agreement collapses; tfgreen's
full-int8 targets refuse such a file rather than ship it.

The `generate float32` (target `cpu`) and `generate dynamic` (target `edge-cpu`) rows are
`export_tflite(..., generate=True)` files (KV cache of `seq_len` positions,
`tfgreen.energy.tokens`): tokens/s of prefill and decode with the cache and without it
(the full-window `call`, recomputed for every generated token), the speed-up of decode,
joules per generated token (decode) and per prompt token (prefill), host estimates
(CodeCarbon, `energy_method`), and `greedy_token_identity`: the fraction of 16 greedy tokens
from 8 held-out prompts of 8 tokens that equal a Keras greedy loop over full windows.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

__all__ = ["run"]

_SEQ_LEN = 64
_VOCAB = 512


def _train(flavor: str, data, epochs: int, windows: int):
    from tfgreen.datasets import next_token_targets
    from tfgreen.flavor import keras_for
    from tfgreen.models import tiny_gpt

    keras = keras_for(flavor)
    model = tiny_gpt(flavor, vocab_size=_VOCAB, seq_len=_SEQ_LEN, embed_dim=64, ff_dim=128)
    model.compile(
        keras.optimizers.Adam(3e-3), keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    )
    x = data.train[:windows]
    y, weights = next_token_targets(x)
    model.fit(x, y, sample_weight=weights, batch_size=32, epochs=epochs, verbose=0)
    return model


def _qat(model, data, windows: int):
    import tfgreen
    from tfgreen.datasets import next_token_targets
    from tfgreen.flavor import flavor_of, keras_for

    keras = keras_for(flavor_of(model))
    qat = tfgreen.quantize_aware(model)
    qat.compile(
        keras.optimizers.Adam(1e-4), keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    )
    x = data.train[: min(windows, 2048)]
    y, weights = next_token_targets(x)
    qat.fit(x, y, sample_weight=weights, batch_size=32, epochs=1, verbose=0)
    return qat


def run(quick: bool = False) -> list[dict]:
    """Measures the LM figures; `quick` trains on fewer windows and times fewer runs.

    Args:
        quick: One epoch on 512 windows, 128 validation windows, 20 latency runs.
            Defaults to `False`.

    Returns:
        One dict per (flavour, variant).
    """
    import tfgreen
    from tfgreen.datasets import load_text
    from tfgreen.errors import CalibrationError
    from tfgreen.flavor import FLAVORS
    from tfgreen.perplexity import next_token_agreement
    from tfgreen.quantization.ptq import convert
    from tfgreen.tflite.runner import TfliteRunner

    data = load_text(seq_len=_SEQ_LEN, vocab_size=_VOCAB)
    epochs, windows, runs = (1, 512, 20) if quick else (8, len(data.train), 300)
    val = data.val[:128] if quick else data.val
    calibration = data.train[:64]

    def representative():
        return ([calibration[i : i + 1]] for i in range(len(calibration)))

    rows: list[dict] = []
    with tempfile.TemporaryDirectory() as folder:
        for flavor in FLAVORS:
            model = _train(flavor, data, epochs, windows)
            keras_ppl = tfgreen.perplexity(model, val)
            variants = {
                "float32": convert(model, "float32"),
                "float16": convert(model, "float16"),
                "dynamic": convert(model, "dynamic"),
                "int8": convert(model, "int8", representative=representative),
            }
            try:
                variants["QAT int8"] = convert(_qat(model, data, windows), "int8")
            except CalibrationError as error:  # tf_keras: the kernels stayed float
                rows.append({"flavor": flavor, "variant": "QAT int8", "refused": str(error)[:160]})
            base_bytes = len(variants["float32"])
            for variant, content in variants.items():
                path = Path(folder) / f"{flavor}_{variant.replace(' ', '_')}.tflite"
                path.write_bytes(content)
                ppl = tfgreen.perplexity(path, val)
                p50 = TfliteRunner(path, num_threads=1).latency_ms(val[:1], runs=runs)["p50"]
                rows.append(
                    {
                        "flavor": flavor,
                        "model": f"tiny_gpt v{_VOCAB} s{_SEQ_LEN} d64 L2",
                        "variant": variant,
                        "size_kb": len(content) / 1024,
                        "size_ratio": len(content) / base_bytes,
                        "keras_perplexity": keras_ppl,
                        "perplexity": ppl,
                        "perplexity_ratio": ppl / keras_ppl,
                        "next_token_agreement": next_token_agreement(model, path, val),
                        "latency_ms": p50,
                        "tokens_per_s": _SEQ_LEN * 1000.0 / p50,
                    }
                )
            rows += _generation_rows(flavor, model, val, Path(folder), runs, quick)
    return rows


def _generation_rows(flavor: str, model, val, folder: Path, runs: int, quick: bool) -> list[dict]:
    """The KV-cache rows of one trained model: float32 and dynamic-range int8 files."""
    import numpy as np

    import tfgreen
    from tfgreen.energy.tokens import token_figures
    from tfgreen.generation import keras_greedy

    prompts = val[:8, :8]
    expected = [keras_greedy(model, p, 16) for p in prompts]
    rows = []
    for variant, target in (("generate float32", "cpu"), ("generate dynamic", "edge-cpu")):
        path = folder / f"{flavor}_{target}_generate.tflite"
        report = tfgreen.export_tflite(
            model, path, target=target, validation_data=val[:64], generate=True
        )
        same = [
            np.mean(tfgreen.generate(path, p, 16) == e)
            for p, e in zip(prompts, expected, strict=True)
        ]
        seconds = 0.3 if quick else 1.0
        figures = token_figures(path, runs=runs, energy=True, seconds=seconds)
        rows.append(
            {
                "flavor": flavor,
                "model": f"tiny_gpt v{_VOCAB} s{_SEQ_LEN} d64 L2",
                "variant": variant,
                "size_kb": report.size_bytes / 1024,
                "quantization": report.quantization,
                "greedy_token_identity": float(np.mean(same)),
                "cache_next_token_agreement": report.checks["generation"]["next_token_agreement"],
                "prefill_tokens_per_s": figures["prefill_tokens_per_second"],
                "prefill_no_cache_tokens_per_s": figures["prefill_no_cache_tokens_per_second"],
                "decode_tokens_per_s": figures["decode_tokens_per_second"],
                "decode_no_cache_tokens_per_s": figures["decode_no_cache_tokens_per_second"],
                "decode_speedup_with_cache": figures["cache_speedup"],
                "decode_step_ms_python": figures["decode_step_ms"],
                "joules_per_generated_token": figures["joules_per_generated_token"],
                "joules_per_generated_token_no_cache": figures[
                    "joules_per_generated_token_no_cache"
                ],
                "joules_per_prompt_token": figures["joules_per_prompt_token"],
                "energy_method": figures["method"],
            }
        )
    return rows


if __name__ == "__main__":
    import json
    import sys

    print(json.dumps(run(quick="--quick" in sys.argv), indent=2))
