"""The recipes `tfgreen.optimize` tries, cheapest first, and how each one builds its model.

A recipe is a compression step (none, one-shot pruning, fine-tuned
magnitude pruning, or quantization-aware training) followed by a
post-training quantization of the `.tflite` export. `plan` lists them as
ladders, in this order:

1. post-training: every quantization the target allows (`quantizations`),
   each on the model as given (seconds each);
2. one-shot pruning, no training: `tfgreen.prune(method="wanda")` and
   `method="sparsegpt"` to 50% and 75%, calibrated on training samples;
3. fine-tuned pruning: `tfgreen.prune` to 50%, 75%, 90% sparsity, a short
   `fit` with `tfgreen.callbacks.Pruning`, then `tfgreen.strip`;
4. quantization-aware training (`tfgreen.quantize_aware`, zeros kept),
   where the target takes int8.

Each ladder goes from mild to aggressive and stops at the first step whose
`.tflite` falls below the floor. A pruning or QAT step starts from the model
of the step before it in its ladder (pruning 75% continues from the 50%
model), or for a ladder's first step from the best candidate so far; it is
exported with the best candidate's quantization (QAT always with int8), so
each fine-tune builds on what already held the floor.

Example:
>>> from tfgreen.export.targets import get_target
>>> quantizations(get_target("edge-cpu")), quantizations(get_target("mcu"))
(('dynamic', 'float16', 'int8'), ('int8',))
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

__all__ = ["Recipe", "quantizations", "plan", "build"]

POST_TRAINING = "post-training"
ONE_SHOT = "one-shot pruning"
FINE_TUNED = "fine-tuned pruning"
QAT = "quantization-aware training"
_SPARSITIES = (0.5, 0.75, 0.9)
_ONE_SHOT = {"wanda": (0.5, 0.75), "sparsegpt": (0.5, 0.75)}
_CALIBRATION = 128  # training samples one-shot pruning reads its statistics from
_PRUNE_LR = 1e-3
_QAT_LR = 1e-4


@dataclass(frozen=True)
class Recipe:
    """One candidate: a compression step, then the export's quantization.

    Attributes:
        stage: `"post-training"`, `"one-shot pruning"`, `"fine-tuned
            pruning"` or `"quantization-aware training"`.
        quantization: The `.tflite` quantization; `None` until the search
            fills in the best candidate's.
        sparsity: Pruning sparsity, or `None`.
        method: One-shot pruning method (`"wanda"`, `"sparsegpt"`), or `None`.
        epochs: Fine-tuning epochs (0 for post-training).
        start: Id of the candidate whose Keras model this one starts
            from (`None`: the model as given).
    """

    stage: str
    quantization: str | None = None
    sparsity: float | None = None
    method: str | None = None
    epochs: int = 0
    start: int | None = None

    @property
    def trains(self) -> bool:
        """Whether the recipe fine-tunes a model (and so takes a while)."""
        return self.epochs > 0

    @property
    def name(self) -> str:
        """A short label, for example `"prune 75% (2 ep) + int8"`."""
        if self.stage == POST_TRAINING:
            step = ""
        elif self.stage == ONE_SHOT:
            step = f"{self.method} {self.sparsity:.0%} + "
        elif self.stage == FINE_TUNED:
            step = f"prune {self.sparsity:.0%} ({self.epochs} ep) + "
        else:
            step = f"QAT ({self.epochs} ep) + "
        base = f" from #{self.start}" if self.start else ""
        if self.quantization is None:  # not run yet: the best candidate's, when it runs
            return step.removesuffix(" + ") + base
        return f"{step}{self.quantization}{base}"

    def to_dict(self) -> dict:
        """The recipe as plain data, with its name."""
        return {"name": self.name, **dataclasses.asdict(self)}


def quantizations(target) -> tuple[str, ...]:
    """The post-training quantizations a target takes, cheapest to try first.

    A target that runs every op in integer, or needs integer inputs and
    outputs (`edge-tpu`, `mcu`, `vehicle-ecu`), takes only its own
    quantization; a float16 target (`edge-gpu`, the GPU delegate) only
    float16; the others (`cpu`, `edge-cpu`: XNNPACK with float fallback)
    take dynamic-range int8, float16 and full int8.

    Args:
        target: A `tfgreen.Target`.

    Returns:
        Quantization names.
    """
    integer_io = target.input_dtype != "float32" or target.output_dtype != "float32"
    if integer_io or not target.allow_float_ops:
        return (target.quantization,)
    if target.quantization == "float16":
        return ("float16",)
    return ("dynamic", "float16", "int8")


def plan(target, epochs: int) -> list[list[Recipe]]:
    """The ladders of recipes for a target, in the order the search runs them.

    Args:
        target: A `tfgreen.Target`.
        epochs: Fine-tuning epochs of each training step.

    Returns:
        A list of ladders (lists of `Recipe`); a ladder stops at its first
        step below the floor.
    """
    ladders = [[Recipe(POST_TRAINING, quantization=q)] for q in quantizations(target)]
    ladders += [
        [Recipe(ONE_SHOT, sparsity=s, method=method) for s in sparsities]
        for method, sparsities in _ONE_SHOT.items()
    ]
    ladders.append([Recipe(FINE_TUNED, sparsity=s, epochs=epochs) for s in _SPARSITIES])
    if "int8" in quantizations(target):
        ladders.append([Recipe(QAT, quantization="int8", epochs=epochs)])
    return ladders


def build(recipe: Recipe, base, task, seed: int):
    """The Keras model a recipe exports: `base` as it is, pruned, or QAT-trained.

    Args:
        recipe: The `Recipe`.
        base: The Keras model it starts from (never changed).
        task: The search's `tfgreen.search.task.Task` (data and loss).
        seed: Seeds the fine-tune.

    Returns:
        A Keras model of `base`'s flavour.
    """
    import tfgreen

    if recipe.stage == POST_TRAINING:
        return base
    if recipe.stage == ONE_SHOT:
        calibration = task.x_train[:_CALIBRATION]
        return tfgreen.prune(
            base, sparsity=recipe.sparsity, method=recipe.method, calibration_data=calibration
        )
    if recipe.stage == FINE_TUNED:
        pruned = tfgreen.prune(base, sparsity=recipe.sparsity)
        task.fit(pruned, recipe.epochs, seed, _PRUNE_LR, [tfgreen.callbacks.Pruning()])
        return tfgreen.strip(pruned)
    qat = tfgreen.quantize_aware(base)
    task.fit(qat, recipe.epochs, seed, _QAT_LR)
    return qat
