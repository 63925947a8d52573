"""`export_tflite`: a Keras model to a checked `.tflite` file for a device target.

The export is a pipeline of short steps: resolve the target, convert the
model with the target's quantization, I/O dtypes and shapes, run every check
of the registry `tfgreen.export.checks.CHECKS` (ops and which stay in float,
I/O dtypes, size, parity with the Keras model, and for strict targets the
reference kernels and byte-identical reconversion), refuse the file when a
strict check failed, then write. The `.tflite` file, its manifest
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

from tfgreen import _io, _lm
from tfgreen.errors import (
    CalibrationError,
    TargetError,
    TfgreenError,
    TfgreenTypeError,
    TfgreenValueError,
    message,
)
from tfgreen.export import checks
from tfgreen.export import generation as _generation
from tfgreen.export import manifest as _manifest
from tfgreen.export.targets import Target, resolve_target
from tfgreen.flavor import flavor_of
from tfgreen.quantization.api import is_quantize_aware
from tfgreen.quantization.calibration import prepare_calibration, prepare_validation
from tfgreen.quantization.ptq import INTEGER_QUANTIZATIONS, convert, quantization_errors
from tfgreen.quantization.weights import export_quantization
from tfgreen.tflite.read import float_ops, read_tflite
from tfgreen.tflite.verify import record_export

__all__ = ["ExportReport", "export_tflite"]


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
        validation: `{"count", "sha256"}` of the validation samples, or `None`.
        perplexity: For a language model, `{"keras", "tflite", "ratio"}` on
            the validation tokens; `None` otherwise.
        next_token_agreement: For a language model, the fraction of
            positions where the file predicts the same next token as the
            Keras model; `None` otherwise.
        attempts: For a language model exported with the target's default
            quantization, the quantizations tried before the one kept
            (best first), each `{"quantization", "failed", "perplexity_ratio",
            "next_token_agreement"}`; empty otherwise.
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
    validation: dict | None = None
    perplexity: dict | None = None
    next_token_agreement: float | None = None
    attempts: list[dict] = field(default_factory=list)

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


def _check_model(model):
    """A built Keras 3 or tf_keras model; files are loaded by the caller."""
    if isinstance(model, (str, Path)):
        raise TfgreenTypeError(
            message(
                "`export_tflite` takes a model, not a file path",
                "a built Keras 3 or tf_keras model",
                "Load the file first: model = tfgreen.load_model(path) "
                "(or use `tfgreen export` on the command line)",
                model=str(model),
            )
        )
    flavor_of(model)
    try:
        built = bool(model.inputs)
    except (AttributeError, ValueError):
        built = False
    if not built:
        raise _bad(
            "The model is not built",
            "a model with known inputs",
            "Build it with keras.Input(...) first, or call it on data",
            model=getattr(model, "name", type(model).__name__),
        )
    return model


def _require_data(target: Target, calibration, validation) -> None:
    if calibration is None and validation is None and "parity" in target.strict:
        raise TargetError(
            message(
                f"Target '{target.name}' checks parity strictly and needs data to run it on",
                "calibration_data and/or validation_data",
                "Pass calibration_data=x_train[:200] and validation_data=(x_test, y_test)",
                calibration_data=None,
                validation_data=None,
            )
        )


def _convert(model, target: Target, calibration) -> bytes:
    integer = target.quantization in INTEGER_QUANTIZATIONS
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
                left = float_ops(read_tflite(relaxed))
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


def _window_length(*datasets) -> int | None:
    """The window length of the first token-id array given (for a model of any length)."""
    for data in datasets:
        array = data[0] if isinstance(data, tuple) and data else data
        if isinstance(array, np.ndarray) and array.ndim == 2:
            return int(array.shape[1])
    return None


def _check_tokens(model, *sets) -> None:
    """Token ids inside the language model's vocabulary (names the first bad window)."""
    vocab_size = int(model.outputs[0].shape[-1])
    for name, samples in zip(("calibration_data", "validation_data"), sets, strict=True):
        if samples is not None:
            _lm.check_token_ids(samples.arrays[0], vocab_size, name=name)


def _ladder(
    target: Target, quantization, language_model: bool, learned: bool, calibration
) -> list[Target]:
    """The quantizations to try, best first: for a language model on the target's default,
    full integer (calibrated, or with the ranges a quantization-aware model learned)
    falls back to dynamic-range int8 where float ops are allowed; so does the int4 file
    of a 4-bit model from `tfgreen.quantize` that fails a check."""
    if target.quantization == "int4" and quantization is None:  # a 4-bit tfgreen.quantize model
        return [target, dataclasses.replace(target, quantization="dynamic")]
    integer = target.quantization in INTEGER_QUANTIZATIONS
    if not language_model or quantization is not None or not integer:
        return [target]
    if not target.allow_float_ops:
        return [target]
    fallback = dataclasses.replace(target, quantization="dynamic")
    return [target, fallback] if learned or calibration is not None else [fallback]


