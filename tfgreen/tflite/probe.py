"""Runs a `.tflite` file once, in its own process, for `inspect_tflite`.

`python -m tfgreen.tflite.probe FILE` loads the file with LiteRT, runs one
invocation on zeros and prints a JSON line. It imports numpy and LiteRT only
(no TensorFlow), and runs in a child process so that a hostile or corrupted
file that crashes the interpreter cannot take the caller down.
"""

from __future__ import annotations

import json
import sys

import numpy as np

__all__ = ["probe", "main"]


def probe(path: str) -> dict:
    """Loads and invokes the file once; returns what ran.

    Args:
        path: The `.tflite` file.

    Returns:
        `{"ok": True, "latency_ms": ..., "outputs": [shapes]}`.
    """
    from tfgreen.tflite.runner import TfliteRunner

    runner = TfliteRunner(path)
    sample = runner.sample_inputs(random=False)
    outputs = runner.predict(sample)
    outputs = outputs if isinstance(outputs, list) else [outputs]
    latency = runner.latency_ms(sample, runs=10, warmup=2)["p50"]
    return {
        "ok": True,
        "latency_ms": latency,
        "outputs": [list(o.shape) for o in outputs],
        "finite": bool(all(np.isfinite(o).all() for o in outputs)),
    }


def main(argv: list[str] | None = None) -> int:
    """Entry point: prints the probe's JSON; exit 0 ok, 2 on a tfgreen error."""
    from tfgreen.errors import TfgreenError

    argv = sys.argv[1:] if argv is None else argv
    try:
        print(json.dumps(probe(argv[0])))
    except TfgreenError as error:
        print(json.dumps({"ok": False, "error": str(error)}))
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
