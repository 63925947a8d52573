"""`tfgreen optimize`: search for the cheapest `.tflite` of a model file that keeps its accuracy.

The model loads with `tfgreen.load_model` (`.keras` in safe mode). Its
data is a bundled set (`--data`) or `.npz` files (`--train`, `--validation`,
read without pickle). The search runs `tfgreen.optimize` and writes the
candidates, `search.json` and the report (`optimize.md`, plots) to `--out`.
"""

from __future__ import annotations

import argparse

from tfgreen.errors import TfgreenValueError, message

__all__ = ["add_arguments", "run"]

_DATASETS = ("digits", "digits-flat", "breast-cancer", "text")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Adds the options of `tfgreen optimize` to its parser."""
    from tfgreen.search import OBJECTIVES

    parser.add_argument("model", help="a .keras file (or .h5 / SavedModel with --trust-model)")
    parser.add_argument("--out", required=True, help="folder for the candidates and the report")
    parser.add_argument(
        "--target",
        default="edge-cpu",
        help="built-in target (see `tfgreen targets`) or a JSON target file (default: edge-cpu)",
    )
    parser.add_argument(
        "--objective", choices=OBJECTIVES, default="energy", help="what to minimise"
    )
    parser.add_argument(
        "--data",
        choices=_DATASETS,
        default="digits",
        help="bundled train/test data (default: digits); text: token windows of "
        "tfgreen.datasets.load_text, for language models",
    )
    parser.add_argument("--train", help="training data instead of --data: .npz with x (and y)")
    parser.add_argument("--validation", help="validation data with --train: .npz with x (and y)")
    parser.add_argument("--seq-len", type=int, default=64, help="--data text: tokens per window")
    parser.add_argument(
        "--vocab-size", type=int, default=512, help="--data text: tokenizer vocabulary"
    )
    parser.add_argument(
        "--max-accuracy-drop", type=float, default=None, help="classifiers (default: 0.01)"
    )
    parser.add_argument(
        "--max-perplexity-ratio", type=float, default=None, help="language models (default: 1.03)"
    )
    parser.add_argument(
        "--budget-minutes", type=float, default=None, help="stop starting candidates after this"
    )
    parser.add_argument("--epochs", type=int, default=None, help="fine-tune epochs (default: 2)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the fine-tunes (default: 0)")
    parser.add_argument(
        "--trust-model",
        action="store_true",
        help="allow formats that can run code when loaded (.h5, SavedModel, Lambda)",
    )


def _data(args: argparse.Namespace):
    from tfgreen.cli.export import load_arrays
    from tfgreen.datasets import load_breast_cancer, load_digits, load_text

    if (args.train is None) != (args.validation is None):
        raise TfgreenValueError(
            message(
                "`--train` and `--validation` go together",
                "both files, or neither (then --data is used)",
                "Pass --train train.npz --validation val.npz, or --data",
                train=args.train,
                validation=args.validation,
            )
        )
    if args.train is not None:
        return load_arrays(args.train, labels=True), load_arrays(args.validation, labels=True)
    if args.data == "text":
        text = load_text(seq_len=args.seq_len, vocab_size=args.vocab_size)
        return text.train, text.val
    loaders = {
        "digits": load_digits,
        "digits-flat": lambda: load_digits(flat=True),
        "breast-cancer": load_breast_cancer,
    }
    return loaders[args.data]()


def run(args: argparse.Namespace) -> int:
    """Runs the search, prints the pick and writes the report; returns 0 (1: nothing met the floor)."""
    from tfgreen.cli.export import _quiet_fds
    from tfgreen.export.targets import get_target
    from tfgreen.loading import load_model
    from tfgreen.search import optimize

    get_target(args.target)
    train, validation = _data(args)
    print(f"[tfgreen optimize] loading {args.model}", flush=True)
    with _quiet_fds():
        model = load_model(args.model, trusted=args.trust_model, compile=False)
    print(
        f"[tfgreen optimize] searching for the least {args.objective} on {args.target}", flush=True
    )
    result = optimize(
        model,
        train,
        validation_data=validation,
        target=args.target,
        max_accuracy_drop=args.max_accuracy_drop,
        objective=args.objective,
        budget_minutes=args.budget_minutes,
        out_dir=args.out,
        seed=args.seed,
        max_perplexity_ratio=args.max_perplexity_ratio,
        epochs=args.epochs,
    )
    written = result.report(args.out)
    for record in result.candidates:
        print(f"  #{record['id']:<2} {record['status']:8s} {record['name']}: {record['reason']}")
    best = result.best
    print(
        f"tried {len(result.candidates)} recipes, skipped {len(result.skipped)}, "
        f"in {result.seconds:.0f} s"
    )
    print(f"report     {written['optimize.md']}")
    if best is None:
        print("pick       none: no candidate met the floor")
        return 1
    joules = best["joules_per_inference"]
    print(f"pick       {best['name']} -> {best['path']}")
    print(
        f"figures    {result.quality} {best[result.quality]:.4f} (reference "
        f"{result.reference[result.quality]:.4f}), {best['size_bytes']} bytes, "
        f"{best['latency_ms']:.4g} ms, {joules['estimate']:.3g} J/inference (estimate, "
        f"{joules['estimate_target']})"
    )
    return 0
