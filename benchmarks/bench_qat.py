"""Float vs post-training int8 vs QAT int8 on bundled digits, for both Kerases.

For each Keras (Keras 3: tfgreen's fake-quant QAT; tf_keras: tfmot's QAT) one
small CNN is trained in float, then measured side by side as LiteRT files:
float32, int8 PTQ (calibrated on 200 training samples) and int8 QAT
(`tfgreen.quantize_aware`, fine-tuned 2 epochs, exported with no calibration
data). Rows: top-1 on the held-out split, delta to float in points, file
size, and the QAT fine-tune wall time next to the same fine-tune in float.
"""

from __future__ import annotations

import time

import numpy as np

__all__ = ["run"]


def _top1(data: bytes, x, y) -> float:
    from tfgreen.tflite.runner import TfliteRunner

    return float(np.mean(np.argmax(TfliteRunner(data).predict(x), axis=1) == y))


def _flavor_rows(flavor: str, quick: bool) -> list[dict]:
    import tfgreen
    from tfgreen.datasets import load_digits
    from tfgreen.flavor import keras_for
    from tfgreen.models import small_cnn
    from tfgreen.quantization.ptq import convert

    (x_train, y_train), (x_test, y_test) = load_digits()
    model = small_cnn(flavor, seed=0)
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(x_train, y_train, epochs=3 if quick else 10, batch_size=32, verbose=0)

    calibration = x_train[:200]
    files = {
        "float32": convert(model, "float32"),
        "ptq_int8": convert(
            model,
            "int8",
            representative=lambda: ([calibration[i : i + 1]] for i in range(len(calibration))),
            io_dtype="int8",
        ),
    }
    epochs = 1 if quick else 2
    # The same fine-tune in float, on a copy, gives the QAT overhead side by side.
    copy = keras_for(flavor).models.clone_model(model)
    copy.set_weights(model.get_weights())
    copy.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    start = time.perf_counter()
    copy.fit(x_train, y_train, epochs=epochs, batch_size=32, verbose=0)
    float_finetune_s = time.perf_counter() - start
    qat = tfgreen.quantize_aware(model)
    qat.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    start = time.perf_counter()
    qat.fit(x_train, y_train, epochs=epochs, batch_size=32, verbose=0)
    finetune_s = time.perf_counter() - start
    files["qat_int8"] = convert(qat, "int8", io_dtype="int8", allow_float_ops=False)

    float_top1 = _top1(files["float32"], x_test, y_test)
    rows = []
    for variant, data in files.items():
        top1 = _top1(data, x_test, y_test)
        rows.append(
            {
                "flavor": flavor,
                "qat_impl": "tfgreen fake-quant" if flavor == "keras3" else "tfmot",
                "variant": variant,
                "top1": round(top1, 4),
                "delta_points": round(100 * (top1 - float_top1), 2),
                "size_bytes": len(data),
                "size_ratio": round(len(data) / len(files["float32"]), 3),
                "finetune_s": round(finetune_s, 2) if variant == "qat_int8" else None,
                "float_finetune_s": round(float_finetune_s, 2) if variant == "qat_int8" else None,
                "qat_time_ratio": (
                    round(finetune_s / float_finetune_s, 2) if variant == "qat_int8" else None
                ),
            }
        )
    return rows


def run(quick: bool = False) -> list[dict]:
    """Measures float / PTQ int8 / QAT int8 for Keras 3 and tf_keras side by side.

    Args:
        quick: Fewer training epochs, for a smoke test. Defaults to `False`.

    Returns:
        One row per (flavour, variant).

    Example:
    >>> rows = run(quick=True)
    """
    return [row for flavor in ("keras3", "tf_keras") for row in _flavor_rows(flavor, quick)]


if __name__ == "__main__":
    for row in run(quick=False):
        print(row)
