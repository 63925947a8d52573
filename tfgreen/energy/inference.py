"""Energy per inference of a Keras model or a `.tflite` file, in joules.

The model runs single-sample inferences in a loop (a `.tflite` file with the
LiteRT interpreter through `TfliteRunner`, a Keras model as a
`tf.function`-compiled `model(x, training=False)` call, as `predict` runs it) while CodeCarbon's offline tracker measures
the energy of exactly that loop as one task. Joules per inference is that
energy divided by the number of inferences. CodeCarbon runs in `"process"`
mode here: only this process's CPU time and memory count, not other work on
the machine. Without hardware energy counters
the energy is CodeCarbon's estimate from CPU TDP and load (plus a RAM power
model), and the result says so in `method`.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from pathlib import Path

import numpy as np

from tfgreen._adapters import codecarbon
from tfgreen._timing import JOULES_PER_KWH, time_calls
from tfgreen._validate import number, positive_int
from tfgreen.energy.tracker import check_country, method_of
from tfgreen.errors import TfgreenTypeError, TfgreenValueError, message

__all__ = ["inference_energy", "single_sample_fn"]


def _is_tflite(model) -> bool:
    return isinstance(model, (bytes, bytearray)) or (
        isinstance(model, (str, Path)) and str(model).endswith(".tflite")
    )


def single_sample_fn(model_or_path, num_threads: int = 1) -> tuple[Callable, str]:
    """Returns a function running one inference, and the kind of model.

    A KerasHub CausalLM (inputs `token_ids` and `padding_mask`) gets the
    sample as its token ids, with a padding mask of ones.

    Args:
        model_or_path: A Keras 3 or tf_keras model, a `.tflite` path, or
            `.tflite` bytes.
        num_threads: LiteRT interpreter threads for `.tflite`. Defaults to `1`.

    Returns:
        `(fn, kind)`: `fn(sample)` runs the model on a batch of one and returns
        the output; kind is `"tflite"` or `"keras"`.

    Example:
    ```python
    fn, kind = single_sample_fn("model.tflite")
    fn(x_test[:1]).shape
    # (1, 10)
    ```
    """
    if _is_tflite(model_or_path):
        from tfgreen.tflite.isolated import vetted_runner

        runner = vetted_runner(model_or_path, num_threads=num_threads)
        return runner.predict, "tflite"
    import tensorflow as tf

    from tfgreen.flavor import flavor_of

    flavor_of(model_or_path)  # raises a clear TypeError for anything else
    model = model_or_path
    names = sorted(str(t.name).split(":")[0] for t in getattr(model, "inputs", None) or [])
    token_ids_and_mask = names == ["padding_mask", "token_ids"]

    @tf.function(reduce_retracing=True)
    def call(sample):
        if token_ids_and_mask:
            sample = {"token_ids": sample, "padding_mask": tf.ones_like(sample)}
        return model(sample, training=False)

    return call, "keras"


def _check(x, runs, seconds) -> np.ndarray:
    if isinstance(x, (list, tuple)):
        raise TfgreenTypeError(
            message(
                "`x` must be one array of input samples",
                "a numpy array whose first axis is the sample axis (single-input models)",
                "Pass for example x_test",
                x=type(x).__name__,
            )
        )
    x = np.asarray(x)
    if x.ndim < 1 or len(x) == 0:
        raise TfgreenValueError(
            message(
                "`x` holds no samples",
                "an array with at least one sample on its first axis",
                "Pass for example x_test[:100]",
                x_shape=x.shape,
            )
        )
    positive_int("runs", runs, allow_none=True, example=1000)
    number(
        "seconds",
        seconds,
        minimum=0,
        exclusive_minimum=True,
        example=2.0,
        fix="Pass the least time the loop runs, for example seconds=2.0 (longer gives "
        "steadier figures)",
    )
    return x


def inference_energy(
    model_or_path,
    x,
    runs: int | None = None,
    seconds: float = 2.0,
    country_iso_code: str = "DEU",
    num_threads: int = 1,
) -> dict:
    """Measures joules per single-sample inference of a Keras model or a `.tflite` file.

    Args:
        model_or_path: A Keras 3 or tf_keras model, a `.tflite` path or its bytes.
        x: Input samples; inference `i` uses sample `i % len(x)`.
        runs: Number of inferences; `None` runs as many as fit in `seconds`.
            Defaults to `None`.
        seconds: With `runs=None`, how long the loop runs. Defaults to `2.0`.
        country_iso_code: Grid country for the CO2 figure. Defaults to `"DEU"`.
        num_threads: LiteRT interpreter threads for `.tflite`. Defaults to `1`.

    Returns:
        A dict: `joules_per_inference`, `co2_kg_per_inference`, `runs`,
        `seconds`, `latency_ms_mean`, `kind` (`"keras"`/`"tflite"`),
        `method` (`"measured"` or `"estimate"`) and `method_detail`.

    Example:
    ```python
    inference_energy("out/model.tflite", x_test, seconds=2.0)["joules_per_inference"]
    # 0.0021
    ```
    """
    x = _check(x, runs, seconds)
    country = check_country(country_iso_code)
    fn, kind = single_sample_fn(model_or_path, num_threads=num_threads)
    samples = itertools.cycle([x[i : i + 1] for i in range(min(len(x), 64))])
    for _ in range(5):  # warm up (graph tracing, interpreter allocation), not measured
        fn(next(samples))
    tracker = codecarbon.offline_tracker(country, tracking_mode="process")
    tracker.start_task("inference")
    figures = time_calls(lambda: fn(next(samples)), runs=runs, warmup=0, seconds=seconds)
    data = tracker.stop_task()
    method, detail = method_of(tracker)
    tracker.stop()
    done, elapsed = figures["runs"], figures["seconds"]
    return {
        "joules_per_inference": float(data.energy_consumed) * JOULES_PER_KWH / done,
        "co2_kg_per_inference": float(data.emissions) / done,
        "runs": done,
        "seconds": elapsed,
        "latency_ms_mean": elapsed * 1000.0 / done,
        "kind": kind,
        "method": method,
        "method_detail": detail,
    }