def _convert_and_check(
    model, profile: Target, calibration, samples, language_model: bool, generation=None
):
    def reconvert() -> bytes:
        if generation is not None:  # call + prefill + decode signatures
            return _generation.convert(generation, profile.quantization)
        return _convert(model, profile, calibration)

    data = reconvert()
    context = checks.CheckContext(
        model, profile, data, read_tflite(data), samples, reconvert, language_model
    )
    results = checks.run_checks(context)
    if generation is not None:
        results["generation"] = {"strict": True, **_generation.check(context, generation)}
    return context, results


def _attempt(profile: Target, failed: list[str], results: dict, reason: str | None = None) -> dict:
    lm = results.get("perplexity", {})
    return {
        "quantization": profile.quantization,
        "failed": failed,
        "perplexity_ratio": lm.get("ratio"),
        "next_token_agreement": lm.get("next_token_agreement"),
        **({"reason": reason} if reason else {}),
    }


def _worst_tensors(model, profile: Target, calibration) -> list[dict]:
    """The tensors full-integer quantization hurts most, to name in a refusal."""
    return quantization_errors(
        model,
        calibration.representative(),
        batch_size=1 if profile.static_shapes else None,
        per_channel_dense=profile.per_channel_dense,
    )


def _files(path: Path, data: bytes, target: Target) -> dict[Path, bytes]:
    """The `.tflite` file and, for targets that want one, its C array."""
    files = {path: data}
    if target.c_array:
        symbol = "g_" + _manifest.c_identifier(path.stem) + "_model"
        source, header = _manifest.c_array(data, symbol, path.stem + ".h")
        files[path.with_suffix(".cc")] = source.encode()
        files[path.with_suffix(".h")] = header.encode()
    return files


def _report(
    path: Path,
    context: checks.CheckContext,
    results: dict,
    files,
    calibration,
    validation,
    attempts: list[dict],
):
    manifest_path = path.with_name(path.name + ".json")
    accuracy, keras_accuracy = context.accuracy
    lm = results.get("perplexity")
    return ExportReport(
        path=str(path),
        size_bytes=len(context.data),
        sha256=hashlib.sha256(context.data).hexdigest(),
        target=context.target.name,
        quantization=context.target.quantization,
        inputs=context.inputs,
        outputs=context.outputs,
        ops=context.info.op_names,
        float_ops=float_ops(context.info),
        parity=context.parity,
        accuracy=accuracy,
        keras_accuracy=keras_accuracy,
        latency_ms=context.latency_ms(),
        sparsity=context.info.total_weight_sparsity(),
        checks=results,
        manifest_path=str(manifest_path),
        files=[str(p) for p in files] + [str(manifest_path)],
        calibration=None if calibration is None else calibration.fingerprint(),
        validation=None if validation is None else validation.fingerprint(),
        perplexity=None if lm is None else {k: lm[k] for k in ("keras", "tflite", "ratio")},
        next_token_agreement=None if lm is None else lm["next_token_agreement"],
        attempts=attempts,
    )


