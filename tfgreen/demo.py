"""`tfgreen demo`: the main job, end to end on bundled real data.

On scikit-learn's 8x8 digits it trains a baseline CNN, prunes it to 80%
sparsity, fine-tunes it quantization-aware (keeping the zeros), distils a
small student from the baseline, exports the results for the `edge-cpu`,
`mcu` and `vehicle-ecu` targets (checked files plus manifests), measures every
model side by side with `tfgreen.compare`, lets `tfgreen.optimize` search for
the least energy on `edge-cpu` within one point (budgeted; its pick is noted,
its report in `out/optimize/`), and writes `report.md` with the
table, PNG plots, the `.tflite` files and their manifests. Training energy is
tracked with CodeCarbon (an estimate where the machine has no energy counter).

Then the language-model pipeline, in `out/language_model/`: a small causal
transformer (`tfgreen.models.tiny_gpt`) trained on the bundled text, pruned
one-shot to 50% with Wanda (no retraining), weight-quantized to int8
(`tfgreen.quantize`), distilled token by token into a student half as wide,
exported for `cpu` and `edge-cpu` with a KV cache (`generate=True`; an `mcu`
export is tried and its refusal recorded), a sample generated from the
edge-cpu file on LiteRT, and everything compared by perplexity, next-token
agreement, size, tokens per second and joules per token.
The `tfgreen demo` command is `tfgreen.cli.demo`.
"""

from __future__ import annotations

import time
from pathlib import Path

from tfgreen.errors import TfgreenValueError, message

__all__ = ["run_demo"]

_EPOCHS = {
    "full": {"baseline": 20, "prune": 8, "qat": 3, "distill": 20},
    "quick": {"baseline": 4, "prune": 3, "qat": 1, "distill": 4},
}
# The language model: windows of text, training windows used, epochs per stage.
_LM = {
    "full": {"seq_len": 64, "embed_dim": 64, "windows": None, "train": 6, "distill": 6},
    "quick": {"seq_len": 32, "embed_dim": 32, "windows": 1024, "train": 2, "distill": 2},
}
_PROMPT = "The return statement"
_NOTE_CHARS = 900  # a refusal's headline, the named tensors and the figures


def _step(text: str, started: float) -> None:
    print(f"[tfgreen demo {time.perf_counter() - started:5.0f}s] {text}", flush=True)


def _fit(model, x, y, epochs: int, callbacks: list, label: str, started: float, sample_weight=None):
    import tfgreen

    tracker = tfgreen.callbacks.EnergyTracker(country_iso_code="DEU", tracking_mode="process")
    _step(f"{label}: {epochs} epoch(s)", started)
    model.fit(
        x,
        y,
        sample_weight=sample_weight,
        epochs=epochs,
        batch_size=32,
        verbose=2,
        callbacks=[*callbacks, tracker],
        validation_split=0.0,
    )
    return tracker


def _greedy(model, tokenizer, prompt: str, new_tokens: int) -> str:
    """Greedy continuation of `prompt` by a fixed-length Keras LM (last window each step)."""
    import numpy as np

    ids = list(tokenizer.encode(prompt))
    seq_len = int(model.inputs[0].shape[1])
    for _ in range(new_tokens):
        window = ids[-seq_len:]
        padded = np.zeros((1, seq_len), "int32")
        padded[0, : len(window)] = window
        logits = np.asarray(model(padded, training=False))
        ids.append(int(logits[0, len(window) - 1].argmax()))
    return tokenizer.decode(ids)


def _optimizer_note(search) -> str:
    """One line on what `tfgreen.optimize` picked (see optimize/optimize.md)."""
    best = search.best
    if best is None:
        return f"tfgreen.optimize: no candidate met the floor ({len(search.candidates)} tried)."
    return (
        f"tfgreen.optimize picked {best['name']} out of {len(search.candidates)} candidates: "
        f"accuracy {best['accuracy']:.4f} on its .tflite, "
        f"{best['joules_per_inference']['estimate']:.3g} J per inference (estimate, "
        f"{best['joules_per_inference']['estimate_target']}), {best['size_bytes'] / 1024:.1f} KB; "
        "every candidate and why it was kept or rejected: optimize/optimize.md"
    )


