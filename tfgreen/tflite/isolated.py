"""`IsolatedRunner`: a `TfliteRunner` that lives in a child process.

LiteRT is C++; a hostile or corrupted `.tflite` file (an input of rank 20,
a bad tensor index) can make it crash with SIGSEGV or SIGABRT, which would
kill the caller's Python process. `IsolatedRunner` has the same methods as
`TfliteRunner` (`predict`, `latency_ms`, `raw_tensors`, `sample_inputs`,
`inputs`, `outputs`) but the interpreter runs in one child process per
runner, forked from a warm server that imported numpy and LiteRT only, no
TensorFlow (`tfgreen.tflite._forkserver`: a few milliseconds per runner
instead of 0.3 s for a fresh Python). Timings are measured inside the
child, so they are the interpreter's own figures. If the child dies, the
call raises `TfliteFileError` naming the signal; a LiteRT error inside the
child comes back as `TfliteFileError` too, with its first line; a call that
takes longer than `timeout` gets the child killed and one
`TfliteFileError` saying so.

Messages between the two processes are a JSON header and numpy arrays
(`.npy`, loaded with `allow_pickle=False`): nothing the child sends is
executed by the parent.
"""

from __future__ import annotations

import contextlib
import io
import json
import signal
import socket
import struct
import time
import weakref
from pathlib import Path

import numpy as np

from tfgreen import errors
from tfgreen.errors import TfliteFileError, message
from tfgreen.tflite import _forkserver

__all__ = ["IsolatedRunner", "serve", "vetted_runner"]

_MAX_HEADER = 1 << 24


def _send(sock: socket.socket, header: dict, arrays: list[np.ndarray]) -> None:
    buffer = io.BytesIO()
    for a in arrays:
        np.save(buffer, np.asarray(a), allow_pickle=False)
    head = json.dumps({**header, "_arrays": len(arrays)}).encode()
    sock.sendall(struct.pack("<IQ", len(head), buffer.tell()) + head + buffer.getvalue())


def _read_exact(sock: socket.socket, size: int, deadline: float | None) -> bytes:
    data = bytearray(size)
    view, done = memoryview(data), 0
    while done < size:
        if deadline is not None:
            sock.settimeout(max(deadline - time.monotonic(), 1e-3))
        got = sock.recv_into(view[done:])
        if not got:
            raise EOFError
        done += got
    return bytes(data)


def _receive(sock: socket.socket, deadline: float | None = None) -> tuple[dict, list[np.ndarray]]:
    head_size, payload_size = struct.unpack("<IQ", _read_exact(sock, 12, deadline))
    if head_size > _MAX_HEADER:
        raise ValueError("header too large")
    header = json.loads(_read_exact(sock, head_size, deadline))
    payload = io.BytesIO(_read_exact(sock, payload_size, deadline) if payload_size else b"")
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
    if op == "time_loop":
        return {"result": runner.time_loop(arrays, **header["options"])}, []
    if op == "tensor_shapes":
        return {"result": {str(k): v for k, v in runner.tensor_shapes().items()}}, []
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


