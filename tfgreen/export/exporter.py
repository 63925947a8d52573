"""`export_tflite`: a Keras model to a checked `.tflite` file for a device target.

The model is converted with the target's quantization, I/O dtypes and shapes,
then the file is checked: its ops (and which stay in float), I/O dtypes,
shapes, scales and zero points, parity with the Keras model, weight sparsity,
size against the target's budget, and for strict targets the reference
kernels and byte-identical reconversion. The `.tflite` file, its manifest
`<path>.json` (and for `mcu` a C array) are staged and renamed into place only
when everything passed, so an interrupted export never leaves a partial file.
"""

from __future__ import annotations

import dataclasses
import hashlib
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from tfgreen.errors import (
    CalibrationError,
    TargetError,
    TfgreenError,
    TfgreenTypeError,
    TfgreenValueError,
    message,
)
from tfgreen.export import checks
from tfgreen.export import manifest as _manifest
from tfgreen.export.targets import Target, get_target
from tfgreen.flavor import flavor_of
from tfgreen.quantization.calibration import prepare_calibration, prepare_validation
from tfgreen.quantization.ptq import check_quantization, convert
from tfgreen.tflite.read import read_tflite

__all__ = ["ExportReport", "export_tflite"]

_LATENCY_RUNS = 20
_REFERENCE_SAMPLES = 100


@dataclass
class ExportReport:
    """What `export_tflite` wrote and what its checks measured.

    Attributes:
        path: The `.tflite` file.
        size_bytes: Its size.
        sha256: Its SHA-256 (hex).
        target: Name of the target.
        quantization: Quantization used.
        inputs: Per input: name, dtype, shape, scale, zero_point.
        outputs: Per output: name, dtype, shape, scale, zero_point.
        ops: Op names in execution order.
        float_ops: Ops left computing in float.
        parity: `top1_agreement`, `cosine`, `max_abs_error` (in output
            quantization steps for quantized outputs), `units`, `samples`;
            `None` without data.
        accuracy: Top-1 accuracy of the file on the validation labels, or `None`.
        keras_accuracy: Top-1 accuracy of the Keras model on the same samples.
        latency_ms: Median single-sample latency with LiteRT (1 thread).
        sparsity: Fraction of zeros over the file's weight tensors.
        checks: Check name -> `{"passed", "strict", ...measured figures}`.
        manifest_path: The manifest JSON written beside the file.
        files: Every file written (`.tflite`, manifest, C array).
        calibration: `{"count", "sha256"}` of the calibration samples, or `None`.
    """

    path: str
    size_bytes: int
    sha256: str
    target: str
    quantization: str
    inputs: list[dict]
    outputs: list[dict]
    ops: list[str]
    float_ops: list[str]
    parity: dict | None
    accuracy: float | None
    keras_accuracy: float | None
    latency_ms: float
    sparsity: float | None
    checks: dict[str, dict]
    manifest_path: str
    files: list[str] = field(default_factory=list)
    calibration: dict | None = None

    @property
    def passed(self) -> bool:
        """Whether every check that ran passed."""
        return all(c["passed"] is not False for c in self.checks.values())

    def to_dict(self) -> dict:
        """The report as a JSON-ready dict."""
        return dataclasses.asdict(self)


def _bad(what: str, expected: str, fix: str, **received) -> TfgreenValueError:
    return TfgreenValueError(message(what, expected, fix, **received))


def _check_path(path) -> Path:
    if not isinstance(path, (str, Path)) or not str(path):
        raise TfgreenTypeError(
            message(
                "`path` must be a file path",
                "a str or Path ending in .tflite",
                "Pass for example path='out/model.tflite'",
                path=path,
            )
        )
    path = Path(path)
    if path.suffix != ".tflite":
        raise _bad(
            "`path` must end in .tflite",
            "a path like out/model.tflite",
            "Use the .tflite suffix",
            path=str(path),
        )
    if path.is_dir():
        raise _bad(
            "`path` is a folder",
            "a file path",
            "Pass a file name inside the folder",
            path=str(path),
        )
    for parent in path.parents:
        if parent.exists():
            if not parent.is_dir():
                raise _bad(
                    "A parent of `path` is a file",
                    "a path whose parents are folders",
                    "Choose another output folder",
                    path=str(path),
                )
            break
    return path


