"""`tfgreen.compare`: Keras models and `.tflite` files side by side, with plots.

For each candidate: accuracy on the given data, parameters, size and gzip
size, weight sparsity, single-sample latency, joules per inference (CodeCarbon,
method stated) and the training energy/CO2 where known. Language models are
compared on token ids instead: perplexity, next-token agreement with the
baseline, tokens per second of a forward pass of one window, and joules per
token. The result, a
`tfgreen.report.Comparison`, prints as text, markdown or a dict, draws
quality-vs-cost figures with the Pareto front and a carbon break-even
figure, and `save(out_dir)` writes it all as a report.
(The `tfgreen compare` command is `tfgreen.cli.compare`. The module is not named `compare`: a
submodule of that name would shadow the `tfgreen.compare` function once imported.)
"""

from __future__ import annotations

import gzip
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tfgreen import _metrics
from tfgreen._timing import JOULES_PER_KWH, time_calls
from tfgreen._validate import number, positive_int
from tfgreen.errors import TfgreenTypeError, TfgreenValueError, message
from tfgreen.report import Comparison

__all__ = ["compare"]


@dataclass
class _Candidate:
    name: str
    model: object  # a Keras model, or .tflite bytes
    kind: str
    training_kwh: float | None = None
    training_co2_kg: float | None = None
    training_method: str | None = None


def _bad_candidate(name, value, why: str) -> TfgreenTypeError:
    return TfgreenTypeError(
        message(
            f"Candidate {name!r} cannot be compared: {why}",
            "a Keras 3 or tf_keras model, a path to a .tflite or .keras file, .tflite bytes, "
            "or a dict {'model': ..., 'tracker': EnergyTracker, 'training_kwh': ...}",
            "Pass for example {'baseline': model, 'int8': 'out/model.tflite'}",
            **{name: type(value).__name__},
        )
    )


def _training_energy(spec: dict, model) -> tuple[float | None, float | None, str | None]:
    kwh, co2 = spec.get("training_kwh"), spec.get("training_co2_kg")
    tracker = spec.get("tracker")
    if tracker is not None and kwh is None:
        if not getattr(tracker, "epochs", None):
            raise TfgreenValueError(
                message(
                    "The candidate's `tracker` has no figures: it was not used in a `fit`",
                    "an EnergyTracker that was in the callbacks of the candidate's training",
                    "Pass the tracker after fit(..., callbacks=[tracker]), or training_kwh=",
                    tracker=type(tracker).__name__,
                )
            )
        return tracker.energy_kwh, tracker.co2_kg, tracker.method
    history = spec.get("history")
    if history is None and model is not None and not isinstance(model, bytes):
        history = getattr(model, "history", None)  # set by fit() in both Kerases
    logged = getattr(history, "history", None) or {}
    if kwh is None and logged.get("energy_kwh"):
        return float(logged["energy_kwh"][-1]), float(logged["co2_kg"][-1]), None
    return kwh, co2, None


def _candidate(name: str, value) -> _Candidate:
    from tfgreen.flavor import flavor_of

    spec = value if isinstance(value, dict) else {"model": value}
    model = spec.get("model")
    if isinstance(model, (str, Path)):
        path = Path(model)
        if path.suffix.lower() == ".tflite":
            from tfgreen.tflite.read import existing_tflite
            from tfgreen.tflite.verify import check_manifest

            model = existing_tflite(path).read_bytes()
            check_manifest(path, model)  # a manifest beside the file must match it
        else:
            from tfgreen.loading import load_model

            model = load_model(path, trusted=bool(spec.get("trusted", False)))
    if isinstance(model, (bytes, bytearray)):
        kind = "tflite"
        model = bytes(model)
    else:
        try:
            flavor_of(model)
        except TfgreenTypeError:
            raise _bad_candidate(name, model, "it is not a model") from None
        kind = "keras"
    kwh, co2, method = _training_energy(spec, model)
    return _Candidate(name, model, kind, kwh, co2, method)


