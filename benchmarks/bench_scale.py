"""Training cost at real size: pruning and QAT `fit` against a plain `fit`, and a tiny LM's export time.

`run(quick)` returns rows measured in one process, per Keras flavour:
- MobileNetV2-0.35 (96x96x3, 10 classes, random weights, `keras.applications`)
  on the digits upsampled to 96x96x3 (256 samples, batch 32, 2 epochs:
  16 steps): the `fit()` time of the plain model, of `tfgreen.prune(model,
  0.8)` + `tfgreen.callbacks.Pruning`, and of `tfgreen.quantize_aware(model)`,
  each a fresh copy with the same weights, run in turn. `ratio` is whole
  fits (tracing included) against the plain one, `step_ratio` the time per
  step in the second epoch (an untimed fit of a tiny model first pays for
  the process's setup). Goal for pruning: <= 1.25 (issue 17); QAT has
  no goal, its ratio is reported.
- The tiny LM (`tfgreen.models.tiny_gpt`, vocab 512, seq_len 64, width 64,
  2 blocks) on the bundled text (512 windows, batch 32, 2 epochs): plain vs
  `prune(model, 0.5)` fit time; then the export time of the trained model
  with `tfgreen.export_tflite` for `cpu` (float32) and `edge-cpu` (int8,
  with its perplexity check and the dynamic-range fallback, so `conversions`
  says how many it made) against one bare conversion of the same kind.
`quick`: 32x32 MobileNet, 128 samples, 1 epoch; 128 LM windows.
"""

from __future__ import annotations

import contextlib
import io
import tempfile
import time
from pathlib import Path

import numpy as np

__all__ = ["run"]

_COLUMNS = ("flavor", "model", "case", "seconds", "step_ms", "ratio", "step_ratio", "detail")
_COLUMNS += ("goal", "met")


def _row(**figures) -> dict:
    return {column: figures.get(column) for column in _COLUMNS}


def _epoch_clock():
    """A callback both Kerases accept, recording when each epoch ends (`.ends`)."""
    from tfgreen._callback import DualCallback

    class EpochClock(DualCallback):
        def on_train_begin(self, logs=None):
            self.ends = []

        def on_epoch_end(self, epoch, logs=None):
            self.ends.append(time.perf_counter())

    return EpochClock()


def _fit(model, x, y, epochs: int, callbacks: list, loss, **fit) -> tuple[float, float]:
    """`(fit seconds, ms per step of the last epoch)` of a freshly compiled model."""
    model.compile("adam", loss)
    clock = _epoch_clock()
    start = time.perf_counter()
    model.fit(x, y, epochs=epochs, batch_size=32, verbose=0, callbacks=[*callbacks, clock], **fit)
    seconds = time.perf_counter() - start
    steps = int(np.ceil(len(x) / 32))
    last = clock.ends[-1] - clock.ends[-2] if len(clock.ends) > 1 else seconds
    return seconds, 1000 * last / steps


def _warm_up(flavor: str) -> None:
    """An untimed fit of a tiny model: the process's first fit pays for imports and setup."""
    from tfgreen.flavor import keras_for

    keras = keras_for(flavor)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
    _fit(model, np.zeros((64, 4), "float32"), np.zeros((64, 2), "float32"), 2, [], "mse")


def _copy(model):
    from tfgreen.pruning._clone import clone_layers

    return clone_layers(model, lambda layer: None)


def _ratio_rows(flavor: str, label: str, fits: dict, goals: dict) -> list[dict]:
    plain_s, plain_step = fits["plain"][:2]
    plain = _row(flavor=flavor, model=label, case="plain fit", seconds=round(plain_s, 2))
    rows = [{**plain, "step_ms": round(plain_step, 1)}]
    for case, (seconds, step_ms, detail) in fits.items():
        if case == "plain":
            continue
        ratio = seconds / plain_s
        goal = goals.get(case)
        rows.append(
            _row(
                flavor=flavor,
                model=label,
                case=f"{case} fit (vs plain)",
                seconds=round(seconds, 2),
                step_ms=round(step_ms, 1),
                ratio=round(ratio, 3),
                step_ratio=round(step_ms / plain_step, 3),
                detail=detail,
                goal=None if goal is None else f"<= {goal}",
                met=None if goal is None else ratio <= goal,
            )
        )
    return rows


def _digits_96(count: int, size: int):
    from tfgreen.datasets import load_digits

    (x, y), _ = load_digits()
    x, y = x[:count], y[:count]
    x = x.reshape(len(x), 8, 8, 1)
    repeat = int(np.ceil(size / 8))
    x = np.repeat(np.repeat(x, repeat, axis=1), repeat, axis=2)[:, :size, :size]
    return np.repeat(x, 3, axis=3).astype("float32"), y