def _resolve_model(model):
    if isinstance(model, (str, Path)):
        from tfgreen.loading import load_model

        model = load_model(model, compile=False)
    flavor_of(model)
    try:
        _ = model.inputs
    except (AttributeError, ValueError) as error:
        raise _bad(
            "The model is not built",
            "a model with known inputs",
            "Call the model on data or build it with an Input first",
            model=getattr(model, "name", type(model).__name__),
        ) from error
    if not model.inputs:
        raise _bad(
            "The model is not built",
            "a model with known inputs",
            "Build it with keras.Input(...) first",
            model=model.name,
        )
    return model


def _effective_target(target: Target, quantization: str | None) -> Target:
    if quantization is None or quantization == target.quantization:
        return target
    check_quantization(quantization)
    integer_io = target.input_dtype != "float32" or target.output_dtype != "float32"
    if integer_io and quantization not in ("int8", "int16x8"):
        raise TargetError(
            message(
                f"Target '{target.name}' needs {target.input_dtype}/{target.output_dtype} "
                f"inputs/outputs, which quantization '{quantization}' cannot give",
                "quantization='int8' (or None for the target's default)",
                "Leave quantization=None, or choose a float target such as 'cpu' or 'edge-gpu'",
                quantization=quantization,
                target=target.name,
            )
        )
    return dataclasses.replace(target, quantization=quantization)


def _convert(model, target: Target, calibration) -> bytes:
    integer = target.quantization in ("int8", "int16x8")
    io_dtype = target.input_dtype if integer else None
    output_dtype = target.output_dtype if integer else None
    kwargs = dict(
        representative=calibration.representative()
        if calibration is not None and integer
        else None,
        io_dtype=io_dtype,
        output_dtype=output_dtype,
        batch_size=1 if target.static_shapes else None,
        per_channel_dense=target.per_channel_dense,
    )
    try:
        return convert(model, target.quantization, allow_float_ops=target.allow_float_ops, **kwargs)
    except TfgreenError:
        raise
    except Exception as error:  # the converter raises many kinds; name the reason below
        text = str(error)
        if integer and calibration is None and "representative" in text:
            raise CalibrationError(
                message(
                    f"Quantization '{target.quantization}' needs calibration data for this model",
                    "calibration_data: ~200 training samples (not needed for QAT models)",
                    "Pass calibration_data=x_train[:200]",
                    calibration_data=None,
                )
            ) from error
        if not target.allow_float_ops:
            # Name the ops that have no integer kernel: convert with float fallback and look.
            try:
                relaxed = convert(model, target.quantization, allow_float_ops=True, **kwargs)
                left = checks.float_ops(read_tflite(relaxed))
            except Exception:  # noqa: BLE001 - the original error is the one to report
                left = []
            raise TargetError(
                message(
                    f"The model cannot be converted to all-integer ops for target '{target.name}'",
                    "every op with an integer kernel",
                    "Replace these ops/layers, or use a target that allows float ops "
                    "such as 'edge-cpu'",
                    ops=sorted(set(left)) or None,
                    converter=text.strip().splitlines()[-1][:300]
                    if text.strip()
                    else type(error).__name__,
                )
            ) from error
        raise TargetError(
            message(
                f"The TFLite converter failed for target '{target.name}'",
                "a model the converter supports",
                "Check the converter message; simplify or replace the named layer",
                converter=text.strip().splitlines()[-1][:300]
                if text.strip()
                else type(error).__name__,
            )
        ) from error


def _predict_keras(model, arrays: list[np.ndarray]):
    """The Keras model's outputs, called eagerly in chunks (cheaper than `predict` here)."""
    chunks = []
    for start in range(0, len(arrays[0]), 256):
        part = [a[start : start + 256] for a in arrays]
        out = model(part[0] if len(part) == 1 else part, training=False)
        chunks.append(
            [np.asarray(o) for o in out] if isinstance(out, (list, tuple)) else [np.asarray(out)]
        )
    outputs = [np.concatenate([c[i] for c in chunks]) for i in range(len(chunks[0]))]
    return outputs[0] if len(outputs) == 1 else outputs