def _candidates(candidates) -> list[_Candidate]:
    if isinstance(candidates, dict):
        items = list(candidates.items())
    elif isinstance(candidates, (list, tuple)):
        items = []
        for i, value in enumerate(candidates):
            model = value.get("model") if isinstance(value, dict) else value
            if isinstance(model, (str, Path)):
                label = Path(model).name
            else:
                label = getattr(model, "name", None) or f"candidate_{i}"
            if label in dict(items):
                label = f"{label}_{i}"
            items.append((label, value))
    else:
        raise TfgreenTypeError(
            message(
                "`candidates` must be a dict or a list",
                "{name: model_or_path} or [model_or_path, ...]",
                "Pass for example {'baseline': model, 'int8': 'model.tflite'}",
                candidates=type(candidates).__name__,
            )
        )
    if not items:
        raise TfgreenValueError(
            message(
                "`candidates` is empty",
                "at least one model or .tflite path",
                "Pass for example {'baseline': model}",
                candidates=candidates,
            )
        )
    return [_candidate(str(name), value) for name, value in items]


@dataclass
class _Data:
    quality: str  # "accuracy" for (x, y), "perplexity" for token ids
    x: np.ndarray
    y: np.ndarray | None = None
    one_hot_width: int | None = None  # columns of one-hot labels, checked against each model

    def describe(self) -> str:
        if self.quality == "perplexity":
            return f"{len(self.x)} windows of {self.x.shape[1]} token ids."
        return f"{len(self.x)} samples of shape {tuple(self.x.shape[1:])}."


def _token_data(ids: np.ndarray) -> _Data:
    if ids.ndim != 2 or len(ids) == 0 or ids.shape[1] < 2 or ids.min() < 0:
        raise TfgreenValueError(
            message(
                "`data` token ids must be windows of at least 2 ids, none negative",
                "an int array [n, seq_len] with n >= 1, seq_len >= 2 and ids >= 0",
                "Pass for example tfgreen.datasets.load_text(seq_len=64).val",
                data_shape=ids.shape,
            )
        )
    return _Data("perplexity", ids.astype("int32", copy=False))


def _check_data(data) -> _Data:
    if (
        isinstance(data, np.ndarray)
        and data.dtype != bool
        and np.issubdtype(data.dtype, np.integer)
    ):
        return _token_data(data)
    if not isinstance(data, (tuple, list)) or len(data) != 2:
        raise TfgreenTypeError(
            message(
                "`data` must be an (x, y) pair, or token ids for language models",
                "a tuple (x, y) of arrays with one label per sample, or an int numpy array "
                "[n, seq_len] of token ids",
                "Pass for example (x_test, y_test), or load_text(seq_len=64).val",
                data=type(data).__name__,
            )
        )
    x, y = np.asarray(data[0]), np.asarray(data[1])
    if x.ndim < 2 or len(x) == 0 or len(x) != len(y):
        raise TfgreenValueError(
            message(
                "`data` does not hold matching samples and labels",
                "x with at least one sample (n, ...) and y with n labels",
                "Pass for example (x_test, y_test) from the same split",
                x_shape=x.shape,
                y_shape=y.shape,
            )
        )
    if not np.all(np.isfinite(x)):
        raise TfgreenValueError(
            message(
                "`data` x holds NaN or infinite values",
                "finite inputs",
                "Clean the data first",
                first_bad_sample=int(np.argwhere(~np.isfinite(x.reshape(len(x), -1)))[0][0]),
            )
        )
    width = int(y.shape[-1]) if y.ndim > 1 and y.shape[-1] > 1 else None
    return _Data("accuracy", x, _metrics.class_labels(y), width)


def _io_shapes(candidate: _Candidate) -> tuple[tuple | None, tuple | None]:
    """Input and output shape of one sample (batch axis left out; None: unknown)."""
    if candidate.kind == "tflite":
        from tfgreen.tflite.read import read_tflite

        info = read_tflite(candidate.model)
        inp, out = info.tensors[info.inputs[0]].shape, info.tensors[info.outputs[0]].shape
        return tuple(None if d < 0 else d for d in inp[1:]), tuple(out[1:]) or (1,)
    model = candidate.model
    try:
        inp, out = tuple(model.inputs[0].shape)[1:], tuple(model.outputs[0].shape)[1:]
    except (AttributeError, IndexError, TypeError, ValueError):
        return None, None  # a subclassed model not yet built: nothing to check up front
    return inp, out


def _does_not_fit(candidate: _Candidate, why: str, expected: str, fix: str, **received):
    return TfgreenValueError(
        message(
            f"Candidate {candidate.name!r} does not fit the data: {why}", expected, fix, **received
        )
    )


