"""`tfgreen.Distiller`: one knowledge-distillation model for both Kerases.

`Distiller(teacher, student, ...)` builds an instance of the teacher's
flavour's distiller class (`tfgreen.flavor.backend("tfgreen.distillation",
teacher).DISTILLER`): for Keras 3 a subclass of `keras.distillation.Distiller`,
for tf_keras a `tf_keras.Model` with the same behaviour. Both classes derive
from `Distiller`, so `isinstance(d, tfgreen.Distiller)` is plain inheritance.
Compile, fit and evaluate it like any model; `d.student` is the student
object that was passed in, trained in place.
"""

from __future__ import annotations

import functools
import warnings
from dataclasses import dataclass

from tfgreen._validate import number
from tfgreen.distillation.losses import (
    FeatureDistillation,
    LogitsDistillation,
    check_temperature,
    find_layer,
    output_kind,
)
from tfgreen.distillation.sequence import (
    SequencePlan,
    check_language_models,
    check_sequence_loss,
    check_sequence_specs,
    lm_output_kind,
)
from tfgreen.distribute import check_strategy, strategy_of
from tfgreen.errors import TfgreenTypeError, TfgreenValueError, UnsupportedLayerError, message
from tfgreen.flavor import backend, flavor_of, flavor_of_class

__all__ = [
    "Distiller",
    "FeaturePlan",
    "LogitsPlan",
    "Resolved",
    "check_compile_loss",
    "num_replicas",
    "resolve",
]


@dataclass(frozen=True)
class LogitsPlan:
    """A `LogitsDistillation` resolved against the models."""

    temperature: float
    teacher_kind: str
    student_kind: str
    binary: bool


@dataclass(frozen=True)
class FeaturePlan:
    """A `FeatureDistillation` resolved against the models (real layer names, widths)."""

    teacher_layer_name: str
    student_layer_name: str
    loss: str
    student_shape: tuple
    teacher_width: int | None  # None: same width, no projection


def num_replicas() -> int:
    """Number of replicas in sync of the current `tf.distribute` strategy (1 without one)."""
    import tensorflow as tf

    return tf.distribute.get_strategy().num_replicas_in_sync


def check_compile_loss(loss, sequence: SequencePlan | None = None) -> None:
    """Raises a tfgreen error when `compile()` gets no hard-label loss (or a wrong one).

    Args:
        loss: The `loss` given to `Distiller.compile`.
        sequence: The distiller's `SequencePlan` for two language models,
            whose hard loss is always the next-token cross-entropy (`loss`
            may be `None`). Defaults to `None`.
    """
    if sequence is not None:
        check_sequence_loss(loss, sequence.student_kind)
        return
    if loss is None:
        raise TfgreenValueError(
            message(
                "The distiller needs the student's hard-label loss in compile()",
                "a Keras loss for the labels",
                "Pass for example loss='sparse_categorical_crossentropy' "
                "(or 'binary_crossentropy' for a sigmoid student)",
                loss=loss,
            )
        )


def _shape(tensor) -> tuple:
    return tuple(None if d is None else int(d) for d in tensor.shape)


def _check_model(model, role: str) -> None:
    if not model.built or not model.weights:
        raise TfgreenValueError(
            message(
                f"The {role} model is not built: it has no weights yet",
                f"a built {role} (a trained teacher / a student with known input shape)",
                "Start the model with `keras.Input(shape)`, or call `model.build(input_shape)`"
                + (" and train it" if role == "teacher" else ""),
                **{role: model.name},
            )
        )
    outputs = getattr(model, "outputs", None)
    if not outputs or len(outputs) != 1:
        raise TfgreenValueError(
            message(
                f"The {role} must be a Functional or Sequential model with one output",
                "a model built from `keras.Input` with a single output tensor",
                "Build it with `keras.Input`; wrap subclassed models in a Functional model",
                **{f"{role}_outputs": None if not outputs else len(outputs)},
            )
        )


