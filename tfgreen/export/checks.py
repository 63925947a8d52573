"""Checks run on an exported `.tflite` file, kept in a registry.

`CHECKS` maps each check's name to one function. The function takes a
`CheckContext` (the model, the target, the file, the samples) and returns its
figures: a dict with `passed` (`True`, `False`, or `None` when it could not
run) and what it measured, or `None` when the check does not apply to the
target. `run_checks` runs every registered check and marks those the target
lists in `strict`; `raise_strict` refuses the file when a strict one failed.
A new check is one function plus one line in `CHECKS` (see
docs/architecture.md, "Adding a check or a target").
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Any

import numpy as np

from tfgreen import _lm, _metrics
from tfgreen._metrics import float_list
from tfgreen.errors import TargetError, TfliteFileError, message
from tfgreen.export.kernels import kernel_runs, max_lsb_difference
from tfgreen.perplexity import next_token_nll
from tfgreen.tflite.read import TfliteModelInfo, float_ops, tensor_details

if TYPE_CHECKING:
    from tfgreen.export.targets import Target
    from tfgreen.quantization.calibration import CalibrationSet

__all__ = [
    "CHECKS",
    "CheckContext",
    "run_checks",
    "raise_strict",
    "parity",
    "accuracy",
]

_TOKEN_DTYPES = ("int32", "int64")
# `weights`: quantizations that store int8 (or int4) weights, the size from which a constant
# counts as a weight, and the share of weight elements that must be int8 or int4.
_INT8_WEIGHTS = ("dynamic", "int4", "int8", "int16x8")
_WEIGHT_ELEMENTS = 256
_MIN_INT8_SHARE = 0.5
_REFERENCE_SAMPLES = 100
_LATENCY_RUNS = 20
_KERAS_CHUNK = 256


def _predict_keras(model, arrays: list[np.ndarray]) -> list[np.ndarray]:
    """The Keras model's outputs, called eagerly in chunks (cheaper than `predict` here)."""
    chunks = []
    for start in range(0, len(arrays[0]), _KERAS_CHUNK):
        part = [a[start : start + _KERAS_CHUNK] for a in arrays]
        chunks.append(float_list(model(part[0] if len(part) == 1 else part, training=False)))
    return [np.concatenate([c[i] for c in chunks]) for i in range(len(chunks[0]))]


@dataclass
class CheckContext:
    """What a check looks at; the figures several checks share are computed once.

    Attributes:
        model: The Keras model that was converted.
        target: The `Target`, with the quantization actually used.
        data: The `.tflite` bytes.
        info: `data` parsed with `read_tflite`.
        samples: Validation samples, else calibration samples, else `None`.
        reconvert: Converts the model again exactly as `data` was made.
        language_model: Whether the model is a language model (`tfgreen._lm`):
            its samples are token-id windows, parity compares the next-token
            logits position by position, and the `perplexity` check runs.
    """

    model: Any
    target: Target
    data: bytes
    info: TfliteModelInfo
    samples: CalibrationSet | None = None
    reconvert: Callable[[], bytes] | None = None
    language_model: bool = False

    @property
    def integer(self) -> bool:
        """Whether the file was quantized to integer activations."""
        return self.target.quantization in ("int8", "int16x8")

    @cached_property
    def inputs(self) -> list[dict]:
        """`tensor_details` of the file's inputs."""
        return tensor_details(self.info, self.info.inputs)

    @cached_property
    def outputs(self) -> list[dict]:
        """`tensor_details` of the file's outputs."""
        return tensor_details(self.info, self.info.outputs)

    @cached_property
    def output_scales(self) -> list[float | None]:
        """Quantization scale of each output, `None` for float outputs."""
        return [t["scale"] if isinstance(t["scale"], float) else None for t in self.outputs]

    @cached_property
    def runner(self):
        """An `IsolatedRunner` on the file (LiteRT, optimized kernels, child process)."""
        from tfgreen.tflite.isolated import IsolatedRunner

        return IsolatedRunner(self.data)

    @cached_property
    def keras_outputs(self) -> list[np.ndarray]:
        """The Keras model's outputs on `samples`, one array per output."""
        return _predict_keras(self.model, self.samples.arrays)

    @cached_property
    def tflite_outputs(self) -> list[np.ndarray]:
        """The file's (dequantized) outputs on `samples`, one array per output."""
        return float_list(self.runner.predict(self.samples.arrays))

    @cached_property
    def parity(self) -> dict | None:
        """`parity` of the file against the Keras model on `samples`; `None` without samples."""
        if self.samples is None:
            return None
        expected, actual = self.keras_outputs, self.tflite_outputs
        if self.language_model:  # one prediction per position
            expected, actual = ([o.reshape(-1, o.shape[-1]) for o in x] for x in (expected, actual))
        return parity(expected, actual, self.output_scales)

    @cached_property
    def accuracy(self) -> tuple[float | None, float | None]:
        """`(file, keras)` top-1 accuracy on the labelled samples, `(None, None)` without labels."""
        if self.samples is None or self.samples.labels is None:
            return None, None
        kind = _metrics.output_kind(self.keras_outputs[0])
        labels = self.samples.labels
        return (
            accuracy(self.tflite_outputs, labels, kind),
            accuracy(self.keras_outputs, labels, kind),
        )

    def latency_ms(self) -> float:
        """Median single-sample latency of the file with LiteRT (1 thread), in ms."""
        example = [
            np.zeros([d if d > 0 else 1 for d in t["shape"]], "float32") for t in self.inputs
        ]
        return self.runner.latency_ms(example, runs=_LATENCY_RUNS)["p50"]


