"""The one latency loop, and the one kWh-to-joules factor.

Every latency figure of tfgreen (`TfliteRunner.latency_ms`, `bench_tflite`,
`compare`, `inference_energy`, whose energy is measured around it) comes from
`time_calls`: untimed warm-up calls,
then timed calls, each timed on its own with `time.perf_counter`.

Example:
>>> figures = time_calls(lambda: sum(range(100)), runs=20, warmup=2)
>>> sorted(figures), figures["runs"]
(['busy_seconds', 'mean', 'p50', 'p90', 'runs', 'seconds'], 20)
>>> JOULES_PER_KWH
3600000.0
"""

from __future__ import annotations

import itertools
import sys
import time
from collections.abc import Callable

import numpy as np

__all__ = ["JOULES_PER_KWH", "time_calls"]

JOULES_PER_KWH = 3.6e6


def time_calls(
    call: Callable[[], object],
    runs: int | None = 50,
    warmup: int = 5,
    seconds: float | None = None,
    progress: bool = False,
) -> dict:
    """Times `call()`: `warmup` untimed calls, then timed ones.

    Args:
        call: A function of no arguments (one inference).
        runs: Timed calls; `None` calls until `seconds` have passed (at
            least once). Defaults to `50`.
        warmup: Untimed calls first (graph tracing, allocation). Defaults to `5`.
        seconds: With `runs=None`, how long the timed loop runs. Defaults to `None`.
        progress: Show a progress bar (tqdm) on stderr; only with `runs`.
            Defaults to `False`.

    Returns:
        `{"p50", "p90", "mean"}` per call in milliseconds, `"runs"` (timed
        calls), `"seconds"` (wall time of the timed loop) and
        `"busy_seconds"` (the part of it spent inside `call`, without the
        loop's own timing overhead).

    Example:
    >>> time_calls(lambda: None, runs=None, warmup=0, seconds=0.01)["seconds"] >= 0.01
    True
    """
    for _ in range(warmup):
        call()
    steps = itertools.count() if runs is None else range(runs)
    if progress and runs is not None:
        from tqdm import tqdm

        steps = tqdm(steps, desc="invocations", unit="run", file=sys.stderr)
    times = []
    start = time.perf_counter()
    for _ in steps:
        begin = time.perf_counter()
        call()
        end = time.perf_counter()
        times.append(end - begin)
        if runs is None and end - start >= seconds:
            break
    elapsed = time.perf_counter() - start
    millis = np.asarray(times) * 1000.0
    return {
        "p50": float(np.percentile(millis, 50)),
        "p90": float(np.percentile(millis, 90)),
        "mean": float(np.mean(millis)),
        "runs": len(times),
        "seconds": elapsed,
        "busy_seconds": float(np.sum(times)),
    }