def _check_fits(candidate: _Candidate, data: _Data) -> None:
    expected, output = _io_shapes(candidate)
    if expected is None:
        return
    given = data.x.shape[1:]
    fits = len(expected) == len(given) and all(
        e is None or e == g for e, g in zip(expected, given, strict=True)
    )
    if not fits:
        raise _does_not_fit(
            candidate,
            "its input shape differs",
            f"samples of shape {expected} (batch axis left out)",
            "Compare it on data of its own input shape, for example flat digits "
            "(load_digits(flat=True), --data digits-flat) for an MLP, or token windows of "
            "the model's seq_len (load_text(seq_len=...)) for a language model",
            model_input=expected,
            data_sample_shape=given,
        )
    if data.quality == "perplexity":
        vocab = output[-1] if len(output) == 2 else None
        if vocab is None:
            raise _does_not_fit(
                candidate,
                "it is not a language model",
                "next-token logits of shape [batch, seq_len, vocab_size] for token-id data",
                "Compare language models on token ids, classifiers on (x, y)",
                model_output=output,
            )
        if data.x.max() >= vocab:
            raise _does_not_fit(
                candidate,
                "token ids out of its vocabulary",
                f"ids in [0, {vocab - 1}] for a model with a vocabulary of {vocab}",
                "Encode the text with the tokenizer the model was trained with",
                max_token_id=int(data.x.max()),
                vocab_size=vocab,
            )
        return
    outputs = int(output[-1]) if output and output[-1] is not None else 1
    classes = max(outputs, 2)
    y = data.y
    if data.one_hot_width is not None and data.one_hot_width != outputs:
        raise _does_not_fit(
            candidate,
            "the one-hot labels have another width",
            f"one-hot rows of {outputs} columns, one per model output",
            "Pass labels for this model's classes",
            label_width=data.one_hot_width,
            model_outputs=outputs,
        )
    if y.min() < 0 or y.max() >= classes:
        raise _does_not_fit(
            candidate,
            "too few outputs for the labels",
            f"labels in [0, {classes - 1}] for a model with {outputs} output(s)",
            "Compare models trained for these labels",
            labels=(int(y.min()), int(y.max())),
            model_outputs=outputs,
        )


def _quality(candidate: _Candidate, data: _Data, predict, reference) -> dict:
    """Accuracy, or perplexity and next-token agreement with the baseline."""
    if data.quality == "accuracy":
        return {"accuracy": _metrics.accuracy(predict(data.x), data.y)}
    from tfgreen.perplexity import next_token_agreement, perplexity

    agreement = (
        1.0
        if reference is candidate
        else next_token_agreement(reference.model, candidate.model, data.x)
    )
    return {
        "perplexity": perplexity(candidate.model, data.x),
        "next_token_agreement": agreement,
    }


def _measure(candidate: _Candidate, data: _Data, reference: _Candidate, runs: int, energy):
    from tfgreen.energy.inference import inference_energy, single_sample_fn

    x = data.x
    if candidate.kind == "tflite":
        from tfgreen.tflite.isolated import IsolatedRunner
        from tfgreen.tflite.read import read_tflite

        runner = IsolatedRunner(candidate.model)
        predict = runner.predict
        latency = runner.latency_ms(x, runs=runs)["p50"]
        info = read_tflite(candidate.model)
        params = sum(int(np.prod(t.shape)) for t in info.tensors if t.is_constant)
        raw = candidate.model
        sparsity = info.total_weight_sparsity()
    else:
        model = candidate.model
        fn, _ = single_sample_fn(model)
        latency = time_calls(lambda: fn(x[:1]), runs=runs)["p50"]
        params = int(model.count_params())
        arrays = [np.asarray(w) for w in model.weights]
        raw = b"".join(a.tobytes() for a in arrays)
        kernels = [a for a in arrays if a.ndim >= 2]
        total = sum(a.size for a in kernels)
        sparsity = sum(int(np.count_nonzero(a == 0)) for a in kernels) / total if total else None

        def predict(inputs):
            return np.asarray(model.predict(inputs, batch_size=256, verbose=0))

    row = {
        "model": candidate.name,
        "kind": candidate.kind,
        **_quality(candidate, data, predict, reference),
        "params": params,
        "size_kb": len(raw) / 1024,
        "gzip_kb": len(gzip.compress(raw, compresslevel=9, mtime=0)) / 1024,
        "sparsity": sparsity,
        "latency_ms": latency,
        "joules_per_inference": None,
        "training_kwh": candidate.training_kwh,
        "training_co2_kg": candidate.training_co2_kg,
        "break_even_inferences": None,
    }
    tokens = x.shape[1] if data.quality == "perplexity" else None
    if tokens:
        row["tokens_per_second"] = tokens * 1000.0 / latency
        row["joules_per_token"] = None
    result = None
    if energy is not None:
        seconds, country = energy
        result = inference_energy(candidate.model, x, seconds=seconds, country_iso_code=country)
        row["joules_per_inference"] = result["joules_per_inference"]
        if tokens:
            row["joules_per_token"] = result["joules_per_inference"] / tokens
    return row, result