def parity(expected, actual, scales: list[float | None]) -> dict:
    """Compares the Keras model's outputs with the file's (dequantized) outputs.

    Top-1 follows `tfgreen._metrics` (the kind of a single-column output is
    decided from `expected`), so export and `compare` agree.

    Args:
        expected: The Keras model's outputs (an array or a list, one per output).
        actual: The `.tflite` file's outputs on the same inputs.
        scales: Quantization scale of each output of the file, `None` for float.

    Returns:
        `top1_agreement` (fraction of samples with the same top class),
        `cosine` (mean per-sample cosine similarity), `max_abs_error` (in
        output quantization steps when the output is quantized, else in
        output units), `units` (`"lsb"` or `"float"`), and `samples`. With
        several outputs, each figure is the worst over the outputs.

    Example:
    >>> import numpy as np
    >>> keras_out = np.array([[0.1, 0.9], [0.8, 0.2]])
    >>> figures = parity(keras_out, np.array([[0.2, 0.8], [0.7, 0.3]]), [None])
    >>> figures["top1_agreement"], round(figures["max_abs_error"], 3), figures["units"]
    (1.0, 0.1, 'float')
    """
    agreements, cosines, errors = [], [], []
    units = "float"
    for want, got, scale in zip(float_list(expected), float_list(actual), scales, strict=True):
        agreements.append(_metrics.top1_agreement(want, got))
        a, b = want.reshape(len(want), -1), got.reshape(len(got), -1)
        norms = np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1)
        dots = np.sum(a * b, axis=1)
        same = np.all(np.isclose(a, b), axis=1)
        cosine = np.where(norms > 0, dots / np.where(norms > 0, norms, 1.0), same.astype(float))
        cosines.append(float(np.mean(cosine)))
        error = float(np.max(np.abs(a - b))) if a.size else 0.0
        if scale:
            error, units = error / scale, "lsb"
        errors.append(error)
    return {
        "top1_agreement": min(agreements),
        "cosine": min(cosines),
        "max_abs_error": max(errors),
        "units": units,
        "samples": int(len(float_list(expected)[0])),
    }


def accuracy(outputs, labels: np.ndarray, kind: str | None = None) -> float:
    """Top-1 accuracy of the first output against class-index labels (`tfgreen._metrics`).

    Args:
        outputs: Model outputs (an array or a list, one per output).
        labels: Class indices, `[n]`.
        kind: `"logits"` or `"probabilities"` for a single-column output,
            decided from the values when `None`. Defaults to `None`.

    Returns:
        The accuracy.

    Example:
    >>> import numpy as np
    >>> accuracy(np.array([[-0.3], [2.0]]), np.array([0, 1]))
    1.0
    """
    return _metrics.accuracy(float_list(outputs)[0], labels, kind)


def _check_float_ops(context: CheckContext) -> dict:
    """Every op runs in the target's number format: ops left in float only where allowed."""
    left = sorted(set(float_ops(context.info)))
    allowed = context.target.allow_float_ops or not context.integer
    return {"passed": allowed or not left, "ops": left}


