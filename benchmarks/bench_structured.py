"""Structured pruning benchmark: does removing whole channels / heads make the model smaller and faster?

`run(quick)` returns rows of measured figures, per Keras flavour, side by side in one process:
- `channels`: the digits CNN (`small_cnn`, 8x8x1 -> conv16 -> pool -> conv32 -> dense64
  -> 10) trained dense, then `tfgreen.prune(model, 0.5, structure="channels")` +
  fine-tuning with `tfgreen.callbacks.Pruning`, then `tfgreen.strip` (physically smaller).
  Figures: parameter ratio (goal <= 0.55), test accuracy of both (goal: within 2
  points of the dense model trained as many epochs in all), float32 `.tflite` size and LiteRT latency p50 (1 thread, batch 1; dense and
  slim timed alternately, best p50 of the rounds; goal: latency ratio <= 0.8).
- `heads`: the tiny GPT (`tiny_gpt`, 4 heads, 2 blocks) trained on the bundled text, then
  `structure="heads"` at 0.5 (2 of 4 heads per block) + fine-tuning, stripped; and the
  stripped model pruned again with `structure="channels"` at 0.5 (the FFN units):
  float32 `.tflite` size and latency ratios (goal: < 1, smaller and faster) and the
  perplexity cost on the validation windows against the dense model trained as many
  epochs in all (reported, no goal).
A goal that is missed is printed as missed (`met` is False).
"""

from __future__ import annotations

import tempfile
import warnings
from pathlib import Path

__all__ = ["run"]


def _latencies(paths: dict[str, Path], x, runs: int, rounds: int) -> dict[str, float]:
    """Best p50 (ms) of each file over `rounds` alternating rounds of `runs` invocations."""
    from tfgreen.tflite.runner import TfliteRunner

    runners = {name: TfliteRunner(path) for name, path in paths.items()}
    best = dict.fromkeys(paths, float("inf"))
    for _ in range(rounds):
        for name, runner in runners.items():
            best[name] = min(best[name], runner.latency_ms(x[:1], runs=runs)["p50"])
    return best


def _copy(model):
    from tfgreen.pruning._clone import clone_layers

    return clone_layers(model, lambda layer: None)


def _fine_tune(model, sparsity: float, structure: str, fit):
    import tfgreen

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the layers left dense are named in the warning
        pruned = tfgreen.prune(model, sparsity, structure=structure)
    fit(pruned)
    return tfgreen.strip(pruned)


def _channels_rows(flavor: str, out: Path, quick: bool) -> list[dict]:
    import tfgreen
    from tfgreen.datasets import load_digits
    from tfgreen.models import small_cnn

    (x_train, y_train), (x_test, y_test) = load_digits()
    epochs, tune, runs, rounds = (5, 3, 200, 2) if quick else (15, 6, 1000, 5)

    def compiled(model):
        model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
        return model

    dense = compiled(small_cnn(flavor, seed=0))
    dense.fit(x_train, y_train, epochs=epochs, batch_size=32, verbose=0)

    def fit(pruned):
        compiled(pruned).fit(
            x_train,
            y_train,
            epochs=tune,
            batch_size=32,
            verbose=0,
            callbacks=[tfgreen.callbacks.Pruning()],
        )

    slim = compiled(_fine_tune(dense, 0.5, "channels", fit))
    longer = compiled(_copy(dense))  # the dense model trained as long as the pruned one
    longer.fit(x_train, y_train, epochs=tune, batch_size=32, verbose=0)
    reports = {
        name: tfgreen.export_tflite(model, out / f"{flavor}_cnn_{name}.tflite", target="cpu")
        for name, model in (("dense", dense), ("channels50", slim))
    }
    latency = _latencies({n: r.path for n, r in reports.items()}, x_test, runs, rounds)
    accuracy = {
        name: model.evaluate(x_test, y_test, verbose=0)[1]
        for name, model in (("dense", longer), ("channels50", slim))
    }
    params = slim.count_params() / dense.count_params()
    size = reports["channels50"].size_bytes / reports["dense"].size_bytes
    lat = latency["channels50"] / latency["dense"]
    delta = 100 * (accuracy["channels50"] - accuracy["dense"])
    base = {"bench": "channels", "flavor": flavor, "model": "small_cnn digits"}
    return [
        {**base, "figure": "params_ratio", "dense": dense.count_params(),
         "pruned": slim.count_params(), "value": params, "goal": "<= 0.55",
         "met": params <= 0.55},
        {**base, "figure": "accuracy_delta_points", "dense": accuracy["dense"],
         "pruned": accuracy["channels50"], "value": delta, "goal": ">= -2", "met": delta >= -2},
        {**base, "figure": "tflite_size_ratio", "dense": reports["dense"].size_bytes,
         "pruned": reports["channels50"].size_bytes, "value": size, "goal": "< 1",
         "met": size < 1},
        {**base, "figure": "tflite_latency_ratio", "dense": latency["dense"],
         "pruned": latency["channels50"], "value": lat, "goal": "<= 0.8", "met": lat <= 0.8},
    ]  # fmt: skip


