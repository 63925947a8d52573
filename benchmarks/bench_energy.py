"""Overhead of `EnergyTracker`: `fit` time with and without it, side by side.

For each Keras flavour, the same small CNN on bundled digits is trained
alternately without and with the tracker (plain, tracked, plain, tracked...),
after one untimed warm-up fit of each (graph tracing, CodeCarbon's one-time
hardware probe, timed separately as `first_fit_probe_s`). The overhead ratio
is the median tracked time over the median plain time; the goal is <= 1.02.
On a busy machine that ratio is noisy, so the time spent inside the
tracker's own hooks is also timed directly (`hook_ms_per_fit`, and its
share of the plain fit time, `hook_fraction`).

A second set of rows measures joules per single-sample inference of the
trained Keras 3 CNN and of its float32 and int8 `.tflite` files, one after
the other in the same run, with the ratio to the Keras model.
"""

from __future__ import annotations

import statistics
import time

__all__ = ["run"]


def _timed_tracker():
    from tfgreen.callbacks import EnergyTracker

    class TimedTracker(EnergyTracker):
        """EnergyTracker that adds up the wall time spent in its own hooks."""

        hook_seconds = 0.0

        def _timed(self, hook, *args):
            start = time.perf_counter()
            hook(*args)
            self.hook_seconds += time.perf_counter() - start

        def on_train_begin(self, logs=None):
            self._timed(super().on_train_begin, logs)

        def on_epoch_end(self, epoch, logs=None):
            self._timed(super().on_epoch_end, epoch, logs)

        def on_train_end(self, logs=None):
            self._timed(super().on_train_end, logs)

    return TimedTracker(country_iso_code="DEU")


def _fit_seconds(model, x, y, epochs: int, callbacks) -> float:
    start = time.perf_counter()
    model.fit(x, y, epochs=epochs, batch_size=32, verbose=0, callbacks=callbacks)
    return time.perf_counter() - start


def run(quick: bool = False) -> list[dict]:
    """Measures the fit-time overhead of EnergyTracker in both Kerases.

    Args:
        quick: Fewer epochs and repeats. Defaults to `False`.

    Returns:
        One row per flavour: plain and tracked median fit seconds, their
        ratio, the energy one tracked fit logged, and how it was obtained.
    """
    from tfgreen.datasets import load_digits
    from tfgreen.flavor import FLAVORS
    from tfgreen.models import small_cnn

    (x, y), _ = load_digits()
    epochs, repeats = (3, 3) if quick else (5, 7)
    rows, model_for_inference = [], None
    for flavor in FLAVORS:
        model = small_cnn(flavor, seed=0)
        model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
        tracker = _timed_tracker()
        _fit_seconds(model, x, y, 1, [])  # trace the train step
        probe = _fit_seconds(model, x, y, 1, [tracker]) - _fit_seconds(model, x, y, 1, [])
        tracker.hook_seconds = 0.0
        plain, tracked = [], []
        for i in range(repeats):
            order = ((plain, []), (tracked, [tracker]))
            for times, callbacks in order if i % 2 == 0 else order[::-1]:
                times.append(_fit_seconds(model, x, y, epochs, callbacks))
        plain_s, tracked_s = statistics.median(plain), statistics.median(tracked)
        model_for_inference = model_for_inference or model
        rows.append(
            {
                "benchmark": "energy_tracker_overhead",
                "flavor": flavor,
                "model": "small_cnn, digits 1347 samples, batch 32",
                "epochs": epochs,
                "repeats": repeats,
                "fit_s_plain": plain_s,
                "fit_s_tracked": tracked_s,
                "overhead_ratio": tracked_s / plain_s,
                "goal_ratio": 1.02,
                "hook_ms_per_fit": tracker.hook_seconds * 1000.0 / repeats,
                "hook_fraction": tracker.hook_seconds / repeats / plain_s,
                "first_fit_probe_s": probe,
                "energy_kwh_per_fit": tracker.energy_kwh,
                "co2_kg_per_fit": tracker.co2_kg,
                "energy_method": tracker.method,
            }
        )
    rows += _inference_rows(model_for_inference, x, quick)
    return rows


def _inference_rows(model, x, quick: bool) -> list[dict]:
    from tfgreen.energy.inference import inference_energy
    from tfgreen.quantization.ptq import convert

    seconds = 1.0 if quick else 3.0
    candidates = {"keras3 model": model}
    for quantization in ("float32", "int8"):
        candidates[f"tflite {quantization}"] = convert(
            model, quantization, representative=lambda: ([x[i : i + 1]] for i in range(100))
        )
    rows, reference = [], None
    for name, candidate in candidates.items():
        result = inference_energy(candidate, x, seconds=seconds)
        reference = reference or result["joules_per_inference"]
        rows.append(
            {
                "benchmark": "inference_energy",
                "model": f"small_cnn digits, {name}",
                "joules_per_inference": result["joules_per_inference"],
                "ratio_to_keras": result["joules_per_inference"] / reference,
                "latency_ms_mean": result["latency_ms_mean"],
                "runs": result["runs"],
                "energy_method": result["method"],
            }
        )
    return rows


if __name__ == "__main__":
    import json
    import sys

    print(json.dumps(run(quick="--quick" in sys.argv), indent=2))
