"""Energy per inference of a Keras model or a `.tflite` file, in joules.

Latency and energy are timed on one loop per model kind (`inference_loop`):
for a `.tflite` file the call `TfliteRunner.timed_call` gives, the same one
`TfliteRunner.latency_ms` times (inputs set once, then `interpreter.invoke()`
alone, as on a device); for a Keras model a `tf.function`-compiled
`model(x, training=False)` call on one sample. Both run in
`tfgreen._timing.time_calls`, here inside a CodeCarbon task, so joules per
inference of two rows move with their latency when the power model is the
same. A separate end-to-end figure of a `.tflite` file adds the host-side
work a device does not do: float input quantized with numpy, output
dequantized (`TfliteRunner.predict` on one sample).

Joules per inference is the loop's mean power (the task's energy over its
wall time) times the median time of one call, the latency figure. The mean
call time would count what is not the model's: the timer's own overhead
per call (a fraction of a microsecond, much for a 2 µs `.tflite` invoke)
and calls preempted by other work on a shared machine. So two rows' joules
move with their latency exactly when their power is the same, and differ
where the power model says the load differs. The loop is measured `repeats` times; the figure is the median and the
spread is the range over the repeats. CodeCarbon runs in `"process"` mode:
only this process's CPU time and memory count, not other work on the machine.
Without hardware energy counters the energy is CodeCarbon's estimate from
CPU TDP and load (plus a RAM power model), and `method` says so.
"""

from __future__ import annotations

import functools
import statistics
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tfgreen._adapters import codecarbon
from tfgreen._timing import JOULES_PER_KWH, time_calls
from tfgreen._validate import number, positive_int
from tfgreen.energy.tracker import check_country, method_of
from tfgreen.errors import TfgreenTypeError, TfgreenValueError, message

__all__ = ["InferenceLoop", "inference_energy", "inference_loop", "single_sample_fn"]


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


@dataclass
class InferenceLoop:
    """One single-sample inference, as every latency and energy figure times it.

    Attributes:
        kind: `"tflite"` or `"keras"`.
        call: Runs one inference (no arguments): `interpreter.invoke()` with
            the inputs already set for a `.tflite` file this process
            exported (one round trip to the child process for any other
            file: time it with `time`, not `call`), the compiled model call
            for a Keras model.
        end_to_end: For a `.tflite` file, one inference from a host float
            array to float output (numpy quantization of the I/O included);
            `None` for a Keras model, whose `call` already starts from the
            host array.
        timer: For a `.tflite` file, the runner's `time_loop`; `None` for
            a Keras model.
    """

    kind: str
    call: Callable[[], object]
    end_to_end: Callable[[], object] | None = None
    timer: Callable[..., dict] | None = None

    def time(self, runs=50, warmup: int = 5, seconds=None, end_to_end: bool = False) -> dict:
        """`time_calls` figures of the loop (or of the end-to-end loop).

        A `.tflite` file is timed where its interpreter runs (`timer`: the
        runner's `time_loop`, inside the child process for a file this
        process did not export), so no pipe is inside a timed call.
        """
        if self.timer is not None:
            return self.timer(runs=runs, warmup=warmup, seconds=seconds, end_to_end=end_to_end)
        call = self.end_to_end if end_to_end else self.call
        return time_calls(call, runs=runs, warmup=warmup, seconds=seconds)


def inference_loop(model_or_path, x, num_threads: int = 1) -> InferenceLoop:
    """Builds the one loop latency and energy are timed on, for the first sample of `x`.

    Args:
        model_or_path: A Keras 3 or tf_keras model, a `.tflite` path or its bytes.
        x: Input samples (the first is used).
        num_threads: LiteRT interpreter threads for `.tflite`. Defaults to `1`.

    Returns:
        An `InferenceLoop`.

    Example:
    ```python
    loop = inference_loop("out/model.tflite", x_test)
    loop.time(runs=100)["p50"]
    # 0.0021
    ```
    """
    sample = np.asarray(x)[:1]
    if _is_tflite(model_or_path):
        from tfgreen.tflite.isolated import vetted_runner

        runner = vetted_runner(model_or_path, num_threads=num_threads)  # a child unless ours
        call = getattr(runner, "timed_call", None)
        call = call(sample) if call is not None else lambda: runner.predict(sample)
        timer = functools.partial(runner.time_loop, sample)
        return InferenceLoop("tflite", call, lambda: runner.predict(sample), timer)
    fn, kind = single_sample_fn(model_or_path, num_threads=num_threads)
    return InferenceLoop(kind, lambda: fn(sample))


def _check(x, runs, seconds, repeats) -> np.ndarray:
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
    positive_int("repeats", repeats, example=3)
    number(
        "seconds",
        seconds,
        minimum=0,
        exclusive_minimum=True,
        example=2.0,
        fix="Pass the least time each repeat of the loop runs, for example seconds=1.0 "
        "(longer gives steadier figures)",
    )
    return x


