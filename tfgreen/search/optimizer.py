"""`tfgreen.optimize`: the cheapest model on a device target that keeps its accuracy.

The search exports the model as given to a float32 `.tflite` (the
reference: its accuracy, or perplexity, sets the floor), then tries the
recipes of `tfgreen.search.recipes.plan` in order, cheapest first. Every
candidate is a checked `export_tflite` for the target, and is judged on
that file: its accuracy (perplexity for a language model) on the
validation data as the export report measured it, never the Keras
model's. A candidate below the floor is rejected and ends its ladder; of
the candidates within the floor, the pick is the one with the least
objective (estimated energy, file size or latency), ties going to the
better quality, then the smaller file, then the smaller gzip size.
At the end the reference and the pick are measured side by side with
`tfgreen.compare` (joules per inference on this host, method stated).
"""

from __future__ import annotations

import dataclasses
import gzip
import re
import sys
import time
from pathlib import Path

from tfgreen import _io, _validate
from tfgreen.errors import TfgreenError, TfgreenTypeError, TfgreenValueError, message
from tfgreen.export.targets import Target, get_target
from tfgreen.search import recipes
from tfgreen.search.result import OptimizeResult, cost
from tfgreen.search.task import Task, make_task

__all__ = ["OBJECTIVES", "optimize"]

OBJECTIVES = ("energy", "latency", "size")
_DEFAULT_EPOCHS = 2
_DEFAULT_DROP, _DEFAULT_RATIO = 0.01, 1.03
_REFERENCE = "float32 reference"
_MEASURE_RUNS, _MEASURE_SECONDS = 50, 0.3


def _estimate_table(target: Target) -> str:
    """The `estimate_energy` table of a target: its own, or `edge-cpu`'s for a custom one."""
    from tfgreen.energy.estimate import TABLES

    return target.name if target.name in TABLES else "edge-cpu"


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "_", text).strip("_").lower()[:60]


