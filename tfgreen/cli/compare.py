"""`tfgreen compare`: `.tflite` and `.keras` files side by side on bundled data."""

from __future__ import annotations

import argparse
from pathlib import Path

__all__ = ["add_arguments", "run"]

_DATASETS = ("digits", "digits-flat", "breast-cancer", "text")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Adds the options of `tfgreen compare` to its parser."""
    parser.add_argument("models", nargs="+", help=".tflite or .keras files to compare")
    parser.add_argument(
        "--data",
        choices=_DATASETS,
        default="digits",
        help="bundled test data (default: digits); text: the validation token windows of "
        "tfgreen.datasets.load_text, for language models",
    )
    parser.add_argument(
        "--seq-len",
        type=int,
        default=64,
        help="--data text: tokens per window, the language models' seq_len (default: 64)",
    )
    parser.add_argument(
        "--vocab-size",
        type=int,
        default=512,
        help="--data text: vocabulary of the tokenizer the models were trained with "
        "(load_text's; default: 512)",
    )
    parser.add_argument("--out", default=None, help="folder for report.md, JSON and PNG plots")
    parser.add_argument("--runs", type=int, default=50, help="timed runs for latency (default: 50)")
    parser.add_argument("--no-energy", action="store_true", help="skip joules per inference")
    parser.add_argument(
        "--energy-seconds", type=float, default=1.0, help="seconds per energy measurement"
    )
    parser.add_argument("--country", default="DEU", help="grid country ISO code (default: DEU)")
    parser.add_argument(
        "--trust-model", action="store_true", help="allow .keras files with Lambda layers"
    )


def run(args: argparse.Namespace) -> int:
    """Runs `tfgreen compare` from parsed arguments."""
    from tfgreen.comparison import compare
    from tfgreen.datasets import load_breast_cancer, load_digits, load_text

    if args.out:
        from tfgreen._io import check_writable

        check_writable(Path(args.out) / "report.md")  # before the measurements, not after
    if args.data == "text":
        data = load_text(seq_len=args.seq_len, vocab_size=args.vocab_size).val
        described = f"{len(data)} windows of {args.seq_len} token ids"
    else:
        loaders = {
            "digits": load_digits,
            "digits-flat": lambda: load_digits(flat=True),
            "breast-cancer": load_breast_cancer,
        }
        _, data = loaders[args.data]()
        described = f"{len(data[0])} test samples"
    print(
        f"[tfgreen compare] measuring {len(args.models)} model(s) on {args.data} ({described})",
        flush=True,
    )
    candidates = {}
    for path in args.models:
        name = Path(path).name
        candidates[name if name not in candidates else path] = {
            "model": path,
            "trusted": args.trust_model,
        }
    result = compare(
        candidates,
        data,
        runs=args.runs,
        energy=not args.no_energy,
        energy_seconds=args.energy_seconds,
        country_iso_code=args.country,
    )
    print(result.to_text())
    if args.out:
        written = result.save(args.out, title=f"tfgreen compare on {args.data}")
        print(f"wrote {', '.join(str(p) for p in written.values())}")
    return 0
