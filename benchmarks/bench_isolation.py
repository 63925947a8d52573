"""Does running a `.tflite` file in its isolated child change its latency?

For each file (a digits MLP as float32 and full int8, and a digits CNN as
int8, built with each Keras), the same timing loop (`time_loop`: inputs set
once, `invoke()` timed alone, and the end-to-end `predict` loop) runs in
the caller's process (`TfliteRunner`) and inside the child process of an
`IsolatedRunner`, interleaved, three times each; the figure is the median
of the three p50s. `child_vs_in_process` near 1 means isolation does not
distort latency (the pipe is outside the timed calls). Also measured: what
starting a runner costs (`spawn_ms`: a child forked from the warm server,
first call included, vs `fresh_python_ms`: a new Python importing numpy and
LiteRT, the cost before the fork server), and one `predict` round trip
through the pipe (`pipe_predict_ms`) vs in-process (`predict_ms`): what
timing across the pipe would have added.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time

__all__ = ["run"]


def _files(flavor: str) -> dict[str, bytes]:
    from tfgreen.datasets import load_digits
    from tfgreen.models import small_cnn, small_mlp
    from tfgreen.quantization.ptq import convert

    (x_flat, y), _ = load_digits(flat=True)
    (x_img, _), _ = load_digits()
    mlp, cnn = small_mlp(flavor, seed=0), small_cnn(flavor, seed=0)
    for model, x in ((mlp, x_flat), (cnn, x_img)):
        model.compile("adam", "sparse_categorical_crossentropy")
        model.fit(x, y, epochs=1, verbose=0)
    return {
        "mlp float32": (convert(mlp), x_flat[:1]),
        "mlp int8": (
            convert(mlp, "int8", representative=lambda: ([x_flat[i : i + 1]] for i in range(64))),
            x_flat[:1],
        ),
        "cnn int8": (
            convert(cnn, "int8", representative=lambda: ([x_img[i : i + 1]] for i in range(64))),
            x_img[:1],
        ),
    }


def _ms(call, repeats: int = 20) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        call()
        times.append((time.perf_counter() - start) * 1000.0)
    return statistics.median(times)


def _row(flavor: str, name: str, data: bytes, x, runs: int) -> dict:
    from tfgreen.tflite.isolated import IsolatedRunner
    from tfgreen.tflite.runner import TfliteRunner

    local, child = TfliteRunner(data), IsolatedRunner(data)
    figures = {"in": [], "child": [], "in_e2e": [], "child_e2e": []}
    try:
        for _ in range(3):  # interleaved, so drift of a shared machine hits both alike
            figures["in"].append(local.time_loop(x, runs=runs)["p50"])
            figures["child"].append(child.time_loop(x, runs=runs)["p50"])
            figures["in_e2e"].append(local.time_loop(x, runs=runs, end_to_end=True)["p50"])
            figures["child_e2e"].append(child.time_loop(x, runs=runs, end_to_end=True)["p50"])
        predict_ms = _ms(lambda: local.predict(x))
        pipe_predict_ms = _ms(lambda: child.predict(x))
    finally:
        child.close()

    def spawn():
        runner = IsolatedRunner(data)
        runner.predict(x)
        runner.close()

    fresh = [
        sys.executable,
        "-c",
        "import numpy, ai_edge_litert.interpreter as i; i.Interpreter(model_content=b'')",
    ]
    p50 = {key: statistics.median(values) for key, values in figures.items()}
    return {
        "flavor": flavor,
        "file": name,
        "size_bytes": len(data),
        "in_process_p50_ms": round(p50["in"], 5),
        "child_p50_ms": round(p50["child"], 5),
        "child_vs_in_process": round(p50["child"] / p50["in"], 3),
        "end_to_end_in_process_ms": round(p50["in_e2e"], 5),
        "end_to_end_child_ms": round(p50["child_e2e"], 5),
        "end_to_end_child_vs_in_process": round(p50["child_e2e"] / p50["in_e2e"], 3),
        "predict_ms": round(predict_ms, 4),
        "pipe_predict_ms": round(pipe_predict_ms, 4),
        "spawn_ms": round(_ms(spawn, repeats=10), 2),
        "fresh_python_ms": round(
            _ms(lambda: subprocess.run(fresh, capture_output=True, check=False), repeats=3), 1
        ),
    }


def run(quick: bool = False) -> list[dict]:
    """Times each file in-process and in its child, side by side.

    Args:
        quick: 500 timed calls per loop instead of 5000. Defaults to `False`.

    Returns:
        One row per (flavour, file).

    Example:
    >>> rows = run(quick=True)
    """
    runs = 500 if quick else 5000
    return [
        _row(flavor, name, data, x, runs)
        for flavor in ("keras3", "tf_keras")
        for name, (data, x) in _files(flavor).items()
    ]


if __name__ == "__main__":
    for row in run(quick="--quick" in sys.argv):
        print(row)
