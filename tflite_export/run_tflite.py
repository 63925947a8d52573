#!/usr/bin/env python3
"""Runs a tfgreen `.tflite` export on the device: numpy + LiteRT only, no TensorFlow.

Usage:
    python run_tflite.py model.tflite --input x.npy [--runs 100] [--threads 1]
    python run_tflite.py model.tflite --input data.npz   # arrays x (or x0, x1, ...)

Before anything runs, the file's sha256 and size are checked against the
manifest `model.tflite.json` written by `tfgreen.export_tflite` (or the one
given with --manifest); a mismatch exits with code 2. Inputs are float
arrays with samples on axis 0; they are quantized with the file's input
scale/zero point when the file takes integers, and outputs are dequantized.
Prints the outputs (top class per sample when there are several classes)
and the latency. Exit codes: 0 ok, 2 bad input or hash mismatch.
"""

from __future__ import annotations

import argparse
import errno
import hashlib
import io
import json
import os
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

__all__ = ["load_interpreter", "read_regular", "verify", "main"]

_MAX_MANIFEST_BYTES = 2**20


class KitError(Exception):
    """A user-facing error: printed as one line, exit code 2."""


def load_interpreter(content: bytes, threads: int):
    """Builds a LiteRT interpreter, falling back to tflite-runtime."""
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:
        try:
            from tflite_runtime.interpreter import Interpreter
        except ImportError as error:
            raise KitError(
                "install ai-edge-litert (pip install ai-edge-litert) or tflite-runtime"
            ) from error
    interpreter = Interpreter(model_content=content, num_threads=threads)
    interpreter.allocate_tensors()
    return interpreter


def read_regular(path: Path, what: str, limit: int | None = None) -> bytes:
    """A regular file's bytes; a FIFO, device, folder or symlink loop is one KitError, no hang."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except OSError as error:
        reasons = {
            errno.ENOENT: "not found",
            errno.ELOOP: "is a symlink loop",
            errno.EISDIR: "is a folder",
            errno.EACCES: "is not readable (permission denied)",
        }
        raise KitError(f"{what} {reasons.get(error.errno, error.strerror)}: {path}") from None
    try:
        mode = os.fstat(fd).st_mode
        if stat.S_ISDIR(mode):
            raise KitError(f"{what} is a folder: {path}")
        if not stat.S_ISREG(mode):
            kind = "a FIFO" if stat.S_ISFIFO(mode) else "a device or socket"
            raise KitError(f"{what} is {kind}, not a regular file: {path}")
        size = os.fstat(fd).st_size
        if limit is not None and size > limit:
            raise KitError(f"{what} is too large ({size} bytes, at most {limit}): {path}")
        with os.fdopen(fd, "rb") as stream:
            fd = -1
            return stream.read()
    finally:
        if fd >= 0:
            os.close(fd)


def verify(model: Path, manifest: Path) -> bytes:
    """Returns the file's bytes after checking sha256 and size against the manifest."""
    content = read_regular(model, "model file")
    if not manifest.exists():
        raise KitError(f"manifest not found: {manifest} (pass --manifest, or --no-verify to skip)")
    try:
        expected = json.loads(read_regular(manifest, "manifest", _MAX_MANIFEST_BYTES))
        sha256, size = str(expected["sha256"]), int(expected["size_bytes"])
    except (ValueError, KeyError, TypeError, OverflowError, RecursionError) as error:
        raise KitError(
            f"manifest {manifest} is not a tfgreen manifest (needs sha256, size_bytes)"
        ) from error
    actual = hashlib.sha256(content).hexdigest()
    if actual != sha256 or len(content) != size:
        raise KitError(
            f"{model.name} does not match its manifest: sha256 {actual[:16]}... size {len(content)}, "
            f"expected {sha256[:16]}... size {size}; copy the file again"
        )
    return content


def _load_inputs(path: Path) -> list[np.ndarray]:
    data = np.load(io.BytesIO(read_regular(path, "input file")), allow_pickle=False)
    if isinstance(data, np.ndarray):
        return [data]
    keys = (
        ["x"]
        if "x" in data.files
        else sorted(k for k in data.files if k[:1] == "x" and k[1:].isdigit())
    )
    if not keys:
        raise KitError(f"{path} has no array x (or x0, x1, ...); found {data.files}")
    return [data[k] for k in keys]


def _quantize(x: np.ndarray, detail: dict) -> np.ndarray:
    dtype = np.dtype(detail["dtype"])
    scale, zero_point = detail["quantization"]
    if np.issubdtype(dtype, np.integer) and scale:
        info = np.iinfo(dtype)
        return np.clip(np.round(x / scale + zero_point), info.min, info.max).astype(dtype)
    return x.astype(dtype)


def _dequantize(q: np.ndarray, detail: dict) -> np.ndarray:
    scale, zero_point = detail["quantization"]
    if np.issubdtype(q.dtype, np.integer) and scale:
        return (q.astype("float32") - zero_point) * scale
    return q.astype("float32")


