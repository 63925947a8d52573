"""Export benchmark: size, latency and accuracy of each post-training quantization, and
the cost of tfgreen's checked export against a bare `TFLiteConverter`, side by side.

`run(quick)` returns rows of measured figures (no claims):
- per Keras flavour and quantization (`float32`, `dynamic`, `float16`, `int8`) on the
  weight-dominated `small_mlp` (64-256-256-10) trained on bundled digits: file size and
  its ratio to float32 (goal for int8: <= 0.27), LiteRT latency p50 (1 thread, batch 1)
  and its ratio to float32, top-1 accuracy of the file and its delta to the Keras model;
- per flavour: wall time of `tfgreen.export_tflite(..., target="edge-cpu")` (int8 with
  calibration, parity, accuracy, latency and manifest) against the bare converter doing
  the same int8 quantization with the same 200 calibration samples (goal: ratio <= 1.5).
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path

__all__ = ["run"]

_KINDS = ("float32", "dynamic", "float16", "int8")


def _bare_int8(model, calib):
    import tensorflow as tf

    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = lambda: ([calib[i : i + 1]] for i in range(len(calib)))
    converter.target_spec.supported_ops = [
        tf.lite.OpsSet.TFLITE_BUILTINS_INT8,
        tf.lite.OpsSet.TFLITE_BUILTINS,
    ]
    # the same scheme as tfgreen's targets: one scale per Dense weight tensor
    converter._experimental_disable_per_channel_quantization_for_dense_layers = True
    return converter.convert()


def run(quick: bool = False) -> list[dict]:
    """Measures the export figures; `quick` trains and times less.

    Args:
        quick: Fewer epochs, latency runs and timing repeats. Defaults to `False`.

    Returns:
        One dict per measurement row.
    """
    import contextlib
    import io

    import tfgreen
    from tfgreen.datasets import load_digits
    from tfgreen.flavor import FLAVORS
    from tfgreen.models import small_mlp
    from tfgreen.quantization.calibration import prepare_calibration
    from tfgreen.tflite.runner import TfliteRunner

    (x_train, y_train), (x_test, y_test) = load_digits(flat=True)
    epochs, latency_runs, repeats = (3, 100, 1) if quick else (10, 500, 3)
    rows: list[dict] = []
    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder)
        for flavor in FLAVORS:
            model = small_mlp(flavor, seed=0)
            model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
            model.fit(x_train, y_train, epochs=epochs, batch_size=32, verbose=0)
            figures = {}
            for kind in _KINDS:
                report = tfgreen.export_tflite(
                    model,
                    out / f"{flavor}_{kind}.tflite",
                    target="cpu",
                    quantization=kind,
                    calibration_data=x_train,
                    validation_data=(x_test, y_test),
                )
                latency = TfliteRunner(report.path).latency_ms(x_test[:1], runs=latency_runs)
                figures[kind] = (report, latency["p50"])
            base_size, base_latency = figures["float32"][0].size_bytes, figures["float32"][1]
            for kind, (report, p50) in figures.items():
                rows.append(
                    {
                        "bench": "ptq",
                        "flavor": flavor,
                        "model": "small_mlp 64-256-256-10",
                        "quantization": kind,
                        "size_bytes": report.size_bytes,
                        "size_ratio_vs_float32": report.size_bytes / base_size,
                        "latency_p50_ms": p50,
                        "latency_ratio_vs_float32": p50 / base_latency,
                        "accuracy": report.accuracy,
                        "keras_accuracy": report.keras_accuracy,
                        "accuracy_delta_points": 100 * (report.accuracy - report.keras_accuracy),
                        "top1_agreement": report.parity["top1_agreement"],
                    }
                )
            calib = prepare_calibration(model, x_train)
            with contextlib.redirect_stdout(io.StringIO()):
                _bare_int8(model, calib.arrays[0])  # untimed: first-trace costs hit neither side
            tfgreen_s, bare_s = [], []
            for i in range(repeats):
                start = time.perf_counter()
                with contextlib.redirect_stdout(io.StringIO()):
                    _bare_int8(model, calib.arrays[0])
                bare_s.append(time.perf_counter() - start)
                start = time.perf_counter()
                tfgreen.export_tflite(
                    model,
                    out / f"{flavor}_timed_{i}.tflite",
                    target="edge-cpu",
                    calibration_data=x_train,
                    validation_data=(x_test, y_test),
                )
                tfgreen_s.append(time.perf_counter() - start)
            rows.append(
                {
                    "bench": "export_overhead",
                    "flavor": flavor,
                    "model": "small_mlp 64-256-256-10",
                    "quantization": "int8",
                    "repeats": repeats,
                    "bare_converter_s": statistics.median(bare_s),
                    "tfgreen_export_s": statistics.median(tfgreen_s),
                    "time_ratio": statistics.median(tfgreen_s) / statistics.median(bare_s),
                    "goal_time_ratio": 1.5,
                }
            )
    return rows


if __name__ == "__main__":
    import json
    import sys

    print(json.dumps(run(quick="--quick" in sys.argv), indent=2))