def _token_inputs(context: CheckContext) -> list[str]:
    """Names of the file's token-id inputs: int32/int64 inputs of a model with integer inputs."""
    integer_model = any(_lm.is_integer(t) for t in context.model.inputs)
    return [t["name"] for t in context.inputs if integer_model and t["dtype"] in _TOKEN_DTYPES]


def _check_io_dtypes(context: CheckContext) -> dict:
    """The file's inputs and outputs have the target's dtypes (token-id inputs stay int32)."""
    target = context.target
    want_in = target.input_dtype if context.integer else "float32"
    want_out = target.output_dtype if context.integer else "float32"
    tokens = _token_inputs(context)
    inputs = [t["dtype"] for t in context.inputs]
    outputs = [t["dtype"] for t in context.outputs]
    judged = [t["dtype"] for t in context.inputs if t["name"] not in tokens]
    return {
        "passed": all(d == want_in for d in judged) and all(d == want_out for d in outputs),
        "inputs": inputs,
        "outputs": outputs,
        "token_inputs": tokens,
        "expected": [want_in, want_out],
    }


def _check_size(context: CheckContext) -> dict:
    """The file fits the target's size budget."""
    budget = context.target.size_budget_bytes
    size = len(context.data)
    return {"passed": budget is None or size <= budget, "size_bytes": size, "budget_bytes": budget}


def _check_parity(context: CheckContext) -> dict:
    """The file's outputs stay close to the Keras model's (top-1 agreement and cosine)."""
    figures = context.parity
    if figures is None:
        return {"passed": None, "skipped": "no calibration_data or validation_data"}
    target = context.target
    return {
        "passed": figures["top1_agreement"] >= target.min_top1_agreement
        and figures["cosine"] >= target.min_cosine,
        **figures,
        "min_top1_agreement": target.min_top1_agreement,
        "min_cosine": target.min_cosine,
    }


def _check_weights(context: CheckContext) -> dict | None:
    """Weight tensors are stored in int8 in a dynamic or integer file (int4 ones too for
    "int4", which must hold some)."""
    quantization = context.target.quantization
    if quantization not in _INT8_WEIGHTS:
        return None
    sizes: dict[str, int] = {}
    for tensor in context.info.tensors:
        count = int(np.prod(tensor.shape)) if tensor.shape else 1
        if tensor.is_constant and count >= _WEIGHT_ELEMENTS and tensor.dtype != "bool":
            sizes[tensor.dtype] = sizes.get(tensor.dtype, 0) + count
    total = sum(sizes.values())
    share = sizes.get("int8", 0) / total if total else 1.0
    if quantization != "int4":
        return {"passed": share >= _MIN_INT8_SHARE, "int8_share": share, "elements": sizes}
    int4 = sizes.get("int4", 0) / total if total else 0.0
    return {
        "passed": int4 > 0 and share + int4 >= _MIN_INT8_SHARE,
        "int8_share": share,
        "int4_share": int4,
        "elements": sizes,
    }


def _check_perplexity(context: CheckContext) -> dict | None:
    """A language model keeps its perplexity and next-token predictions in the file."""
    if not context.language_model or context.samples is None:
        return None
    ids = context.samples.arrays[0]
    figures = {}
    for side, outputs in (("keras", context.keras_outputs), ("tflite", context.tflite_outputs)):
        total, count = next_token_nll(outputs[0], ids)
        figures[side] = float(np.exp(total / count))
    target = context.target
    ratio = figures["tflite"] / figures["keras"]
    agreement = context.parity["top1_agreement"]
    return {
        "passed": ratio <= target.max_perplexity_ratio
        and agreement >= target.min_next_token_agreement,
        **figures,
        "ratio": ratio,
        "next_token_agreement": agreement,
        "max_perplexity_ratio": target.max_perplexity_ratio,
        "min_next_token_agreement": target.min_next_token_agreement,
        "windows": int(len(ids)),
    }


