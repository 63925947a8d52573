"""Keras 3 distillation: `keras.distillation.Distiller` plus what it lacks.

Keras 3.15 ships the training loop, the frozen teacher, the feature
extractors and the loss trackers; this module reuses them and adds:
- logits distillation that reads probability outputs correctly (softmax or
  sigmoid heads) instead of treating them as logits;
- a learned projection when feature widths differ;
- correct loss scaling under `tf.distribute` (Keras sums per-replica
  gradients, so each replica's loss is divided by the number of replicas).
`Keras3Distiller` is this backend's `DISTILLER` (see `_protocol.py`); build
it with `tfgreen.Distiller(...)`.
"""

from __future__ import annotations

import keras
from keras import distillation

from tfgreen._adapters.keras import keras3_map_student_loss
from tfgreen.distillation.distiller import (
    Distiller,
    FeaturePlan,
    LogitsPlan,
    check_compile_loss,
    num_replicas,
    resolve,
)
from tfgreen.distillation.losses import soft_kl
from tfgreen.distillation.sequence import sequence_total

__all__ = ["DISTILLER", "NATIVE_LOSSES", "NATIVE_LOSSES_NAME", "Keras3Distiller"]

NATIVE_LOSSES = (distillation.DistillationLoss,)
NATIVE_LOSSES_NAME = " or keras.distillation losses"


@keras.saving.register_keras_serializable(package="tfgreen")
class _LogitsLoss(distillation.DistillationLoss):
    """Temperature-softened KL divergence that knows logits from probabilities."""

    def __init__(self, temperature, teacher_kind, student_kind, binary):
        self.plan = LogitsPlan(temperature, teacher_kind, student_kind, binary)

    def compute_loss(self, teacher_outputs, student_outputs, **kwargs):
        plan = self.plan
        return soft_kl(
            keras.ops,
            teacher_outputs,
            student_outputs,
            plan.temperature,
            plan.teacher_kind,
            plan.student_kind,
            plan.binary,
        )

    def get_config(self):
        return dict(vars(self.plan))

    @classmethod
    def from_config(cls, config):
        return cls(**config)


@keras.saving.register_keras_serializable(package="tfgreen")
class _FeatureLoss(distillation.FeatureDistillation):
    """`FeatureDistillation` with a learned projection when the widths differ."""

    def __init__(self, teacher_layer_name, student_layer_name, loss, student_shape, teacher_width):
        super().__init__(
            loss=loss, teacher_layer_name=teacher_layer_name, student_layer_name=student_layer_name
        )
        self.plan = FeaturePlan(
            teacher_layer_name, student_layer_name, loss, tuple(student_shape), teacher_width
        )
        self.projection = None
        if teacher_width is not None:
            self.projection = keras.layers.Dense(
                teacher_width, name=f"projection_{student_layer_name}_to_{teacher_layer_name}"
            )
            self.projection.build(tuple(student_shape))

    def compute_loss(self, teacher_outputs, student_outputs, **kwargs):
        if self.projection is not None:
            student_outputs = self.projection(student_outputs)
        return super().compute_loss(teacher_outputs, student_outputs, **kwargs)

    def get_config(self):
        return dict(vars(self.plan))

    @classmethod
    def from_config(cls, config):
        return cls(**config)


def _as_compiled(loss_fn):
    # Keras calls the student loss raw, unlike compile() on a plain model:
    # - a `keras.losses.Loss` divides by the replica count itself; undo it so
    #   every term is a per-replica mean and the total is scaled once;
    # - labels of shape (batch,) for a (batch, 1) sigmoid output get the unit
    #   axis added, as `Model.compile` does.
    if loss_fn is None:
        return None
    replicas = num_replicas if isinstance(loss_fn, keras.losses.Loss) else (lambda: 1)

    def student_loss(y_true, y_pred):
        if len(y_pred.shape) == len(y_true.shape) + 1 and y_pred.shape[-1] == 1:
            y_true = keras.ops.expand_dims(y_true, -1)
        return loss_fn(y_true, y_pred) * replicas()

    return student_loss


def _loss(plan):
    if isinstance(plan, LogitsPlan):
        return _LogitsLoss(**vars(plan))
    if isinstance(plan, FeaturePlan):
        return _FeatureLoss(**vars(plan))
    return plan  # a keras.distillation loss, used as given


@keras.saving.register_keras_serializable(package="tfgreen")
class Keras3Distiller(Distiller, distillation.Distiller):
    """`keras.distillation.Distiller` with tfgreen's losses; takes `tfgreen.Distiller`'s arguments."""

    def __init__(
        self,
        teacher,
        student,
        temperature=4.0,
        student_loss_weight=0.5,
        distillation_losses=None,
        distillation_loss_weights=None,
        name="distiller",
        **kwargs,
    ):
        resolved = resolve(
            NATIVE_LOSSES,
            NATIVE_LOSSES_NAME,
            teacher,
            student,
            temperature,
            student_loss_weight,
            distillation_losses,
            distillation_loss_weights,
        )
        super().__init__(
            teacher=teacher,
            student=student,
            distillation_losses=[_loss(plan) for plan in resolved.plans],
            distillation_loss_weights=resolved.weights,
            student_loss_weight=resolved.student_loss_weight,
            name=name,
            **kwargs,
        )
        self._sequence = resolved.sequence
        # Tracked so that fit() trains them (they are not part of the student).
        self.projections = [
            loss.projection
            for loss in self.distillation_losses
            if getattr(loss, "projection", None) is not None
        ]

    def compile(self, optimizer="adam", loss=None, metrics=None, **kwargs):
        check_compile_loss(loss, self._sequence)
        if self._sequence is not None and (loss is None or isinstance(loss, str)):
            # Keras needs a loss; the next-token cross-entropy is computed per token.
            logits = self._sequence.student_kind == "logits"
            loss = keras.losses.SparseCategoricalCrossentropy(from_logits=logits)
        super().compile(optimizer=optimizer, loss=loss, metrics=metrics, **kwargs)
        keras3_map_student_loss(self, _as_compiled)

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        if self._sequence is None:
            total = super().compute_loss(
                x=x, y=y, y_pred=y_pred, sample_weight=sample_weight, training=training
            )
        else:
            if y_pred is None:
                y_pred = self(x, training=training)
            total = sequence_total(keras.ops, self, x, y, y_pred, sample_weight)
        return keras.ops.divide(total, num_replicas())


DISTILLER = Keras3Distiller