def _check_models(teacher, student):
    flavor = flavor_of(teacher)
    if flavor_of(student) != flavor:
        raise TfgreenTypeError(
            message(
                "Teacher and student are built with different Kerases",
                "both Keras 3 (`keras`) or both tf_keras (`tf_keras`)",
                "Rebuild the student with the teacher's Keras (e.g. tfgreen.models.small_mlp("
                f"flavor={flavor!r}))",
                teacher=flavor,
                student=flavor_of(student),
            )
        )
    _check_model(teacher, "teacher")
    _check_model(student, "student")
    inputs = check_language_models(teacher, student)  # names LM mismatches precisely
    for what, t, s in (
        ("input", teacher.inputs[0], student.inputs[0]),
        ("output", teacher.outputs[0], student.outputs[0]),
    ):
        if _shape(t)[1:] != _shape(s)[1:]:
            raise TfgreenValueError(
                message(
                    f"Teacher and student {what} shapes differ",
                    f"the same {what} shape (batch axis aside)",
                    f"Give the student the teacher's {what} shape"
                    + (" (same number of classes and the same head)" if what == "output" else ""),
                    **{f"teacher_{what}_shape": _shape(t), f"student_{what}_shape": _shape(s)},
                )
            )
    optimizer = getattr(teacher, "optimizer", None)
    # `.numpy()`: under tf.distribute the counter is a MirroredVariable that int() refuses.
    if optimizer is not None and int(optimizer.iterations.numpy()) == 0:
        warnings.warn(
            message(
                "The teacher was compiled but never trained (its optimizer made 0 steps)",
                "a trained teacher",
                "Fit the teacher first; ignore this if you loaded trained weights after compile()",
                teacher=teacher.name,
            ),
            UserWarning,
            stacklevel=3,
        )
    return inputs


def _check_weight(value, name: str, upper: float | None) -> float:
    return number(
        name,
        value,
        minimum=0,
        maximum=upper,
        example=0.5,
        fix=f"Pass for example {name}=0.5" if upper else f"Pass {name} as numbers >= 0",
    )


def _check_losses(
    distillation_losses, weights, native: tuple, native_name: str
) -> tuple[list, list[float]]:
    if distillation_losses is None:
        distillation_losses = [LogitsDistillation()]
    elif not isinstance(distillation_losses, (list, tuple)):
        distillation_losses = [distillation_losses]
    accepted = (LogitsDistillation, FeatureDistillation, *native)
    for item in distillation_losses:
        if not isinstance(item, accepted):
            raise TfgreenTypeError(
                message(
                    "`distillation_losses` holds something that is not a distillation loss",
                    "tfgreen.distillation.LogitsDistillation / FeatureDistillation objects"
                    + native_name,
                    "Pass for example [LogitsDistillation(), FeatureDistillation('dense1', 'dense1')]",
                    distillation_losses=item,
                )
            )
    if not distillation_losses:
        raise TfgreenValueError(
            message(
                "`distillation_losses` is empty",
                "at least one distillation loss",
                "Pass None for the default logits distillation",
                distillation_losses=distillation_losses,
            )
        )
    if weights is None:
        weights = [1.0] * len(distillation_losses)
    if not isinstance(weights, (list, tuple)) or len(weights) != len(distillation_losses):
        raise TfgreenValueError(
            message(
                "`distillation_loss_weights` does not match `distillation_losses`",
                f"a list of {len(distillation_losses)} numbers, one per loss",
                "Pass one weight per loss, or None for equal weights",
                distillation_loss_weights=weights,
            )
        )
    return list(distillation_losses), [
        _check_weight(w, "distillation_loss_weights", None) for w in weights
    ]


def _plan_features(spec: FeatureDistillation, teacher, student) -> FeaturePlan:
    teacher_layer = find_layer(teacher, spec.teacher_layer_name, "teacher")
    student_layer = find_layer(student, spec.student_layer_name, "student")
    t_shape, s_shape = _shape(teacher_layer.output), _shape(student_layer.output)
    if len(t_shape) != len(s_shape) or t_shape[1:-1] != s_shape[1:-1]:
        raise UnsupportedLayerError(
            message(
                f"Features of teacher layer {teacher_layer.name!r} and student layer "
                f"{student_layer.name!r} cannot be matched",
                "outputs whose shapes agree on every axis but the last (the width, "
                "which a learned projection maps)",
                "Pick layers at the same resolution, e.g. both after the same pooling",
                teacher_feature_shape=t_shape,
                student_feature_shape=s_shape,
            )
        )
    return FeaturePlan(
        teacher_layer_name=teacher_layer.name,
        student_layer_name=student_layer.name,
        loss=spec.loss,
        student_shape=s_shape,
        teacher_width=None if t_shape[-1] == s_shape[-1] else t_shape[-1],
    )