def _check_reference_kernels(context: CheckContext) -> dict | None:
    """Optimized and reference kernels agree within the target's LSB limit."""
    limit = context.target.max_reference_lsb
    if limit is None or context.samples is None:
        return None
    count = min(context.samples.count, _REFERENCE_SAMPLES)
    head = [a[:count] for a in context.samples.arrays]
    try:
        # One reference run gives both the per-op differences and the outputs.
        kernels, reference = kernel_runs(context.data, context.info, head)
    except TfliteFileError as error:
        # LiteRT's reference kernels abort on some valid files (an int8 SOFTMAX over
        # 1000 classes; one whose input step is below ~1.5e-8, as in an untrained
        # MobileNetV2 whose logits are ~1e-10); the isolated runner turns that into this.
        raise TargetError(
            message(
                f"LiteRT's reference kernels could not run the converted file, so target "
                f"{context.target.name!r} cannot check optimized against reference kernels",
                "a model whose ops the reference kernels run (known to abort: int8 SOFTMAX "
                "over 1000 classes, or over logits with a quantization step below ~1.5e-8, "
                "as an untrained model gives)",
                "Use a target without a reference-kernel limit (for example 'edge-cpu'), or "
                "end the model with logits (no softmax) and apply softmax on the device",
                error=str(error).split(". ")[0],
            )
        ) from error
    return {
        "passed": kernels["max_lsb"] <= limit,
        **kernels,
        "limit_lsb": limit,
        # The file's XNNPACK outputs on these samples were computed for parity already.
        "xnnpack_output_max_lsb": max_lsb_difference(
            [o[:count] for o in context.tflite_outputs], reference, context.output_scales
        ),
    }


def _check_deterministic(context: CheckContext) -> dict | None:
    """Converting again gives the same bytes."""
    if not context.target.deterministic:
        return None
    identical = context.reconvert() == context.data
    return {"passed": identical, "identical": identical}


# The registry: check name -> function(CheckContext) -> figures (or None: does not apply).
CHECKS: dict[str, Callable[[CheckContext], dict | None]] = {
    "float_ops": _check_float_ops,
    "io_dtypes": _check_io_dtypes,
    "parity": _check_parity,
    "perplexity": _check_perplexity,
    "weights": _check_weights,
    "size": _check_size,
    "reference_kernels": _check_reference_kernels,
    "deterministic": _check_deterministic,
}


def run_checks(context: CheckContext) -> dict[str, dict]:
    """Runs every registered check on a file.

    Args:
        context: The `CheckContext` of the export.

    Returns:
        Check name -> `{"passed", "strict", ...figures}`, for the checks that apply.
    """
    results = {}
    for name, check in CHECKS.items():
        figures = check(context)
        if figures is not None:
            results[name] = {
                "passed": figures["passed"],
                "strict": name in context.target.strict,
                **figures,
            }
    return results


def _requirement(check) -> str:
    doc = (getattr(check, "__doc__", None) or "").strip()
    return doc.splitlines()[0].rstrip(".") if doc else "see the figures"


_NOT_FIGURES = ("passed", "strict", "worst_tensors")


def _named_tensors(failed: dict[str, dict]) -> dict:
    """`worst_tensors` of the failed checks as one line per tensor, listed first."""
    worst = [t for r in failed.values() for t in r.get("worst_tensors", ())]
    if not worst:
        return {}
    # The last parts of a tensor's name say where it is; the model prefix repeats.
    return {
        "worst_tensors": [
            f"{t['op']} {'/'.join(t['tensor'].split('/')[-2:])} ({t['rmse_steps']} steps)"
            for t in worst
        ]
    }


def raise_strict(target: Target, results: dict[str, dict]) -> None:
    """Raises `TargetError` naming every strict check that failed, with its figures.

    Args:
        target: The target the checks ran for.
        results: What `run_checks` returned.
    """
    failed = {name: r for name, r in results.items() if r["strict"] and r["passed"] is False}
    if failed:
        # A check's docstring says what it requires; the message quotes it.
        reasons = "; ".join(f"{name}: {_requirement(CHECKS.get(name))}" for name in failed)
        raise TargetError(
            message(
                f"The exported file does not meet target '{target.name}': "
                f"check(s) {', '.join(failed)} failed ({reasons})",
                "every strict check of the target to pass",
                "See the measured values; change the model, the data, or use a less strict target",
                **_named_tensors(failed),
                **{
                    name: {k: v for k, v in r.items() if k not in _NOT_FIGURES}
                    for name, r in failed.items()
                },
            )
        )