def _heads_rows(flavor: str, out: Path, quick: bool) -> list[dict]:
    import tfgreen
    from tfgreen.datasets import load_text, next_token_targets
    from tfgreen.flavor import keras_for
    from tfgreen.models import tiny_gpt

    keras = keras_for(flavor)
    data = load_text(seq_len=32, vocab_size=512)
    windows, epochs, tune, runs, rounds = (512, 2, 1, 100, 2) if quick else (2048, 6, 2, 400, 4)
    x = data.train[:windows]
    y, weights = next_token_targets(x)
    loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)

    def fit(model, callbacks=(), n=tune):
        model.compile("adam", loss)
        model.fit(x, y, sample_weight=weights, epochs=n, batch_size=32, verbose=0,
                  callbacks=list(callbacks))  # fmt: skip

    dense = tiny_gpt(flavor, vocab_size=512, seq_len=32, embed_dim=64, num_heads=4, num_layers=2)
    fit(dense, n=epochs)

    def pruning_fit(model):
        fit(model, [tfgreen.callbacks.Pruning()])

    heads = _fine_tune(dense, 0.5, "heads", pruning_fit)
    both = _fine_tune(heads, 0.5, "channels", pruning_fit)
    # Perplexity baselines: the dense model trained as long as each pruned one.
    longer = _copy(dense)
    baseline = {}
    for name in ("heads50", "heads50+ffn50"):
        fit(longer)
        baseline[name] = tfgreen.perplexity(longer, data.val)
    models = {"dense": dense, "heads50": heads, "heads50+ffn50": both}
    reports = {
        name: tfgreen.export_tflite(model, out / f"{flavor}_lm_{name}.tflite", target="cpu")
        for name, model in models.items()
    }
    latency = _latencies({n: r.path for n, r in reports.items()}, data.val, runs, rounds)
    perplexity = {name: tfgreen.perplexity(model, data.val) for name, model in models.items()}
    rows = []
    for name in ("heads50", "heads50+ffn50"):
        size = reports[name].size_bytes / reports["dense"].size_bytes
        lat = latency[name] / latency["dense"]
        base = {"bench": "heads", "flavor": flavor, "model": f"tiny_gpt {name}"}
        rows += [
            {**base, "figure": "tflite_size_ratio", "dense": reports["dense"].size_bytes,
             "pruned": reports[name].size_bytes, "value": size, "goal": "< 1", "met": size < 1},
            {**base, "figure": "tflite_latency_ratio", "dense": latency["dense"],
             "pruned": latency[name], "value": lat, "goal": "< 1", "met": lat < 1},
            {**base, "figure": "perplexity_ratio", "dense": baseline[name],
             "pruned": perplexity[name], "value": perplexity[name] / baseline[name],
             "goal": None, "met": None},
        ]  # fmt: skip
    return rows


def run(quick: bool = False) -> list[dict]:
    """Measures the structured-pruning figures on both Kerases; `quick` trains and times less.

    Args:
        quick: Fewer epochs, windows and latency runs. Defaults to `False`.

    Returns:
        One dict per figure: bench, flavor, model, figure, dense, pruned, value, goal, met.
    """
    from tfgreen.flavor import FLAVORS

    rows: list[dict] = []
    with tempfile.TemporaryDirectory() as folder:
        for flavor in FLAVORS:
            rows += _channels_rows(flavor, Path(folder), quick)
            rows += _heads_rows(flavor, Path(folder), quick)
    for row in rows:
        if row["met"] is False:
            print(f"MISSED: {row['bench']} {row['flavor']} {row['model']} {row['figure']} = "
                  f"{row['value']:.3f} (goal {row['goal']})")  # fmt: skip
    return rows


if __name__ == "__main__":
    import sys

    for item in run(quick="--quick" in sys.argv):
        print(item)