class _Search:
    """The state of one search: candidates so far, the best one, the budget, the bar."""

    def __init__(self, task: Task, target: Target, objective: str, floor, out_dir: Path, bar):
        self.task, self.target, self.objective = task, target, objective
        self.floor, self.out_dir, self.bar = floor, out_dir, bar
        self.candidates: list[dict] = []
        self.skipped: list[dict] = []
        self.models: dict[int, object] = {}  # candidate id -> its Keras model
        self.best: dict | None = None
        self.reference: dict | None = None
        self.deadline: float | None = None
        self.last_training_seconds: float | None = None

    # ---- one candidate

    def _export(self, model, ident: int, name: str, target: Target, quantization: str) -> dict:
        import tfgreen

        path = self.out_dir / f"{ident:02d}_{_slug(name)}.tflite"
        report = tfgreen.export_tflite(
            model,
            path,
            target=target,
            quantization=quantization,
            calibration_data=self.task.x_train,
            validation_data=self.task.validation,
        )
        data = Path(report.path).read_bytes()
        table = _estimate_table(self.target)
        estimate = tfgreen.estimate_energy(data, target=table)
        figures = {
            "path": report.path,
            "quantization": report.quantization,
            "size_bytes": report.size_bytes,
            "gzip_bytes": len(gzip.compress(data, compresslevel=9, mtime=0)),
            "latency_ms": report.latency_ms,
            "sparsity": report.sparsity,
            "joules_per_inference": {
                "estimate": estimate.joules_per_inference,
                "estimate_target": table,
                "estimate_method": estimate.method,
                "measured": None,
            },
        }
        if self.task.language_model:
            figures["perplexity"] = report.perplexity["tflite"]
        else:
            figures["accuracy"] = report.accuracy
        return figures

    def _judge(self, record: dict) -> None:
        """Sets `status`/`reason` by the floor, and the quality figures against the reference."""
        if self.task.language_model:
            ratio = record["perplexity"] / self.reference["perplexity"]
            record["perplexity_ratio"] = ratio
            if ratio > self.floor["max_perplexity_ratio"] + 1e-9:
                record["status"], record["reason"] = (
                    "rejected",
                    (
                        f"below the floor: perplexity ratio {ratio:.4f} > "
                        f"{self.floor['max_perplexity_ratio']:.4f} (on the .tflite file)"
                    ),
                )
            return
        drop = self.reference["accuracy"] - record["accuracy"]
        record["accuracy_drop"] = drop
        if record["accuracy"] < self.floor["min_accuracy"] - 1e-9:
            record["status"], record["reason"] = (
                "rejected",
                (
                    f"below the floor: accuracy {record['accuracy']:.4f} < "
                    f"{self.floor['min_accuracy']:.4f} (on the .tflite file)"
                ),
            )

    def rank(self, record: dict) -> tuple:
        """Sort key of a candidate within the floor: objective, quality, size, gzip size."""
        quality = record[self.task.quality]
        return (
            cost(record, self.objective),
            quality if self.task.language_model else -quality,
            record["size_bytes"],
            record["gzip_bytes"],
        )

    def try_recipe(self, recipe: recipes.Recipe, seed: int, previous: dict | None) -> dict:
        """Builds, exports and judges one recipe; returns its candidate record.

        A pruning or QAT step starts from `previous` (the step before it in
        its ladder, when kept), else from the best candidate so far.
        """
        if recipe.quantization is None:
            quantization = self.best["quantization"] if self.best else self.target.quantization
            recipe = dataclasses.replace(recipe, quantization=quantization)
        start = previous or self.best
        compresses = recipe.stage != recipes.POST_TRAINING
        if compresses and start and start["stage"] != recipes.POST_TRAINING:
            recipe = dataclasses.replace(recipe, start=start["id"])
        base = self.models[recipe.start] if recipe.start else self.task.model
        ident, name = len(self.candidates) + 1, recipe.name
        self.bar.set_postfix_str(name[:50], refresh=True)
        record = {"id": ident, "name": name, "stage": recipe.stage, "recipe": recipe.to_dict()}
        started = time.perf_counter()
        try:
            model = recipes.build(recipe, base, self.task, seed)
            record.update(self._export(model, ident, name, self.target, recipe.quantization))
            record["status"], record["reason"] = "kept", None
            self.models[ident] = model
        except TfgreenError as error:  # a refused export or an unsupported layer: say why
            record["status"] = "rejected"
            record["reason"] = f"{type(error).__name__}: {str(error)[:400]}"
        record["seconds"] = time.perf_counter() - started
        if recipe.trains:
            self.last_training_seconds = record["seconds"]
        if record["status"] == "kept":
            self._judge(record)
        self.candidates.append(record)
        if record["status"] == "kept" and (
            self.best is None or self.rank(record) < self.rank(self.best)
        ):
            self.best = record
        self.bar.update(1)
        return record

    # ---- the search

    def run_reference(self) -> None:
        """Exports the model as given to float32 (`cpu` target): the floor's reference."""
        self.bar.set_postfix_str(_REFERENCE, refresh=True)
        started = time.perf_counter()
        figures = self._export(self.task.model, 0, _REFERENCE, get_target("cpu"), "float32")
        self.reference = {
            "id": 0,
            "name": _REFERENCE,
            "stage": "reference",
            "recipe": None,
            "status": "reference",
            "reason": "the model as given, float32; sets the floor",
            **figures,
            "seconds": time.perf_counter() - started,
        }
        if self.task.language_model:
            self.reference["perplexity_ratio"] = 1.0
            self.floor["perplexity"] = (
                self.reference["perplexity"] * self.floor["max_perplexity_ratio"]
            )
        else:
            self.reference["accuracy_drop"] = 0.0
            self.floor["min_accuracy"] = (
                self.reference["accuracy"] - self.floor["max_accuracy_drop"]
            )
        self.bar.update(1)

    def _out_of_budget(self, recipe: recipes.Recipe) -> str | None:
        if self.deadline is None:
            return None
        left = self.deadline - time.perf_counter()
        if left <= 0:
            return "budget spent"
        if recipe.trains and self.last_training_seconds and self.last_training_seconds > left:
            return (
                f"budget: the last fine-tune took {self.last_training_seconds:.0f} s, "
                f"{left:.0f} s left"
            )
        return None

    def run(self, ladders: list[list[recipes.Recipe]], seed: int) -> None:
        """Runs the ladders in order; a ladder stops at its first rejected step."""
        for ladder in ladders:
            previous = None
            for step, recipe in enumerate(ladder):
                why = self._out_of_budget(recipe)
                if why is None:
                    record = self.try_recipe(recipe, seed + len(self.candidates), previous)
                    if record["status"] != "rejected":
                        previous = record
                        continue
                    why = f"ladder stopped: {record['name']} was rejected"
                    step += 1
                for rest in ladder[step:]:
                    self.skipped.append({"name": rest.name, "stage": rest.stage, "reason": why})
                    self.bar.total -= 1
                self.bar.refresh()
                break