def _break_even(rows: list[dict], baseline: str) -> None:
    base = next(r for r in rows if r["model"] == baseline)
    for row in rows:
        if row is base or not row["training_kwh"] or row["joules_per_inference"] is None:
            continue
        saving = base["joules_per_inference"] - row["joules_per_inference"]
        if saving > 0:
            row["break_even_inferences"] = row["training_kwh"] * JOULES_PER_KWH / saving


def compare(
    candidates,
    data,
    baseline: str | None = None,
    runs: int = 50,
    energy: bool = True,
    energy_seconds: float = 1.0,
    country_iso_code: str = "DEU",
) -> Comparison:
    """Compares Keras models and `.tflite` files on the same data.

    Every candidate is checked against the data before anything is measured.
    Training energy is taken, in this order, from a candidate dict's
    `training_kwh`/`training_co2_kg`, its `tracker` (an `EnergyTracker`), its
    `history`, or the Keras model's own `model.history` when its last `fit`
    ran with an `EnergyTracker`.

    Args:
        candidates: `{name: candidate}` or a list of candidates (named after
            the model or file). A candidate is a Keras 3 or tf_keras model, a
            `.tflite` or `.keras` path, `.tflite` bytes, or a dict with
            `"model"` and optionally `"tracker"`, `"history"`,
            `"training_kwh"`, `"training_co2_kg"`, `"trusted"` (for `.keras`
            files with Lambda layers).
        data: `(x, y)` with integer labels (or one-hot rows); or, for
            language models (token ids in, next-token logits out), an int
            numpy array `[n, seq_len]` of token ids (no labels).
        baseline: Name of the reference for break-even and next-token
            agreement; the first candidate if `None`. Defaults to `None`.
        runs: Timed single-sample runs for latency (for a language model:
            forward passes of one window). Defaults to `50`.
        energy: Measure joules per inference (about `energy_seconds` per
            candidate). Defaults to `True`.
        energy_seconds: Length of each energy measurement. Defaults to `1.0`.
        country_iso_code: Grid country for CO2. Defaults to `"DEU"`.

    Returns:
        A `Comparison` (`.rows`, `.to_text()`, `.to_markdown()`,
        `.to_dict()`, `.plot(dir)`, `.save(dir)`).

    Example:
    ```python
    result = tfgreen.compare({"baseline": model, "int8": "out/model.tflite"}, (x_test, y_test))
    print(result.to_markdown())
    result.save("report")
    ```
    """
    from tfgreen.energy.tracker import check_country

    samples = _check_data(data)
    positive_int("runs", runs, example=50)
    number("energy_seconds", energy_seconds, minimum=0, exclusive_minimum=True, example=1.0)
    country = check_country(country_iso_code)
    items = _candidates(candidates)
    names = [c.name for c in items]
    if baseline is None:
        baseline = names[0]
    elif baseline not in names:
        raise TfgreenValueError(
            message(
                "`baseline` is not one of the candidates",
                f"one of {names}",
                "Pass the name of the reference model, or leave baseline out",
                baseline=baseline,
            )
        )
    for candidate in items:
        _check_fits(candidate, samples)
    reference = items[names.index(baseline)]
    rows, methods = [], []
    for candidate in items:
        row, result = _measure(
            candidate, samples, reference, runs, (energy_seconds, country) if energy else None
        )
        rows.append(row)
        if result is not None:
            methods.append((result["method"], result["method_detail"]))
        if candidate.training_method:
            methods.append((candidate.training_method, None))
    _break_even(rows, baseline)
    method = detail = None
    if methods:
        method = "measured" if all(m == "measured" for m, _ in methods) else "estimate"
        detail = next((d for _, d in methods if d), None)
    return Comparison(
        rows=rows,
        baseline=baseline,
        energy_method=method,
        energy_detail=detail,
        data_description=samples.describe(),
        quality=samples.quality,
    )
