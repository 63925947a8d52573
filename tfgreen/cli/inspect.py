"""`tfgreen inspect`: what a `.tflite` file holds (ops, tensors, dtypes, sparsity)."""

from __future__ import annotations

import argparse
import json

__all__ = ["add_arguments", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Adds the `tfgreen inspect` arguments."""
    parser.add_argument("file", help="the .tflite file")
    parser.add_argument("--json", action="store_true", help="print everything as JSON")
    parser.add_argument("--no-run", action="store_true", help="only parse, do not run the file")


def run(args: argparse.Namespace) -> int:
    """Prints what the file holds; returns 0 (errors exit 2 through the CLI)."""
    from tfgreen.tflite.inspection import inspect_tflite

    result = inspect_tflite(args.file, run=not args.no_run)
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    print(
        f"file       {result['path']}  ({result['size_bytes']} bytes, manifest {result['manifest']})"
    )
    print(f"sha256     {result['sha256']}")
    for kind in ("inputs", "outputs"):
        for t in result[kind]:
            quant = (
                f" scale={t['scale']:.6g} zero_point={t['zero_point']}"
                if isinstance(t["scale"], float)
                else ""
            )
            print(f"{kind[:-1]:<10} {t['name']} {t['dtype']} {t['shape']}{quant}")
    print("ops        " + ", ".join(f"{k} x{v}" for k, v in result["op_counts"].items()))
    print("float ops  " + (", ".join(sorted(set(result["float_ops"]))) or "none"))
    print("tensors    " + ", ".join(f"{k} x{v}" for k, v in result["tensor_dtypes"].items()))
    sparsity = result["sparsity"]
    print("sparsity   " + ("-" if sparsity is None else f"{sparsity:.1%} of weights are zero"))
    if result["run"]:
        print(f"runs       ok, {result['run']['latency_ms']:.3f} ms per invocation (1 thread)")
    return 0