def _check_floor(language_model: bool, max_accuracy_drop, max_perplexity_ratio) -> dict:
    if language_model:
        if max_accuracy_drop is not None:
            raise TfgreenValueError(
                message(
                    "A language model's floor is a perplexity ratio, not an accuracy drop",
                    "max_perplexity_ratio (for example 1.03) and max_accuracy_drop=None",
                    "Pass max_perplexity_ratio=1.03 instead of max_accuracy_drop",
                    max_accuracy_drop=max_accuracy_drop,
                )
            )
        ratio = _validate.number(
            "max_perplexity_ratio",
            _DEFAULT_RATIO if max_perplexity_ratio is None else max_perplexity_ratio,
            minimum=1.0,
            example=1.03,
        )
        return {"max_perplexity_ratio": ratio}
    if max_perplexity_ratio is not None:
        raise TfgreenValueError(
            message(
                "A classifier's floor is an accuracy drop, not a perplexity ratio",
                "max_accuracy_drop (for example 0.01) and max_perplexity_ratio=None",
                "Pass max_accuracy_drop=0.01 instead of max_perplexity_ratio",
                max_perplexity_ratio=max_perplexity_ratio,
            )
        )
    drop = _DEFAULT_DROP if max_accuracy_drop is None else max_accuracy_drop
    return {"max_accuracy_drop": _validate.fraction("max_accuracy_drop", drop, example=0.01)}


def _check_out_dir(out_dir) -> Path:
    if not isinstance(out_dir, (str, Path)) or not str(out_dir):
        raise TfgreenTypeError(
            message(
                "`out_dir` must be a folder path",
                "a str or Path (the folder is created if missing)",
                "Pass for example out_dir='out/search'",
                out_dir=out_dir,
            )
        )
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise TfgreenValueError(
            message(
                "`out_dir` is a file",
                "a folder (it is created if missing)",
                "Pass a folder name",
                out_dir=str(out_dir),
            )
        )
    _io.check_writable(out_dir / "search.json")
    return out_dir


def _measure(search: _Search) -> object | None:
    """The reference and the pick side by side with `tfgreen.compare` (host joules)."""
    from tfgreen.comparison import compare

    best, reference = search.best, search.reference
    if best is None:
        return None
    comparison = compare(
        {reference["name"]: reference["path"], best["name"]: best["path"]},
        search.task.validation,
        runs=_MEASURE_RUNS,
        energy_seconds=_MEASURE_SECONDS,
    )
    for row, record in zip(comparison.rows, (reference, best), strict=True):
        record["joules_per_inference"].update(
            measured=row["joules_per_inference"],
            measured_spread=row["joules_spread"],
            measured_saving=row["energy_saving"],
            measured_method=comparison.energy_detail or comparison.energy_method,
        )
    return comparison