def _language_model(out: Path, quick: bool, seed: int, started: float):
    """The language-model pipeline (see the module docstring); returns its `Comparison`."""
    import keras

    import tfgreen
    from tfgreen.datasets import load_text, next_token_targets
    from tfgreen.errors import TargetError
    from tfgreen.models import tiny_gpt

    plan = _LM["quick" if quick else "full"]
    out.mkdir(parents=True, exist_ok=True)
    _step("loading bundled text (Python's pydoc topics, in-memory BPE, no download)", started)
    data = load_text(seq_len=plan["seq_len"], vocab_size=512)
    x = data.train if plan["windows"] is None else data.train[: plan["windows"]]
    y, weights = next_token_targets(x)
    val = data.val[:256] if quick else data.val
    loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)

    lm = tiny_gpt(
        vocab_size=512,
        seq_len=plan["seq_len"],
        embed_dim=plan["embed_dim"],
        ff_dim=2 * plan["embed_dim"],
        seed=seed,
    )
    lm.compile(keras.optimizers.Adam(1e-2), loss)
    lm_tracker = _fit(lm, x, y, plan["train"], [], "tiny GPT on the text", started, weights)

    _step("one-shot Wanda pruning to 50% (64 calibration windows, no retraining)", started)
    wanda = tfgreen.prune(lm, sparsity=0.5, method="wanda", calibration_data=x[:64])
    _step("int8 weights with tfgreen.quantize (Keras 3 model.quantize, checked)", started)
    int8 = tfgreen.quantize(lm, "int8", validation_data=val[:64])
    student = tiny_gpt(
        vocab_size=512,
        seq_len=plan["seq_len"],
        embed_dim=plan["embed_dim"] // 2,
        ff_dim=plan["embed_dim"],
        num_layers=1,
        seed=seed + 1,
    )
    distiller = tfgreen.Distiller(teacher=lm, student=student, temperature=2.0)
    distiller.compile(keras.optimizers.Adam(1e-2))
    distill_tracker = _fit(
        distiller, x, y, plan["distill"], [], "distilling a student half as wide", started, weights
    )

    exports = [
        ("LM cpu float32", lm, "cpu", True),
        ("LM edge-cpu", lm, "edge-cpu", True),
        ("Wanda 50% LM edge-cpu", wanda, "edge-cpu", False),
        ("int8-weight LM edge-cpu", int8, "edge-cpu", False),
        ("student LM edge-cpu", student, "edge-cpu", True),
        ("LM mcu", lm, "mcu", False),
    ]
    candidates = {"LM (keras)": {"model": lm, "tracker": lm_tracker}}
    training = {
        "training_kwh": distill_tracker.energy_kwh,
        "training_co2_kg": distill_tracker.co2_kg,
    }
    notes = []
    for name, model, target, generate in exports:
        _step(f"exporting {name}" + (" with a KV cache" if generate else ""), started)
        file = out / f"{name.replace(' ', '_').replace('%', '')}.tflite"
        try:
            report = tfgreen.export_tflite(
                model,
                file,
                target=target,
                calibration_data=x[:200],
                validation_data=val,
                generate=generate,
            )
        except TargetError as error:
            notes.append(f"{name}: refused. {str(error)[:_NOTE_CHARS]}")
            continue
        candidates[name] = {"model": report.path, **(training if model is student else {})}
        tried = ", ".join(f"{a['quantization']} failed {a['failed']}" for a in report.attempts)
        notes.append(
            f"{name}: {report.quantization}, {report.size_bytes / 1024:.0f} KB, perplexity ratio "
            f"{report.perplexity['ratio']:.4f}, next-token agreement "
            f"{report.next_token_agreement:.3f}" + (f" (tried first: {tried})" if tried else "")
        )
    prompt = data.tokenizer.encode(_PROMPT)
    if "LM edge-cpu" in candidates:
        _step("generating on LiteRT from the edge-cpu file (prefill + cached decode)", started)
        new = tfgreen.generate(candidates["LM edge-cpu"]["model"], prompt, max_new_tokens=16)
        text = data.tokenizer.decode([*prompt, *new])
        notes.append(f"greedy text, edge-cpu file on LiteRT: {text!r}")
    for label, model in (("float", lm), ("Wanda 50%", wanda), ("student", student)):
        notes.append(
            f"greedy text, {label} Keras model: {_greedy(model, data.tokenizer, _PROMPT, 16)!r}"
        )
    _step("measuring the language models side by side (perplexity, tokens/s, J/token)", started)
    result = tfgreen.compare(
        candidates, val, runs=20 if quick else 100, energy_seconds=0.3 if quick else 1.0
    )
    result.notes.extend(notes)
    result.save(
        out,
        title="tfgreen demo: tiny GPT on bundled text, Wanda, int8 weights, distilled, exported",
    )
    print(result.to_text())
    return result


