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
from tfgreen._comparison_data import Data, check_data, check_fits
from tfgreen._validate import number, positive_int
from tfgreen.errors import TfgreenTypeError, TfgreenValueError, message
from tfgreen.report import Comparison

__all__ = ["compare"]

# How often each candidate's energy loop is measured (the spread is the range).
_ENERGY_REPEATS = 3


@dataclass
class _Candidate:
    name: str
    model: object  # a Keras model, or .tflite bytes
    kind: str
    training_kwh: float | None = None
    training_co2_kg: float | None = None
    training_method: str | None = None
    device: str | None = None  # the target of a .tflite file's export manifest


def _manifest_target(path: Path) -> str | None:
    """The `target` a tfgreen export manifest beside the file names, if there is one."""
    import json

    manifest = path.with_name(path.name + ".json")
    try:
        target = json.loads(manifest.read_text(encoding="utf-8")).get("target")
    except (OSError, ValueError, AttributeError):  # no manifest, or not one of tfgreen's
        return None
    return target if isinstance(target, str) else None


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
    device = None
    if isinstance(model, (str, Path)):
        path = Path(model)
        if path.suffix.lower() == ".tflite":
            from tfgreen.tflite.read import existing_tflite
            from tfgreen.tflite.verify import check_manifest

            model = existing_tflite(path).read_bytes()
            check_manifest(path, model)  # a manifest beside the file must match it
            device = _manifest_target(path)
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
    return _Candidate(name, model, kind, kwh, co2, method, device)


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


def _quality(candidate: _Candidate, data: Data, predict, reference) -> dict:
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


def _measure(candidate: _Candidate, data: Data, reference: _Candidate, runs: int, energy):
    from tfgreen.energy.inference import inference_energy, inference_loop

    x = data.x
    # latency and energy are timed on the same loop (tfgreen.energy.inference)
    latency = inference_loop(candidate.model, x).time(runs=runs)["p50"]
    if candidate.kind == "tflite":
        from tfgreen.tflite.isolated import vetted_runner
        from tfgreen.tflite.read import read_tflite

        predict = vetted_runner(candidate.model).predict
        info = read_tflite(candidate.model)
        params = sum(int(np.prod(t.shape)) for t in info.tensors if t.is_constant)
        raw = candidate.model
        sparsity = info.total_weight_sparsity()
    else:
        model = candidate.model
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
        "joules_spread": None,
        "end_to_end_ms": None,
        "end_to_end_joules": None,
        "energy_saving": None,
        "saving_measurable": None,
        "estimate_target": None,
        "estimate_joules": None,
        "training_kwh": candidate.training_kwh,
        "training_co2_kg": candidate.training_co2_kg,
        "break_even_inferences": None,
    }
    from tfgreen.energy.estimate import TABLES, estimate_energy

    if candidate.device in TABLES:  # the model estimate for the file's device class
        row["estimate_target"] = candidate.device
        row["estimate_joules"] = estimate_energy(
            candidate.model, candidate.device
        ).joules_per_inference
    tokens = x.shape[1] if data.quality == "perplexity" else None
    if tokens:
        row["tokens_per_second"] = tokens * 1000.0 / latency
        row["joules_per_token"] = None
    result = None
    if energy is not None:
        seconds, country, repeats = energy
        result = inference_energy(
            candidate.model, x, seconds=seconds, country_iso_code=country, repeats=repeats
        )
        row["joules_per_inference"] = result["joules_per_inference"]
        row["joules_spread"] = result["joules_max"] - result["joules_min"]
        row["joules_min"], row["joules_max"] = result["joules_min"], result["joules_max"]
        if result["end_to_end"] is not None:
            row["end_to_end_ms"] = result["end_to_end"]["latency_ms_p50"]
            row["end_to_end_joules"] = result["end_to_end"]["joules_per_inference"]
        if tokens:
            row["joules_per_token"] = result["joules_per_inference"] / tokens
    if tokens and candidate.kind == "tflite":  # a generate=True file: KV-cache figures
        from tfgreen.energy.tokens import compare_columns

        row.update(compare_columns(candidate.model, runs, energy))
    return row, result


def _energy_baseline(items: list[_Candidate], reference: _Candidate, x) -> tuple[str, str]:
    """The energy baseline's name (the float32 .tflite of the Keras `reference`), and why.

    A float32 `.tflite` candidate with the reference's outputs is taken;
    without one, the file is exported now and inserted after the reference.
    """
    if reference.kind == "tflite":
        return reference.name, "the first candidate"
    from tfgreen.energy.savings import is_float32_of

    for candidate in items:
        if candidate.kind == "tflite" and is_float32_of(candidate.model, reference.model, x):
            return candidate.name, f"the float32 .tflite of {reference.name!r}"
    from tfgreen.quantization.ptq import convert

    name = f"{reference.name} float32 .tflite"
    items.insert(items.index(reference) + 1, _Candidate(name, convert(reference.model), "tflite"))
    return name, f"the float32 .tflite of {reference.name!r}, exported for this comparison"


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
        baseline: Name of the candidate that energy savings and break-even
            are against (and, for language models, next-token agreement).
            With `None` the first candidate is the reference: a `.tflite`
            one is the baseline itself; for a Keras model the baseline is
            its float32 `.tflite` (a float32 candidate with the model's
            outputs, or the file exported now and added as a row), never
            the Keras call. Defaults to `None`.
        runs: Timed single-sample runs for latency (for a language model:
            forward passes of one window). Defaults to `50`.
        energy: Measure joules per inference on the latency loop, three
            times (the spread is their range), and for `.tflite` files the
            end-to-end figure with host-side I/O quantization. A saving
            within the spread has `saving_measurable=False` and no
            break-even count (the table reads "no measurable saving");
            the count uses the saving's lower bound.
            Defaults to `True`.
        energy_seconds: Length of each of the three energy measurements
            (twice for a `.tflite` file). Defaults to `1.0`.
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

    samples = check_data(data)
    positive_int("runs", runs, example=50)
    number("energy_seconds", energy_seconds, minimum=0, exclusive_minimum=True, example=1.0)
    country = check_country(country_iso_code)
    items = _candidates(candidates)
    names = [c.name for c in items]
    named = baseline
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
        check_fits(candidate, samples)
    reference = items[names.index(baseline)]
    energy_baseline, why = baseline, "named by the user"
    if energy and named is None and len(items) > 1:
        energy_baseline, why = _energy_baseline(items, reference, samples.x)
    elif named is None:
        why = "the first candidate"
    rows, methods = [], []
    for candidate in items:
        row, result = _measure(
            candidate,
            samples,
            reference,
            runs,
            (energy_seconds, country, _ENERGY_REPEATS) if energy else None,
        )
        rows.append(row)
        if result is not None:
            methods.append((result["method"], result["method_detail"]))
        if candidate.training_method:
            methods.append((candidate.training_method, None))
    from tfgreen.energy.savings import break_even

    break_even(rows, energy_baseline)
    if samples.quality == "perplexity":
        from tfgreen.energy.tokens import break_even_tokens

        break_even_tokens(rows, energy_baseline)
    method = detail = None
    if methods:
        method = "measured" if all(m == "measured" for m, _ in methods) else "estimate"
        detail = next((d for _, d in methods if d), None)
    return Comparison(
        rows=rows,
        baseline=energy_baseline,
        baseline_note=why,
        energy_method=method,
        energy_detail=detail,
        data_description=samples.describe(),
        quality=samples.quality,
    )