def _plan(spec, teacher, student, temperature: float):
    if isinstance(spec, FeatureDistillation):
        return _plan_features(spec, teacher, student)
    if not isinstance(spec, LogitsDistillation):
        return spec  # a native keras.distillation loss, used as given
    teacher_kind, teacher_binary = output_kind(teacher, spec.teacher_output, "teacher")
    student_kind, student_binary = output_kind(student, spec.student_output, "student")
    if teacher_binary != student_binary:
        raise UnsupportedLayerError(
            message(
                "Teacher and student heads differ: one is sigmoid (binary), the other is not",
                "the same kind of head on both (softmax/logits or sigmoid/one logit)",
                "Give the student the teacher's head",
                teacher_binary=teacher_binary,
                student_binary=student_binary,
            )
        )
    return LogitsPlan(
        temperature=temperature if spec.temperature is None else spec.temperature,
        teacher_kind=teacher_kind,
        student_kind=student_kind,
        binary=teacher_binary,
    )


def _as_spec(loss):
    """A backend's own logits loss (as Keras 3 reloads a saved distiller) as its spec."""
    plan = getattr(loss, "plan", None)
    if isinstance(plan, LogitsPlan):
        return LogitsDistillation(plan.temperature, plan.teacher_kind, plan.student_kind)
    return loss


@dataclass(frozen=True)
class Resolved:
    """`Distiller`'s arguments, checked and resolved against the two models."""

    plans: list  # LogitsPlan / FeaturePlan / native losses, one per term
    weights: list[float]  # one per term
    student_loss_weight: float
    sequence: SequencePlan | None = None  # two language models: token-level distillation


def resolve(
    native_losses: tuple,
    native_losses_name: str,
    teacher,
    student,
    temperature,
    student_loss_weight,
    distillation_losses,
    distillation_loss_weights,
) -> Resolved:
    """Checks `Distiller`'s arguments and resolves the distillation terms.

    Called by each backend's distiller `__init__`, before any Keras work.

    Args:
        native_losses: The backend's `NATIVE_LOSSES` (used as given).
        native_losses_name: The backend's `NATIVE_LOSSES_NAME`.
        teacher: The teacher model.
        student: The student model.
        temperature: The default softening temperature.
        student_loss_weight: Weight of the hard-label loss.
        distillation_losses: As given to `Distiller`.
        distillation_loss_weights: As given to `Distiller`.

    Returns:
        The plans and weights of the terms.
    """
    inputs = _check_models(teacher, student)
    check_strategy(student, strategy_of())  # tfgreen.distribute: refuse what it can't run
    temperature = check_temperature(temperature)
    student_loss_weight = _check_weight(student_loss_weight, "student_loss_weight", 1.0)
    specs, weights = _check_losses(
        distillation_losses, distillation_loss_weights, native_losses, native_losses_name
    )
    if inputs is None:
        plans = [_plan(spec, teacher, student, temperature) for spec in specs]
        return Resolved(plans, weights, student_loss_weight)
    spec = check_sequence_specs([_as_spec(spec) for spec in specs])
    logits = LogitsPlan(
        temperature=temperature if spec.temperature is None else spec.temperature,
        teacher_kind=lm_output_kind(teacher, spec.teacher_output, "teacher"),
        student_kind=lm_output_kind(student, spec.student_output, "student"),
        binary=False,
    )
    sequence = SequencePlan(
        inputs, logits.temperature, logits.teacher_kind, logits.student_kind, weights[0]
    )
    return Resolved([logits], weights, student_loss_weight, sequence)


@functools.cache
def _flavoured(cls: type, implementation: type) -> type:
    """A user's `Distiller` subclass on top of the flavour's distiller class."""
    return type(
        cls.__name__,
        (cls, implementation),
        {"__module__": cls.__module__, "__qualname__": cls.__qualname__, "__doc__": cls.__doc__},
    )


