"""`tfgreen targets`: the built-in device targets as a table, or as JSON."""

from __future__ import annotations

import argparse
import json

__all__ = ["add_arguments", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Adds the `tfgreen targets` arguments."""
    parser.add_argument("--json", action="store_true", help="print the targets as JSON")


def run(args: argparse.Namespace) -> int:
    """Prints the built-in targets as a table (or JSON); returns 0."""
    from tfgreen.export.targets import targets
    from tfgreen.report import markdown_table

    builtin = targets()
    if args.json:
        print(json.dumps({n: t.to_dict() for n, t in builtin.items()}, indent=2))
        return 0
    rows = [
        {
            "target": t.name,
            "quantization": t.quantization,
            "io": f"{t.input_dtype}/{t.output_dtype}",
            "float ops": "allowed" if t.allow_float_ops else "no",
            "shapes": "batch 1" if t.static_shapes else "dynamic",
            "budget": f"{t.size_budget_bytes // 1024} KiB" if t.size_budget_bytes else None,
            "strict checks": ",".join(t.strict) or None,
        }
        for t in builtin.values()
    ]
    print(markdown_table(rows))
    return 0