def export_tflite(
    model,
    path: str | Path,
    target: str | Path | Target = "edge-cpu",
    quantization: str | None = None,
    calibration_data=None,
    validation_data=None,
    generate: bool = False,
    max_length: int | None = None,
) -> ExportReport:
    """Exports a Keras 3 or tf_keras model as a checked `.tflite` file for a device.

    Writes `path`, the manifest `<path>.json` and for `mcu` a C array
    (`.cc` + `.h`), all atomically, after every strict check passed.

    A language model (token ids in, `[batch, seq_len, vocab]` logits out,
    including a KerasHub CausalLM, exported with a padding mask of ones)
    keeps its int32 token input on every target. Its `validation_data` is
    token ids; the strict `perplexity` check compares the file's perplexity
    and next-token predictions with the Keras model's, and the report and
    the manifest carry both. With the target's default quantization, a
    full-integer file that fails that check falls back to dynamic-range int8
    where the target allows float ops (`edge-cpu`); on all-integer targets the
    export is refused, naming the tensors quantization hurt most.

    With `generate=True` the file also gets `prefill` and `decode`
    signatures with a KV cache of `max_length` positions, for
    `tfgreen.generate` (see `tfgreen.export.generation`): the checks above
    run on its first signature, the full-window forward pass, and the strict
    `generation` check compares the cache path with the Keras model.
    Full-integer quantization is not used for such a file (`edge-cpu` gives
    dynamic-range int8).

    Args:
        model: A built Keras 3 or tf_keras model (load files with `tfgreen.load_model`).
        path: Output file, ending in `.tflite`.
        target: A built-in target name (see `tfgreen.targets()`), a JSON
            target file, or a `tfgreen.Target`. Defaults to `"edge-cpu"`.
        quantization: One of `"float32"`, `"dynamic"`, `"int4"`, `"float16"`, `"int8"`,
            `"int16x8"`; `None` uses the target's. Defaults to `None`.
        calibration_data: Samples for integer quantization (an array, a list
            of arrays, a `tf.data.Dataset` or a generator); up to 200 are
            used, chosen reproducibly. Defaults to `None`.
        validation_data: `(x, y)` or `x` for parity and accuracy; without it
            parity uses the calibration samples. For a language model,
            token-id windows `[n, seq_len]`. Defaults to `None`.
        generate: For a language model (`tiny_gpt` or a KerasHub CausalLM),
            add `prefill`/`decode` signatures with a KV cache. Defaults to `False`.
        max_length: Positions of the KV cache with `generate=True`; `None`
            takes the model's window. Defaults to `None`.

    Returns:
        An `ExportReport`.

    Raises:
        CalibrationError: Bad calibration/validation data (before converting).
        TargetError: The file fails a strict check of the target (named, with its figures).

    Example:
    ```python
    report = tfgreen.export_tflite(model, "out/model.tflite", target="edge-tpu",
                                   calibration_data=x_train[:200], validation_data=(x_test, y_test))
    report.inputs[0]["dtype"], report.parity["top1_agreement"]  # ('uint8', 0.99...)
    ```

    A language model on the bundled text (tiny and untrained here):
    >>> from tfgreen.datasets import load_text
    >>> from tfgreen.models import tiny_gpt
    >>> data = load_text(seq_len=16, vocab_size=300)
    >>> lm = tiny_gpt(vocab_size=300, seq_len=16, embed_dim=16, num_layers=1)
    >>> report = tfgreen.export_tflite(lm, "lm.tflite", target="cpu", validation_data=data.val[:8])
    >>> report.inputs[0]["dtype"], round(report.perplexity["ratio"], 4)
    ('int32', 1.0)
    """
    started = time.perf_counter()
    path, model = _check_path(path), _check_model(model)
    _generation.check_arguments(generate, max_length)
    # A model from tfgreen.quantize keeps its low-bit weights ("dynamic" int8, or "int4").
    asked, quantization = quantization, export_quantization(model, quantization)
    profile = resolve_target(target, quantization)
    _io.check_writable(path, [f.name for f in _files(path, b"", profile)] + [path.name + ".json"])
    language_model, given = _lm.is_language_model(model), model
    if language_model:
        model = _lm.single_input(model, _window_length(validation_data, calibration_data))
    generation = _generation.prepare(given, model, max_length) if generate else None
    calibration = None if calibration_data is None else prepare_calibration(model, calibration_data)
    validation = None if validation_data is None else prepare_validation(model, validation_data)
    if language_model:
        _check_tokens(model, calibration, validation)
    _require_data(profile, calibration, validation)
    # A quantization-aware model's int8 ranges were learned: calibrating would replace them,
    # and give ranges to the tensors QAT kept float on purpose (an LM's causal mask).
    learned = is_quantize_aware(model)
    converting = None if learned else calibration
    samples = validation if validation is not None else calibration
    attempts: list[dict] = []
    ladder = _ladder(profile, asked, language_model, learned, calibration)
    if generation is not None:
        ladder = _generation.ladder(ladder, profile, asked is not None)
    for step, profile in enumerate(ladder):
        last = step == len(ladder) - 1
        try:
            context, results = _convert_and_check(
                model, profile, converting, samples, language_model, generation
            )
        except CalibrationError as error:  # a QAT model whose kernels did not become int8
            if last:
                raise
            attempts.append(_attempt(profile, ["conversion"], {}, str(error).split(". ")[0]))
            continue
        failed = [n for n, r in results.items() if r["strict"] and r["passed"] is False]
        if not failed or last:
            break
        attempts.append(_attempt(profile, failed, results))
    if "perplexity" in failed and context.integer and converting is not None:
        results["perplexity"]["worst_tensors"] = _worst_tensors(model, profile, calibration)
    checks.raise_strict(profile, results)
    files = _files(path, context.data, profile)
    report = _report(path, context, results, files, calibration, validation, attempts)
    extra = {p: b for p, b in files.items() if p != path}
    manifest = _manifest.from_report(report, profile, flavor_of(model), extra, started)
    _manifest.write_all({**files, Path(report.manifest_path): _manifest.to_bytes(manifest)})
    record_export(report.sha256)  # ran in a child in the checks: may run in-process now
    return report
