"""Overhead of `EnergyTracker`: `fit` time with and without it, side by side.

For each Keras flavour, the same small CNN on bundled digits is trained
alternately without and with the tracker (plain, tracked, plain, tracked...),
after one untimed warm-up fit of each (graph tracing, CodeCarbon's one-time
hardware probe, timed separately as `first_fit_probe_s`). The overhead ratio
is the median tracked time over the median plain time; the goal is <= 1.02.
On a busy machine that ratio is noisy, so the time spent inside the
tracker's own hooks is also timed directly (`hook_ms_per_fit`, and its
share of the plain fit time, `hook_fraction`).

A second set of rows measures joules per single-sample inference of a
digits MLP exported for cpu, edge-cpu and mcu, on the latency loop, with the
consistency ratio (J ratio / latency ratio against float32, about 1 when
both come from one loop) and the model estimate for each device class.
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
    rows = []
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
    rows += _inference_rows(quick)
    return rows


def _inference_rows(quick: bool) -> list[dict]:
    """Joules per inference of the digits MLP exported for cpu, edge-cpu and mcu.

    Each row's consistency ratio is (J ratio) / (latency ratio) against the
    float32 file: about 1 when energy is timed on the latency loop. The
    end-to-end ratio is the same with the end-to-end loop's joules (host-side
    I/O quantization included; what energy was timed on before).
    The model estimate for the row's device class is given beside the
    measured host figure.
    """
    import tempfile
    from pathlib import Path

    import tfgreen
    from tfgreen.datasets import load_digits
    from tfgreen.energy.inference import inference_energy
    from tfgreen.models import small_mlp
    from tfgreen.tflite.runner import TfliteRunner

    (x, y), (x_test, y_test) = load_digits(flat=True)
    mlp = small_mlp("keras3", seed=0)
    mlp.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    mlp.fit(x, y, epochs=5, verbose=0)
    seconds = 0.5 if quick else 1.0
    rows, base = [], None
    with tempfile.TemporaryDirectory() as folder:
        for target in ("cpu", "edge-cpu", "mcu"):
            path = Path(folder) / f"{target}.tflite"
            tfgreen.export_tflite(mlp, path, target=target, calibration_data=x[:200])
            energy = inference_energy(path, x_test, seconds=seconds)
            latency = TfliteRunner(path).latency_ms(x_test, runs=3000)["p50"]
            figures = (energy["joules_per_inference"], energy["end_to_end"]["joules_per_inference"])
            base = base or (figures, latency)
            estimate = tfgreen.estimate_energy(path, target=target)
            rows.append(
                {
                    "benchmark": "inference_energy",
                    "model": f"digits MLP 64-256-256-10, {target} .tflite",
                    "latency_ms_p50": latency,
                    "joules_per_inference": figures[0],
                    "joules_spread": energy["joules_max"] - energy["joules_min"],
                    "end_to_end_joules": figures[1],
                    "ratio_same_loop": figures[0] / base[0][0] / (latency / base[1]),
                    "ratio_end_to_end": figures[1] / base[0][1] / (latency / base[1]),
                    "energy_method": energy["method"],
                    "estimate_joules": estimate.joules_per_inference,
                    "estimate_method": estimate.method,
                }
            )
    return rows


if __name__ == "__main__":
    import json
    import sys

    print(json.dumps(run(quick="--quick" in sys.argv), indent=2))