def _concrete_class(cls: type, teacher) -> type:
    implementation = backend("tfgreen.distillation", flavor_of(teacher)).DISTILLER
    if issubclass(cls, implementation):
        return cls
    if cls is Distiller:
        return implementation
    if flavor_of_class(cls) is not None:
        raise TfgreenTypeError(
            message(
                f"{cls.__name__} derives from the other Keras's distiller than the teacher's",
                f"a teacher and student of the Keras {cls.__name__} was written for",
                "Subclass tfgreen.Distiller itself: it works on both Kerases",
                distiller=cls.__qualname__,
                teacher=flavor_of(teacher),
            )
        )
    return _flavoured(cls, implementation)


class Distiller:
    """Trains a small student to mimic a trained teacher (knowledge distillation).

    The training loss is `student_loss_weight * hard + (1 - student_loss_weight)
    * distill`, as in `keras.distillation.Distiller`: `hard` is the loss given
    to `compile()` on the labels; `distill` is the weighted sum of the
    distillation losses (by default the KL divergence of temperature-softened
    teacher and student outputs, times `temperature**2`). The teacher is
    frozen (`teacher.trainable = False`) and runs in inference mode.

    Teachers and students may end in logits, softmax or sigmoid; this is read
    from the last layer's activation (or given with `LogitsDistillation`'s
    `teacher_output`/`student_output`). A teacher whose optimizer exists but
    made no step triggers a `UserWarning` (it looks untrained); an unbuilt
    teacher is an error. Like Keras, the student's regularization losses are
    not added.

    Two language models (token ids in, `[batch, seq, vocab]` logits out:
    `tfgreen.models.tiny_gpt`, KerasHub CausalLMs) are distilled token by
    token (`tfgreen.distillation.sequence`): the KL is taken at every
    position and averaged over the real tokens of the padding mask (KerasHub's
    `padding_mask` input, else a per-token `sample_weight`), and the hard
    loss is the student's masked next-token cross-entropy (`compile(loss=None)`
    is enough). `fit(x, y, sample_weight=w)` takes next-token targets as a
    causal LM does; `fit(x)` uses the inputs shifted by one token. Vocabulary,
    sequence length and input kind must match.

    The object built is an instance of the teacher's flavour's distiller
    class, which derives from both `Distiller` and that Keras's `Model`. A
    subclass of `Distiller` works on both Kerases: its methods (for example
    an overridden `compute_loss` calling `super().compute_loss(...)`) sit on
    top of the flavour's class, and `type(d).__name__` is the subclass's name.

    Args:
        teacher: A trained, built Keras 3 or tf_keras model.
        student: A built model of the same flavour and output shape; may be a
            pruned or quantization-aware model. Trained in place.
        temperature: Softening temperature of the logits distillation.
            Defaults to `4.0`.
        student_loss_weight: Weight of the hard-label loss, in [0, 1].
            Defaults to `0.5`.
        distillation_losses: A `tfgreen.distillation.LogitsDistillation` or
            `FeatureDistillation`, or a list of them (Keras 3 also takes
            `keras.distillation` losses); `None` means logits distillation.
            Defaults to `None`.
        distillation_loss_weights: One weight per distillation loss; `None`
            gives each 1.0. Defaults to `None`.
        name: Name of the distiller model. Defaults to `"distiller"`.
        **kwargs: Base `Model` arguments (used when Keras reloads a saved
            Keras 3 distiller).

    Returns:
        A Keras model of the models' flavour (`keras.Model` or
        `tf_keras.Model`, and a `tfgreen.Distiller`) whose `call` runs the
        student.

    Example:
    ```python
    d = tfgreen.Distiller(teacher, student, temperature=4.0)
    d.compile("adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    d.fit(x, y, epochs=5)
    student = d.student
    ```
    """

    def __new__(
        cls,
        teacher,
        student,
        temperature: float = 4.0,
        student_loss_weight: float = 0.5,
        distillation_losses=None,
        distillation_loss_weights: list[float] | None = None,
        name: str = "distiller",
        **kwargs,
    ):
        concrete = _concrete_class(cls, teacher)
        # The flavour's Model.__new__ (next in the MRO); `__init__` then runs
        # the flavour's distiller with the same arguments.
        return super(Distiller, concrete).__new__(
            concrete,
            teacher=teacher,
            student=student,
            temperature=temperature,
            student_loss_weight=student_loss_weight,
            distillation_losses=distillation_losses,
            distillation_loss_weights=distillation_loss_weights,
            name=name,
            **kwargs,
        )