def _mobilenet_rows(flavor: str, quick: bool) -> list[dict]:
    import tfgreen
    from tfgreen.flavor import keras_for

    keras = keras_for(flavor)
    size, count, epochs = (32, 128, 1) if quick else (96, 256, 2)
    x, y = _digits_96(count, size)
    keras.utils.set_random_seed(0)
    dense = keras.applications.MobileNetV2(
        input_shape=(size, size, 3), alpha=0.35, weights=None, classes=10
    )
    loss = "sparse_categorical_crossentropy"
    fits = {"plain": (*_fit(_copy(dense), x, y, epochs, [], loss), None)}
    pruned = tfgreen.prune(dense, sparsity=0.8)
    seconds, step = _fit(pruned, x, y, epochs, [tfgreen.callbacks.Pruning()], loss)
    sparsity = float(np.mean(list(tfgreen.sparsity(tfgreen.strip(pruned)).values())))
    fits["prune 80%"] = (seconds, step, f"sparsity {sparsity:.3f}")
    try:
        qat = tfgreen.quantize_aware(dense)
        fits["QAT"] = (*_fit(qat, x, y, epochs, [], loss), None)
    except Exception as error:  # noqa: BLE001 - a QAT that fails is a row, not an abort
        fits["QAT"] = (float("nan"), float("nan"), str(error).splitlines()[0][:120])
    label = f"MobileNetV2-0.35 {size}x{size}, {count} samples, {epochs} epochs"
    return _ratio_rows(flavor, label, fits, {"prune 80%": 1.25})


def _lm(flavor: str):
    from tfgreen.models import tiny_gpt

    return tiny_gpt(flavor, vocab_size=512, seq_len=64, embed_dim=64, ff_dim=128)


def _bare_seconds(model, kind: str, calib) -> float:
    from tfgreen.quantization.ptq import convert

    representative = (lambda: ([calib[i : i + 1]] for i in range(len(calib)))) if kind else None
    start = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()):
        convert(model, kind or "float32", representative=representative)
    return time.perf_counter() - start


def _lm_rows(flavor: str, quick: bool) -> list[dict]:
    import tfgreen
    from tfgreen.datasets import load_text, next_token_targets
    from tfgreen.flavor import keras_for

    keras = keras_for(flavor)
    data = load_text(seq_len=64, vocab_size=512)
    x = data.train[: 128 if quick else 512]
    y, weights = next_token_targets(x)
    loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    epochs = 1 if quick else 2
    keras.utils.set_random_seed(0)
    dense = _lm(flavor)
    fit = {"sample_weight": weights}
    fits = {"plain": (*_fit(dense, x, y, epochs, [], loss, **fit), None)}
    pruned = tfgreen.prune(dense, sparsity=0.5)
    seconds, step = _fit(pruned, x, y, epochs, [tfgreen.callbacks.Pruning()], loss, **fit)
    fits["prune 50%"] = (seconds, step, None)
    label = f"tiny_gpt v512 s64 d64 L2, {len(x)} windows, {epochs} epochs"
    rows = _ratio_rows(flavor, label, fits, {})
    calib, val = data.train[:64], data.val[:64]
    with tempfile.TemporaryDirectory() as folder:
        for target, kind in (("cpu", None), ("edge-cpu", "int8")):
            bare = _bare_seconds(dense, kind, calib)
            start = time.perf_counter()
            with contextlib.redirect_stdout(io.StringIO()):
                report = tfgreen.export_tflite(
                    dense,
                    Path(folder) / f"lm_{target}.tflite",
                    target=target,
                    calibration_data=calib,
                    validation_data=val,
                )
            seconds = time.perf_counter() - start
            conversions = 1 + len(report.attempts) + int("deterministic" in report.checks)
            ratio = seconds / bare
            rows.append(
                _row(
                    flavor=flavor,
                    model=label,
                    case=f"export {target} (vs one bare {kind or 'float32'} conversion)",
                    seconds=round(seconds, 2),
                    ratio=round(ratio, 3),
                    detail=f"{report.quantization}, {conversions} conversion(s), "
                    f"perplexity ratio {report.perplexity['ratio']:.4f}",
                    goal="<= 1.5",
                    met=ratio <= 1.5,
                )
            )
    return rows


def run(quick: bool = False) -> list[dict]:
    """Measures pruning/QAT fit cost on MobileNetV2-0.35 and a tiny LM's fit and export cost.

    Args:
        quick: Smaller inputs and runs, for a smoke test. Defaults to `False`.

    Returns:
        Rows with `flavor`, `model`, `case`, `seconds`, `step_ms`, `ratio`,
        `step_ratio`, `detail`, `goal`, `met`.
    """
    rows = []
    for flavor in ("keras3", "tf_keras"):
        _warm_up(flavor)
        for part in (_mobilenet_rows, _lm_rows):
            try:
                rows += part(flavor, quick)
            except Exception as error:  # noqa: BLE001 - a failing part is a row, not an abort
                detail = f"{type(error).__name__}: {str(error).splitlines()[0][:160]}"
                rows.append(_row(flavor=flavor, model=part.__name__, case="failed", detail=detail))
    return rows


if __name__ == "__main__":
    import json
    import sys

    print(json.dumps(run(quick="--quick" in sys.argv), indent=2))
