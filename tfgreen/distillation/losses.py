"""What a student learns from its teacher: softened outputs or intermediate features.

`LogitsDistillation` and `FeatureDistillation` describe a distillation term
the same way for both Kerases; `tfgreen.Distiller` turns them into the
flavour's implementation. The math is written once against an `ops`
namespace (`keras.ops` for Keras 3, TensorFlow ops for tf_keras).

Teachers and students may end in raw logits, softmax or sigmoid. Outputs are
turned into log-probabilities before temperature scaling (softmax
probabilities `p` become `log p`, which is softmax-equivalent to the logits),
and a sigmoid unit is handled as a two-class distribution `[1 - p, p]`, so a
probability output never gets mistaken for logits.
"""

from __future__ import annotations

from tfgreen._validate import choice, number
from tfgreen.errors import TfgreenTypeError, UnsupportedLayerError, message

__all__ = [
    "FEATURE_LOSSES",
    "OUTPUTS",
    "FeatureDistillation",
    "LogitsDistillation",
    "activation_name",
    "check_temperature",
    "find_layer",
    "kl_terms",
    "log_probs",
    "output_kind",
    "soft_kl",
]

OUTPUTS = ("auto", "logits", "probabilities")
FEATURE_LOSSES = ("mse", "mae")
_EPSILON = 1e-7
_WRAPPER_DEPTH = 4


def check_temperature(temperature, name: str = "temperature") -> float:
    """Validates a distillation temperature and returns it as a float.

    Args:
        temperature: A finite number greater than 0.
        name: The argument name shown in the error. Defaults to `"temperature"`.

    Returns:
        The temperature as a float.

    Example:
    >>> check_temperature(4)
    4.0
    """
    return number(
        name,
        temperature,
        minimum=0,
        exclusive_minimum=True,
        example=4.0,
        fix=f"Pass a positive float; 1.0 leaves outputs unsoftened, 2-8 is typical, e.g. {name}=4.0",
    )


class LogitsDistillation:
    """Matches temperature-softened teacher and student outputs (Hinton et al.).

    The loss is `T**2 * KL(softmax(t / T) || softmax(s / T))`, averaged over
    the batch, with `t` and `s` the log-probabilities of teacher and student.

    Args:
        temperature: Softening temperature; `None` takes the `Distiller`'s
            `temperature`. Defaults to `None`.
        teacher_output: What the teacher's output is: `"logits"`,
            `"probabilities"` (softmax or sigmoid) or `"auto"` to read it from
            the last layer's activation. Defaults to `"auto"`.
        student_output: The same for the student. Defaults to `"auto"`.

    Example:
    ```python
    d = tfgreen.Distiller(teacher, student,
                          distillation_losses=LogitsDistillation(temperature=2.0))
    ```
    """

    def __init__(
        self,
        temperature: float | None = None,
        teacher_output: str = "auto",
        student_output: str = "auto",
    ):
        self.temperature = None if temperature is None else check_temperature(temperature)
        self.teacher_output = choice("teacher_output", teacher_output, OUTPUTS)
        self.student_output = choice("student_output", student_output, OUTPUTS)

    def get_config(self) -> dict:
        return {
            "temperature": self.temperature,
            "teacher_output": self.teacher_output,
            "student_output": self.student_output,
        }

    @classmethod
    def from_config(cls, config: dict) -> LogitsDistillation:
        return cls(**config)

    def __repr__(self) -> str:
        return f"LogitsDistillation({self.get_config()})"


class FeatureDistillation:
    """Matches an intermediate teacher layer's output with a student layer's.

    When the layers' last dimensions differ, the `Distiller` adds a learned
    linear projection (a `Dense` layer trained with the student, not part of
    it) from the student's width to the teacher's. The other dimensions must
    match.

    Args:
        teacher_layer_name: Name of the teacher layer whose output is the target.
        student_layer_name: Name of the student layer that should match it. A
            layer wrapped by pruning or quantization may be named by its
            original name.
        loss: `"mse"` or `"mae"` between the features. Defaults to `"mse"`.

    Example:
    ```python
    d = tfgreen.Distiller(teacher, student, distillation_losses=[
        LogitsDistillation(), FeatureDistillation("dense1", "dense1")])
    ```
    """

    def __init__(self, teacher_layer_name: str, student_layer_name: str, loss: str = "mse"):
        for name, value in (
            ("teacher_layer_name", teacher_layer_name),
            ("student_layer_name", student_layer_name),
        ):
            if not isinstance(value, str) or not value:
                raise TfgreenTypeError(
                    message(
                        f"`{name}` must name a layer",
                        "a non-empty string such as 'dense1'",
                        "Pass the layer's name; `[l.name for l in model.layers]` lists them",
                        **{name: value},
                    )
                )
        self.teacher_layer_name = teacher_layer_name
        self.student_layer_name = student_layer_name
        self.loss = choice("loss", loss, FEATURE_LOSSES)

    def get_config(self) -> dict:
        return {
            "teacher_layer_name": self.teacher_layer_name,
            "student_layer_name": self.student_layer_name,
            "loss": self.loss,
        }

    @classmethod
    def from_config(cls, config: dict) -> FeatureDistillation:
        return cls(**config)

    def __repr__(self) -> str:
        return f"FeatureDistillation({self.get_config()})"