def _summary(samples: list[dict]) -> dict:
    joules = [s["joules"] for s in samples]
    runs = sum(s["runs"] for s in samples)
    seconds = sum(s["seconds"] for s in samples)
    return {
        "joules_per_inference": statistics.median(joules),
        "joules_min": min(joules),
        "joules_max": max(joules),
        "co2_kg_per_inference": statistics.median(s["co2"] for s in samples),
        "runs": runs,
        "seconds": seconds,
        "latency_ms_mean": sum(s["busy"] for s in samples) * 1000.0 / runs,
        "latency_ms_p50": statistics.median(s["p50"] for s in samples),
    }


def _measure(loops: dict[str, Callable], runs, seconds, repeats, country) -> tuple[dict, str, str]:
    """Runs each loop `repeats` times (interleaved), each run one CodeCarbon task.

    A loop is a timer (`InferenceLoop.time`); CodeCarbon's process mode
    counts child processes, so a file timed in its isolated child is measured too.
    """
    for timer in loops.values():
        timer(runs=5, warmup=0)  # warm up (graph tracing, interpreter allocation), not measured
    tracker = codecarbon.offline_tracker(country, tracking_mode="process")
    samples: dict[str, list[dict]] = {name: [] for name in loops}
    method = detail = None
    try:
        for repeat in range(repeats):
            for name, timer in loops.items():
                tracker.start_task(f"{name}_{repeat}")
                figures = timer(runs=runs, warmup=0, seconds=seconds)
                data = tracker.stop_task()
                if method is None:
                    method, detail = method_of(tracker)
                done = figures["runs"]
                # mean power of the loop times the median call: seconds per inference
                share = figures["p50"] / 1000.0 / figures["seconds"]
                samples[name].append(
                    {
                        "joules": float(data.energy_consumed) * JOULES_PER_KWH * share,
                        "co2": float(data.emissions) * share,
                        "runs": done,
                        "seconds": figures["seconds"],
                        "busy": figures["busy_seconds"],
                        "p50": figures["p50"],
                    }
                )
    finally:
        tracker.stop()
    return {name: _summary(s) for name, s in samples.items()}, method, detail


def inference_energy(
    model_or_path,
    x,
    runs: int | None = None,
    seconds: float = 1.0,
    country_iso_code: str = "DEU",
    num_threads: int = 1,
    repeats: int = 3,
) -> dict:
    """Measures joules per single-sample inference of a Keras model or a `.tflite` file.

    The loop is `inference_loop`'s, the one latency is timed on; it runs
    `repeats` times, each one CodeCarbon task. For a `.tflite` file the
    end-to-end loop (host-side I/O quantization included) is measured the
    same way, interleaved, and given separately.

    Args:
        model_or_path: A Keras 3 or tf_keras model, a `.tflite` path or its bytes.
        x: Input samples; the first one is used.
        runs: Inferences per repeat; `None` runs as many as fit in `seconds`.
            Defaults to `None`.
        seconds: With `runs=None`, how long each repeat runs. Defaults to `1.0`.
        country_iso_code: Grid country for the CO2 figure. Defaults to `"DEU"`.
        num_threads: LiteRT interpreter threads for `.tflite`. Defaults to `1`.
        repeats: How often the loop is measured; the spread is the range
            over the repeats. Defaults to `3`.

    Returns:
        A dict: `joules_per_inference` (median over the repeats),
        `joules_min` and `joules_max` (the spread), `co2_kg_per_inference`,
        `runs` and `seconds` (all repeats), `latency_ms_mean` (time inside
        the calls per call) and `latency_ms_p50` of the measured loop, `repeats`, `kind`
        (`"keras"`/`"tflite"`), `method` (`"measured"` or `"estimate"`),
        `method_detail`, and `end_to_end` (the same figures for the
        end-to-end loop of a `.tflite` file, `None` for a Keras model).

    Example:
    ```python
    inference_energy("out/model.tflite", x_test, seconds=1.0)["joules_per_inference"]
    # 0.00021
    ```
    """
    x = _check(x, runs, seconds, repeats)
    country = check_country(country_iso_code)
    loop = inference_loop(model_or_path, x, num_threads=num_threads)
    loops = {"loop": loop.time}
    if loop.end_to_end is not None:
        loops["end_to_end"] = functools.partial(loop.time, end_to_end=True)
    figures, method, detail = _measure(loops, runs, seconds, repeats, country)
    return {
        **figures["loop"],
        "repeats": repeats,
        "kind": loop.kind,
        "method": method,
        "method_detail": detail,
        "end_to_end": figures.get("end_to_end"),
    }
