"""`tfgreen bench`: LiteRT latency of a `.tflite` file, with a progress bar."""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from tfgreen.errors import TfgreenValueError, message

__all__ = ["bench_tflite", "add_arguments", "run"]


def _positive(name: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise TfgreenValueError(
            message(
                f"`{name}` must be a positive integer",
                "an int >= 1",
                f"Pass for example --{name} 1",
                **{name: value},
            )
        )
    return value


def bench_tflite(
    path: str | Path,
    runs: int = 100,
    threads: int = 1,
    progress: bool = False,
    energy: bool = False,
) -> dict:
    """Times single-sample invocations of a `.tflite` file with LiteRT.

    The file is parsed first (`read_tflite`), so a truncated or corrupted file
    raises `TfliteFileError` before the interpreter sees it. Inputs are seeded
    random values of the file's input shapes (batch 1).

    Args:
        path: The `.tflite` file.
        runs: Timed invocations. Defaults to `100`.
        threads: Interpreter threads. Defaults to `1`.
        progress: Show a progress bar. Defaults to `False`.
        energy: Also measure joules per inference (about 2 s, CodeCarbon;
            an estimate where the machine has no energy counter). Defaults to `False`.

    Returns:
        `{"path", "runs", "threads", "p50", "p90", "mean"}`, times in ms, and
        with `energy=True` an `"energy"` dict from
        `tfgreen.energy.inference.inference_energy` (joules per inference, method).

    Example:
    >>> bench_tflite("out/model.tflite", runs=50)["p50"]
    0.012
    """
    from tfgreen.tflite.read import existing_tflite, read_tflite
    from tfgreen.tflite.runner import TfliteRunner

    path = existing_tflite(path)
    _positive("runs", runs)
    _positive("threads", threads)
    read_tflite(path.read_bytes())
    runner = TfliteRunner(path, num_threads=threads)
    rng = np.random.default_rng(0)
    sample = [
        rng.standard_normal([d if d > 0 else 1 for d in t["shape_signature"]]).astype("float32")
        for t in runner.inputs
    ]
    figures = runner.latency_ms(sample, runs=runs, progress=progress)
    result = {"path": str(path), "runs": runs, "threads": threads, **figures}
    if energy:
        from tfgreen.energy.inference import inference_energy

        result["energy"] = inference_energy(path, sample[0], num_threads=threads)
    return result


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Adds the `tfgreen bench` arguments."""
    parser.add_argument("file", help="the .tflite file")
    parser.add_argument("--runs", type=int, default=100, help="timed invocations (default 100)")
    parser.add_argument("--threads", type=int, default=1, help="interpreter threads (default 1)")
    parser.add_argument(
        "--energy", action="store_true", help="also measure joules per inference (about 2 s)"
    )


def run(args: argparse.Namespace) -> int:
    """Prints latency p50/p90/mean; returns 0."""
    result = bench_tflite(
        args.file, runs=args.runs, threads=args.threads, progress=True, energy=args.energy
    )
    print(
        f"{result['path']}: p50 {result['p50']:.4f} ms, p90 {result['p90']:.4f} ms, "
        f"mean {result['mean']:.4f} ms ({result['runs']} runs, {result['threads']} thread(s), batch 1)"
    )
    if args.energy:
        energy = result["energy"]
        print(
            f"energy: {energy['joules_per_inference']:.3g} J/inference over {energy['runs']} "
            f"runs ({energy['method']}: {energy['method_detail']})"
        )
    return 0
