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
    (`TfliteRunner.sample_inputs`). A manifest beside the file is checked
    (`check_manifest`). The interpreter runs in a child process
    (`IsolatedRunner`), so a file that crashes LiteRT raises
    `TfliteFileError` instead of killing the caller; times are measured
    inside the child.

    Args:
        path: The `.tflite` file.
        runs: Timed invocations. Defaults to `100`.
        threads: Interpreter threads. Defaults to `1`.
        progress: Show a progress bar. Defaults to `False`.

    Returns:
        `{"path", "runs", "threads", "manifest", "p50", "p90", "mean"}`,
        times in ms; `manifest` says whether a manifest was checked.

    Example:
    ```python
    bench_tflite("out/model.tflite", runs=50)["p50"]
    # 0.012
    ```
    """
    from tfgreen.tflite.isolated import IsolatedRunner
    from tfgreen.tflite.read import existing_tflite, read_tflite
    from tfgreen.tflite.verify import check_manifest

    path = existing_tflite(path)
    positive_int("runs", runs, example=100, fix="Pass for example --runs 100")
    positive_int("threads", threads, example=1, fix="Pass for example --threads 1")
    data = path.read_bytes()
    read_tflite(data)
    manifest = check_manifest(path, data)
    runner = IsolatedRunner(path, num_threads=threads)
    try:
        figures = runner.latency_ms(runner.sample_inputs(), runs=runs, progress=progress)
    finally:
        runner.close()
    return {"path": str(path), "runs": runs, "threads": threads, "manifest": manifest, **figures}
