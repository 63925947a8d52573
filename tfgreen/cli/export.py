"""`tfgreen export`: a model file to a checked `.tflite` file for a target.

The model loads with `tfgreen.load_model` (`.keras` in safe mode; `.h5`,
SavedModel folders and Lambda layers need `--trust-model`). Calibration and
validation data come from `.npy`/`.npz` files, read without pickle. The
converter's own chatter is kept off the terminal.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import tempfile
from pathlib import Path

import numpy as np

from tfgreen import _io
from tfgreen.errors import CalibrationError, TfgreenFileNotFoundError, message
from tfgreen.quantization.ptq import QUANTIZATIONS

__all__ = ["load_arrays", "add_arguments", "run"]


def load_arrays(path: str | Path, labels: bool = False):
    """Reads inputs (and labels) from a `.npy` or `.npz` file, without pickle.

    Args:
        path: A `.npy` file (one array of inputs) or a `.npz` file with `x`
            (or `x0`, `x1`, ... for several inputs) and, for validation, `y`.
        labels: Return `(x, y)` when the file is a `.npz` holding `y`; `x`
            alone otherwise (parity only, or token ids of a language model).
            Defaults to `False`.

    Returns:
        `x` (an array or a list of arrays), or `(x, y)`.
    """
    path = Path(path)
    if not path.is_file():
        raise TfgreenFileNotFoundError(
            message(
                "The data file does not exist",
                "a .npy or .npz file",
                "Check the path",
                path=str(path),
            )
        )
    try:
        loaded = np.load(path, allow_pickle=False)
    except (ValueError, OSError) as error:
        raise CalibrationError(
            message(
                "The data file cannot be read as numpy data (pickled objects are refused)",
                "a .npy or .npz file of numeric arrays",
                "Save it with np.save / np.savez",
                path=str(path),
            )
        ) from error
    if isinstance(loaded, np.ndarray):
        return loaded
    with loaded:
        keys = list(loaded.files)
        inputs = (
            ["x"] if "x" in keys else sorted(k for k in keys if k[:1] == "x" and k[1:].isdigit())
        )
        if not inputs:
            raise CalibrationError(
                message(
                    "The .npz file lacks the expected arrays",
                    "x (or x0, x1, ...), and y for labelled validation data",
                    "Save it with np.savez(path, x=x, y=y)",
                    keys=keys,
                )
            )
        x = loaded[inputs[0]] if len(inputs) == 1 else [loaded[k] for k in inputs]
        return (x, loaded["y"]) if labels and "y" in keys else x


@contextlib.contextmanager
def _quiet_fds():
    """Sends fd 1/2 (the converter's C++ logs and prints) to a temp file while active."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = [os.dup(1), os.dup(2)]
    with tempfile.TemporaryFile() as sink:
        os.dup2(sink.fileno(), 1)
        os.dup2(sink.fileno(), 2)
        try:
            yield
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            for fd in saved:
                os.close(fd)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Adds the `tfgreen export` arguments."""
    parser.add_argument(
        "model", help="a .keras file (or .h5 / SavedModel folder with --trust-model)"
    )
    parser.add_argument("-o", "--output", required=True, help="the .tflite file to write")
    parser.add_argument(
        "--target",
        default="edge-cpu",
        help="built-in target (see `tfgreen targets`) or a JSON target file",
    )
    parser.add_argument(
        "--quantization",
        choices=QUANTIZATIONS,
        default=None,
        help="override the target's quantization",
    )
    parser.add_argument("--calibration", help="calibration inputs: .npy, or .npz with x")
    parser.add_argument(
        "--validation",
        help="validation data: .npz with x and y, or .npy of inputs (token ids for a language model)",
    )
    parser.add_argument(
        "--trust-model",
        action="store_true",
        help="allow formats that can run code when loaded (.h5, SavedModel, Lambda)",
    )


def run(args: argparse.Namespace) -> int:
    """Exports and prints a summary of the checks; returns 0."""
    from tfgreen.export.exporter import export_tflite
    from tfgreen.export.targets import get_target
    from tfgreen.loading import load_model

    get_target(args.target)
    output = Path(args.output)
    _io.check_writable(output, [output.name + ".json", output.with_suffix(".cc").name])
    calibration = None if args.calibration is None else load_arrays(args.calibration)
    validation = None if args.validation is None else load_arrays(args.validation, labels=True)
    print(f"[tfgreen export] loading {args.model}", flush=True)
    with _quiet_fds():
        model = load_model(args.model, trusted=args.trust_model, compile=False)
    print(f"[tfgreen export] converting for target {args.target} and checking", flush=True)
    with _quiet_fds():
        report = export_tflite(
            model,
            args.output,
            target=args.target,
            quantization=args.quantization,
            calibration_data=calibration,
            validation_data=validation,
        )
    print(f"wrote      {report.path} ({report.size_bytes} bytes), manifest {report.manifest_path}")
    print(f"sha256     {report.sha256}")
    print(f"target     {report.target}, quantization {report.quantization}")
    io = [f"{t['dtype']}{t['shape']}" for t in report.inputs + report.outputs]
    print(f"in/out     {' -> '.join(io)}")
    if report.parity:
        p = report.parity
        print(
            f"parity     top-1 agreement {p['top1_agreement']:.4f}, cosine {p['cosine']:.5f}, "
            f"max abs error {p['max_abs_error']:.4g} {p['units']} ({p['samples']} samples)"
        )
    if report.accuracy is not None:
        print(f"accuracy   tflite {report.accuracy:.4f}, keras {report.keras_accuracy:.4f}")
    if report.perplexity is not None:
        p = report.perplexity
        print(
            f"perplexity tflite {p['tflite']:.4f}, keras {p['keras']:.4f} (ratio {p['ratio']:.4f}), "
            f"next-token agreement {report.next_token_agreement:.4f}"
        )
    for attempt in report.attempts:
        print(f"tried      {attempt['quantization']}: failed {', '.join(attempt['failed'])}")
    print(f"latency    {report.latency_ms:.4f} ms p50 (LiteRT, 1 thread)")
    print(
        "checks     "
        + ", ".join(
            f"{name} {'ok' if c['passed'] else 'skipped' if c['passed'] is None else 'FAILED'}"
            for name, c in report.checks.items()
        )
    )
    return 0
