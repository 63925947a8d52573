"""Energy savings and carbon break-even of `tfgreen.compare` rows, against a `.tflite` baseline.

Every row carries `joules_per_inference` (the median of repeated
measurements on the latency loop) and `joules_min` / `joules_max` (their
range). The saving of a row is against the baseline row, by default the
float32 `.tflite` of the same model (`is_float32_of` recognizes one), never
the Keras `predict` call. Its lower bound is the baseline's lowest
measurement minus the row's highest: when that is not above zero the saving
lies inside the spread: `saving_measurable` is False, there is no
break-even count, and the report's table reads `NO_SAVING` in its place.
Otherwise the break-even count is the row's training energy divided by
that lower bound.

Example:
>>> rows = [
...     {"model": "f32", "joules_per_inference": 10.0, "joules_min": 9.0, "joules_max": 11.0},
...     {"model": "int8", "joules_per_inference": 5.0, "joules_min": 4.0, "joules_max": 6.0,
...      "training_kwh": 1e-6},
... ]
>>> break_even(rows, "f32")
>>> rows[1]["energy_saving"], rows[1]["saving_measurable"], rows[1]["break_even_inferences"]
(0.5, True, 1.2)
"""

from __future__ import annotations

import numpy as np

from tfgreen._timing import JOULES_PER_KWH

__all__ = ["NO_SAVING", "break_even", "is_float32_of"]

NO_SAVING = "no measurable saving"
_NOT_FLOAT32 = ("float16", "int8", "uint8", "int16")


def break_even(rows: list[dict], baseline: str) -> None:
    """Writes `energy_saving`, `saving_measurable` and `break_even_inferences`, against `baseline`.

    `break_even_inferences` stays `None` where the saving is not measurable
    or the row's training energy is unknown.

    Args:
        rows: Rows of `tfgreen.compare` (`model`, `joules_per_inference`,
            `joules_min`, `joules_max`, `training_kwh`); changed in place.
        baseline: Name of the baseline row.
    """
    base = next(r for r in rows if r["model"] == baseline)
    if base["joules_per_inference"] is None:
        return
    for row in rows:
        if row is base or row["joules_per_inference"] is None:
            continue
        row["energy_saving"] = 1.0 - row["joules_per_inference"] / base["joules_per_inference"]
        lower = base["joules_min"] - row["joules_max"]
        row["saving_measurable"] = lower > 0
        if lower > 0 and row.get("training_kwh"):
            row["break_even_inferences"] = row["training_kwh"] * JOULES_PER_KWH / lower


def is_float32_of(tflite: bytes, model, x: np.ndarray) -> bool:
    """Whether `.tflite` bytes are the float32 file of a Keras model.

    The file must hold no float16 or integer-quantized tensor, and give the
    model's outputs (to 1e-3) on the first samples of `x`.

    Args:
        tflite: The file's bytes.
        model: A Keras 3 or tf_keras model.
        x: Input samples (the first 8 are used).

    Returns:
        True or False.
    """
    from tfgreen.energy.inference import single_sample_fn
    from tfgreen.tflite.isolated import vetted_runner
    from tfgreen.tflite.read import read_tflite

    if any(t.dtype in _NOT_FLOAT32 for t in read_tflite(tflite).tensors):
        return False
    fn, _ = single_sample_fn(model)
    sample = x[:8]
    expected = np.concatenate([np.asarray(fn(sample[i : i + 1])) for i in range(len(sample))])
    tolerance = 1e-3 * max(1.0, float(np.abs(expected).max()))
    given = vetted_runner(tflite).predict(sample)  # a child process unless ours
    return bool(np.allclose(given, expected, rtol=1e-3, atol=tolerance))