def _invoke(interpreter, sample: list[np.ndarray]) -> list[np.ndarray]:
    inputs = interpreter.get_input_details()
    for detail, x in zip(inputs, sample):  # noqa: B905 - device Pythons may predate 3.10
        if tuple(detail["shape"]) != x.shape:
            interpreter.resize_tensor_input(detail["index"], x.shape)
            interpreter.allocate_tensors()
    for detail, x in zip(interpreter.get_input_details(), sample):  # noqa: B905
        interpreter.set_tensor(detail["index"], _quantize(x, detail))
    interpreter.invoke()
    return [
        _dequantize(interpreter.get_tensor(d["index"]), d) for d in interpreter.get_output_details()
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Run a tfgreen .tflite export with LiteRT (no TensorFlow)."
    )
    parser.add_argument("model", type=Path)
    parser.add_argument(
        "--input", type=Path, required=True, help=".npy, or .npz with x / x0, x1, ..."
    )
    parser.add_argument("--manifest", type=Path, help="default: MODEL.json")
    parser.add_argument(
        "--no-verify", action="store_true", help="skip the sha256 check (not advised)"
    )
    parser.add_argument("--runs", type=int, default=50, help="timed single-sample runs")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--show", type=int, default=10, help="samples whose outputs are printed")
    parser.add_argument(
        "--timeout",
        type=float,
        default=600.0,
        help="with --no-verify: seconds the unverified file may run before it is killed",
    )
    args = parser.parse_args(argv)
    try:
        if args.runs < 1 or args.threads < 1 or not args.timeout > 0:
            raise KitError("--runs and --threads must be >= 1, --timeout > 0")
        manifest = args.manifest or args.model.with_name(args.model.name + ".json")
        if args.no_verify:
            content = read_regular(args.model, "model file")
            if not os.environ.get("_TFGREEN_KIT_CHILD"):
                return _run_in_child(argv, args.timeout)
        else:
            content = verify(args.model, manifest)
        inputs = [np.asarray(a, dtype="float32") for a in _load_inputs(args.input)]
        interpreter = load_interpreter(content, args.threads)
        if not interpreter.get_input_details() or not interpreter.get_output_details():
            raise KitError("the model has no inputs or no outputs; the file is corrupted")
        if len(inputs) != len(interpreter.get_input_details()):
            raise KitError(
                f"the model has {len(interpreter.get_input_details())} input(s), the file gives {len(inputs)}"
            )
        outputs = [
            _invoke(interpreter, [a[i : i + 1] for a in inputs]) for i in range(len(inputs[0]))
        ]
    except KitError as error:
        print(f"run_tflite: error: {error}", file=sys.stderr)
        return 2
    except (ValueError, RuntimeError) as error:
        print(
            f"run_tflite: error: {str(error).splitlines()[0] if str(error) else type(error).__name__}",
            file=sys.stderr,
        )
        return 2
    first = np.concatenate([o[0] for o in outputs])
    print(f"verified  {'skipped' if args.no_verify else 'sha256 matches manifest'}")
    print(f"samples   {len(first)}, output shape {list(first.shape[1:])}")
    for i in range(min(args.show, len(first))):
        row = first[i].reshape(-1)
        label = f"class {int(row.argmax())}" if row.size > 1 else f"value {row[0]:.4f}"
        print(f"sample {i}: {label}  {np.array2string(row, precision=4, max_line_width=200)}")
    sample = [a[:1] for a in inputs]
    times = []
    for _ in range(args.runs):
        start = time.perf_counter()
        _invoke(interpreter, sample)
        times.append((time.perf_counter() - start) * 1000.0)
    print(
        f"latency   p50 {np.percentile(times, 50):.4f} ms, p90 {np.percentile(times, 90):.4f} ms "
        f"({args.runs} runs, {args.threads} thread(s), incl. quantize/dequantize)"
    )
    return 0


def _run_in_child(argv: list[str] | None, timeout: float) -> int:
    """Runs an unverified file in a child copy of this script: a crash or a hang is one line."""
    env = dict(os.environ, _TFGREEN_KIT_CHILD="1")
    args = sys.argv[1:] if argv is None else argv
    try:
        code = subprocess.run(
            [sys.executable, os.path.abspath(__file__), *args],
            env=env,
            check=False,
            timeout=timeout,
        ).returncode
    except subprocess.TimeoutExpired:
        print(
            f"run_tflite: error: the unverified file ran longer than {timeout:g} s; "
            "killed (pass --timeout to allow more)",
            file=sys.stderr,
        )
        return 2
    if code < 0:
        name = signal.Signals(-code).name
        print(
            f"run_tflite: error: LiteRT crashed on the unverified file (signal {name})",
            file=sys.stderr,
        )
        return 2
    return code


if __name__ == "__main__":
    status = main()
    if os.environ.get("_TFGREEN_KIT_CHILD"):
        # The --no-verify child: LiteRT may crash while tearing down the interpreter
        # of a hostile file after the answer is printed (measured: "double free"
        # after "Invalid tensor index -1"). Leave without running destructors so
        # the printed answer and its exit code stand.
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(status)
    sys.exit(status)
