"""`inspect_tflite`: what a `.tflite` file holds, safely.

The file is parsed in pure Python (`read_tflite`), so a truncated or
corrupted file raises `TfliteFileError` instead of crashing. If a manifest
`<path>.json` lies beside it, the file's sha256 and size are checked against
it (a flipped bit is caught there). Anything that runs the LiteRT interpreter
runs in a child process (`tfgreen.tflite.probe`), so even a file that crashes
the interpreter cannot take the caller down.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

from tfgreen._validate import number
from tfgreen.errors import TfgreenValueError, TfliteFileError, message
from tfgreen.tflite.read import existing_tflite, float_ops, read_tflite, tensor_details
from tfgreen.tflite.verify import check_manifest

__all__ = ["inspect_tflite"]

_ROOT = Path(__file__).resolve().parents[2]


def _run_isolated(path: Path, timeout: float) -> dict:
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(_ROOT), env.get("PYTHONPATH")) if p)
    try:
        done = subprocess.run(
            [sys.executable, "-m", "tfgreen.tflite.probe", str(path)],
            capture_output=True,
            text=True,
            env=env,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired as error:
        raise TfliteFileError(
            message(
                "Running the .tflite file did not finish in time",
                f"one invocation within {timeout:g} s",
                "Check the file's origin; it may be hostile or far too large",
                timeout=timeout,
            )
        ) from error
    lines = done.stdout.strip().splitlines()
    result = None
    if lines:
        try:
            result = json.loads(lines[-1])
        except json.JSONDecodeError:
            result = None
    if done.returncode != 0 or not isinstance(result, dict) or not result.get("ok"):
        reason = (
            f"the interpreter process died with signal {-done.returncode}"
            if done.returncode < 0
            else (result or {}).get("error")
            or (done.stderr.strip().splitlines() or ["no output"])[-1]
        )
        raise TfliteFileError(
            message(
                "LiteRT could not run the .tflite file (in an isolated process)",
                "a valid TFLite model that runs on zeros",
                "Re-export the model; the file may be corrupted or hostile",
                reason=str(reason)[:300],
            )
        )
    return result


def inspect_tflite(path: str | Path, run: bool = True, timeout: float = 60.0) -> dict:
    """Describes a `.tflite` file without letting it crash the caller.

    Args:
        path: The `.tflite` file.
        run: Also load and invoke it once with LiteRT, in a child process.
            Defaults to `True`.
        timeout: Seconds the child process may take. Defaults to `60.0`.

    Returns:
        A JSON-ready dict: `path`, `size_bytes`, `sha256`, `manifest`
        (`"ok"` or `"missing"`), `ops`, `op_counts`, `inputs`, `outputs`
        (dtype, shape, scale, zero_point), `tensor_dtypes`, `float_ops`,
        `weight_sparsity` (by tensor), `sparsity` (overall), and `run`
        (`{"ok", "latency_ms", ...}` or `None`).

    Raises:
        TfliteFileError: The file is truncated, corrupted, differs from its
            manifest, or cannot be run.

    Example:
    ```python
    info = tfgreen.inspect_tflite("out/model.tflite")
    info["inputs"][0]["dtype"], info["run"]["ok"]
    # ('int8', True)
    ```
    """
    if not isinstance(path, (str, Path)):
        raise TfgreenValueError(
            message(
                "`path` must be a file path",
                "a str or Path",
                "Pass the .tflite file's path",
                path=type(path).__name__,
            )
        )
    path = existing_tflite(path)
    timeout = number("timeout", timeout, minimum=0, exclusive_minimum=True, example=60)
    data = path.read_bytes()
    sha256 = hashlib.sha256(data).hexdigest()
    manifest = check_manifest(path, data)
    info = read_tflite(data)
    return {
        "path": str(path),
        "size_bytes": len(data),
        "sha256": sha256,
        "manifest": manifest,
        "ops": info.op_names,
        "op_counts": dict(Counter(info.op_names)),
        "inputs": tensor_details(info, info.inputs),
        "outputs": tensor_details(info, info.outputs),
        "tensor_dtypes": dict(Counter(t.dtype for t in info.tensors)),
        "float_ops": float_ops(info),
        "weight_sparsity": info.weight_sparsity,
        "sparsity": info.total_weight_sparsity(),
        "run": _run_isolated(path, timeout) if run else None,
    }