def _raise_strict(target: Target, results: dict[str, dict]) -> None:
    failed = {name: r for name, r in results.items() if r["strict"] and r["passed"] is False}
    if failed:
        raise TargetError(
            message(
                f"The exported file does not meet target '{target.name}': "
                f"check(s) {', '.join(failed)} failed",
                "every strict check of the target to pass",
                "See the measured values; change the model, the data, or use a less strict target",
                **{
                    name: {k: v for k, v in r.items() if k not in ("passed", "strict")}
                    for name, r in failed.items()
                },
            )
        )


def export_tflite(
    model,
    path: str | Path,
    target: str | Path | Target = "edge-cpu",
    quantization: str | None = None,
    calibration_data=None,
    validation_data=None,
) -> ExportReport:
    """Exports a Keras 3 or tf_keras model as a checked `.tflite` file for a device.

    Writes `path`, the manifest `<path>.json` (sha256, size, target,
    quantization, versions, calibration fingerprint, check results, creation
    time) and for `mcu` a C array (`.cc` + `.h`), all atomically.

    Args:
        model: A built Keras 3 or tf_keras model, or a `.keras` file path
            (loaded in safe mode with `tfgreen.load_model`).
        path: Output file, ending in `.tflite`.
        target: A built-in target name (see `tfgreen.targets()`), a JSON
            target file, or a `tfgreen.Target`. Defaults to `"edge-cpu"`.
        quantization: `"float32"`, `"dynamic"`, `"float16"`, `"int8"` or
            `"int16x8"`; `None` uses the target's. Defaults to `None`.
        calibration_data: Samples for integer quantization: an array, a list
            of arrays (one per input), a `tf.data.Dataset` or a generator. Up
            to 200 are used, chosen reproducibly. Defaults to `None`.
        validation_data: `(x, y)` or `x` for parity and accuracy; without it
            parity uses the calibration samples. Defaults to `None`.

    Returns:
        An `ExportReport`.

    Raises:
        CalibrationError: Bad calibration/validation data (before converting).
        TargetError: The file cannot meet a strict check of the target, e.g.
            ops left in float on `edge-tpu` (they are named).

    Example:
    >>> report = tfgreen.export_tflite(model, "out/model.tflite", target="edge-tpu",
    ...                                calibration_data=x_train[:200],
    ...                                validation_data=(x_test, y_test))
    >>> report.inputs[0]["dtype"], report.parity["top1_agreement"]
    ('uint8', 0.99...)
    """
    path = _check_path(path)
    model = _resolve_model(model)
    profile = _effective_target(get_target(target), quantization)
    integer = profile.quantization in ("int8", "int16x8")
    calibration = None if calibration_data is None else prepare_calibration(model, calibration_data)
    validation = None if validation_data is None else prepare_validation(model, validation_data)
    if calibration is None and validation is None and "parity" in profile.strict:
        raise TargetError(
            message(
                f"Target '{profile.name}' checks parity strictly and needs data to run it on",
                "calibration_data and/or validation_data",
                "Pass calibration_data=x_train[:200] and validation_data=(x_test, y_test)",
                calibration_data=None,
                validation_data=None,
            )
        )

    started = time.perf_counter()
    data = _convert(model, profile, calibration)
    info = read_tflite(data)
    results: dict[str, dict] = {}

    def record(name: str, passed: bool | None, **figures) -> None:
        results[name] = {"passed": passed, "strict": name in profile.strict, **figures}

    left = checks.float_ops(info)
    float_allowed = profile.allow_float_ops or not integer
    record("float_ops", float_allowed or not left, ops=sorted(set(left)))
    if results["float_ops"]["passed"] is False and results["float_ops"]["strict"]:
        raise TargetError(
            message(
                f"Ops left in float for target '{profile.name}', which runs int8 only: "
                f"{', '.join(sorted(set(left)))}",
                "every op quantized to int8",
                "Replace the layers producing these ops with int8-capable ones, or use "
                "target='edge-cpu', which allows float fallback",
                ops=sorted(set(left)),
            )
        )
    inputs = checks.tensor_details(info, info.inputs)
    outputs = checks.tensor_details(info, info.outputs)
    want_in = profile.input_dtype if integer else "float32"
    want_out = profile.output_dtype if integer else "float32"
    record(
        "io_dtypes",
        all(t["dtype"] == want_in for t in inputs) and all(t["dtype"] == want_out for t in outputs),
        inputs=[t["dtype"] for t in inputs],
        outputs=[t["dtype"] for t in outputs],
        expected=[want_in, want_out],
    )
    budget = profile.size_budget_bytes
    record("size", budget is None or len(data) <= budget, size_bytes=len(data), budget_bytes=budget)

    from tfgreen.tflite.runner import TfliteRunner

    runner = TfliteRunner(data)
    scales = [t["scale"] if isinstance(t["scale"], float) else None for t in outputs]
    samples = validation if validation is not None else calibration
    parity = accuracy = keras_accuracy = None
    if samples is not None:
        expected = _predict_keras(model, samples.arrays)
        actual = runner.predict(samples.arrays)
        parity = checks.parity(expected, actual, scales)
        record(
            "parity",
            parity["top1_agreement"] >= profile.min_top1_agreement
            and parity["cosine"] >= profile.min_cosine,
            **parity,
            min_top1_agreement=profile.min_top1_agreement,
            min_cosine=profile.min_cosine,
        )
        if samples.labels is not None:
            accuracy = checks.accuracy(actual, samples.labels)
            keras_accuracy = checks.accuracy(expected, samples.labels)
        if profile.max_reference_lsb is not None:
            head = [a[:_REFERENCE_SAMPLES] for a in samples.arrays]
            kernels = checks.kernel_differences(data, info, head)
            reference = TfliteRunner(data, reference=True).predict(head)
            record(
                "reference_kernels",
                kernels["max_lsb"] <= profile.max_reference_lsb,
                **kernels,
                limit_lsb=profile.max_reference_lsb,
                xnnpack_output_max_lsb=checks.max_lsb_difference(
                    runner.predict(head), reference, scales
                ),
            )
    else:
        record("parity", None, skipped="no calibration_data or validation_data")
    if profile.deterministic:
        again = _convert(model, profile, calibration)
        record("deterministic", again == data, identical=again == data)
    _raise_strict(profile, results)
    example = [np.zeros([d if d > 0 else 1 for d in t["shape"]], "float32") for t in inputs]
    latency = runner.latency_ms(example, runs=_LATENCY_RUNS)["p50"]

    sha256 = hashlib.sha256(data).hexdigest()
    manifest_path = path.with_name(path.name + ".json")
    files: dict[Path, bytes] = {}
    if profile.c_array:
        symbol = "g_" + "".join(c if c.isalnum() else "_" for c in path.stem) + "_model"
        source, header = checks.c_array(data, symbol, path.stem + ".h")
        files[path.with_suffix(".cc")] = source.encode()
        files[path.with_suffix(".h")] = header.encode()
    files[path] = data
    report = ExportReport(
        path=str(path),
        size_bytes=len(data),
        sha256=sha256,
        target=profile.name,
        quantization=profile.quantization,
        inputs=inputs,
        outputs=outputs,
        ops=info.op_names,
        float_ops=left,
        parity=parity,
        accuracy=accuracy,
        keras_accuracy=keras_accuracy,
        latency_ms=latency,
        sparsity=info.total_weight_sparsity(),
        checks=results,
        manifest_path=str(manifest_path),
        files=[str(p) for p in files] + [str(manifest_path)],
        calibration=None if calibration is None else calibration.fingerprint(),
    )
    manifest = {
        "file": path.name,
        "sha256": sha256,
        "size_bytes": len(data),
        "target": profile.name,
        "target_profile": profile.to_dict(),
        "quantization": profile.quantization,
        "versions": _manifest.versions(flavor_of(model)),
        "calibration": report.calibration,
        "validation": None if validation is None else validation.fingerprint(),
        "checks": results,
        "inputs": inputs,
        "outputs": outputs,
        "ops": info.op_names,
        "float_ops": left,
        "parity": parity,
        "accuracy": accuracy,
        "keras_accuracy": keras_accuracy,
        "latency_ms": latency,
        "sparsity": report.sparsity,
        "extra_files": {
            p.name: hashlib.sha256(b).hexdigest() for p, b in files.items() if p != path
        },
        "export_seconds": round(time.perf_counter() - started, 3),
        "created_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    files[manifest_path] = _manifest.to_bytes(manifest)
    _manifest.write_all(files)
    return report
