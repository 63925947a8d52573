"""Export time at real size: `tfgreen.export_tflite` on MobileNetV2-0.35 against one bare conversion.

`run(quick)` returns one row per Keras flavour, model and target: the wall
time of `tfgreen.export_tflite` (conversion, every check of the target,
manifest) on a Keras MobileNetV2 (alpha 0.35, 96x96x3, 10 classes, random
weights: `keras.applications`, `weights=None`) against one bare
`TFLiteConverter.from_keras_model` call doing the same quantization, timed
alternately in one process:
- `PTQ`: post-training quantization calibrated on 32 random samples (the
  bare conversion: float32 for `cpu`, int8 with the
  same 32 samples otherwise);
- `QAT`: `tfgreen.quantize_aware` of the same model, fitted 2 steps so its
  ranges exist, exported for `edge-cpu` and `vehicle-ecu` (the bare
  conversion: int8 from the learned ranges, no calibration).
Goal: every target <= 1.5x the bare conversion, `vehicle-ecu` (two
conversions plus reference kernels) <= 3x. Each row also gives the LiteRT
latency of the file (`report.latency_ms`, 1 thread, batch 1) and its ratio
to the float32 (`cpu`) file of the same flavour.

The model ends in logits (`classifier_activation=None`): an untrained
MobileNetV2's logits are ~1e-10, and LiteRT's reference int8 SOFTMAX aborts
on a step that small, which would end the `vehicle-ecu` export before its
reconversion. With random weights a strict check may still refuse the file;
the time is still the whole export (every check runs before the refusal),
and `refused` names the failing checks.
`quick` uses 32x32 inputs and the `cpu` and `vehicle-ecu` targets only.
"""

from __future__ import annotations

import contextlib
import io
import tempfile
import time
from pathlib import Path

import numpy as np

__all__ = ["run"]

# edge-tpu converts and checks as mcu does (uint8 I/O), edge-gpu as cpu (float16): left out
# to keep the run within the shared machine's time.
_TARGETS = ("cpu", "edge-cpu", "mcu", "vehicle-ecu")
_QAT_TARGETS = ("edge-cpu", "vehicle-ecu")
_BARE = {"cpu": "float32", "edge-gpu": "float16"}  # int8 otherwise
_GOALS = {"vehicle-ecu": 3.0}
_CALIBRATION = 32


def _mobilenet(flavor: str, size: int):
    from tfgreen.flavor import keras_for

    keras = keras_for(flavor)
    keras.utils.set_random_seed(0)
    return keras.applications.MobileNetV2(
        input_shape=(size, size, 3),
        alpha=0.35,
        weights=None,
        classes=10,
        classifier_activation=None,
    )


def _qat(model, calib):
    import tfgreen
    from tfgreen.flavor import flavor_of, keras_for

    keras = keras_for(flavor_of(model))
    qat = tfgreen.quantize_aware(model)
    qat.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    qat.fit(
        calib, np.arange(len(calib)) % 10, batch_size=16, epochs=1, steps_per_epoch=2, verbose=0
    )
    return qat


def _bare(model, calib, kind: str, learned: bool) -> bytes:
    import tensorflow as tf

    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    if kind != "float32":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if kind == "float16":
        converter.target_spec.supported_types = [tf.float16]
    if kind == "int8" and not learned:
        converter.representative_dataset = lambda: ([calib[i : i + 1]] for i in range(len(calib)))
    with contextlib.redirect_stdout(io.StringIO()):
        return converter.convert()


def _export(model, path: Path, target: str, calib):
    import tfgreen

    start = time.perf_counter()
    report = refused = None
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            report = tfgreen.export_tflite(model, path, target=target, calibration_data=calib)
    except Exception as error:  # noqa: BLE001 - a refusal or a failure is a row, not an abort
        refused = f"{type(error).__name__}: {str(error).splitlines()[0][:160]}"
    return time.perf_counter() - start, report, refused


def _rows(flavor: str, label: str, model, calib, targets, size: int, learned: bool) -> list[dict]:
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        _bare(model, calib, "int8", learned)  # untimed: first traces hit neither side
        for target in targets:
            kind = _BARE.get(target, "int8")
            start = time.perf_counter()
            _bare(model, calib, kind, learned)
            bare = time.perf_counter() - start
            seconds, report, refused = _export(
                model, Path(folder) / f"{flavor}_{target}.tflite", target, calib
            )
            ratio = seconds / bare
            goal = _GOALS.get(target, 1.5)
            latency = None if report is None else report.latency_ms
            rows.append(
                {
                    "flavor": flavor,
                    "model": f"MobileNetV2-0.35 {size}x{size} {label}",
                    "target": target,
                    "quantization": None if report is None else report.quantization,
                    "export_s": round(seconds, 2),
                    "bare_s": round(bare, 2),
                    "bare": kind,
                    "ratio": round(ratio, 2),
                    "goal": f"<= {goal}",
                    "met": ratio <= goal,
                    "latency_ms": None if latency is None else round(latency, 3),
                    "latency_vs_float32": None,
                    "refused": refused,
                }
            )
    return rows


def run(quick: bool = False) -> list[dict]:
    """Times `export_tflite` per target against one bare conversion, on both Kerases.

    Args:
        quick: 32x32 inputs and two targets, for a smoke test. Defaults to `False`.

    Returns:
        Rows with `flavor`, `model`, `target`, `quantization`, `export_s`,
        `bare_s`, `bare` (its quantization), `ratio`, `goal`, `met`,
        `latency_ms`, `latency_vs_float32`, `refused`.
    """
    size = 32 if quick else 96
    targets = ("cpu", "vehicle-ecu") if quick else _TARGETS
    qat_targets = ("vehicle-ecu",) if quick else _QAT_TARGETS
    rng = np.random.default_rng(0)
    calib = rng.uniform(-1, 1, (_CALIBRATION, size, size, 3)).astype("float32")
    rows = []
    for flavor in ("keras3", "tf_keras"):
        model = _mobilenet(flavor, size)
        rows += _rows(flavor, "PTQ", model, calib, targets, size, learned=False)
        try:
            qat = _qat(model, calib)
        except Exception as error:  # noqa: BLE001 - a QAT that fails is a row, not an abort
            rows.append(
                {"flavor": flavor, "model": "QAT", "refused": str(error).splitlines()[0][:160]}
            )
            continue
        rows += _rows(flavor, "QAT", qat, calib, qat_targets, size, learned=True)
    _latency_ratios(rows)
    return rows


def _latency_ratios(rows: list[dict]) -> None:
    """Fills `latency_vs_float32`: each file's latency over its flavour's PTQ `cpu` file's."""
    floats = {
        r["flavor"]: r.get("latency_ms")
        for r in rows
        if r.get("target") == "cpu" and "PTQ" in r.get("model", "")
    }
    for r in rows:
        base, latency = floats.get(r["flavor"]), r.get("latency_ms")
        if base and latency is not None:
            r["latency_vs_float32"] = round(latency / base, 3)


if __name__ == "__main__":
    import json
    import sys

    print(json.dumps(run(quick="--quick" in sys.argv), indent=2))
