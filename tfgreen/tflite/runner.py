"""Runs `.tflite` files with the LiteRT interpreter (`ai_edge_litert`).

`TfliteRunner` feeds float inputs to any file, quantizing them with the
input tensor's scale and zero point when the file takes integers, and gives
float outputs back, dequantized. It times single-sample invocations for
latency figures.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from tfgreen._timing import time_calls
from tfgreen._validate import positive_int
from tfgreen.errors import TfgreenValueError, TfliteFileError, message
from tfgreen.tflite.read import existing_tflite

__all__ = ["TfliteRunner", "quantize_array", "dequantize_array"]

# Interpreters a runner keeps, one per input shape (a batch size and the last, smaller batch).
_INTERPRETERS = 4


def _shapes(shapes) -> tuple[tuple[int, ...], ...]:
    """Input shapes as a hashable key (one tuple of ints per input)."""
    return tuple(tuple(int(v) for v in shape) for shape in shapes)


def quantize_array(x: np.ndarray, detail: dict) -> np.ndarray:
    """Casts a float array to a tensor's dtype, quantizing with its scale/zero point."""
    dtype = np.dtype(detail["dtype"])
    scale, zero_point = detail.get("quantization", (0.0, 0))
    if not np.issubdtype(dtype, np.integer):
        return np.asarray(x, dtype=dtype)
    if not scale:
        return np.asarray(x, dtype=dtype)
    info = np.iinfo(dtype)
    q = np.round(np.asarray(x, dtype="float64") / scale + zero_point)
    return np.clip(q, info.min, info.max).astype(dtype)


def dequantize_array(q: np.ndarray, detail: dict) -> np.ndarray:
    """Converts a tensor's values back to float32 with its scale/zero point."""
    scale, zero_point = detail.get("quantization", (0.0, 0))
    if np.issubdtype(q.dtype, np.integer) and scale:
        return ((q.astype("float32") - zero_point) * scale).astype("float32")
    return q.astype("float32")


