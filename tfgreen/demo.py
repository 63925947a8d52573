"""`tfgreen demo`: the main job on bundled real data.

Trains a small CNN on scikit-learn's 8x8 digits, exports it as float32 and
int8 `.tflite` files, runs both with the LiteRT interpreter and writes a
table of accuracy, size and latency to `report.md`.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from tfgreen._io import atomic_write_bytes, atomic_write_text
from tfgreen.errors import TfgreenValueError, message
from tfgreen.report import markdown_table

__all__ = ["run_demo", "add_arguments", "run"]


def _step(text: str) -> None:
    print(f"[tfgreen demo] {text}", flush=True)


def run_demo(out: str | Path = "tfgreen-demo", quick: bool = False, seed: int = 0) -> list[dict]:
    """Runs the demo pipeline and writes its files under `out`.

    Args:
        out: Output folder; created if missing. Defaults to `"tfgreen-demo"`.
        quick: Fewer epochs, for tests and a first look. Defaults to `False`.
        seed: Seed of data split and weights. Defaults to `0`.

    Returns:
        One row per model: name, accuracy, size_kb, latency_ms_p50.

    Example:
    >>> rows = run_demo("demo-out", quick=True)
    >>> [r["model"] for r in rows]
    ['keras float32', 'tflite float32', 'tflite int8']
    """

    from tfgreen.datasets import load_digits
    from tfgreen.export.convert import convert
    from tfgreen.export.runtime import TfliteRunner
    from tfgreen.models import small_cnn

    out = Path(out)
    if out.exists() and not out.is_dir():
        raise TfgreenValueError(
            message(
                "The demo's output path is a file",
                "a folder (it is created if missing)",
                "Pass --out with a folder name",
                out=str(out),
            )
        )
    out.mkdir(parents=True, exist_ok=True)
    epochs = 3 if quick else 15

    _step("loading bundled digits (scikit-learn, 8x8, 10 classes)")
    (x_train, y_train), (x_test, y_test) = load_digits(seed=seed)

    _step(f"training a small CNN for {epochs} epochs")
    model = small_cnn("keras3", seed=seed)
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(x_train, y_train, epochs=epochs, batch_size=32, verbose=2)
    _, keras_acc = model.evaluate(x_test, y_test, verbose=0)
    start = time.perf_counter()
    model.predict(x_test[:1], verbose=0)
    keras_ms = (time.perf_counter() - start) * 1000.0
    keras_kb = sum(int(np.prod(w.shape)) * 4 for w in model.weights) / 1024

    rows = [
        {
            "model": "keras float32",
            "accuracy": float(keras_acc),
            "size_kb": keras_kb,
            "latency_ms_p50": keras_ms,
        }
    ]
    rng = np.random.default_rng(seed)
    calibration = x_train[rng.choice(len(x_train), 200, replace=False)]
    for quantization in ("float32", "int8"):
        _step(f"exporting {quantization} .tflite")
        data = convert(
            model,
            quantization,
            representative=lambda: ([calibration[i : i + 1]] for i in range(len(calibration))),
        )
        path = atomic_write_bytes(out / f"digits_{quantization}.tflite", data)
        runner = TfliteRunner(path)
        accuracy = float(np.mean(np.argmax(runner.predict(x_test), axis=1) == y_test))
        rows.append(
            {
                "model": f"tflite {quantization}",
                "accuracy": accuracy,
                "size_kb": len(data) / 1024,
                "latency_ms_p50": runner.latency_ms(x_test, runs=100)["p50"],
            }
        )

    table = markdown_table(rows)
    atomic_write_text(
        out / "report.md",
        "# tfgreen demo\n\nSmall CNN on scikit-learn digits "
        f"({len(x_train)} train / {len(x_test)} test), {epochs} epochs. "
        "Latency is one sample, 1 thread, measured on this machine "
        "(the Keras figure is one `predict` call, overhead included).\n\n" + table + "\n",
    )
    print(table)
    _step(f"wrote {out / 'report.md'}")
    return rows


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Adds the demo's options to its subcommand parser."""
    parser.add_argument(
        "--out", default="tfgreen-demo", help="output folder (default: tfgreen-demo)"
    )
    parser.add_argument("--quick", action="store_true", help="fewer epochs, for a first look")
    parser.add_argument(
        "--seed", type=int, default=0, help="seed of split and weights (default: 0)"
    )


def run(args: argparse.Namespace) -> int:
    """Runs `tfgreen demo` from parsed arguments."""
    run_demo(args.out, quick=args.quick, seed=args.seed)
    return 0