def run_demo(out: str | Path = "tfgreen-demo", quick: bool = False, seed: int = 0):
    """Runs the demo pipeline and writes its files under `out`.

    Args:
        out: Output folder; created if missing. Defaults to `"tfgreen-demo"`.
        quick: Fewer epochs and shorter measurements, for tests and a first
            look (under a minute on 2 cores). Defaults to `False`.
        seed: Seed of the data split and the initial weights. Defaults to `0`.

    Returns:
        The `tfgreen.report.Comparison` of every model, also saved in `out`.

    Example:
    ```python
    result = run_demo("demo-out", quick=True)
    [row["model"] for row in result.rows][:2]
    # ['baseline (keras)', 'baseline cpu float32']
    ```
    """
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise TfgreenValueError(
            message(
                "The demo's output path is a file",
                "a folder (it is created if missing)",
                "Pass --out with a folder name",
                out=str(out),
            )
        )
    started = time.perf_counter()
    import tfgreen
    from tfgreen.datasets import load_digits
    from tfgreen.models import small_cnn

    epochs = _EPOCHS["quick" if quick else "full"]
    out.mkdir(parents=True, exist_ok=True)
    _step("loading bundled digits (scikit-learn 8x8, 10 classes, no download)", started)
    (x_train, y_train), (x_test, y_test) = load_digits(seed=seed)
    loss = "sparse_categorical_crossentropy"

    baseline = small_cnn("keras3", seed=seed)
    baseline.compile("adam", loss, metrics=["accuracy"])
    base_tracker = _fit(baseline, x_train, y_train, epochs["baseline"], [], "baseline CNN", started)

    pruned = tfgreen.prune(baseline, sparsity=0.8)
    pruned.compile("adam", loss, metrics=["accuracy"])
    prune_tracker = _fit(
        pruned,
        x_train,
        y_train,
        epochs["prune"],
        [tfgreen.callbacks.Pruning()],
        "pruning to 80% sparsity",
        started,
    )
    slim = tfgreen.strip(pruned)

    qat = tfgreen.quantize_aware(slim)
    qat.compile("adam", loss, metrics=["accuracy"])
    qat_tracker = _fit(
        qat,
        x_train,
        y_train,
        epochs["qat"],
        [],
        "quantization-aware fine-tune (zeros kept)",
        started,
    )

    student = small_cnn("keras3", filters=4, seed=seed + 1)
    distiller = tfgreen.Distiller(
        teacher=baseline, student=student, temperature=4.0, student_loss_weight=0.5
    )
    distiller.compile(optimizer="adam", loss=loss, metrics=["accuracy"])
    distill_tracker = _fit(
        distiller,
        x_train,
        y_train,
        epochs["distill"],
        [],
        "distilling a 4-filter student from the baseline",
        started,
    )

    calibration = x_train[:200]
    exports = [
        ("baseline cpu float32", baseline, "cpu", None),
        ("pruned+QAT edge-cpu", qat, "edge-cpu", None),
        ("pruned+QAT mcu", qat, "mcu", None),
        ("pruned+QAT vehicle-ecu", qat, "vehicle-ecu", None),
        ("student edge-cpu", distiller.student, "edge-cpu", calibration),
    ]
    paths = {}
    for name, model, target, calib in exports:
        _step(f"exporting {name}", started)
        file = out / f"{name.replace(' ', '_').replace('+', '_')}.tflite"
        report = tfgreen.export_tflite(
            model, file, target=target, calibration_data=calib, validation_data=(x_test, y_test)
        )
        paths[name] = report.path

    compression = prune_tracker.energy_kwh + qat_tracker.energy_kwh
    candidates = {"baseline (keras)": {"model": baseline, "tracker": base_tracker}}
    for name, path in paths.items():
        if name.startswith("pruned+QAT"):
            candidates[name] = {
                "model": path,
                "training_kwh": compression,
                "training_co2_kg": prune_tracker.co2_kg + qat_tracker.co2_kg,
            }
        elif name.startswith("student"):
            candidates[name] = {"model": path, "tracker": distill_tracker}
        else:
            candidates[name] = path
    _step("measuring every model side by side (accuracy, size, latency, energy)", started)
    result = tfgreen.compare(
        candidates,
        (x_test, y_test),
        runs=50 if quick else 200,
        energy_seconds=0.3 if quick else 1.0,
    )
    _step("tfgreen.optimize: the least energy on edge-cpu within 1 point (budgeted)", started)
    search = tfgreen.optimize(
        baseline,
        (x_train, y_train),
        validation_data=(x_test, y_test),
        target="edge-cpu",
        max_accuracy_drop=0.01,
        budget_minutes=0.5 if quick else 2.0,
        out_dir=out / "optimize",
        seed=seed,
        verbose=False,
    )
    search.report()
    result.notes.append(_optimizer_note(search))
    result.save(out, title="tfgreen demo: digits CNN, pruned, quantized, distilled, exported")
    print(result.to_text())
    _step(f"wrote {out / 'report.md'}", started)
    _language_model(out / "language_model", quick, seed, started)
    _step(f"wrote {out / 'language_model' / 'report.md'}", started)
    return result
