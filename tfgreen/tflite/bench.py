"""`tfgreen bench`: LiteRT latency of a `.tflite` file, with a progress bar."""

from __future__ import annotations

from pathlib import Path

from tfgreen._validate import positive_int

__all__ = ["bench_tflite"]


def bench_tflite(
    path: str | Path,
    runs: int = 100,
    threads: int = 1,
    progress: bool = False,
) -> dict:
    """Times single-sample invocations of a `.tflite` file with LiteRT.

    The file is parsed first (`read_tflite`), so a truncated or corrupted file
    raises `TfliteFileError` before the interpreter sees it. Inputs are seeded
    random values of the file's input shapes, batch 1
    (`TfliteRunner.sample_inputs`).

    Args:
        path: The `.tflite` file.
        runs: Timed invocations. Defaults to `100`.
        threads: Interpreter threads. Defaults to `1`.
        progress: Show a progress bar. Defaults to `False`.

    Returns:
        `{"path", "runs", "threads", "p50", "p90", "mean"}`, times in ms.

    Example:
    ```python
    bench_tflite("out/model.tflite", runs=50)["p50"]
    # 0.012
    ```
    """
    from tfgreen.tflite.read import existing_tflite, read_tflite
    from tfgreen.tflite.runner import TfliteRunner

    path = existing_tflite(path)
    positive_int("runs", runs, example=100, fix="Pass for example --runs 100")
    positive_int("threads", threads, example=1, fix="Pass for example --threads 1")
    read_tflite(path.read_bytes())
    runner = TfliteRunner(path, num_threads=threads)
    figures = runner.latency_ms(runner.sample_inputs(), runs=runs, progress=progress)
    return {"path": str(path), "runs": runs, "threads": threads, **figures}
