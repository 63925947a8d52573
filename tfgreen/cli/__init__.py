"""The `tfgreen` command line.

Each subcommand is a module of this package, `tfgreen.cli.<command>`, which
provides `add_arguments(parser)` and `run(args) -> int`; argparse is used
nowhere else in tfgreen. User errors (any
`TfgreenError`, an `OSError` such as a full disk or a name too long, and
argument errors) print one line on stderr and exit with code 2, never a
traceback.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys

from tfgreen import __version__
from tfgreen.errors import TfgreenError

__all__ = ["main", "build_parser"]

# Subcommand -> (module with add_arguments/run, one-line help).
_COMMANDS = {
    "demo": ("tfgreen.cli.demo", "train, shrink and export a digits model; write a report"),
    "compare": (
        "tfgreen.cli.compare",
        "compare .tflite/.keras models: accuracy, size, latency, energy",
    ),
    "export": (
        "tfgreen.cli.export",
        "convert a model file to a checked .tflite for a target",
    ),
    "inspect": (
        "tfgreen.cli.inspect",
        "show a .tflite file's ops, tensors, dtypes, sparsity",
    ),
    "bench": ("tfgreen.cli.bench", "time a .tflite file with LiteRT (p50/p90)"),
    "optimize": ("tfgreen.cli.optimize", "search for the cheapest .tflite that keeps accuracy"),
    "targets": ("tfgreen.cli.targets", "list the built-in device targets"),
}


class _Parser(argparse.ArgumentParser):
    """argparse, with a usage error in one line (exit 2), like every other CLI error."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    """Builds the argument parser with every subcommand."""
    parser = _Parser(
        prog="tfgreen",
        description="Green AI for Keras/TensorFlow: prune, quantize, distil, export "
        "checked .tflite files, account energy and CO2.",
    )
    parser.add_argument("--version", action="version", version=f"tfgreen {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (module_name, help_text) in _COMMANDS.items():
        sub = subparsers.add_parser(name, help=help_text, description=help_text)
        module = importlib.import_module(module_name)
        module.add_arguments(sub)
        sub.set_defaults(_run=module.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Runs the command line; returns the exit code (0 ok, 2 bad input)."""
    # TensorFlow's C++ info/warning lines drown the command's own output; a user
    # who wants them sets TF_CPP_MIN_LOG_LEVEL=0. Only the command line does this.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    try:
        return int(args._run(args) or 0)
    except TfgreenError as error:
        print(f"tfgreen {args.command}: error: {error}", file=sys.stderr)
        return 2
    except OSError as error:  # unwritable folder, name too long, disk full: one line, exit 2
        from tfgreen._io import os_error

        print(
            f"tfgreen {args.command}: error: {os_error(error, 'file', error.filename)}",
            file=sys.stderr,
        )
        return 2
    except KeyboardInterrupt:
        print(f"tfgreen {args.command}: interrupted", file=sys.stderr)
        return 130
