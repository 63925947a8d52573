"""One-shot pruning benchmark: magnitude vs Wanda vs SparseGPT, no retraining, side by side.

`run(quick)` returns one row per (model, structure, method) with measured
figures only: held-out perplexity after pruning and its ratio to the dense
model's, the mean sparsity over the pruned kernels, and the wall time of the
`tfgreen.prune` call (calibration passes included; one run, on a shared
machine: indicative). Models, all trained here on the bundled text
(`tfgreen.datasets.load_text`, vocab 512, seq_len 64):
- `tiny_gpt` (width 64, 2 blocks, feed-forward 128) in Keras 3 and tf_keras;
- a KerasHub `GPT2CausalLM` built from config (same sizes; Keras 3 only,
  skipped when keras_hub is missing).
Wanda and SparseGPT calibrate on 128 training windows (8,192 tokens).
"""

from __future__ import annotations

import time

import numpy as np

__all__ = ["run"]

_SEQ_LEN = 64
_VOCAB = 512
_METHODS = ("magnitude", "wanda", "sparsegpt")


def _fit(model, keras, x, inputs, epochs: int) -> None:
    from tfgreen.datasets import next_token_targets

    model.compile(
        keras.optimizers.Adam(3e-3),
        keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        jit_compile=False,
    )
    y, weights = next_token_targets(x)
    model.fit(inputs, y, sample_weight=weights, batch_size=32, epochs=epochs, verbose=0)


def _models(data, epochs: int, windows: int):
    """Yields `(name, flavor, trained model)`."""
    from tfgreen.flavor import FLAVORS, keras_for
    from tfgreen.models import tiny_gpt

    x = data.train[:windows]
    for flavor in FLAVORS:
        keras = keras_for(flavor)
        model = tiny_gpt(flavor, vocab_size=_VOCAB, seq_len=_SEQ_LEN, embed_dim=64, ff_dim=128)
        _fit(model, keras, x, x, epochs)
        yield f"tiny_gpt v{_VOCAB} s{_SEQ_LEN} d64 L2", flavor, model
    try:
        import keras
        import keras_hub
    except ImportError:
        return
    keras.utils.set_random_seed(0)
    backbone = keras_hub.models.GPT2Backbone(
        vocabulary_size=_VOCAB,
        num_layers=2,
        num_heads=2,
        hidden_dim=64,
        intermediate_dim=128,
        max_sequence_length=_SEQ_LEN,
    )
    lm = keras_hub.models.GPT2CausalLM(backbone=backbone, preprocessor=None)
    _fit(lm, keras, x, {"token_ids": x, "padding_mask": np.ones_like(x, dtype=bool)}, epochs)
    yield f"KerasHub GPT2CausalLM v{_VOCAB} s{_SEQ_LEN} d64 L2", "keras3", lm


def run(quick: bool = False) -> list[dict]:
    """Measures one-shot pruning; `quick` trains less and evaluates on fewer windows.

    Args:
        quick: One epoch on 512 windows, 64 validation windows, 50% only.
            Defaults to `False`.

    Returns:
        One dict per (model, structure, method), plus the dense row of each model.
    """
    import tfgreen
    from tfgreen.datasets import load_text

    data = load_text(seq_len=_SEQ_LEN, vocab_size=_VOCAB)
    epochs, windows = (1, 512) if quick else (8, len(data.train))
    val = data.val[:64] if quick else data.val
    calibration = data.train[:128]
    settings = [(0.5, None)] if quick else [(0.5, None), (0.5, "2:4"), (0.7, None)]
    rows: list[dict] = []
    for name, flavor, model in _models(data, epochs, windows):
        dense = tfgreen.perplexity(model, val)
        rows.append({"flavor": flavor, "model": name, "method": "dense", "perplexity": dense})
        for sparsity, structure in settings:
            for method in _METHODS:
                start = time.perf_counter()
                pruned = tfgreen.prune(
                    model,
                    sparsity,
                    method=method,
                    calibration_data=calibration,
                    structure=structure,
                )
                seconds = time.perf_counter() - start
                reached = [v for v in tfgreen.sparsity(pruned).values() if v > 0]
                ppl = tfgreen.perplexity(pruned, val)
                rows.append(
                    {
                        "flavor": flavor,
                        "model": name,
                        "structure": structure or f"{sparsity:.0%}",
                        "method": method,
                        "perplexity": ppl,
                        "perplexity_ratio": ppl / dense,
                        "pruned_kernels": len(reached),
                        "mean_sparsity": float(np.mean(reached)),
                        "prune_seconds": seconds,
                    }
                )
    return rows


if __name__ == "__main__":
    import json
    import sys

    print(json.dumps(run(quick="--quick" in sys.argv), indent=2))