def serve(stdin: socket.socket, stdout: socket.socket) -> int:
    """The child's loop: builds a `TfliteRunner`, answers calls until the caller closes.

    Args:
        stdin: Socket the requests come on.
        stdout: Socket the answers go to (the same socket, usually).

    Returns:
        `0` when the caller closed its end.
    """
    from tfgreen.tflite.runner import TfliteRunner

    runner = None
    while True:
        try:
            header, arrays = _receive(stdin)
        except (EOFError, OSError):
            return 0
        try:
            if header["op"] == "init":
                model = header.get("path") or arrays[0].tobytes()
                runner = TfliteRunner(model, **header["options"])
                reply, answer = {}, []
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
        timeout: Seconds each call (loading the file, one `predict`, one
            `latency_ms`...) may take; past it the child is killed and the
            call raises `TfliteFileError`, and the runner is closed. `None`
            waits. Defaults to `600`.

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
        from tfgreen._validate import number, positive_int
        from tfgreen.tflite.read import existing_tflite

        positive_int("num_threads", num_threads, example=1)
        if timeout is not None:
            number("timeout", timeout, minimum=0, exclusive_minimum=True, example=600)
        if isinstance(model, (bytes, bytearray)):
            header, arrays = {}, [np.frombuffer(bytes(model), dtype="uint8")]
        else:
            header, arrays = {"path": str(existing_tflite(model))}, []
        self.timeout = timeout
        self._sock, theirs = socket.socketpair()
        try:
            self._pid = _forkserver.spawn(theirs)
        except OSError as error:
            raise TfliteFileError(
                message(
                    "Could not start the isolated process that runs LiteRT",
                    "a working fork server (tfgreen.tflite._forkserver)",
                    "Check that this system allows fork() and Unix sockets",
                    error=str(error),
                )
            ) from error
        finally:
            theirs.close()
        self._finalizer = weakref.finalize(self, _stop, self._sock, self._pid)
        options = {
            "num_threads": num_threads,
            "reference": reference,
            "xnnpack": xnnpack,
            "preserve_all_tensors": preserve_all_tensors,
        }
        self._call({"op": "init", **header, "options": options}, arrays)

    def _call(self, header: dict, arrays: list[np.ndarray]) -> tuple[dict, list[np.ndarray]]:
        if not self._finalizer.alive:
            raise TfliteFileError(
                message(
                    "The isolated LiteRT process of this runner is gone",
                    "a runner that was not closed, timed out or crashed",
                    "Make a new IsolatedRunner",
                    operation=header["op"],
                )
            )
        deadline = None if self.timeout is None else time.monotonic() + self.timeout
        try:
            self._sock.settimeout(self.timeout)
            _send(self._sock, header, arrays)
            reply, answer = _receive(self._sock, deadline)
        except TimeoutError:
            self._finalizer.detach()
            _forkserver.kill(self._pid)
            _stop(self._sock, self._pid, status=True)
            raise TfliteFileError(
                message(
                    "LiteRT did not finish in time (in an isolated process, now killed)",
                    f"one call within {self.timeout:g} s",
                    "Check the file's origin (it may be hostile or far too large), "
                    "or pass a larger timeout",
                    operation=header["op"],
                    timeout=self.timeout,
                )
            ) from None
        except (EOFError, OSError, struct.error, ValueError):
            self._finalizer.detach()
            code = _stop(self._sock, self._pid, status=True)
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
        figures = self.time_loop(x, runs=runs, warmup=warmup, progress=progress)
        return {key: figures[key] for key in ("p50", "p90", "mean")}

    def time_loop(
        self,
        x,
        runs: int | None = 50,
        warmup: int = 5,
        seconds: float | None = None,
        end_to_end: bool = False,
        progress: bool = False,
    ) -> dict:
        """`TfliteRunner.time_loop`, timed inside the child (no pipe in the timed calls)."""
        options = {
            "runs": runs,
            "warmup": warmup,
            "seconds": seconds,
            "end_to_end": end_to_end,
            "progress": progress,
        }
        return self._call({"op": "time_loop", "options": options}, self._arrays(x))[0]["result"]

    def tensor_shapes(self) -> dict[int, list[int]]:
        """`TfliteRunner.tensor_shapes`, from the child."""
        shapes = self._call({"op": "tensor_shapes"}, [])[0]["result"]
        return {int(k): [int(v) for v in shape] for k, shape in shapes.items()}

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


def _stop(sock: socket.socket, pid: int, status: bool = False) -> int | None:
    """Closes the runner's socket; with `status`, returns how the child ended (killed after 5 s).

    Without `status` (a normal close) the child, reading end-of-file, exits on
    its own and the server reaps it: no waiting.
    """
    with contextlib.suppress(OSError):
        sock.close()
    try:
        if not status:
            _forkserver.free(pid)
            return None
        return _forkserver.wait(pid, 5.0)
    except OSError:
        return -signal.SIGKILL


def vetted_runner(model: str | Path | bytes, num_threads: int = 1):
    """The runner for a file: in-process only if this process exported it itself.

    Bytes that `export_tflite` wrote in this process (after running them in
    a child in its checks; `tfgreen.tflite.verify.is_verified`), with a
    matching manifest when given as a path, run in a `TfliteRunner` in the
    caller's process. Every other file gets an `IsolatedRunner`. Both have
    `predict`, `time_loop` (timed where the interpreter runs, so no pipe is
    in the timed calls), `sample_inputs`, `tensor_shapes`, `inputs` and
    `outputs`; `benchmarks/bench_isolation.py` measures that the two
    give the same latency for the same file.

    Args:
        model: Path to a `.tflite` file, or its bytes.
        num_threads: Interpreter threads. Defaults to `1`.

    Returns:
        A `TfliteRunner` or an `IsolatedRunner`.
    """
    from tfgreen.tflite.read import existing_tflite
    from tfgreen.tflite.runner import TfliteRunner
    from tfgreen.tflite.verify import check_manifest, is_verified

    if isinstance(model, (bytes, bytearray)):
        data, manifest = bytes(model), "ok"
    else:
        path = existing_tflite(model)
        data = path.read_bytes()
        manifest = check_manifest(path, data)  # a mismatching set is refused here
    if manifest == "ok" and is_verified(data):
        return TfliteRunner(data, num_threads=num_threads)
    return IsolatedRunner(data, num_threads=num_threads)