def optimize(
    model,
    train_data,
    validation_data=None,
    target: str | Path | Target = "edge-cpu",
    max_accuracy_drop: float | None = None,
    objective: str = "energy",
    budget_minutes: float | None = None,
    out_dir: str | Path = "tfgreen-optimize",
    seed: int = 0,
    max_perplexity_ratio: float | None = None,
    epochs: int | None = None,
    verbose: bool = True,
) -> OptimizeResult:
    """Searches for the cheapest `.tflite` of a model on a target that keeps its accuracy.

    Candidates, cheapest first: every post-training quantization the target
    takes (`dynamic`, `float16`, `int8` on `edge-cpu`; `int8` only on the
    all-integer targets), then one-shot pruning (Wanda, SparseGPT; 50%,
    75%), then magnitude pruning to 50/75/90% fine-tuned for `epochs`, then
    quantization-aware training (where the target takes int8). A pruning or
    QAT step starts from the step before it in its ladder, or from the best
    candidate so far.
    Each candidate is a checked export for `target`, judged on the file's
    own accuracy (perplexity for a language model) on `validation_data`:
    a candidate below the floor is rejected (never picked) and stops its
    ladder; the search also stops when `budget_minutes` runs out. The
    files land in `out_dir`, with `search.json`.

    Args:
        model: A built Keras 3 or tf_keras model: a classifier with one
            input, or a language model (token ids in, next-token logits out).
        train_data: `(x, y)` for a classifier (calibration and fine-tuning);
            token ids `[n, seq_len]` for a language model.
        validation_data: The same form, held out; the floor is measured on
            it. Required. Defaults to `None`.
        target: A built-in target name, a JSON target file or a
            `tfgreen.Target`. Defaults to `"edge-cpu"`.
        max_accuracy_drop: Classifiers: the largest accuracy loss of a
            pick against the float32 `.tflite` of `model` (`None`: 0.01).
            Defaults to `None`.
        objective: What the pick minimises: `"energy"` (tfgreen's model
            estimate of joules per inference on the target, deterministic),
            `"size"` (file bytes) or `"latency"` (LiteRT median on this
            host, noisy). Defaults to `"energy"`.
        budget_minutes: Stop starting candidates after this long; `None`
            for no limit. Defaults to `None`.
        out_dir: Folder for the `.tflite` files, their manifests and
            `search.json`. Defaults to `"tfgreen-optimize"`.
        seed: Seeds every fine-tune (same seed, same candidates).
            Defaults to `0`.
        max_perplexity_ratio: Language models: the largest perplexity of a
            pick over the float32 `.tflite`'s (`None`: 1.03).
            Defaults to `None`.
        epochs: Fine-tuning epochs of each pruning and QAT step (`None`: 2).
            Defaults to `None`.
        verbose: Show a progress bar over the candidates (stderr).
            Defaults to `True`.

    Returns:
        An `OptimizeResult`: `best` (the pick: `path`, `recipe`, `accuracy`
        or `perplexity`, `joules_per_inference` with `estimate` and
        `measured`, `size_bytes`, `latency_ms`, ...), `candidates` (each with
        its figures, `status` and `reason`), `skipped`, `pareto`, and
        `report(out_dir)`.

    Example:
    ```python
    res = tfgreen.optimize(model, (x_train, y_train), validation_data=(x_test, y_test),
                           target="edge-cpu", max_accuracy_drop=0.01, out_dir="out/search")
    res.best["recipe"]["name"], res.best["accuracy"], res.best["joules_per_inference"]
    res.report("out/search")
    ```
    """
    from tqdm import tqdm

    started = time.perf_counter()
    target = get_target(target)
    _validate.choice("objective", objective, OBJECTIVES)
    budget = _validate.number(
        "budget_minutes", budget_minutes, minimum=0, exclusive_minimum=True, allow_none=True
    )
    seed = _validate.positive_int("seed", seed, minimum=0, example=0)
    epochs = _validate.positive_int("epochs", epochs, allow_none=True, example=2)
    _validate.boolean("verbose", verbose)
    out_dir = _check_out_dir(out_dir)
    task = make_task(model, train_data, validation_data)
    floor = _check_floor(task.language_model, max_accuracy_drop, max_perplexity_ratio)
    ladders = recipes.plan(target, _DEFAULT_EPOCHS if epochs is None else epochs)
    out_dir.mkdir(parents=True, exist_ok=True)
    total = 1 + sum(len(ladder) for ladder in ladders)
    with tqdm(
        total=total, desc="optimize", unit="candidate", file=sys.stderr, disable=not verbose
    ) as bar:
        search = _Search(task, target, objective, floor, out_dir, bar)
        if budget is not None:
            search.deadline = started + 60.0 * budget
        search.run_reference()
        search.run(ladders, seed)
    comparison = _measure(search)
    result = OptimizeResult.from_search(search, comparison, time.perf_counter() - started, seed)
    result.save_json(out_dir / "search.json")
    return result
