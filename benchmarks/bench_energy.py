"""Overhead of `EnergyTracker`: `fit` time with and without it, side by side.

For each Keras flavour, the same small CNN on bundled digits is trained
alternately without and with the tracker (plain, tracked, plain, tracked...),
after one untimed warm-up fit of each (graph tracing, CodeCarbon's one-time
hardware probe, timed separately as `first_fit_probe_s`). The overhead ratio
is the median tracked time over the median plain time; the goal is <= 1.02.
"""

from __future__ import annotations

import statistics
import time

__all__ = ["run"]


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
    from tfgreen.callbacks import EnergyTracker
    from tfgreen.datasets import load_digits
    from tfgreen.flavor import FLAVORS
    from tfgreen.models import small_cnn

    (x, y), _ = load_digits()
    epochs, repeats = (3, 3) if quick else (5, 7)
    rows = []
    for flavor in FLAVORS:
        model = small_cnn(flavor, seed=0)
        model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
        tracker = EnergyTracker(country_iso_code="DEU")
        _fit_seconds(model, x, y, 1, [])  # trace the train step
        probe = _fit_seconds(model, x, y, 1, [tracker]) - _fit_seconds(model, x, y, 1, [])
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
                "first_fit_probe_s": probe,
                "energy_kwh_per_fit": tracker.energy_kwh,
                "co2_kg_per_fit": tracker.co2_kg,
                "energy_method": tracker.method,
            }
        )
    return rows


if __name__ == "__main__":
    import json
    import sys

    print(json.dumps(run(quick="--quick" in sys.argv), indent=2))
