"""`IsolatedRunner`: a `TfliteRunner` that lives in a child process.

LiteRT is C++; a hostile or corrupted `.tflite` file (an input of rank 20,
a bad tensor index) can make it crash with SIGSEGV or SIGABRT, which would
kill the caller's Python process. `IsolatedRunner` has the same methods as
`TfliteRunner` (`predict`, `latency_ms`, `raw_tensors`, `sample_inputs`,
`inputs`, `outputs`) but the interpreter runs in one child process per
runner (`python -m tfgreen.tflite.isolated`, numpy and LiteRT only, no
TensorFlow). Timings are measured inside the child, so they are the
interpreter's own figures. If the child dies, the call raises
`TfliteFileError` naming the signal; a LiteRT error inside the child comes
back as `TfliteFileError` too, with its first line.

Messages between the two processes are a JSON header and numpy arrays
(`.npy`, loaded with `allow_pickle=False`): nothing the child sends is
executed by the parent.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import select
import signal
import struct
import subprocess
import sys
import weakref
from pathlib import Path

import numpy as np

from tfgreen import errors
from tfgreen.errors import TfliteFileError, message

__all__ = ["IsolatedRunner", "serve", "vetted_runner"]

_ROOT = Path(__file__).resolve().parents[2]


def _send(stream, header: dict, arrays: list[np.ndarray]) -> None:
    buffer = io.BytesIO()
    for a in arrays:
        np.save(buffer, np.asarray(a), allow_pickle=False)
    head = json.dumps({**header, "_arrays": len(arrays)}).encode()
    payload = buffer.getvalue()
    stream.write(struct.pack("<IQ", len(head), len(payload)) + head + payload)
    stream.flush()


def _read_exact(stream, size: int, timeout: float | None) -> bytes:
    chunks = []
    while size:
        if timeout is not None:
            ready, _, _ = select.select([stream], [], [], timeout)
            if not ready:
                raise TimeoutError
        chunk = stream.read1(size) if hasattr(stream, "read1") else stream.read(size)
        if not chunk:
            raise EOFError
        chunks.append(chunk)
        size -= len(chunk)
    return b"".join(chunks)


def _receive(stream, timeout: float | None = None) -> tuple[dict, list[np.ndarray]]:
    head_size, payload_size = struct.unpack("<IQ", _read_exact(stream, 12, timeout))
    header = json.loads(_read_exact(stream, head_size, timeout))
    payload = io.BytesIO(_read_exact(stream, payload_size, timeout) if payload_size else b"")
    arrays = [np.load(payload, allow_pickle=False) for _ in range(int(header.pop("_arrays", 0)))]
    return header, arrays


def _plain_details(details: list[dict]) -> list[dict]:
    plain = []
    for d in details:
        scale, zero_point = d.get("quantization", (0.0, 0))
        q = d.get("quantization_parameters", {})
        plain.append(
            {
                "name": str(d["name"]),
                "index": int(d["index"]),
                "shape": [int(v) for v in d["shape"]],
                "shape_signature": [int(v) for v in d["shape_signature"]],
                "dtype": np.dtype(d["dtype"]).name,
                "quantization": [float(scale), int(zero_point)],
                "quantization_parameters": {
                    "scales": [float(v) for v in q.get("scales", [])],
                    "zero_points": [int(v) for v in q.get("zero_points", [])],
                    "quantized_dimension": int(q.get("quantized_dimension", 0)),
                },
            }
        )
    return plain


def _rich_details(plain: list[dict]) -> list[dict]:
    rich = []
    for d in plain:
        q = d["quantization_parameters"]
        rich.append(
            {
                **d,
                "shape": np.array(d["shape"], dtype="int32"),
                "shape_signature": np.array(d["shape_signature"], dtype="int32"),
                "dtype": np.dtype(d["dtype"]).type,
                "quantization": (d["quantization"][0], d["quantization"][1]),
                "quantization_parameters": {
                    "scales": np.array(q["scales"], dtype="float32"),
                    "zero_points": np.array(q["zero_points"], dtype="int32"),
                    "quantized_dimension": q["quantized_dimension"],
                },
            }
        )
    return rich


def _handle(runner, header: dict, arrays: list[np.ndarray]) -> tuple[dict, list[np.ndarray]]:
    op = header["op"]
    if op == "predict":
        outputs = runner.predict(arrays, batch_size=header["batch_size"])
        single = not isinstance(outputs, list)
        return {"single": single}, [outputs] if single else outputs
    if op == "latency_ms":
        return {
            "result": runner.latency_ms(
                arrays, runs=header["runs"], warmup=header["warmup"], progress=header["progress"]
            )
        }, []
    if op == "raw_tensors":
        return {}, runner.raw_tensors(arrays, header["indices"])
    if op == "sample_inputs":
        return {}, runner.sample_inputs(random=header["random"], seed=header["seed"])
    if op == "generate":
        from tfgreen.tflite.decode import greedy

        forced = arrays[1] if len(arrays) > 1 else None
        stop = header["stop_token_id"]
        return {}, list(
            greedy(runner.interpreter, arrays[0], header["max_new_tokens"], stop, forced)
        )
    raise ValueError(f"unknown operation {op!r}")


def _error_header(error: BaseException) -> dict:
    name = type(error).__name__ if isinstance(error, errors.TfgreenError) else "TfliteFileError"
    text = (
        str(error)
        if isinstance(error, errors.TfgreenError)
        else message(
            "LiteRT failed on the .tflite file (in an isolated process)",
            "a valid TFLite model and inputs of its shapes",
            "Re-export the model; the file may be corrupted or hostile",
            error=(str(error).splitlines() or [type(error).__name__])[0][:300],
        )
    )
    return {"ok": False, "type": name, "text": text}


def serve(stdin, stdout) -> int:
    """The child's loop: builds a `TfliteRunner`, answers calls until stdin closes.

    Args:
        stdin: Binary stream of requests.
        stdout: Binary stream of answers.

    Returns:
        `0` when the parent closed the pipe.
    """
    from tfgreen.tflite.runner import TfliteRunner

    runner = None
    while True:
        try:
            header, arrays = _receive(stdin)
        except EOFError:
            return 0
        try:
            if header["op"] == "init":
                model = header.get("path") or arrays[0].tobytes()
                runner = TfliteRunner(model, **header["options"])
                reply = {
                    "inputs": _plain_details(runner.inputs),
                    "outputs": _plain_details(runner.outputs),
                }
                answer = []
            else:
                reply, answer = _handle(runner, header, arrays)
                reply["inputs"] = _plain_details(runner.inputs)
                reply["outputs"] = _plain_details(runner.outputs)
            _send(stdout, {"ok": True, **reply}, answer)
        except Exception as error:  # noqa: BLE001 - every failure goes back as one line
            _send(stdout, _error_header(error), [])


class IsolatedRunner:
    """Runs a `.tflite` file with LiteRT in a child process (see the module docstring).

    Args:
        model: Path to a `.tflite` file, or its bytes.
        num_threads: Interpreter threads. Defaults to `1`.
        reference: Use LiteRT's reference kernels. Defaults to `False`.
        xnnpack: Let LiteRT apply XNNPACK. Defaults to `True`.
        preserve_all_tensors: Keep intermediate tensors readable
            (`raw_tensors`). Defaults to `False`.
        timeout: Seconds one call may take before the child is killed and
            `TfliteFileError` raised; `None` waits. Defaults to `600`.

    Example:
    ```python
    runner = IsolatedRunner("out/model.tflite")
    runner.predict(x_test[:10]).shape  # (10, 10)
    runner.close()
    ```
    """

    def __init__(
        self,
        model: str | Path | bytes,
        num_threads: int = 1,
        reference: bool = False,
        xnnpack: bool = True,
        preserve_all_tensors: bool = False,
        timeout: float | None = 600.0,
    ):
        from tfgreen._validate import positive_int
        from tfgreen.tflite.read import existing_tflite

        positive_int("num_threads", num_threads, example=1)
        if isinstance(model, (bytes, bytearray)):
            header, arrays = {}, [np.frombuffer(bytes(model), dtype="uint8")]
        else:
            header, arrays = {"path": str(existing_tflite(model))}, []
        self.timeout = timeout
        env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL=os.environ.get("TF_CPP_MIN_LOG_LEVEL", "3"))
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(_ROOT), env.get("PYTHONPATH")) if p)
        self._process = subprocess.Popen(
            [sys.executable, "-m", "tfgreen.tflite.isolated"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=env,
        )
        self._finalizer = weakref.finalize(self, _stop, self._process)
        options = {
            "num_threads": num_threads,
            "reference": reference,
            "xnnpack": xnnpack,
            "preserve_all_tensors": preserve_all_tensors,
        }
        self._call({"op": "init", **header, "options": options}, arrays)

    def _call(self, header: dict, arrays: list[np.ndarray]) -> tuple[dict, list[np.ndarray]]:
        process = self._process
        try:
            _send(process.stdin, header, arrays)
            reply, answer = _receive(process.stdout, self.timeout)
        except TimeoutError:
            self.close()
            raise TfliteFileError(
                message(
                    "LiteRT did not finish in time (in an isolated process)",
                    f"one call within {self.timeout:g} s",
                    "Check the file's origin; it may be hostile or far too large",
                    timeout=self.timeout,
                )
            ) from None
        except (EOFError, BrokenPipeError, struct.error, ValueError):
            code = process.wait()
            self._finalizer.detach()
            reason = f"signal {signal.Signals(-code).name}" if code < 0 else f"exit code {code}"
            raise TfliteFileError(
                message(
                    f"LiteRT crashed on the .tflite file (the isolated process died with {reason})",
                    "a valid TFLite model that the interpreter can run",
                    "Re-export the model; the file may be corrupted or hostile",
                    operation=header["op"],
                )
            ) from None
        if not reply.get("ok"):
            cls = getattr(errors, str(reply.get("type")), None)
            if not (isinstance(cls, type) and issubclass(cls, errors.TfgreenError)):
                cls = TfliteFileError
            raise cls(reply.get("text", "LiteRT failed"))
        self.inputs = _rich_details(reply["inputs"])
        self.outputs = _rich_details(reply["outputs"])
        return reply, answer

    @staticmethod
    def _arrays(x) -> list[np.ndarray]:
        return [np.asarray(a) for a in (list(x) if isinstance(x, (list, tuple)) else [x])]

    def predict(self, x, batch_size: int = 1) -> np.ndarray | list[np.ndarray]:
        """`TfliteRunner.predict`, in the child."""
        reply, answer = self._call({"op": "predict", "batch_size": batch_size}, self._arrays(x))
        return answer[0] if reply["single"] else answer

    def latency_ms(self, x, runs: int = 50, warmup: int = 5, progress: bool = False) -> dict:
        """`TfliteRunner.latency_ms`, timed inside the child."""
        header = {"op": "latency_ms", "runs": runs, "warmup": warmup, "progress": progress}
        return self._call(header, self._arrays(x))[0]["result"]

    def raw_tensors(self, sample, indices: list[int]) -> list[np.ndarray]:
        """`TfliteRunner.raw_tensors`, in the child."""
        header = {"op": "raw_tensors", "indices": [int(i) for i in indices]}
        return self._call(header, self._arrays(sample))[1]

    def sample_inputs(self, random: bool = True, seed: int = 0) -> list[np.ndarray]:
        """`TfliteRunner.sample_inputs`, made in the child."""
        return self._call({"op": "sample_inputs", "random": random, "seed": seed}, [])[1]

    def generate(self, prompt, max_new_tokens: int, stop_token_id=None, forced=None) -> tuple:
        """`tfgreen.tflite.decode.greedy` on the file's prefill/decode signatures, in the child."""
        arrays = [np.asarray(prompt, dtype="int32")]
        if forced is not None:
            arrays.append(np.asarray(forced, dtype="int32"))
        header = {"op": "generate", "max_new_tokens": int(max_new_tokens)}
        tokens, logits = self._call({**header, "stop_token_id": stop_token_id}, arrays)[1]
        return tokens, logits

    def close(self) -> None:
        """Stops the child process (also done when the runner is garbage collected)."""
        self._finalizer()


def _stop(process: subprocess.Popen) -> None:
    for stream in (process.stdin, process.stdout):
        with contextlib.suppress(OSError):
            stream.close()
    try:
        process.wait(timeout=5)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def vetted_runner(model: str | Path | bytes, num_threads: int = 1):
    """An in-process `TfliteRunner`, after the file ran once in a child.

    For loops of many calls where a pipe per call would distort the figure
    (energy per inference): the file is first loaded and run on
    `sample_inputs` in an `IsolatedRunner`; only if that survives is it
    loaded in the caller's process.

    Args:
        model: Path to a `.tflite` file, or its bytes.
        num_threads: Interpreter threads. Defaults to `1`.

    Returns:
        A `TfliteRunner`.
    """
    from tfgreen.tflite.runner import TfliteRunner

    child = IsolatedRunner(model, num_threads=num_threads)
    try:
        child.predict(child.sample_inputs())
    finally:
        child.close()
    return TfliteRunner(model, num_threads=num_threads)


if __name__ == "__main__":
    _protocol = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)  # stray prints of LiteRT go to stderr, not into the protocol
    sys.exit(serve(sys.stdin.buffer, _protocol))
