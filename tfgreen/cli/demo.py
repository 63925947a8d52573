"""`tfgreen demo`: train, shrink and export a digits model; write a report."""

from __future__ import annotations

import argparse

__all__ = ["add_arguments", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Adds the demo's options to its subcommand parser."""
    parser.add_argument(
        "--out", default="tfgreen-demo", help="output folder (default: tfgreen-demo)"
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="fewer epochs and shorter measurements (under a minute)",
    )
    parser.add_argument(
        "--seed", type=int, default=0, help="seed of split and weights (default: 0)"
    )


def run(args: argparse.Namespace) -> int:
    """Runs `tfgreen demo` from parsed arguments."""
    from pathlib import Path

    from tfgreen._io import check_writable
    from tfgreen.demo import run_demo

    out = Path(args.out)
    if out.is_dir() or not out.exists():  # a file there: run_demo says so
        check_writable(out / "report.md")  # before minutes of training, not after
    run_demo(args.out, quick=args.quick, seed=args.seed)
    return 0