class TfliteRunner:
    """Runs a `.tflite` model on float inputs with the LiteRT interpreter.

    Args:
        model: Path to a `.tflite` file, or its bytes.
        num_threads: Interpreter threads. Defaults to `1`.
        reference: Use LiteRT's reference kernels instead of the optimized
            ones (XNNPACK off). Defaults to `False`.
        xnnpack: With the optimized kernels, let LiteRT apply its default
            XNNPACK delegate; `False` runs LiteRT's own optimized builtin
            kernels only. Defaults to `True`.
        preserve_all_tensors: Keep every intermediate tensor readable after
            an invocation (see `raw_tensors`); for checks, not for speed.
            Defaults to `False`.

    Each input shape gets its own interpreter, sized before it first
    allocates, instead of resizing one that has run: with the XNNPACK
    delegate (ai_edge_litert 2.3), an int8 language model resized from batch 1 to
    32 after its first allocation returned wrong logits for every row past
    the 16th, while a fresh interpreter of batch 32 matches batch 1 exactly.
    The runner keeps the last few interpreters (a batch and its remainder).

    Example:
    ```python
    runner = TfliteRunner("out/model.tflite")
    probabilities = runner.predict(x_test)
    runner.latency_ms(x_test[:1], runs=50)["p50"]
    ```
    """

    def __init__(
        self,
        model: str | Path | bytes,
        num_threads: int = 1,
        reference: bool = False,
        xnnpack: bool = True,
        preserve_all_tensors: bool = False,
    ):
        from ai_edge_litert.interpreter import OpResolverType

        if isinstance(model, (bytes, bytearray)):
            content = bytes(model)
        else:
            content = existing_tflite(model).read_bytes()
        positive_int("num_threads", num_threads, example=1)
        if reference:
            resolver = OpResolverType.BUILTIN_REF
        elif xnnpack:
            resolver = OpResolverType.AUTO
        else:
            resolver = OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES
        self._options = {
            "model_content": content,
            "num_threads": num_threads,
            "experimental_op_resolver_type": resolver,
            "experimental_preserve_all_tensors": preserve_all_tensors,
        }
        self._by_shape: dict[tuple, object] = {}
        try:
            self._use(self._interpreter(None))
        except (ValueError, RuntimeError) as error:
            raise TfliteFileError(
                message(
                    "LiteRT could not load the .tflite model",
                    "a valid TFLite flatbuffer",
                    "Re-export the model; the file may be truncated or corrupted",
                    error=str(error).splitlines()[0] if str(error) else type(error).__name__,
                )
            ) from error

    def _interpreter(self, shapes: tuple | None):
        """A new interpreter, its inputs sized to `shapes` before its first allocation."""
        from ai_edge_litert.interpreter import Interpreter

        interpreter = Interpreter(**self._options)
        if shapes is not None:
            for detail, shape in zip(interpreter.get_input_details(), shapes, strict=True):
                interpreter.resize_tensor_input(detail["index"], shape)
        interpreter.allocate_tensors()
        key = _shapes(d["shape"] for d in interpreter.get_input_details())
        if len(self._by_shape) >= _INTERPRETERS:
            self._by_shape.pop(next(iter(self._by_shape)))
        self._by_shape[key] = interpreter
        return interpreter

    def _use(self, interpreter) -> None:
        self.interpreter = interpreter
        self.inputs = interpreter.get_input_details()
        self.outputs = interpreter.get_output_details()

    def _set_inputs(self, sample: list[np.ndarray]) -> None:
        shapes = _shapes(x.shape for x in sample)
        if shapes != _shapes(d["shape"] for d in self.inputs):
            # One interpreter per input shape, sized before it first allocates: resizing
            # an allocated interpreter can go wrong under XNNPACK (see the class docstring).
            known = self._by_shape.get(shapes)
            self._use(known if known is not None else self._interpreter(shapes))
        for detail, x in zip(self.inputs, sample, strict=True):
            self.interpreter.set_tensor(detail["index"], quantize_array(x, detail))

    def _run(self, sample: list[np.ndarray]) -> None:
        try:
            self._set_inputs(sample)
            self.interpreter.invoke()
        except (ValueError, RuntimeError) as error:
            raise TfliteFileError(
                message(
                    "LiteRT could not run the .tflite model",
                    "a valid TFLite model and inputs of its shapes",
                    "Re-export the model; the file may be corrupted or hostile",
                    error=(str(error).splitlines() or [type(error).__name__])[0][:300],
                )
            ) from error

    def _invoke(self, sample: list[np.ndarray]) -> list[np.ndarray]:
        self._run(sample)
        return [dequantize_array(self.interpreter.get_tensor(d["index"]), d) for d in self.outputs]

    def _as_list(self, x) -> list[np.ndarray]:
        arrays = list(x) if isinstance(x, (list, tuple)) else [x]
        if len(arrays) != len(self.inputs):
            raise TfgreenValueError(
                message(
                    "Wrong number of inputs for the .tflite model",
                    f"{len(self.inputs)} input array(s)",
                    "Pass one array per model input, in order",
                    inputs=len(arrays),
                )
            )
        return [np.asarray(a) for a in arrays]

    def raw_tensors(self, sample, indices: list[int]) -> list[np.ndarray]:
        """Invokes once and returns tensors' raw values (integers stay integers).

        Args:
            sample: One batch of float inputs (an array or a list, one per input).
            indices: Tensor indices to read; intermediate tensors need
                `preserve_all_tensors=True`.

        Returns:
            One array per index, copied.
        """
        self._run(self._as_list(sample))
        return [np.array(self.interpreter.get_tensor(i)) for i in indices]

    def predict(self, x, batch_size: int = 1) -> np.ndarray | list[np.ndarray]:
        """Runs the model on a batch of float inputs.

        Args:
            x: An array (or a list of arrays for several inputs) whose first
                axis is the sample axis.
            batch_size: Samples per invocation. Defaults to `1`, which every
                file accepts (also static batch-1 files).

        Returns:
            The float outputs, an array (or a list for several outputs).
        """
        arrays = self._as_list(x)
        n = len(arrays[0])
        results: list[list[np.ndarray]] = []
        for start in range(0, n, batch_size):
            results.append(self._invoke([a[start : start + batch_size] for a in arrays]))
        outputs = [np.concatenate([r[i] for r in results]) for i in range(len(self.outputs))]
        return outputs[0] if len(outputs) == 1 else outputs

    def sample_inputs(self, random: bool = True, seed: int = 0) -> list[np.ndarray]:
        """One batch-1 array per model input, for timing and probing.

        Args:
            random: Seeded standard-normal floats; `False` gives zeros.
                Integer inputs that are not quantized (token ids) always get
                zeros, a valid id. Defaults to `True`.
            seed: Seed of the random values. Defaults to `0`.

        Returns:
            One float32 (or int32 for token ids) array per input.
        """
        rng = np.random.default_rng(seed)
        arrays = []
        for detail in self.inputs:
            shape = [d if d > 0 else 1 for d in detail["shape_signature"]]
            ids = (
                np.issubdtype(np.dtype(detail["dtype"]), np.integer)
                and not detail["quantization"][0]
            )
            if ids:
                arrays.append(np.zeros(shape, detail["dtype"]))
            else:
                values = rng.standard_normal(shape) if random else np.zeros(shape)
                arrays.append(values.astype("float32"))
        return arrays

    def latency_ms(
        self, x, runs: int = 50, warmup: int = 5, progress: bool = False
    ) -> dict[str, float]:
        """Times single invocations on one sample (`tfgreen._timing.time_calls`).

        Args:
            x: One batch of inputs (the first sample is used).
            runs: Timed invocations. Defaults to `50`.
            warmup: Untimed invocations first. Defaults to `5`.
            progress: Show a progress bar (tqdm) on stderr. Defaults to `False`.

        Returns:
            `{"p50": ..., "p90": ..., "mean": ...}` in milliseconds.
        """
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
        """`tfgreen._timing.time_calls` on the one inference of `timed_call`.

        Args:
            x: One batch of inputs (the first sample is used).
            runs: Timed calls; `None` runs for `seconds`. Defaults to `50`.
            warmup: Untimed calls first. Defaults to `5`.
            seconds: With `runs=None`, how long the loop runs. Defaults to `None`.
            end_to_end: Time `predict` on the sample (host-side quantization
                of the I/O included) instead of `invoke()` alone. Defaults to `False`.
            progress: Show a progress bar (tqdm) on stderr. Defaults to `False`.

        Returns:
            `time_calls`'s figures.
        """
        sample = [a[:1] for a in self._as_list(x)]
        call = (lambda: self.predict(sample)) if end_to_end else self.timed_call(sample)
        return time_calls(call, runs=runs, warmup=warmup, seconds=seconds, progress=progress)

    def tensor_shapes(self) -> dict[int, list[int]]:
        """Every tensor's shape after the last invocation, by tensor index."""
        return {
            int(d["index"]): [int(v) for v in d["shape"]]
            for d in self.interpreter.get_tensor_details()
        }

    def timed_call(self, x) -> Callable[[], None]:
        """The one inference that latency and energy figures time (see `latency_ms`).

        The inputs are set once from the first sample (quantized for an
        integer file); the returned call runs only `interpreter.invoke()`, as
        a device does. Host-side I/O conversion is what `predict` adds.

        Args:
            x: One batch of inputs (the first sample is used).

        Returns:
            A function of no arguments running one invocation.
        """
        self._run([a[:1] for a in self._as_list(x)])  # one checked run first
        return self.interpreter.invoke