def find_layer(model, name: str, role: str):
    """Finds a layer by name, also through pruning/quantization wrappers.

    Args:
        model: A Keras 3 or tf_keras model.
        name: The layer's name, or the name of the layer a wrapper wraps.
        role: `"teacher"` or `"student"`, for the error message.

    Returns:
        The layer of `model` (the wrapper, if the name is a wrapped layer's).
    """
    for layer in model.layers:
        inner = layer
        for _ in range(_WRAPPER_DEPTH):
            if inner.name == name:
                return layer
            inner = getattr(inner, "layer", None)
            if inner is None:
                break
    raise UnsupportedLayerError(
        message(
            f"The {role} has no layer named {name!r}",
            f"one of its layers: {[layer.name for layer in model.layers]}",
            f"Pass {role}_layer_name= one of those names",
            **{f"{role}_layer_name": name},
        )
    )


def activation_name(layer) -> str | None:
    """The name of a layer's activation (through wrappers), `"softmax"` for a Softmax layer."""
    for _ in range(_WRAPPER_DEPTH):
        if type(layer).__name__ == "Softmax":
            return "softmax"
        if hasattr(layer, "activation") or getattr(layer, "layer", None) is None:
            break
        layer = layer.layer
    activation = getattr(layer, "activation", None)
    for _ in range(_WRAPPER_DEPTH):
        name = getattr(activation, "__name__", None)
        if name is not None or activation is None:
            return name
        activation = getattr(activation, "activation", None)
    return None


def output_kind(model, declared: str, role: str) -> tuple[str, bool]:
    """Tells whether a model outputs logits or probabilities, and whether it is binary.

    Args:
        model: A built single-output Keras 3 or tf_keras model.
        declared: `"auto"`, `"logits"` or `"probabilities"`.
        role: `"teacher"` or `"student"`, for the error message.

    Returns:
        `(kind, binary)`: kind is `"logits"` or `"probabilities"`; binary is
        `True` for sigmoid units (each handled as a two-class distribution).
    """
    activation = activation_name(model.layers[-1])
    width = model.outputs[0].shape[-1]
    if declared == "auto":
        kinds = {"softmax": "probabilities", "sigmoid": "probabilities", "linear": "logits"}
        if activation not in kinds:
            raise UnsupportedLayerError(
                message(
                    f"Cannot tell whether the {role} outputs logits or probabilities: "
                    f"its last layer {model.layers[-1].name!r} has activation {activation!r}",
                    "a last layer with a linear, softmax or sigmoid activation",
                    f"Say it explicitly: distillation_losses=tfgreen.distillation."
                    f"LogitsDistillation({role}_output='logits' or 'probabilities')",
                    **{f"{role}_output": declared},
                )
            )
        declared = kinds[activation]
    return declared, activation == "sigmoid" or width == 1


def log_probs(ops, outputs, kind: str, binary: bool):
    """Outputs as log-probabilities (up to a constant for logits); sigmoids as two classes."""
    outputs = ops.cast(outputs, "float32")
    if binary:
        if kind == "logits":
            return ops.stack([ops.log_sigmoid(-outputs), ops.log_sigmoid(outputs)], axis=-1)
        p = ops.clip(outputs, _EPSILON, 1.0 - _EPSILON)
        return ops.stack([ops.log(1.0 - p), ops.log(p)], axis=-1)
    if kind == "logits":
        return outputs
    return ops.log(ops.clip(outputs, _EPSILON, 1.0))


def kl_terms(
    ops, teacher, student, temperature: float, teacher_kind: str, student_kind: str, binary: bool
):
    """`T**2 * KL(teacher || student)` of temperature-softened outputs, per position.

    Args:
        ops: `keras.ops`, or a namespace of the same TensorFlow functions.
        teacher: Teacher outputs (logits or probabilities).
        student: Student outputs (logits or probabilities).
        temperature: The softening temperature.
        teacher_kind: `"logits"` or `"probabilities"`.
        student_kind: `"logits"` or `"probabilities"`.
        binary: Outputs are sigmoid units, each a two-class distribution.

    Returns:
        The KL times `T**2`, with the outputs' shape minus the class axis
        (`[batch]`, or `[batch, seq]` for sequence logits).
    """
    t = ops.log_softmax(log_probs(ops, teacher, teacher_kind, binary) / temperature, axis=-1)
    s = ops.log_softmax(log_probs(ops, student, student_kind, binary) / temperature, axis=-1)
    return ops.sum(ops.exp(t) * (t - s), axis=-1) * (temperature**2)


def soft_kl(
    ops, teacher, student, temperature: float, teacher_kind: str, student_kind: str, binary: bool
):
    """KL divergence of temperature-softened teacher and student outputs, times T^2.

    Args: as `kl_terms`.

    Returns:
        A scalar: the batch mean of `T**2 * KL(teacher || student)`.
    """
    return ops.mean(
        kl_terms(ops, teacher, student, temperature, teacher_kind, student_kind, binary)
    )
