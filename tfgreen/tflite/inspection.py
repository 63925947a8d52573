"""`inspect_tflite`: what a `.tflite` file holds, safely.

The file is parsed in pure Python (`read_tflite`), so a truncated or
corrupted file raises `TfliteFileError` instead of crashing. If a manifest
`<path>.json` lies beside it, the file's sha256 and size are checked against
it (a flipped bit is caught there). Anything that runs the LiteRT interpreter
runs in a child process (`IsolatedRunner`), so even a file that crashes
the interpreter cannot take the caller down.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from pathlib import Path

import numpy as np

from tfgreen._validate import number
from tfgreen.errors import TfgreenValueError, TfliteFileError, message
from tfgreen.tflite.read import existing_tflite, float_ops, read_tflite, tensor_details
from tfgreen.tflite.verify import check_manifest

__all__ = ["inspect_tflite"]


def _run_isolated(path: Path, timeout: float) -> dict:
    from tfgreen.tflite.isolated import IsolatedRunner

    try:
        runner = IsolatedRunner(path, timeout=timeout)
        try:
            sample = runner.sample_inputs(random=False)
            outputs = runner.predict(sample)
            outputs = outputs if isinstance(outputs, list) else [outputs]
            latency = runner.latency_ms(sample, runs=10, warmup=2)["p50"]
        finally:
            runner.close()
    except TfliteFileError as error:
        raise TfliteFileError(
            message(
                "LiteRT could not run the .tflite file (in an isolated process)",
                "a valid TFLite model that runs on zeros",
                "Re-export the model; the file may be corrupted or hostile",
                reason=str(error).split(". Expected")[0][:300],
            )
        ) from None
    return {
        "ok": True,
        "latency_ms": latency,
        "outputs": [list(o.shape) for o in outputs],
        "finite": bool(all(np.isfinite(o).all() for o in outputs)),
    }


def inspect_tflite(path: str | Path, run: bool = True, timeout: float = 60.0) -> dict:
    """Describes a `.tflite` file without letting it crash the caller.

    Args:
        path: The `.tflite` file.
        run: Also load and invoke it once with LiteRT, in a child process.
            Defaults to `True`.
        timeout: Seconds each call in the child process may take (loading,
            one invocation, the timing loop). Defaults to `60.0`.

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
