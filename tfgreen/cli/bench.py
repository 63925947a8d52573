"""`tfgreen bench`: LiteRT latency of a `.tflite` file, optionally joules per inference.

For a language model exported with `generate=True` it also prints tokens per
second of prefill and decode with and without the KV cache, and with
`--energy` joules per generated and per prompt token (`tfgreen.energy.tokens`).
"""

from __future__ import annotations

import argparse

__all__ = ["add_arguments", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Adds the `tfgreen bench` arguments."""
    parser.add_argument("file", help="the .tflite file")
    parser.add_argument("--runs", type=int, default=100, help="timed invocations (default 100)")
    parser.add_argument("--threads", type=int, default=1, help="interpreter threads (default 1)")
    parser.add_argument(
        "--energy", action="store_true", help="also measure joules per inference (about 2 s)"
    )


def run(args: argparse.Namespace) -> int:
    """Prints latency p50/p90/mean (and with `--energy` joules per inference); returns 0."""
    from tfgreen.tflite.bench import bench_tflite

    result = bench_tflite(args.file, runs=args.runs, threads=args.threads, progress=True)
    print(
        f"{result['path']}: p50 {result['p50']:.4f} ms, p90 {result['p90']:.4f} ms, "
        f"mean {result['mean']:.4f} ms ({result['runs']} runs, {result['threads']} thread(s), batch 1)"
    )
    print(f"integrity: {result['manifest']}")
    from tfgreen.energy.tokens import describe, token_figures

    tokens = token_figures(args.file, runs=args.runs, energy=args.energy, num_threads=args.threads)
    for line in describe(tokens) if tokens else []:  # a generate=True language model
        print(line)
    if args.energy:
        from tfgreen.energy.inference import inference_energy
        from tfgreen.tflite.isolated import IsolatedRunner

        runner = IsolatedRunner(args.file)
        sample = runner.sample_inputs()[0]
        runner.close()
        energy = inference_energy(args.file, sample, num_threads=args.threads)
        print(
            f"energy: {energy['joules_per_inference']:.3g} J/inference over {energy['runs']} "
            f"runs ({energy['method']}: {energy['method_detail']})"
        )
    return 0
