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
    from tfgreen.demo import run_demo

    run_demo(args.out, quick=args.quick, seed=args.seed)
    return 0
